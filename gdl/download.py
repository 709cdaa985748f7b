"""The one download helper for everything fetched from outside (book datasets, Inception weights).

Three rules, because a reproducible pipeline is only as good as its inputs:

* **Pinned checksum.** Every download names the SHA-256 it must have. A file that does not match is
  never used: upstream may have changed, the transfer may have been cut, or someone may be serving
  something else. Some of these files are later unpickled (``allow_pickle``), so an unverified file
  must never reach the loaders.
* **Atomic writes.** Data is streamed into a temporary file next to the destination and renamed into
  place only once its hash is checked, so an interrupted run never leaves a half-written file that a
  later run (or DVC's cache) would mistake for a good one.
* **Safe extraction.** Archives come from third parties. Members with absolute paths, ``..``
  components, links or device files are refused before anything is written, and extraction goes to a
  temporary sibling directory that replaces the target only when everything succeeded.
"""

from __future__ import annotations

import hashlib
import http.client
import lzma
import os
import re
import secrets
import shutil
import stat
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from tqdm import tqdm

__all__ = [
    "ChecksumError",
    "DownloadError",
    "UnsafeArchiveError",
    "extract",
    "fetch",
    "fetch_and_extract",
    "sha256_file",
]

_CHUNK = 1 << 20
_SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")
_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
# Errors a cut or corrupt archive raises from the standard library's readers.
_CORRUPT_ERRORS = (
    zipfile.BadZipFile,
    tarfile.TarError,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    OSError,
    ValueError,
)


class DownloadError(RuntimeError):
    """A file could not be downloaded or an archive could not be extracted."""


class ChecksumError(DownloadError):
    """The downloaded bytes do not have the pinned SHA-256."""


class UnsafeArchiveError(DownloadError):
    """An archive member would be written outside the target directory, or is a link or device."""


def sha256_file(path: str | Path) -> str:
    """Return the hex SHA-256 of the file at ``path``."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _check_sha256(sha256: str, url: str) -> str:
    if not isinstance(sha256, str) or not _SHA256_RE.fullmatch(sha256):
        raise ValueError(f"invalid SHA-256 for {url}: expected 64 hex digits, got {sha256!r}")
    return sha256.lower()


def fetch(
    url: str,
    dest: str | Path,
    sha256: str,
    *,
    timeout: float = 60,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` and check that it has the SHA-256 ``sha256``.

    A ``dest`` that already has the right hash is reused without touching the network. On any
    failure nothing new is left on disk; an existing ``dest`` with a wrong hash is left as it was
    until a good download replaces it.
    """
    expected = _check_sha256(sha256, url)
    dest = Path(dest)
    if dest.is_file() and sha256_file(dest) == expected:
        return dest

    dest.parent.mkdir(parents=True, exist_ok=True)
    # Same directory as dest, so os.replace is a rename within one filesystem (atomic).
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")
    digest = hashlib.sha256()
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "gdl-download"})
        # open(..., "xb") rather than mkstemp: the final file then gets the usual umask
        # permissions instead of mkstemp's 0600.
        with urllib.request.urlopen(request, timeout=timeout) as response, open(tmp, "xb") as out:
            length = response.headers.get("Content-Length")
            with tqdm(
                total=int(length) if length and length.isdigit() else None,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=dest.name,
                file=sys.stderr,
                disable=not progress,
                leave=False,
            ) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
    except (OSError, http.client.HTTPException, ValueError) as exc:
        # URLError, HTTPError and socket timeouts are all OSErrors; ValueError is a malformed URL.
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"could not download {url} to {dest}: {exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

    actual = digest.hexdigest()
    if actual != expected:
        tmp.unlink(missing_ok=True)
        raise ChecksumError(
            f"checksum mismatch for {url} (destination {dest}): "
            f"expected sha256 {expected}, got {actual}"
        )
    os.replace(tmp, dest)
    return dest


def _unsafe_name(name: str) -> str | None:
    """Why the member name ``name`` could escape the target directory, or None if it cannot."""
    # Backslashes are separators on Windows, so treat them as such everywhere.
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or re.match(r"[A-Za-z]:", normalized):
        return "absolute path"
    if ".." in PurePosixPath(normalized).parts:
        return "'..' in path"
    if "\0" in name:
        return "NUL byte in name"
    return None


def _within(root: Path, name: str) -> bool:
    # Belt and braces after the name checks: resolve the final path as the OS would.
    root = root.resolve()
    return (root / name.replace("\\", "/")).resolve().is_relative_to(root)


def _check_zip(zf: zipfile.ZipFile, archive: Path, root: Path) -> None:
    for info in zf.infolist():
        reason = _unsafe_name(info.filename)
        mode = info.external_attr >> 16
        if reason is None and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
            reason = "link or special file"
        if reason is None and not _within(root, info.filename):
            reason = "escapes the target directory"
        if reason:
            raise UnsafeArchiveError(f"unsafe member {info.filename!r} in {archive}: {reason}")


def _check_tar(tf: tarfile.TarFile, archive: Path, root: Path) -> None:
    for member in tf.getmembers():
        reason = _unsafe_name(member.name)
        if reason is None and not (member.isfile() or member.isdir()):
            # Links are refused outright: checking where each one points is easy to get wrong.
            reason = "link or special file"
        if reason is None and not _within(root, member.name):
            reason = "escapes the target directory"
        if reason:
            raise UnsafeArchiveError(f"unsafe member {member.name!r} in {archive}: {reason}")


def _is_zip(archive: Path) -> bool:
    name = archive.name.lower()
    if name.endswith(".zip"):
        return True
    if name.endswith(_TAR_SUFFIXES):
        return False
    return zipfile.is_zipfile(archive)


def _extract_into(archive: Path, root: Path) -> None:
    if _is_zip(archive):
        with zipfile.ZipFile(archive) as zf:
            _check_zip(zf, archive, root)
            zf.extractall(root)
    else:
        # "r:*" detects gzip/bzip2/xz itself, so a misnamed file still works.
        with tarfile.open(archive, "r:*") as tf:
            _check_tar(tf, archive, root)
            # The "data" filter also drops setuid bits and odd permissions.
            tf.extractall(root, filter="data")


def extract(archive: str | Path, target_dir: str | Path, *, overwrite: bool = False) -> Path:
    """Safely extract a .zip, .tar, .tar.gz/.tgz, .tar.bz2 or .tar.xz archive into ``target_dir``.

    Either the whole archive ends up in ``target_dir`` or nothing does. An existing ``target_dir``
    is an error unless ``overwrite`` is true; then it is replaced once extraction has succeeded.
    """
    archive = Path(archive)
    target = Path(target_dir)
    if (target.exists() or target.is_symlink()) and not overwrite:
        raise FileExistsError(f"{target} already exists (pass overwrite=True to replace it)")
    if not archive.is_file():
        raise DownloadError(f"archive {archive} does not exist")

    target.parent.mkdir(parents=True, exist_ok=True)
    # A sibling of target, so the final rename stays on one filesystem.
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".extracting", dir=target.parent))
    try:
        try:
            _extract_into(archive, tmp)
        except UnsafeArchiveError:
            raise
        except _CORRUPT_ERRORS as exc:
            raise DownloadError(f"could not extract {archive}: {exc}") from exc

        if target.exists() or target.is_symlink():
            # Move the old tree aside first so that, if the swap fails, it can be put back.
            old = target.with_name(f".{target.name}.{secrets.token_hex(4)}.old")
            os.replace(target, old)
            try:
                os.replace(tmp, target)
            except BaseException:
                os.replace(old, target)
                raise
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def fetch_and_extract(
    url: str,
    sha256: str,
    archive_path: str | Path,
    target_dir: str | Path,
    *,
    overwrite: bool = False,
    timeout: float = 60,
    progress: bool = True,
) -> Path:
    """Fetch the archive at ``url``, check it against ``sha256``, extract it into ``target_dir``."""
    archive = fetch(url, archive_path, sha256, timeout=timeout, progress=progress)
    return extract(archive, target_dir, overwrite=overwrite)
