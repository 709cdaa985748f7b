"""One module per generative family, each with the same small interface:

    build(cfg, data, seed) -> compiled keras.Model with its weights created
    train_arrays(data)     -> (x, y, validation_data) for keras `fit`
    sample_outputs(model, data, n, seed) -> dict of arrays for samples/<family>.npz (reports read them)
    log_likelihood(model, x, ...) -> per-example log-likelihood in nats, where the family has one
"""

import importlib
from types import ModuleType

FAMILIES = ("vae", "realnvp")


def get(name: str) -> ModuleType:
    if name not in FAMILIES:
        raise KeyError(f"unknown family {name!r}; known: {', '.join(FAMILIES)}")
    return importlib.import_module(f"gdl.families.{name}")
