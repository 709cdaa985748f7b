"""Autoencoder (chapter 3), the book's convolutional autoencoder with a 2-D latent space.

Encoder: strided convs (32/64/128 filters) -> a dense layer to the latent point z. Decoder: the mirror
image, a dense layer back to the smallest feature map and transposed convs, then a sigmoid conv to pixel
values in [0, 1]. Trained as in the book: binary cross-entropy between input and output pixels, Adam,
batch 100. The loss is only a reconstruction loss, nothing shapes the latent space.

That is the autoencoder's weak point as a generative model, which the book shows and this family keeps:
there is no prior over z to sample from. The book draws points uniformly from the bounding box of the
training images' codes and decodes them; most of that box is space between the digits' clusters, which the
decoder never learnt to map to a digit, so the samples are poor (compare the VAE, whose KL term pulls the
codes towards N(0, I) and fills that space). Here the box travels with the model: `LatentRange` records the
range of the codes of each pass over the training set (each epoch) in non-trainable weights, so `sample`
needs no data and the box is saved and restored with the weights.

The family interface (gdl/families/__init__.py): build, train_arrays, sample, sample_outputs, plus
extra_metrics: the test split's reconstruction error next to PCA's with as many components.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

GRID_SIZE = 12  # the decoded grid over the latent plane: GRID_SIZE x GRID_SIZE images
BIG = 1e30  # the empty box's bounds: any code lies inside (-BIG, BIG)


# ------------------------------------------------------------------ the model --------------------------
class LatentRange(layers.Layer):
    """The identity on latent codes that, in training, records the box of the training codes: the
    per-dimension minimum and maximum of the codes of each pass over the `epoch_size` training examples
    (`low`, `high`, set at the end of each pass), which `sample` draws from."""

    def __init__(self, epoch_size: int, **kwargs):
        super().__init__(**kwargs)
        self.epoch_size = epoch_size

    def build(self, input_shape):
        dim = input_shape[-1]

        def weight(name, value):
            return self.add_weight(shape=() if name == "seen" else (dim,), trainable=False, name=name,
                                   initializer=keras.initializers.Constant(value))

        self.low, self.high = weight("low", -1.0), weight("high", 1.0)  # the box of the last complete pass
        self.pass_low, self.pass_high = weight("pass_low", BIG), weight("pass_high", -BIG)  # of this pass
        self.seen = weight("seen", 0.0)  # examples seen in this pass

    def call(self, z, training=False):
        if training:
            codes = ops.stop_gradient(z)
            pass_low = ops.minimum(self.pass_low, ops.min(codes, axis=0))
            pass_high = ops.maximum(self.pass_high, ops.max(codes, axis=0))
            seen = self.seen + ops.cast(ops.shape(codes)[0], "float32")
            done = seen >= self.epoch_size
            self.low.assign(ops.where(done, pass_low, self.low))
            self.high.assign(ops.where(done, pass_high, self.high))
            self.pass_low.assign(ops.where(done, BIG, pass_low))
            self.pass_high.assign(ops.where(done, -BIG, pass_high))
            self.seen.assign(ops.where(done, 0.0, seen))
        return z


def build_encoder(image_shape, filters, latent_dim):
    x_in = keras.Input(image_shape)
    x = x_in
    for f in filters:
        x = layers.Conv2D(f, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Flatten()(x)
    z = layers.Dense(latent_dim, name="z")(x)
    return keras.Model(x_in, z, name="encoder")


def build_decoder(image_shape, filters, latent_dim):
    height, width, channels = image_shape
    down = 2 ** len(filters)
    z_in = keras.Input((latent_dim,))
    x = layers.Dense((height // down) * (width // down) * filters[-1])(z_in)
    x = layers.Reshape((height // down, width // down, filters[-1]))(x)
    for f in reversed(filters):
        x = layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Conv2D(channels, 3, padding="same", activation="sigmoid", name="pixels")(x)
    return keras.Model(z_in, x, name="decoder")


class Autoencoder(keras.Model):
    def __init__(self, encoder, decoder, epoch_size: int, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.latent_range = LatentRange(epoch_size, name="latent_range")

    def call(self, images, training=False):
        return self.decoder(self.latent_range(self.encoder(images), training=training))


# ------------------------------------------------------------------ the family interface ---------------
def build(cfg, data: dict, seed: int) -> Autoencoder:
    image_shape = tuple(data["train_x"].shape[1:])
    if any(s % 2 ** len(cfg.filters) for s in image_shape[:2]):
        raise ValueError(f"autoencoder.filters: {len(cfg.filters)} stride-2 convs do not divide images of "
                         f"{image_shape}")
    model = Autoencoder(build_encoder(image_shape, cfg.filters, cfg.latent_dim),
                        build_decoder(image_shape, cfg.filters, cfg.latent_dim), epoch_size=len(data["train_x"]))
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss="binary_crossentropy",
                  metrics=[keras.metrics.MeanSquaredError(name="mse")])
    model(data["train_x"][:1])  # create the weights now, so a checkpoint can be restored into them
    return model


def train_arrays(data: dict, cfg=None):
    """(x, y, validation_data) for `fit`: the target is the input itself."""
    return data["train_x"], data["train_x"], (data["val_x"], data["val_x"])


def encode(model: Autoencoder, images: np.ndarray) -> np.ndarray:
    return model.encoder.predict(images, verbose=0, batch_size=256)


def decode(model: Autoencoder, z: np.ndarray) -> np.ndarray:
    images = model.decoder.predict(np.asarray(z, np.float32), verbose=0, batch_size=256)
    return np.clip(images, 0.0, 1.0).astype(np.float32)


def reconstruct(model: Autoencoder, images: np.ndarray) -> np.ndarray:
    return decode(model, encode(model, images))


def latent_box(model: Autoencoder) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) per latent dimension: the tracked range of the training codes."""
    return np.asarray(model.latent_range.low), np.asarray(model.latent_range.high)


def sample(model: Autoencoder, n: int, seed: int) -> np.ndarray:
    """The book's recipe: decode points drawn uniformly from the box of the training codes. No prior says
    where in the box the decoder makes digits, so many draws land between the clusters (see the docstring)."""
    low, high = latent_box(model)
    z = np.random.default_rng(seed).uniform(low, high, (n, len(low))).astype(np.float32)
    return decode(model, z)


def latent_grid(model: Autoencoder, z: np.ndarray, size: int = GRID_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Images decoded over a size x size grid spanning the box of the codes `z` in their first two dimensions
    (any others held at their mean), row by row from the top (largest z2) down, z1 growing to the right,
    as imshow draws the plane; -> (size * size images, [xmin, xmax, ymin, ymax])."""
    (xmin, ymin), (xmax, ymax) = z[:, :2].min(axis=0), z[:, :2].max(axis=0)
    xs, ys = np.linspace(xmin, xmax, size), np.linspace(ymax, ymin, size)
    points = np.tile(z.mean(axis=0), (size * size, 1))
    points[:, :2] = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)  # (x varies fastest: row-major)
    return decode(model, points), np.array([xmin, xmax, ymin, ymax], np.float32)


def sample_outputs(model: Autoencoder, data: dict, n: int, seed: int) -> dict[str, np.ndarray]:
    originals = data["test_x"][:16]
    z = encode(model, data["test_x"])
    grid, extent = latent_grid(model, z)
    low, high = latent_box(model)
    return {"samples": sample(model, n, seed), "originals": originals,
            "reconstructions": reconstruct(model, originals),
            "latent_z": z, "latent_labels": data["test_y"],
            "latent_grid": grid, "latent_grid_extent": extent,
            "sample_box": np.stack([low, high]).astype(np.float32)}


# ------------------------------------------------------------------ evaluation -------------------------
def pca_reconstruct(train: np.ndarray, test: np.ndarray, components: int) -> np.ndarray:
    """Test images projected on the top `components` principal directions of the training images (fitted
    with their mean), clipped to the pixel range [0, 1] (which can only lower PCA's error)."""
    shape = test.shape
    train_f = train.reshape(len(train), -1).astype(np.float64)
    test_f = test.reshape(len(test), -1).astype(np.float64)
    mean = train_f.mean(axis=0)
    _, _, vt = np.linalg.svd(train_f - mean, full_matrices=False)
    basis = vt[:components]
    recon = (test_f - mean) @ basis.T @ basis + mean
    return np.clip(recon, 0.0, 1.0).reshape(shape)


def class_shares(labels: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(np.asarray(labels, np.int64), minlength=k) / max(len(labels), 1)


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    return float(0.5 * np.abs(p - q).sum())


def extra_metrics(model: Autoencoder, data: dict, cfg, seed: int, ruler, outputs: dict, evaluation) -> dict:
    """The test split's reconstruction error (mean squared error per pixel), next to that of PCA with as many
    components as the autoencoder has latent dimensions: the best *linear* code of the same size.

    With the dataset's classifier (the ruler), also how far the digits seen in the samples are from the
    data's label frequencies (`class_tv`): sampling uniformly over the box of the codes draws each digit in
    proportion to its cluster's area, not its frequency. Baseline: the per-pixel samples; reference:
    training images, as many as samples."""
    test = data["test_x"]
    mse = float(np.mean((reconstruct(model, test) - test) ** 2))
    pca_mse = float(np.mean((pca_reconstruct(data["train_x"], test, cfg.latent_dim) - test) ** 2))
    out = {
        "figures": {"reconstruction_mse": mse},
        "baseline": {"reconstruction_mse": pca_mse},
        "reference": {},
        "descriptions": {"reconstruction_mse": (
            f"mean squared error per pixel between test images and their reconstructions (lower is better); its "
            f"baseline is not the per-pixel marginals but PCA with {cfg.latent_dim} components fitted on the "
            "training split, the best linear code of the same size")},
        "meta": {"reconstruction_baseline": f"PCA, {cfg.latent_dim} components, fitted on the training split"},
    }
    if ruler is None or "test_y" not in data:
        return out
    k = int(max(data["train_y"].max(), data["test_y"].max())) + 1
    truth = class_shares(data["test_y"], k)
    shares = class_shares(ruler.predict_labels(outputs["samples"]), k)
    out["figures"]["class_tv"] = total_variation(shares, truth)
    out["reference"]["class_tv"] = total_variation(
        class_shares(ruler.predict_labels(data["train_x"][:len(outputs["samples"])]), k), truth)
    if "baseline" in outputs:
        out["baseline"]["class_tv"] = total_variation(class_shares(ruler.predict_labels(outputs["baseline"]), k), truth)
    out["descriptions"]["class_tv"] = (
        "total-variation distance between the shares of the classes the dataset's classifier sees in the samples "
        "and the test split's label frequencies: 0 when every class comes as often as in the data, 1 when "
        "the samples only show classes the data never has (lower is better)")
    out["meta"].update(sample_class_shares=shares.tolist(), test_class_shares=truth.tolist())
    return out
