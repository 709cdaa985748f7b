"""Deterministic train/validation/test splits."""

from __future__ import annotations

import numpy as np

__all__ = ["split_indices", "take"]


def _count(n: int, fraction: float) -> int:
    k = int(np.floor(n * fraction + 0.5))
    # Any split that was asked for gets at least one item once there are enough to go round.
    return max(k, 1) if n >= 3 else k


def split_indices(
    n: int,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    stratify: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split ``range(n)`` into sorted, disjoint, covering train/val/test index arrays.

    The sizes of val and test are ``round(n * fraction)`` (at least 1 each when ``n >= 3``); train
    gets the rest. With ``stratify`` (one label per item), every class is spread over the three
    splits in proportion to its size: items are shuffled within their class, given the position
    ``(rank + 0.5) / class_size`` in ``(0, 1)``, and the test split takes the lowest positions, the
    validation split the next ones, so each class contributes about ``fraction * class_size`` items
    to each split (and the split sizes are exactly those above). The result depends only on the
    arguments.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"invalid split fractions val={val_fraction}, test={test_fraction}")
    n_test = _count(n, test_fraction)
    n_val = _count(n, val_fraction)
    if n_test + n_val >= n and n > 0:
        raise ValueError(f"cannot split {n} items into non-empty train/val/test "
                         f"(val_fraction={val_fraction}, test_fraction={test_fraction})")

    rng = np.random.default_rng(seed)
    if stratify is None:
        order = rng.permutation(n)
    else:
        labels = np.asarray(stratify)
        if labels.shape != (n,):
            raise ValueError(f"stratify must have shape ({n},), got {labels.shape}")
        _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(-1)
        position = np.empty(n, dtype=np.float64)
        for cls, size in enumerate(counts):
            members = np.flatnonzero(inverse == cls)
            position[rng.permutation(members)] = (np.arange(size) + 0.5) / size
        # Random tie-breaking between classes with equal positions (e.g. equal class sizes).
        tiebreak = rng.permutation(n)
        order = np.lexsort((tiebreak, position))

    test = np.sort(order[:n_test])
    val = np.sort(order[n_test:n_test + n_val])
    train = np.sort(order[n_test + n_val:])
    return train.astype(np.int64), val.astype(np.int64), test.astype(np.int64)


def take(arrays: dict[str, np.ndarray], splits: tuple[np.ndarray, np.ndarray, np.ndarray],
         keys: dict[str, str]) -> dict[str, np.ndarray]:
    """``{f"{split}_{out}": arrays[src][idx]}`` for each split and each ``out: src`` in ``keys``."""
    out: dict[str, np.ndarray] = {}
    for split, idx in zip(("train", "val", "test"), splits):
        for out_key, src in keys.items():
            out[f"{split}_{out_key}"] = arrays[src][idx]
    return out
