"""Stage `preprocess@<dataset>`: split and normalise data/raw/<dataset>.npz into data/processed/<dataset>.npz.

Run from the repository root:  python -m stages.preprocess <dataset>
Settings come from params.yaml (section `preprocess.<dataset>` and the top-level `seed`), which is
validated first: an invalid params file stops the stage before anything is written. The output has
`train_*`, `val_*` and `test_*` arrays (plus shared metadata); see gdl/data/<dataset>.py.
"""

from __future__ import annotations

import time

from gdl import data
from gdl.arrays import DataFileError, load_arrays, save_arrays
from gdl.download import DownloadError
from stages.common import describe, fail, stage_args


def main(argv: list[str] | None = None) -> None:
    dataset, stage, params = stage_args("preprocess", __doc__, data.DATASETS, "dataset", argv)
    start = time.perf_counter()
    path = f"data/processed/{dataset}.npz"
    try:
        raw = load_arrays(f"data/raw/{dataset}.npz")
        arrays = data.get(dataset).preprocess(raw, getattr(params.preprocess, dataset), params.seed)
        save_arrays(path, arrays)
    except (DataFileError, DownloadError) as exc:
        fail(stage, str(exc))
    print(f"{describe(path, arrays)} [{time.perf_counter() - start:.1f} s]")


if __name__ == "__main__":
    main()
