"""What every stage entry point does first and last: validate params, fail clearly, write atomically."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from gdl.params import Params, ParamsError, load_params


def fail(stage: str, message: str) -> None:
    print(f"error in stage {stage}: {message}", file=sys.stderr)
    sys.exit(1)


def stage_args(kind: str, doc: str, choices, metavar: str, argv=None) -> tuple[str, str, Params]:
    """Parse `python -m stages.<kind> <item>` and validate params: (item, stage name, params)."""
    import argparse

    parser = argparse.ArgumentParser(prog=f"python -m stages.{kind}", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("item", metavar=metavar, choices=sorted(choices), help=f"one of: {', '.join(sorted(choices))}")
    item = parser.parse_args(argv).item
    stage = f"{kind}@{item}"
    return item, stage, params_or_exit(stage)


def params_or_exit(stage: str) -> Params:
    """Validate the whole params file before the stage does any work."""
    try:
        return load_params()
    except ParamsError as exc:
        fail(stage, str(exc))


@contextmanager
def atomic_dir(target: str | Path):
    """Yield a temp dir beside `target`; it replaces `target` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: str | Path, obj: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)
