"""Stage `data@<dataset>`: acquire one dataset's raw arrays into data/raw/<dataset>.npz.

Run from the repository root:  python -m stages.data <dataset>
Settings come from params.yaml (section `data.<dataset>` and the top-level `seed`), which is
validated first: an invalid params file stops the stage before anything is written.
"""

from __future__ import annotations

import time

from gdl import data
from gdl.arrays import DataFileError, save_arrays
from gdl.download import DownloadError
from stages.common import describe, fail, stage_args


def main(argv: list[str] | None = None) -> None:
    dataset, stage, params = stage_args("data", __doc__, data.DATASETS, "dataset", argv)
    start = time.perf_counter()
    path = f"data/raw/{dataset}.npz"
    try:
        arrays = data.get(dataset).acquire(getattr(params.data, dataset), params.seed)
        save_arrays(path, arrays)
    except (DataFileError, DownloadError) as exc:
        fail(stage, str(exc))
    print(f"{describe(path, arrays)} [{time.perf_counter() - start:.1f} s]")


if __name__ == "__main__":
    main()
