"""Variational autoencoder (chapter 3), the book's convolutional VAE with a 2-D latent space.

Encoder: strided convs (32/64/128 filters) -> (z_mean, z_log_var). Decoder: the mirror image with
transposed convs. One change from the book, for a reason: the book trains with `beta * BCE`, which is not
a likelihood of 8-bit images, so its loss cannot be turned into bits/dim. Here the decoder outputs, per
pixel, the location and log-scale of a *discretised logistic* over the 256 pixel levels (as in PixelCNN++),
so the loss is a true negative ELBO (with `beta = 1`) and `log_likelihood` gives an importance-weighted
bound in nats that evaluation converts to bits/dim. `beta` still weights the reconstruction term, as in the
book (the book's 500 x mean-BCE on 32x32 images is about beta = 0.49 here).

With `likelihood: categorical` the decoder instead gives each pixel and channel a softmax over the 256
levels. Where the code leaves a pixel's value open between a few exact levels (shapes: noise-free images in a
handful of colours), a logistic has to spread its mass over all of them and a categorical puts it on each.

On a dataset with categorical attributes (shapes), the latent arithmetic of the book's CelebA section: an
attribute vector is the mean code of the images that have an attribute value minus the mean code of those
that do not; adding it to a code should add the attribute (`extra_metrics` measures how often it does).

The family interface (gdl/families/__init__.py): build, train_arrays, sample, sample_outputs, log_likelihood,
extra_metrics.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers, ops

LOG_SCALE_MIN = -7.0
LEVELS = 256


# ------------------------------------------------------------------ the likelihood ---------------------
def discretized_logistic_log_prob(x, loc, log_scale):
    """log P(x) per pixel for x on the 256-level grid scaled to [-1, 1]; edges take the tail mass."""
    log_scale = ops.maximum(log_scale, LOG_SCALE_MIN)
    centered = x - loc
    inv_s = ops.exp(-log_scale)
    plus_in = inv_s * (centered + 1.0 / 255.0)
    min_in = inv_s * (centered - 1.0 / 255.0)
    cdf_delta = ops.sigmoid(plus_in) - ops.sigmoid(min_in)
    log_cdf_plus = plus_in - ops.softplus(plus_in)  # log P(x <= -1 + half a bin), for the level 0
    log_one_minus_cdf_min = -ops.softplus(min_in)  # log P(x >= 1 - half a bin), for the level 255
    mid_in = inv_s * centered
    # Where the bin mass underflows, approximate it by density x bin width.
    log_pdf_mid = mid_in - log_scale - 2.0 * ops.softplus(mid_in) - math.log(127.5)
    log_delta = ops.where(cdf_delta > 1e-5, ops.log(ops.maximum(cdf_delta, 1e-12)), log_pdf_mid)
    return ops.where(x < -0.999, log_cdf_plus, ops.where(x > 0.999, log_one_minus_cdf_min, log_delta))


def pixel_log_prob(images, outputs):
    """log P(image) in nats, summed over pixels and channels, for the decoder's `outputs`: (loc, log_scale)
    of a discretised logistic per pixel and channel, or logits (..., 256) of a categorical over the levels."""
    if isinstance(outputs, (list, tuple)):
        return ops.sum(discretized_logistic_log_prob(_to_unit(images), *outputs), axis=(1, 2, 3))
    return -ops.sum(categorical_nats(to_levels(images), outputs), axis=(1, 2, 3))


def to_levels(images):
    return ops.cast(ops.round(images * 255.0), "int32")  # [0, 1] -> the 256 levels


def categorical_nats(levels, logits):
    """-log P(level) per entry, for logits (..., 256). The fused softmax cross-entropy: half the time of
    log_softmax + gather over (n, H, W, C, 256) logits."""
    return ops.sparse_categorical_crossentropy(levels, logits, from_logits=True)


def _to_unit(images):
    return images * 2.0 - 1.0  # [0, 1] -> [-1, 1], the likelihood's scale


# ------------------------------------------------------------------ the model --------------------------
class Sampling(layers.Layer):
    """The reparameterisation trick: z = mean + exp(log_var / 2) * eps."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * eps


def build_encoder(image_shape, filters, latent_dim):
    x_in = keras.Input(image_shape)
    x = x_in
    for f in filters:
        x = layers.Conv2D(f, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Flatten()(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    return keras.Model(x_in, [z_mean, z_log_var], name="encoder")


def build_decoder(image_shape, filters, latent_dim, likelihood: str = "logistic"):
    """z -> (loc, log_scale) per pixel and channel, or -> logits (H, W, C, 256) for a categorical."""
    height, width, channels = image_shape
    down = 2 ** len(filters)
    z_in = keras.Input((latent_dim,))
    x = layers.Dense((height // down) * (width // down) * filters[-1], activation="relu")(z_in)
    x = layers.Reshape((height // down, width // down, filters[-1]))(x)
    for f in reversed(filters):
        x = layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu")(x)
    if likelihood == "categorical":
        logits = layers.Conv2D(channels * LEVELS, 1, name="logits")(x)
        return keras.Model(z_in, layers.Reshape((height, width, channels, LEVELS))(logits), name="decoder")
    loc = layers.Conv2D(channels, 3, padding="same", activation="tanh", name="loc")(x)
    log_scale = layers.Conv2D(channels, 3, padding="same", name="log_scale")(x)
    return keras.Model(z_in, [loc, log_scale], name="decoder")


class VAE(keras.Model):
    def __init__(self, encoder, decoder, beta=1.0, seed=None, likelihood="logistic", pixel_share=1.0, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder, self.beta, self.likelihood = encoder, decoder, beta, likelihood
        self.pixel_share = pixel_share
        self.sampling = Sampling(seed)
        self.subsampled = likelihood == "categorical" and pixel_share < 1.0  # in training steps only
        if self.subsampled:
            # The decoder up to its last 1x1 layer, shared weights; set past Keras's tracking, so the weights
            # are saved once, as the decoder's.
            head = decoder.get_layer("logits")
            object.__setattr__(self, "_features", keras.Model(decoder.input, head.input))
            object.__setattr__(self, "_head", head)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.nll_tracker = keras.metrics.Mean(name="reconstruction_nll")
        self.kl_tracker = keras.metrics.Mean(name="kl")

    @property
    def metrics(self):
        return [self.loss_tracker, self.nll_tracker, self.kl_tracker]

    def call(self, images):
        z_mean, z_log_var = self.encoder(images)
        return self.decoder(self.sampling([z_mean, z_log_var]))

    def _loss_terms(self, images, training=False):
        z_mean, z_log_var = self.encoder(images)
        z = self.sampling([z_mean, z_log_var])
        if training and self.subsampled:
            nll = -self._pixel_subset_log_prob(images, z)
        else:
            nll = -pixel_log_prob(images, self.decoder(z))
        kl = -0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=1)
        return ops.mean(self.beta * nll + kl), ops.mean(nll), ops.mean(kl)

    def _pixel_subset_log_prob(self, images, z):
        """An unbiased estimate of the categorical log P(image): the log-probabilities of a random
        `pixel_share` of each image's pixels, times 1 / pixel_share. The 256 logits per pixel and channel
        dominate a step's time and memory; this computes them only for the pixels drawn."""
        features = self._features(z)  # (n, H, W, F)
        n, height, width, f = ops.shape(features)
        pixels = height * width
        drawn = max(1, int(round(pixels * self.pixel_share)))
        noise = keras.random.uniform((n, pixels), seed=self.sampling.seed_generator)
        index = ops.expand_dims(ops.top_k(noise, drawn)[1], -1)  # (n, drawn, 1): random pixels per image
        picked = ops.take_along_axis(ops.reshape(features, (n, pixels, f)), index, axis=1)
        logits = self._head(ops.expand_dims(picked, 2))  # the 1x1 layer on (n, drawn, 1, F)
        logits = ops.reshape(logits, (n, drawn, -1, LEVELS))
        channels = ops.shape(logits)[2]
        levels = ops.take_along_axis(ops.reshape(to_levels(images), (n, pixels, channels)), index, axis=1)
        return -ops.sum(categorical_nats(levels, logits), axis=(1, 2)) * (pixels / drawn)

    def _track(self, loss, nll, kl):
        for tracker, value in zip(self.metrics, (loss, nll, kl)):
            tracker.update_state(value)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        import tensorflow as tf

        images = data[0] if isinstance(data, tuple) else data
        with tf.GradientTape() as tape:
            loss, nll, kl = self._loss_terms(images, training=True)
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        return self._track(loss, nll, kl)

    def test_step(self, data):
        images = data[0] if isinstance(data, tuple) else data
        return self._track(*self._loss_terms(images))


# ------------------------------------------------------------------ the family interface ---------------
def build(cfg, data: dict, seed: int) -> VAE:
    image_shape = tuple(data["train_x"].shape[1:])
    if any(s % 2 ** len(cfg.filters) for s in image_shape[:2]):
        raise ValueError(f"vae.filters: {len(cfg.filters)} stride-2 convs do not divide images of {image_shape}")
    vae = VAE(build_encoder(image_shape, cfg.filters, cfg.latent_dim),
              build_decoder(image_shape, cfg.filters, cfg.latent_dim, cfg.likelihood),
              beta=cfg.beta, seed=seed, likelihood=cfg.likelihood, pixel_share=cfg.pixel_share)
    vae.attribute = (cfg.attribute, cfg.attribute_value)  # for sample_outputs' latent arithmetic
    vae.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate))
    vae(data["train_x"][:1])  # create the weights now, so a checkpoint can be restored into them
    return vae


def train_arrays(data: dict, cfg=None):
    """(x, y, validation_data) for `fit`: the VAE learns from images alone."""
    return data["train_x"], None, (data["val_x"],)


def decode_mean(vae: VAE, z: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Images in [0, 1] at the decoder's mean: the discretised logistic's location, or the categorical's
    expected level. (Not the categorical's mode: where two colours are about equally likely, the per-pixel
    argmax flips between them from pixel to pixel and speckles the image.) In batches: a categorical's
    outputs are 256 floats per pixel and channel, 3 GB for 1,000 images of 32x32x3."""
    images = []
    for start in range(0, len(z), batch_size):
        if vae.likelihood != "categorical":
            loc, _ = vae.decoder.predict(z[start:start + batch_size], verbose=0, batch_size=batch_size)
            images.append(np.clip((loc + 1.0) / 2.0, 0.0, 1.0))
        else:  # in TensorFlow, not numpy: a 256-way softmax per pixel and channel, on every core
            out = vae.decoder(z[start:start + batch_size], training=False)
            expected = ops.sum(ops.softmax(out, axis=-1) * ops.arange(LEVELS, dtype="float32"), axis=-1)
            images.append(np.asarray(expected) / (LEVELS - 1.0))
    return np.concatenate(images).astype(np.float32)


def sample(vae: VAE, n: int, seed: int) -> np.ndarray:
    z = np.random.default_rng(seed).standard_normal((n, vae.decoder.input_shape[-1])).astype(np.float32)
    return decode_mean(vae, z)


def encode(vae: VAE, images: np.ndarray) -> np.ndarray:
    z_mean, _ = vae.encoder.predict(images, verbose=0, batch_size=256)
    return z_mean


def reconstruct(vae: VAE, images: np.ndarray) -> np.ndarray:
    return decode_mean(vae, encode(vae, images))


def log_likelihood(vae: VAE, images: np.ndarray, cfg, seed: int) -> dict[str, np.ndarray]:
    """Per image, in nats: the IWAE bound with cfg.iw_samples draws (the headline figure) and the ELBO."""
    elbo, iwae = importance_weighted_bounds(vae, images, cfg.iw_samples, seed)
    return {"log_likelihood": iwae, "elbo": elbo}


def importance_weighted_bounds(vae: VAE, images: np.ndarray, num_samples: int, seed: int, batch_size: int = 64):
    """Per image, in nats: (ELBO, importance-weighted bound with `num_samples` draws; Burda et al. 2016).

    Both are lower bounds on log p(x); the IWAE bound tightens as num_samples grows. The ELBO uses the
    analytic KL and the reconstruction term averaged over the same draws.
    """
    rng = np.random.default_rng(seed)
    elbos, iwaes = [], []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size]
        z_mean, z_log_var = (np.asarray(t, np.float64) for t in vae.encoder(x, training=False))
        std = np.exp(0.5 * z_log_var)
        log_px, log_w = [], []
        for _ in range(num_samples):
            eps = rng.standard_normal(z_mean.shape)
            z = z_mean + std * eps
            lp = np.asarray(pixel_log_prob(x, vae.decoder(z.astype(np.float32), training=False)), np.float64)
            log_pz = -0.5 * np.sum(z ** 2 + math.log(2 * math.pi), axis=1)
            log_qz = -0.5 * np.sum(eps ** 2 + math.log(2 * math.pi) + z_log_var, axis=1)
            log_px.append(lp)
            log_w.append(lp + log_pz - log_qz)
        kl = -0.5 * np.sum(1 + z_log_var - z_mean ** 2 - np.exp(z_log_var), axis=1)
        elbos.append(np.mean(log_px, axis=0) - kl)
        log_w = np.stack(log_w)  # (num_samples, batch)
        m = log_w.max(axis=0)
        iwaes.append(m + np.log(np.mean(np.exp(log_w - m), axis=0)))
    return np.concatenate(elbos), np.concatenate(iwaes)


# ------------------------------------------------------------------ latent arithmetic ------------------
ATTRIBUTE_SCALES = np.array([0.0, 0.5, 1.0, 1.5, 2.0], np.float32)  # multiples of the vector added in the report


def attribute_values(data: dict, split: str, attribute: str) -> np.ndarray:
    columns = [str(c) for c in data["attribute_names"]]
    if attribute not in columns or f"{attribute}_names" not in data:
        raise ValueError(f"vae.attribute: {attribute!r} is not a categorical attribute of this dataset ({columns})")
    return data[f"{split}_attributes"][:, columns.index(attribute)].astype(np.int64)


def attribute_vectors(vae: VAE, data: dict, attribute: str) -> np.ndarray:
    """One latent vector per value of `attribute`: mean code with the value minus mean code without it."""
    z = encode(vae, data["train_x"])
    values = attribute_values(data, "train", attribute)
    return np.stack([z[values == v].mean(0) - z[values != v].mean(0)
                     for v in range(len(data[f"{attribute}_names"]))]).astype(np.float32)


def value_index(data: dict, attribute: str, value: str) -> int:
    names = [str(v) for v in data[f"{attribute}_names"]]
    if value not in names:
        raise ValueError(f"vae.attribute_value: {value!r} is not a value of {attribute} ({names})")
    return names.index(value)


def border_reader(data: dict, attribute: str):
    """images -> values of `attribute`, read from the image border: the value whose training images' border
    pixels have the nearest median colour. For an attribute the ruler did not learn but the border shows
    (shapes' background); `extra_metrics` reports how often it is right on the test split."""
    def border_median(images):
        images = np.asarray(images, np.float64)
        border = np.concatenate([images[:, 0], images[:, -1], images[:, 1:-1, 0], images[:, 1:-1, -1]], axis=1)
        return np.median(border, axis=1)  # (n, channels)

    values = attribute_values(data, "train", attribute)
    medians = border_median(data["train_x"])
    centroids = np.stack([medians[values == v].mean(0) for v in range(len(data[f"{attribute}_names"]))])
    return lambda images: np.argmin(((border_median(images)[:, None] - centroids[None]) ** 2).sum(-1), axis=1)


def attribute_reader(ruler, data: dict, attribute: str):
    """(images -> values of `attribute`, what reads them): the ruler where it learnt the attribute, else the
    border reader."""
    if attribute in ruler.attributes:
        return (lambda images: ruler.predict_attribute(images, attribute)), "the dataset's classifier (the FID ruler)"
    return border_reader(data, attribute), "the colour of the image border"


def sample_outputs(vae: VAE, data: dict, n: int, seed: int) -> dict[str, np.ndarray]:
    originals = data["test_x"][:16]
    out = {"samples": sample(vae, n, seed), "originals": originals,
           "reconstructions": reconstruct(vae, originals),
           "latent_z": encode(vae, data["test_x"]), "latent_labels": data["test_y"]}
    # Morphing (the book's last CelebA figure): decode the straight line between two test images' codes.
    ends = encode(vae, data["test_x"][:2])
    t = np.linspace(0.0, 1.0, 10, dtype=np.float32)[:, None]
    out["morph"] = decode_mean(vae, (1 - t) * ends[0] + t * ends[1])
    attribute, value = vae.attribute
    if attribute and value:
        index = value_index(data, attribute, value)
        out["attribute_vectors"] = attribute_vectors(vae, data, attribute)  # one per value; extra_metrics reuses them
        vector = out["attribute_vectors"][index]
        # Test images that lack the value, each decoded with 0, 0.5, ... 2 times the vector added.
        lacking = data["test_x"][attribute_values(data, "test", attribute) != index][:8]
        z = encode(vae, lacking)
        out["attribute_rows"] = decode_mean(vae, (z[:, None, :] + ATTRIBUTE_SCALES[None, :, None] * vector)
                                            .reshape(-1, z.shape[1]))
        out["attribute_scales"] = ATTRIBUTE_SCALES
    return out


def extra_metrics(vae: VAE, data: dict, cfg, seed: int, ruler, outputs: dict, evaluation) -> dict:
    """Does the attribute vector add the attribute? The share of prior samples read (attribute_reader) with
    `attribute_value` after adding the vector (model), next to the share before (baseline), for every value
    of the attribute in the meta (the figure is the configured value's), with the reader's test accuracy."""
    if not (cfg.attribute and cfg.attribute_value) or ruler is None:
        return {}
    vectors = outputs["attribute_vectors"] if "attribute_vectors" in outputs else attribute_vectors(vae, data, cfg.attribute)
    read, reader = attribute_reader(ruler, data, cfg.attribute)
    reader_accuracy = float(np.mean(read(data["test_x"]) == attribute_values(data, "test", cfg.attribute)))
    z = np.random.default_rng(seed).standard_normal((len(outputs["samples"]), cfg.latent_dim)).astype(np.float32)
    before = read(decode_mean(vae, z))
    names = [str(v) for v in data[f"{cfg.attribute}_names"]]
    shares = {}
    for v, name in enumerate(names):
        after = read(decode_mean(vae, z + vectors[v]))
        shares[name] = {"before": float(np.mean(before == v)), "after": float(np.mean(after == v))}
    key = f"{cfg.attribute}_{cfg.attribute_value}_share"
    chosen = shares[cfg.attribute_value]
    return {"figures": {key: chosen["after"]}, "baseline": {key: chosen["before"]},
            "descriptions": {key: f"share of samples read as {cfg.attribute} = {cfg.attribute_value} after adding "
                                  f"the {cfg.attribute_value!r} attribute vector to their codes; the baseline column "
                                  "is the share before (higher is better)"},
            "meta": {"attribute_shift": {"attribute": cfg.attribute, "shares": shares, "reader": reader,
                                         "reader_test_accuracy": reader_accuracy}}}
