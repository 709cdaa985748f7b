"""What every stage entry point does first and last: validate params, fail clearly, load what it needs."""

from __future__ import annotations

import argparse
import os
import sys

from gdl import families
from gdl.params import Core, ParamsError, load_params


def fail(stage: str, message: str) -> None:
    print(f"error in stage {stage}: {message}", file=sys.stderr)
    sys.exit(1)


def stage_args(kind: str, doc: str, choices, metavar: str, argv=None) -> tuple[str, str, Core]:
    """Parse `python -m stages.<kind> <item>` and validate params: (item, stage name, params)."""
    parser = argparse.ArgumentParser(prog=f"python -m stages.{kind}", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("item", metavar=metavar, choices=sorted(choices), help=f"one of: {', '.join(sorted(choices))}")
    item = parser.parse_args(argv).item
    stage = f"{kind}@{item}"
    return item, stage, params_or_exit(stage)


def model_args(kind: str, doc: str, argv=None) -> tuple[families.Instance, str, Core]:
    """`python -m stages.<kind> <model>` for a model of dvc.yaml's `models` var: (instance, stage, params)."""
    try:
        models = families.instances()
    except families.InstanceError as exc:
        fail(kind, str(exc))
    name, stage, params = stage_args(kind, doc, models, "model", argv)
    return models[name], stage, params


def params_or_exit(stage: str) -> Core:
    """Validate the whole params file before the stage does any work."""
    try:
        return load_params()
    except ParamsError as exc:
        fail(stage, str(exc))


def describe(path, arrays) -> str:
    parts = ", ".join(f"{k} {v.dtype}{tuple(v.shape)}" for k, v in sorted(arrays.items()))
    return f"{path}: {parts}"


def quiet_tensorflow() -> None:
    """Import TensorFlow and start its CPU device with its C++ start-up lines filtered out.

    TF 2.21 logs them through absl before absl is initialised, so TF_CPP_MIN_LOG_LEVEL cannot hide them
    ("I0000 ... oneDNN custom operations are on", twice). Everything else written to stderr meanwhile
    (a real import error, say) is passed through.
    """
    import tempfile

    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            import tensorflow as tf

            tf.constant(0) + 1  # the second batch of lines comes when the device starts
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            for line in caught.read().decode(errors="replace").splitlines():
                if not (line.startswith("I0000") or "before absl::InitializeLog()" in line):
                    print(line, file=sys.stderr)
