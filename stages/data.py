"""Stage `data@<dataset>`: acquire one dataset's raw arrays into data/raw/<dataset>.npz.

Run from the repository root:  python -m stages.data <dataset>
Settings come from params.yaml (section `data.<dataset>` and the top-level `seed`), which is
validated first: an invalid params file stops the stage before anything is written.
"""

from __future__ import annotations

import argparse
import sys
import time

from gdl.data import DATASETS


def summary(path, arrays) -> str:
    parts = ", ".join(f"{k} {v.dtype}{tuple(v.shape)}" for k, v in sorted(arrays.items()))
    return f"{path}: {parts}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stages.data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=sorted(DATASETS), help="which dataset to acquire")
    args = parser.parse_args(argv)

    from gdl.params import ParamsError, load_params

    try:
        params = load_params()
    except ParamsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    from gdl.arrays import DataFileError, save_arrays
    from gdl.download import DownloadError

    start = time.perf_counter()
    path = f"data/raw/{args.dataset}.npz"
    try:
        arrays = DATASETS[args.dataset].acquire(getattr(params.data, args.dataset), params.seed)
        save_arrays(path, arrays)
    except (DataFileError, DownloadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{summary(path, arrays)} [{time.perf_counter() - start:.1f} s]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
