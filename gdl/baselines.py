"""Trivial baselines that every image model's metrics are reported next to.

An image model's FID or bits/dim means little on its own; the same number for a model that
knows nothing but the per-pixel marginals of the training set says how much structure the
model actually learnt (see DESIGN.md section 5). numpy only, so evaluation stays cheap.

Images follow the pipeline's convention: float arrays shaped ``(n, H, W, C)`` with values
``k / 255`` in ``[0, 1]``, i.e. quantised to 256 levels.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NUM_LEVELS", "DEFAULT_ALPHA", "to_levels", "PixelMarginals"]

NUM_LEVELS = 256

# Pseudo-count added to every level of every pixel. alpha = 1/K (Perks' prior) puts ONE
# pseudo-observation per pixel in total, spread uniformly over the K=256 levels: unseen
# levels get a finite cost (at most log2(256 (n + 1)) bits) while the estimate stays close
# to the empirical frequencies. Laplace (alpha=1) or Jeffreys (alpha=1/2) would add 256 or
# 128 pseudo-observations per pixel, which for a dataset of a few thousand images drowns
# the real counts in the uniform distribution and makes the baseline look needlessly bad
# (a constant image would cost > 1 bit/dim instead of ~0).
DEFAULT_ALPHA = 1.0 / NUM_LEVELS

# Images processed per chunk so the (chunk, D) integer buffers stay small (~3M entries for
# 32x32x3), whatever the dataset size.
_CHUNK = 1024


def to_levels(images: np.ndarray, levels: int = NUM_LEVELS) -> np.ndarray:
    """Map ``[0, 1]`` images to integer levels 0..levels-1, flattened to ``(n, H*W*C)``.

    Rounding (not flooring) makes ``k/(levels-1)`` stored as float32 land back on ``k``.
    """
    x = np.asarray(images)
    if x.ndim < 2:
        raise ValueError(f"images must be (n, ...) shaped, got {x.shape}")
    if x.size and (np.nanmin(x) < 0.0 or np.nanmax(x) > 1.0 or np.isnan(x).any()):
        raise ValueError("images must lie in [0, 1]")
    out = np.rint(x.astype(np.float64) * (levels - 1)).astype(np.int64)
    return out.reshape(x.shape[0], -1)


class PixelMarginals:
    """Independent categorical distribution over the levels (256 unless told) of each pixel and channel.

    ``levels`` < 256: images are read as ``k/(levels-1)`` (a PixelCNN's 4-level space) and samples come
    back on that grid; ``alpha`` defaults to 1/levels (one pseudo-observation per pixel, as for 256).

    The table is ``(H*W*C, 256)`` float64: 6 MiB for 32x32x3, so memory is not an issue.

    Example::

        baseline = PixelMarginals().fit(train_images)
        samples = baseline.sample(1000, seed=0)      # for the baseline FID/KID
        bpd = baseline.bits_per_dim(test_images)     # for the baseline likelihood
    """

    def __init__(self, alpha: float | None = None, levels: int = NUM_LEVELS) -> None:
        if levels < 2:
            raise ValueError(f"levels must be >= 2, got {levels}")
        alpha = 1.0 / levels if alpha is None else alpha
        if alpha <= 0:
            raise ValueError("alpha must be > 0, or unseen test levels would cost infinite bits")
        self.alpha = float(alpha)
        self.levels = int(levels)
        self.image_shape: tuple[int, ...] | None = None
        self.log_probs: np.ndarray | None = None  # (D, levels), natural log
        self._cdf_offset: np.ndarray | None = None  # flattened, see sample()

    # -- fitting ---------------------------------------------------------------------------

    def fit(self, images: np.ndarray) -> PixelMarginals:
        """Count levels per dimension (in chunks) and store the smoothed log-probabilities."""
        images = np.asarray(images)
        if images.shape[0] == 0:
            raise ValueError("cannot fit on zero images")
        dims = int(np.prod(images.shape[1:]))
        counts = np.zeros(dims * self.levels, dtype=np.int64)
        # Offsetting each dimension's levels by d*levels turns the per-pixel histograms into
        # one bincount over a flat index.
        offsets = np.arange(dims, dtype=np.int64) * self.levels
        for start in range(0, images.shape[0], _CHUNK):
            k = to_levels(images[start : start + _CHUNK], self.levels)
            counts += np.bincount((k + offsets).ravel(), minlength=dims * self.levels)
        counts = counts.reshape(dims, self.levels).astype(np.float64)

        probs = (counts + self.alpha) / (images.shape[0] + self.alpha * self.levels)
        self.image_shape = tuple(int(s) for s in images.shape[1:])
        self.log_probs = np.log(probs)
        # Row d of the CDF shifted by +d is globally increasing across rows, so a single
        # searchsorted on the flat array samples every pixel at once in O(n*D) memory.
        cdf = np.cumsum(probs, axis=1)
        cdf[:, -1] = 1.0  # guard against round-off leaving the last entry just below 1
        self._cdf_offset = (cdf + np.arange(dims)[:, None]).ravel()
        return self

    def _check_fitted(self) -> None:
        if self.log_probs is None or self.image_shape is None:
            raise RuntimeError("PixelMarginals is not fitted; call fit(images) first")

    # -- sampling --------------------------------------------------------------------------

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """Draw ``n`` images with independent pixels; float32 ``k/255`` values, deterministic per seed."""
        self._check_fitted()
        assert self._cdf_offset is not None and self.image_shape is not None
        dims = int(np.prod(self.image_shape))
        rng = np.random.default_rng(seed)
        base = np.arange(dims, dtype=np.int64)
        out = np.empty((n, dims), dtype=np.float32)
        for start in range(0, n, _CHUNK):
            stop = min(start + _CHUNK, n)
            u = rng.random((stop - start, dims))
            flat = np.searchsorted(self._cdf_offset, u + base, side="right")
            k = np.minimum(flat - base * self.levels, self.levels - 1)
            out[start:stop] = k / np.float32(self.levels - 1)
        return out.reshape((n, *self.image_shape))

    # -- likelihood ------------------------------------------------------------------------

    def bits_per_dim(self, images: np.ndarray) -> float:
        """Mean ``-log2 p`` per dimension of quantised ``images`` under the fitted marginals."""
        self._check_fitted()
        assert self.log_probs is not None
        images = np.asarray(images)
        if tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(f"image shape {images.shape[1:]} != fitted {self.image_shape}")
        dims = self.log_probs.shape[0]
        rows = np.arange(dims)
        total_nats = 0.0
        for start in range(0, images.shape[0], _CHUNK):
            k = to_levels(images[start : start + _CHUNK], self.levels)
            total_nats -= float(self.log_probs[rows, k].sum())
        return total_nats / (images.shape[0] * dims * np.log(2.0))
