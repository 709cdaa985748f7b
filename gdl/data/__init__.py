"""The pipeline's datasets: one module each, with the same two pure functions.

* ``acquire(cfg, seed) -> dict[str, np.ndarray]``: the raw arrays (``cfg = params.data.<name>``),
  written by ``python -m stages.data <name>`` to ``data/raw/<name>.npz``;
* ``preprocess(raw, cfg, seed) -> dict[str, np.ndarray]``: the split (``train_*``, ``val_*``,
  ``test_*``) and normalised arrays (``cfg = params.preprocess.<name>``), written by
  ``python -m stages.preprocess <name>`` to ``data/processed/<name>.npz``.

Each module's docstring lists its arrays. Heavy dependencies (scikit-learn, music21) are imported
inside the functions, so importing this package is cheap.
"""

import importlib
from types import ModuleType

DATASETS = ("digits", "moons", "shapes", "text", "chorales")

__all__ = ["DATASETS", "get"]


def get(name: str) -> ModuleType:
    """One dataset's module, imported on demand (so a stage's imports, and DVC deps, are just its own)."""
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return importlib.import_module(f"gdl.data.{name}")
