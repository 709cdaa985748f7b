"""PixelCNN (chapter 5; van den Oord et al. 2016), with PixelCNN++'s logistic-mixture output as an option.

An image is a sequence of pixels in raster order, p(x) = prod_i p(x_i | x_<i), and one network gives every
conditional at once: its convolutions are *masked* so that the output at a pixel sees only the pixels above
it and to its left. The first layer (type A, 7x7) also hides the pixel itself; later layers (type B) may
see their own position, which by then holds only information from before it. After the first layer come
residual blocks (1x1 -> 3x3 type B -> 1x1, as in the book) and 1x1 layers to the output head.

The output per pixel is either a softmax over the `levels` grey levels (the book: 4 levels at 16x16), or a
mixture of `components` discretised logistics over them (Salimans et al. 2017), read as a likelihood of
the level's bin; the edge bins 0 and levels-1 take the tail mass. Training maximises the exact
log-likelihood, so the loss (nats per pixel) IS the bits/dim, up to ln 2.

Sampling is pixel by pixel: one network pass per pixel. Only the rows the current pixel's receptive field
reaches (`receptive_rows` above it) are fed, which keeps 16x16 sampling of 1,000 images cheap.

The family interface (gdl/families/__init__.py): build, train_arrays, sample, sample_outputs, extra_metrics.
"""

from __future__ import annotations

import math
import time

import keras
import numpy as np
from keras import layers, ops

LOG_SCALE_MIN = -7.0


# ------------------------------------------------------------------ the model's space ------------------
def to_model_space(images: np.ndarray, size: int, levels: int) -> np.ndarray:
    """[0, 1] images (n, H, W, 1) -> integer levels (n, size, size): block means, then the nearest level."""
    n, h, w, _ = images.shape
    if h % size or w % size:
        raise ValueError(f"image_size: {size} does not divide the data's {h}x{w} images")
    x = images[..., 0].astype(np.float64).reshape(n, size, h // size, size, w // size).mean(axis=(2, 4))
    return np.rint(x * (levels - 1)).astype(np.int32)


def _interpolation_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of 1-D linear interpolation with half-pixel centres, edges clamped (the same
    as gdl/data/digits.py's, kept here so the family does not depend on one dataset's module)."""
    src = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0, n_in - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    w = np.zeros((n_out, n_in))
    np.add.at(w, (np.arange(n_out), lo), 1.0 - (src - lo))
    np.add.at(w, (np.arange(n_out), hi), src - lo)
    return w


def upsample(levels_img: np.ndarray, levels: int, shape) -> np.ndarray:
    """Levels (n, s, s) -> float32 [0, 1] images at the data's shape: k/(levels-1), bilinear with half-pixel
    centres and clamped edges (as the digits preprocessing and tf.image.resize do)."""
    x = levels_img.astype(np.float64) / (levels - 1)
    h, w = shape[:2]
    if x.shape[1:] != (h, w):
        x = np.einsum("yh,nhw,xw->nyx", _interpolation_matrix(x.shape[1], h), x,
                      _interpolation_matrix(x.shape[2], w), optimize=True)
    return np.clip(x, 0.0, 1.0).astype(np.float32)[..., None]


# ------------------------------------------------------------------ masked convolutions ----------------
def causal_mask(kernel_size: int, mask_type: str) -> np.ndarray:
    """(k, k) 0/1 mask: rows above the centre, and the centre row left of the centre (type B: and the centre)."""
    mask = np.zeros((kernel_size, kernel_size), np.float32)
    c = kernel_size // 2
    mask[:c, :] = 1.0
    mask[c, :c] = 1.0
    if mask_type == "B":
        mask[c, c] = 1.0
    return mask


@keras.saving.register_keras_serializable("gdl")
class MaskedConv2D(layers.Conv2D):
    """A Conv2D whose kernel is multiplied by a causal mask at every call (the weights stay unmasked)."""

    def __init__(self, mask_type: str, *args, **kwargs):
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
        super().__init__(*args, padding="same", **kwargs)
        self.mask_type = mask_type
        self.mask = causal_mask(self.kernel_size[0], mask_type)[:, :, None, None]

    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, kernel * self.mask)

    def get_config(self):
        config = super().get_config()
        config.pop("padding", None)
        return {**config, "mask_type": self.mask_type}


def build_network(size: int, filters: int, blocks: int, head: int, outputs: int) -> keras.Model:
    # Height and width left open: the sampler feeds only the rows a pixel can see (see `receptive_rows`).
    image = keras.Input((None, None, 1), name="levels_scaled")
    x = MaskedConv2D("A", filters, 7, activation="relu")(image)
    for _ in range(blocks):
        y = layers.Conv2D(filters // 2, 1, activation="relu")(x)
        y = MaskedConv2D("B", filters // 2, 3, activation="relu")(y)
        y = layers.Conv2D(filters, 1, activation="relu")(y)
        x = layers.Add()([x, y])
    for _ in range(head):
        x = MaskedConv2D("B", filters, 1, activation="relu")(x)
    return keras.Model(image, layers.Conv2D(outputs, 1)(x), name="pixelcnn")


def receptive_rows(blocks: int) -> int:
    """How many rows above itself a pixel's output depends on: 3 (the 7x7 layer) + 1 per 3x3 block."""
    return 3 + blocks


# ------------------------------------------------------------------ the likelihoods --------------------
def mixture_log_prob(levels_true, params, levels: int):
    """log P(level) per pixel under a mixture of discretised logistics. levels_true: (..., ) ints;
    params: (..., 3K) = mixture logits, means and log-scales on the [-1, 1] scale; bins of width 2/(levels-1)."""
    logits, mean, log_scale = ops.split(params, 3, axis=-1)
    log_scale = ops.maximum(log_scale, LOG_SCALE_MIN)  # a floor: a collapsed scale gives inf/nan gradients
    x = ops.expand_dims(ops.cast(levels_true, "float32") * (2.0 / (levels - 1)) - 1.0, -1)
    half = 1.0 / (levels - 1)
    centered, inv_s = x - mean, ops.exp(-log_scale)
    plus, minus = inv_s * (centered + half), inv_s * (centered - half)
    log_cdf_plus = plus - ops.softplus(plus)  # log sigmoid(plus): the level 0 takes all mass below it
    log_one_minus_cdf_minus = -ops.softplus(minus)  # log(1 - sigmoid(minus)): the top level takes the rest
    cdf_delta = ops.sigmoid(plus) - ops.sigmoid(minus)
    mid = inv_s * centered  # where the bin's mass underflows: density x bin width
    log_pdf_mid = mid - log_scale - 2.0 * ops.softplus(mid) + math.log(2.0 * half)
    log_delta = ops.where(cdf_delta > 1e-5, ops.log(ops.maximum(cdf_delta, 1e-12)), log_pdf_mid)
    log_p = ops.where(x < -1.0 + half, log_cdf_plus, ops.where(x > 1.0 - half, log_one_minus_cdf_minus, log_delta))
    return ops.logsumexp(log_p + ops.log_softmax(logits, axis=-1), axis=-1)


def pixel_log_prob(levels_true, outputs, cfg):
    """log P(level) per pixel (n, H, W) in nats, for the network's outputs (n, H, W, L or 3K)."""
    if cfg.output == "categorical":
        return -ops.sparse_categorical_crossentropy(ops.cast(levels_true, "int32"), outputs, from_logits=True)
    return mixture_log_prob(levels_true, outputs, cfg.levels)


# ------------------------------------------------------------------ the family interface ---------------
class PixelCNN(keras.Model):
    """The network, with what sampling needs to know about it (config and the data's image shape)."""

    def __init__(self, network, cfg, data_shape, **kwargs):
        super().__init__(**kwargs)
        self.network, self.cfg, self.data_shape = network, cfg, tuple(data_shape)
        self._step = None

    def call(self, x, training=False):
        return self.network(x, training=training)


def build(cfg, data: dict, seed: int) -> PixelCNN:
    shape = data["train_x"].shape[1:]
    if shape[-1] != 1:
        raise ValueError(f"pixelcnn models grey images; the data has {shape[-1]} channels")
    to_model_space(data["train_x"][:1], cfg.image_size, cfg.levels)  # checks that image_size divides
    outputs = cfg.levels if cfg.output == "categorical" else 3 * cfg.components
    keras.utils.set_random_seed(seed)
    model = PixelCNN(build_network(cfg.image_size, cfg.filters, cfg.residual_blocks, cfg.head_layers, outputs),
                     cfg, shape)

    def loss(y_true, y_pred):  # nats per pixel (the mean over pixels and images)
        return -ops.mean(pixel_log_prob(y_true, y_pred, cfg))

    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=loss)
    model.build((None, cfg.image_size, cfg.image_size, 1))
    model.optimizer.build(model.trainable_variables)
    return model


def scaled(levels_img: np.ndarray, levels: int) -> np.ndarray:
    """Integer levels -> the network's input: (n, H, W, 1) float32 in [0, 1]."""
    return (levels_img.astype(np.float32) / (levels - 1))[..., None]


def train_arrays(data: dict, cfg):
    def split(name):
        k = to_model_space(data[f"{name}_x"], cfg.image_size, cfg.levels)
        return scaled(k, cfg.levels), k

    return (*split("train"), split("val"))


def log_prob_images(model: PixelCNN, levels_img: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Exact log p(image) in nats per image, in the model's space."""
    out = []
    for start in range(0, len(levels_img), batch_size):
        k = levels_img[start:start + batch_size]
        logits = model.network(scaled(k, model.cfg.levels), training=False)
        out.append(np.asarray(ops.sum(pixel_log_prob(k, logits, model.cfg), axis=(1, 2)), np.float64))
    return np.concatenate(out)


def _step_fn(model: PixelCNN):
    """One sampling step, compiled once: draw the pixel (row, col) of every image in `x` (scaled levels, (m, s,
    s, 1)) from the rows it can see; -> x with that pixel filled in."""
    import tensorflow as tf

    if model._step is None:
        cfg, reach = model.cfg, receptive_rows(model.cfg.residual_blocks)

        @tf.function(reduce_retracing=True)
        def step(x, row, col, key):
            top = tf.maximum(row - reach, 0)
            # Rows below `row` are never seen (the masks); rows above `top` only through features that the
            # crop's zero padding spoils for its first `reach` rows, so the output at `row` is exact.
            params = model.network(x[:, top:row + 1], training=False)[:, row - top, col]
            level = sample_pixel(params, key, cfg)
            m = tf.shape(x)[0]
            where = tf.stack([tf.range(m), tf.fill([m], row), tf.fill([m], col), tf.zeros([m], tf.int32)], axis=1)
            return tf.tensor_scatter_nd_update(x, where, tf.cast(level, tf.float32) / (cfg.levels - 1))

        model._step = step
    return model._step


def sample_levels(model: PixelCNN, n: int, seed: int, batch_size: int = 1000) -> np.ndarray:
    """n images in the model's space (n, s, s) int32, drawn pixel by pixel; a seed fixes them."""
    import tensorflow as tf

    cfg, s = model.cfg, model.cfg.image_size
    step = _step_fn(model)
    out = []
    for b, start in enumerate(range(0, n, batch_size)):
        x = tf.zeros((min(batch_size, n - start), s, s, 1))
        for row in range(s):
            for col in range(s):
                x = step(x, tf.constant(row), tf.constant(col),
                         tf.constant([seed, (b * s + row) * s + col], tf.int64))
        out.append(np.rint(x.numpy()[..., 0] * (cfg.levels - 1)).astype(np.int32))
    return np.concatenate(out)


def sample_pixel(params, key, cfg):
    """Draw one level per row of `params` (m, L or 3K), with stateless randomness keyed by `key`."""
    import tensorflow as tf

    if cfg.output == "categorical":
        return tf.random.stateless_categorical(params, 1, key, dtype=tf.int32)[:, 0]
    logits, mean, log_scale = tf.split(params, 3, axis=-1)
    which = tf.random.stateless_categorical(logits, 1, key, dtype=tf.int32)
    mean = tf.gather(mean, which, batch_dims=1)[:, 0]
    log_scale = tf.maximum(tf.gather(log_scale, which, batch_dims=1)[:, 0], LOG_SCALE_MIN)
    u = tf.random.stateless_uniform(tf.shape(mean), key + 1, minval=1e-5, maxval=1.0 - 1e-5)
    x = mean + tf.exp(log_scale) * (tf.math.log(u) - tf.math.log1p(-u))  # the logistic's inverse CDF
    x = tf.clip_by_value(x, -1.0, 1.0)
    return tf.cast(tf.round((x + 1.0) / 2.0 * (cfg.levels - 1)), tf.int32)


def sample(model: PixelCNN, n: int, seed: int) -> np.ndarray:
    return upsample(sample_levels(model, n, seed), model.cfg.levels, model.data_shape)


def sample_outputs(model: PixelCNN, data: dict, n: int, seed: int) -> dict[str, np.ndarray]:
    k = sample_levels(model, n, seed)
    cfg = model.cfg
    out = {"samples": upsample(k, cfg.levels, model.data_shape),
           "lowres_samples": (k[:64] / (cfg.levels - 1)).astype(np.float32)[..., None]}
    if cfg.output == "categorical":  # what the model predicts for each pixel of a few test images
        test = to_model_space(data["test_x"][:4], cfg.image_size, cfg.levels)
        probs = ops.softmax(model.network(scaled(test, cfg.levels), training=False), axis=-1)
        out["test_lowres"] = (test / (cfg.levels - 1)).astype(np.float32)[..., None]
        out["test_level_probs"] = np.asarray(probs, np.float32)
    return out


def extra_metrics(model: PixelCNN, data: dict, cfg, seed: int, ruler, outputs: dict, evaluation) -> dict:
    """Exact bits/dim on the test split in the model's own space, next to per-pixel marginals fitted on the
    training split in the same space; the time 64 samples take goes to meta (timings are not figures)."""
    from gdl.baselines import PixelMarginals

    test = to_model_space(data["test_x"], cfg.image_size, cfg.levels)
    dims = test.shape[1] * test.shape[2]
    bpd = float(-np.mean(log_prob_images(model, test)) / (dims * math.log(2.0)))
    marginals = PixelMarginals(levels=cfg.levels).fit(
        to_model_space(data["train_x"], cfg.image_size, cfg.levels)[..., None] / (cfg.levels - 1))
    baseline = float(marginals.bits_per_dim(test[..., None] / (cfg.levels - 1)))
    started = time.perf_counter()
    sample_levels(model, 64, seed + 1)
    seconds = time.perf_counter() - started
    space = f"{cfg.image_size}x{cfg.image_size}, {cfg.levels} levels"
    return {
        "figures": {"bits_per_dim": bpd},
        "baseline": {"bits_per_dim": baseline},
        "descriptions": {"bits_per_dim": f"exact negative log-likelihood of the test split at {space}, bits per "
                                         "dimension (lower is better)"},
        "meta": {"image_size": cfg.image_size, "levels": cfg.levels, "output": cfg.output,
                 "seconds_per_64_samples": seconds,
                 "bits_per_dim_baseline": f"independent per-pixel marginals at {space}, fitted on the training split"},
    }
