"""Shapes: procedural RGB images with known attributes (for conditional / disentangling models).

Each image (``S x S``, ``S = params.data.shapes.image_size``) shows one filled shape on a plain
background. Everything is drawn from ``np.random.default_rng(seed)``, so the dataset is a function of
the params alone. Attributes, drawn independently and uniformly:

* ``shape``: index into ``shape_names`` (circle, square, triangle, diamond);
* ``colour``: index into ``colour_names`` (six saturated colours, see ``COLOURS``);
* ``background``: index into ``background_names`` (two dark and two light greys, never confusable
  with a shape colour);
* ``size``: the shape's radius in pixels, uniform in ``[0.12 S, 0.30 S]``: the circle's radius, the
  square's half side, the triangle's circumradius (an upright equilateral triangle, centred on its
  centroid), the diamond's half diagonal;
* ``x``, ``y``: the shape's centre in pixels (x to the right, y down; pixel ``(i, j)`` covers
  ``[j, j+1) x [i, i+1)``), uniform such that the shape lies entirely inside the image.

Images are rendered at twice the resolution and 2x2 average-pooled (anti-aliased edges).

Raw arrays: ``images`` uint8 (n, S, S, 3); ``shape``, ``colour``, ``background`` int64 (n,);
``size``, ``x``, ``y`` float32 (n,); ``shape_names``, ``colour_names``, ``background_names`` unicode.

Processed arrays, for each split of ``train``/``val``/``test`` (stratified by shape):
``<split>_x`` float32 (n, S, S, 3) in [0, 1] (exactly k/255), ``<split>_y`` int64 shape index,
``<split>_attributes`` float32 (n, 6) with columns ``attribute_names`` = [shape, colour, background,
size, x, y]; plus the unprefixed ``attribute_names``, ``shape_names``, ``colour_names``,
``background_names``.
"""

from __future__ import annotations

import numpy as np

from gdl.data.splits import split_indices, take

SHAPES = ("circle", "square", "triangle", "diamond")
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (50, 90, 230),
    "yellow": (240, 210, 40),
    "magenta": (210, 50, 200),
    "cyan": (40, 200, 210),
}
BACKGROUNDS = {
    "black": (12, 12, 12),
    "dark_grey": (70, 70, 70),
    "light_grey": (180, 180, 180),
    "white": (245, 245, 245),
}
ATTRIBUTES = ("shape", "colour", "background", "size", "x", "y")
SIZE_RANGE = (0.12, 0.30)  # radius as a fraction of the image side
SUPERSAMPLE = 2
_CHUNK = 256


def _coverage(shape: np.ndarray, size: np.ndarray, x: np.ndarray, y: np.ndarray, image_size: int) -> np.ndarray:
    """Fraction of each pixel covered by the shape, (n, S, S) float64 (levels k / SUPERSAMPLE**2)."""
    s = SUPERSAMPLE
    centres = (np.arange(image_size * s) + 0.5) / s  # sub-pixel centres, in output pixels
    dx = centres[None, None, :] - x[:, None, None]
    dy = centres[None, :, None] - y[:, None, None]
    r = size[:, None, None]
    kind = shape[:, None, None]
    circle = dx * dx + dy * dy <= r * r
    square = np.maximum(np.abs(dx), np.abs(dy)) <= r
    diamond = np.abs(dx) + np.abs(dy) <= r
    # Upright equilateral triangle with circumradius r: three half-planes at distance r/2 (the
    # inradius) from the centroid, with outward normals down, up-left and up-right (y points down).
    h = np.sqrt(3.0) / 2.0
    triangle = (dy <= r / 2) & (h * dx - 0.5 * dy <= r / 2) & (-h * dx - 0.5 * dy <= r / 2)
    mask = np.where(kind == 0, circle, np.where(kind == 1, square, np.where(kind == 2, triangle, diamond)))
    n = len(shape)
    return mask.reshape(n, image_size, s, image_size, s).mean(axis=(2, 4))


def acquire(cfg, seed: int) -> dict[str, np.ndarray]:
    n, size_px = cfg.n_samples, cfg.image_size
    rng = np.random.default_rng(seed)
    shape = rng.integers(0, len(SHAPES), n).astype(np.int64)
    colour = rng.integers(0, len(COLOURS), n).astype(np.int64)
    background = rng.integers(0, len(BACKGROUNDS), n).astype(np.int64)
    radius = rng.uniform(SIZE_RANGE[0] * size_px, SIZE_RANGE[1] * size_px, n)
    # Keep the whole shape inside the image (every shape fits in the square of half side `radius`).
    x = radius + rng.uniform(0.0, 1.0, n) * (size_px - 2 * radius)
    y = radius + rng.uniform(0.0, 1.0, n) * (size_px - 2 * radius)
    # Store the float32 values and render from exactly those, so the labels describe the pixels.
    radius, x, y = (v.astype(np.float32) for v in (radius, x, y))

    fg_palette = np.array(list(COLOURS.values()), dtype=np.float64)
    bg_palette = np.array(list(BACKGROUNDS.values()), dtype=np.float64)
    images = np.empty((n, size_px, size_px, 3), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        sl = slice(start, start + _CHUNK)
        alpha = _coverage(shape[sl], radius[sl].astype(np.float64), x[sl].astype(np.float64),
                          y[sl].astype(np.float64), size_px)[..., None]
        fg = fg_palette[colour[sl]][:, None, None, :]
        bg = bg_palette[background[sl]][:, None, None, :]
        images[sl] = np.rint(alpha * fg + (1.0 - alpha) * bg).astype(np.uint8)

    return {
        "images": images,
        "shape": shape,
        "colour": colour,
        "background": background,
        "size": radius,
        "x": x,
        "y": y,
        "shape_names": np.array(SHAPES, dtype=str),
        "colour_names": np.array(list(COLOURS), dtype=str),
        "background_names": np.array(list(BACKGROUNDS), dtype=str),
    }


def preprocess(raw: dict[str, np.ndarray], cfg, seed: int) -> dict[str, np.ndarray]:
    x = raw["images"].astype(np.float32) / np.float32(255.0)
    labels = raw["shape"].astype(np.int64)
    attributes = np.stack([raw[name].astype(np.float32) for name in ATTRIBUTES], axis=1)
    splits = split_indices(len(labels), cfg.val_fraction, cfg.test_fraction, seed, stratify=labels)
    out = take({"x": x, "y": labels, "attributes": attributes}, splits,
               {"x": "x", "y": "y", "attributes": "attributes"})
    out["attribute_names"] = np.array(ATTRIBUTES, dtype=str)
    for key in ("shape_names", "colour_names", "background_names"):
        out[key] = raw[key]
    return out
