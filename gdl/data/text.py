"""Text: the help topics shipped with CPython (``pydoc_data.topics.topics``), real English prose.

Raw arrays: ``names`` and ``texts``, numpy unicode arrays (n,), sorted by name, without the documents
shorter than ``params.data.text.min_chars`` characters. The corpus is fixed for a given Python
version (it is what ``help("if")`` prints), so ``seed`` is unused here.

Processed arrays: ``{train,val,test}_names`` and ``{train,val,test}_texts``: a split by document,
each split in name order.
"""

from __future__ import annotations

import numpy as np

from gdl.data.splits import split_indices, take


def acquire(cfg, seed: int) -> dict[str, np.ndarray]:
    del seed
    from pydoc_data.topics import topics

    names = sorted(name for name, text in topics.items() if len(text) >= cfg.min_chars)
    if not names:
        raise ValueError(f"no pydoc topic has at least {cfg.min_chars} characters")
    return {"names": np.array(names, dtype=str), "texts": np.array([topics[n] for n in names], dtype=str)}


def preprocess(raw: dict[str, np.ndarray], cfg, seed: int) -> dict[str, np.ndarray]:
    splits = split_indices(len(raw["names"]), cfg.val_fraction, cfg.test_fraction, seed)
    return take(raw, splits, {"names": "names", "texts": "texts"})
