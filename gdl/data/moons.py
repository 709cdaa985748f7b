"""Two moons: the RealNVP's 2-D toy data.

Raw arrays: ``points`` float64 (n, 2) from ``sklearn.datasets.make_moons`` (``random_state=seed``),
``labels`` int64 (n,) (which moon).

Processed arrays: ``{train,val,test}_x`` float32 (n, 2), standardised with the TRAIN split's mean and
standard deviation (``mean``, ``std``: float32 (2,), so ``x * std + mean`` maps back), and
``{train,val,test}_y`` int64 labels. The split is stratified by moon.
"""

from __future__ import annotations

import numpy as np

from gdl.data.splits import split_indices, take


def acquire(cfg, seed: int) -> dict[str, np.ndarray]:
    from sklearn.datasets import make_moons

    points, labels = make_moons(n_samples=cfg.n_samples, noise=cfg.noise, random_state=seed)
    return {"points": points.astype(np.float64), "labels": labels.astype(np.int64)}


def preprocess(raw: dict[str, np.ndarray], cfg, seed: int) -> dict[str, np.ndarray]:
    points = raw["points"].astype(np.float64)
    labels = raw["labels"].astype(np.int64)
    splits = split_indices(len(labels), cfg.val_fraction, cfg.test_fraction, seed, stratify=labels)
    train = points[splits[0]]
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    x = ((points - mean) / std).astype(np.float32)
    out = take({"x": x, "y": labels}, splits, {"x": "x", "y": "y"})
    out["mean"] = mean.astype(np.float32)
    out["std"] = std.astype(np.float32)
    return out
