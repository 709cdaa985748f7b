"""Handwritten digits: the VAE's (and the feature extractor's) images.

Sources (``params.data.digits.source``):

* ``embedded`` (default): scikit-learn's copy of the UCI optical digits, 1,797 real 8x8 scans with
  values 0..16. Ships with scikit-learn, so the pipeline runs offline.
* ``book``: MNIST (70,000 28x28 images, values 0..255; the book's dataset), downloaded from the URL
  Keras uses and checked against the SHA-256 Keras pins for it. Train and test halves are
  concatenated; :func:`preprocess` makes its own split, the same way for both sources.

Raw arrays: ``images`` uint8 (n, H, W), ``labels`` int64 (n,).

Processed arrays: ``{train,val,test}_x`` float32 (n, S, S, 1) in [0, 1], quantised to the 256 levels
k/255 (the VAE's likelihood is discrete over 256 levels), and ``{train,val,test}_y`` int64 labels;
the split is stratified by label. ``S = params.preprocess.digits.image_size``. 28x28 MNIST is
zero-padded to 32x32 (as in the book) before any resizing; other sizes are resized with bilinear
interpolation (half-pixel centres) when enlarging and with block averaging when shrinking.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gdl.data.splits import split_indices, take

MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
# Keras' own pin for this file (keras/src/datasets/mnist.py).
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
MNIST_DEST = Path("data/downloads/mnist.npz")


def _load_embedded() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images).astype(np.uint8)
    return images, bunch.target.astype(np.int64)


def _load_mnist() -> tuple[np.ndarray, np.ndarray]:
    from gdl.download import fetch

    # fetch only returns once the file has the pinned SHA-256; only then is it opened.
    path = fetch(MNIST_URL, MNIST_DEST, MNIST_SHA256)
    with np.load(path, allow_pickle=False) as f:
        images = np.concatenate([f["x_train"], f["x_test"]]).astype(np.uint8)
        labels = np.concatenate([f["y_train"], f["y_test"]]).astype(np.int64)
    return images, labels


def acquire(cfg, seed: int) -> dict[str, np.ndarray]:
    """Raw digits from ``cfg.source``; ``seed`` is unused (both sources are fixed data)."""
    del seed
    if cfg.source == "embedded":
        images, labels = _load_embedded()
    elif cfg.source == "book":
        images, labels = _load_mnist()
    else:  # pragma: no cover - params validation rules this out
        raise ValueError(f"unknown digits source {cfg.source!r}")
    return {"images": images, "labels": labels}


def _interpolation_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of 1-D linear interpolation with half-pixel centres (edges clamped)."""
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0.0, n_in - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    w = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    np.add.at(w, (rows, lo), 1.0 - frac)
    np.add.at(w, (rows, hi), frac)
    return w


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """Resize float images (n, h, w) to (n, size, size).

    A 28x28 input is first zero-padded to 32x32. Shrinking by an integer factor averages blocks;
    anything else is bilinear interpolation.
    """
    x = np.asarray(images, dtype=np.float64)
    n, h, w = x.shape
    if (h, w) == (28, 28):
        x = np.pad(x, ((0, 0), (2, 2), (2, 2)))
        h = w = 32
    if (h, w) == (size, size):
        return x
    if h == w and h > size and h % size == 0:
        f = h // size
        return x.reshape(n, size, f, size, f).mean(axis=(2, 4))
    wy = _interpolation_matrix(h, size)
    wx = _interpolation_matrix(w, size)
    return np.einsum("yh,nhw,xw->nyx", wy, x, wx, optimize=True)


def quantise(x: np.ndarray) -> np.ndarray:
    """Snap values in [0, 1] to the 256 levels k/255, as float32."""
    return (np.rint(np.clip(x, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


def preprocess(raw: dict[str, np.ndarray], cfg, seed: int) -> dict[str, np.ndarray]:
    images = raw["images"]
    labels = raw["labels"].astype(np.int64)
    peak = 16.0 if images.shape[1:] == (8, 8) else 255.0  # sklearn digits are 0..16
    x = quantise(resize(images.astype(np.float64) / peak, cfg.image_size))[..., None]
    splits = split_indices(len(labels), cfg.val_fraction, cfg.test_fraction, seed, stratify=labels)
    return take({"x": x, "y": labels}, splits, {"x": "x", "y": "y"})
