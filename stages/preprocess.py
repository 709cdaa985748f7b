"""Stage `preprocess@<dataset>`: split and normalise data/raw/<dataset>.npz into data/processed/<dataset>.npz.

Run from the repository root:  python -m stages.preprocess <dataset>
Settings come from params.yaml (section `preprocess.<dataset>` and the top-level `seed`), which is
validated first: an invalid params file stops the stage before anything is written. The output has
`train_*`, `val_*` and `test_*` arrays (plus shared metadata); see gdl/data/<dataset>.py.
"""

from __future__ import annotations

import argparse
import sys
import time

from gdl.data import DATASETS
from stages.data import summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stages.preprocess", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=sorted(DATASETS), help="which dataset to preprocess")
    args = parser.parse_args(argv)

    from gdl.params import ParamsError, load_params

    try:
        params = load_params()
    except ParamsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    from gdl.arrays import DataFileError, load_arrays, save_arrays
    from gdl.download import DownloadError

    start = time.perf_counter()
    path = f"data/processed/{args.dataset}.npz"
    try:
        raw = load_arrays(f"data/raw/{args.dataset}.npz")
        arrays = DATASETS[args.dataset].preprocess(raw, getattr(params.preprocess, args.dataset), params.seed)
        save_arrays(path, arrays)
    except (DataFileError, DownloadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{summary(path, arrays)} [{time.perf_counter() - start:.1f} s]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
