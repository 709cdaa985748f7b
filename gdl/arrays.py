"""Deterministic ``.npz`` files for the pipeline's data stages.

DVC decides what to rerun from the hashes of stage outputs, so a stage that is run twice on the same
inputs must write the same bytes. ``np.savez`` does not: it stamps every zip entry with the current
time. :func:`save_arrays` writes the archive itself, with

* a fixed timestamp (1980-01-01, the earliest a zip entry can carry), fixed permissions and a fixed
  "created on Unix" marker, so nothing about the machine or the moment leaks into the file;
* members in sorted key order, each array C-contiguous, written with ``allow_pickle=False``;
* ZIP_DEFLATED at zlib's default level (the text and image arrays compress well);
* an atomic replace: the archive is written to a temporary sibling and renamed into place, so an
  interrupted run never leaves a half-written file that DVC could cache.

:func:`load_arrays` reads every array eagerly and checks every member's CRC-32, so a damaged file is
reported where it is opened, as a :class:`DataFileError` that says which stage rebuilds it. The files
are ordinary ``.npz`` files: ``np.load(path, allow_pickle=False)`` opens them too.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from gdl.atomic import atomic_file

__all__ = ["DataFileError", "load_arrays", "save_arrays", "stage_for"]

_EPOCH = (1980, 1, 1, 0, 0, 0)


class DataFileError(RuntimeError):
    """A data file is missing, truncated or corrupt; the message says which stage regenerates it."""


def stage_for(path: str | Path) -> str | None:
    """The DVC stage that writes ``path`` (``data@<name>`` / ``preprocess@<name>``), if it is one of ours."""
    path = Path(path)
    if path.suffix != ".npz" or path.parent.parent.name != "data":
        return None
    stage = {"raw": "data", "processed": "preprocess", "tokens": "tokenise"}.get(path.parent.name)
    return f"{stage}@{path.stem}" if stage else None


def _hint(path: Path) -> str:
    stage = stage_for(path)
    return f": rerun `dvc repro {stage}`" if stage else ""


def save_arrays(path: str | Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write ``arrays`` to the ``.npz`` file ``path``; identical inputs give identical bytes.

    Keys are written in sorted order. Object arrays (which would need pickle to load) are refused.
    Parent directories are created; the file appears atomically.
    """
    path = Path(path)
    prepared: list[tuple[str, np.ndarray]] = []
    for key in sorted(arrays):
        if not isinstance(key, str) or not key or "/" in key or "\\" in key:
            raise ValueError(f"{path}: invalid array name {key!r}")
        arr = np.asarray(arrays[key])
        if arr.dtype.hasobject:
            raise ValueError(
                f"{path}: array {key!r} has object dtype {arr.dtype}; store strings as a numpy "
                f"unicode array (np.array(list_of_str) or .astype(str)) instead"
            )
        # Not np.ascontiguousarray: it turns 0-d arrays into shape (1,).
        prepared.append((key, np.require(arr, requirements="C")))

    with atomic_file(path) as tmp:
        # open(..., "xb") rather than mkstemp: the final file gets the usual umask permissions.
        with open(tmp, "xb") as raw:
            with zipfile.ZipFile(raw, mode="w", allowZip64=True) as zf:
                for key, arr in prepared:
                    info = zipfile.ZipInfo(key + ".npy", date_time=_EPOCH)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.create_system = 3  # "Unix", whatever the writing platform
                    info.external_attr = 0o644 << 16
                    # force_zip64 (as np.savez does) so the header layout never depends on the size.
                    with zf.open(info, mode="w", force_zip64=True) as member:
                        np.lib.format.write_array(member, arr, allow_pickle=False)
            raw.flush()
            os.fsync(raw.fileno())
    return path


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Read every array of the ``.npz`` file ``path`` (no pickles), checking each member's CRC-32.

    Any problem (missing file, not a zip, truncated, CRC mismatch, bad array header) raises
    :class:`DataFileError` naming the file and, for pipeline outputs, the stage that regenerates it.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path} does not exist{_hint(path)}")
    try:
        out: dict[str, np.ndarray] = {}
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                if not name.endswith(".npy"):
                    raise ValueError(f"unexpected member {name!r}")
                # zf.read checks the CRC-32 of the whole member before we parse it.
                data = zf.read(name)
                arr = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
                out[name[: -len(".npy")]] = arr
                del data
    except Exception as exc:  # BadZipFile, zlib.error, EOFError, ValueError, OSError, ...
        raise DataFileError(f"{path} is corrupt ({type(exc).__name__}: {exc}){_hint(path)}") from exc
    return out
