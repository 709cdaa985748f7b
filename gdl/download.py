"""The one download helper for everything fetched from outside (book datasets, Inception weights).

Three rules, because a reproducible pipeline is only as good as its inputs:

* **Pinned checksum.** Every download names the SHA-256 it must have. A file that does not match is
  never used: upstream may have changed, the transfer may have been cut, or someone may be serving
  something else. Some of these files are later unpickled (``allow_pickle``), so an unverified file
  must never reach the loaders.
* **Atomic writes.** Data is streamed into a temporary file next to the destination and renamed into
  place only once its hash is checked, so an interrupted run never leaves a half-written file that a
  later run (or DVC's cache) would mistake for a good one.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from gdl.atomic import atomic_file

__all__ = ["ChecksumError", "DownloadError", "fetch", "sha256_file"]

_CHUNK = 1 << 20
_SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")


class DownloadError(RuntimeError):
    """A file could not be downloaded."""


class ChecksumError(DownloadError):
    """The downloaded bytes do not have the pinned SHA-256."""


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

    digest = hashlib.sha256()
    with atomic_file(dest) as tmp:  # dest appears only if the block finishes: downloaded and verified
        _download(url, dest, tmp, digest, timeout, progress)
        actual = digest.hexdigest()
        if actual != expected:
            raise ChecksumError(
                f"checksum mismatch for {url} (destination {dest}): expected sha256 {expected}, got {actual}")
    return dest


def _download(url: str, dest: Path, tmp: Path, digest, timeout: float, progress: bool) -> None:
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
        raise DownloadError(f"could not download {url} to {dest}: {exc}") from exc
