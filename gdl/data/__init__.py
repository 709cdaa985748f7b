"""The pipeline's datasets: one module each, with the same two pure functions.

* ``acquire(cfg, seed) -> dict[str, np.ndarray]``: the raw arrays (``cfg = params.data.<name>``),
  written by ``python -m stages.data <name>`` to ``data/raw/<name>.npz``;
* ``preprocess(raw, cfg, seed) -> dict[str, np.ndarray]``: the split (``train_*``, ``val_*``,
  ``test_*``) and normalised arrays (``cfg = params.preprocess.<name>``), written by
  ``python -m stages.preprocess <name>`` to ``data/processed/<name>.npz``.

Each module's docstring lists its arrays. Heavy dependencies (scikit-learn, music21) are imported
inside the functions, so importing this package is cheap.
"""

from gdl.data import chorales, digits, moons, shapes, text

DATASETS = {"digits": digits, "moons": moons, "shapes": shapes, "text": text, "chorales": chorales}

__all__ = ["DATASETS"]
