"""V, the VAE of World Models (Ha & Schmidhuber 2018): a 64x64x3 frame -> a 32-number latent z, and back.

V compresses each frame into z, on which M (gdl/world_models/mdnrnn.py) learns the dynamics and C
(gdl/world_models/controller.py) acts. V learns from the rollout frames alone (no actions, no rewards).

* the model (the paper's appendix, Ha's ``vae/vae.py``), "valid" padding everywhere:

  - encoder: 4 convolutions, kernel 4, stride 2, relu, 32/64/128/256 filters: 64 -> 31 -> 14 -> 6 -> 2,
    so a 2x2x256 map, flattened (1024), then two dense layers: mu and logvar (32 each), the diagonal
    Gaussian posterior q(z | x) = N(mu, exp(logvar));
  - decoder: dense 1024 (no activation, as in Ha's code) -> reshape to 1x1x1024 -> 4 transposed
    convolutions, stride 2, kernels 5/5/6/6, 128/64/32/3 filters (relu, relu, relu, sigmoid):
    1 -> 5 -> 13 -> 30 -> 64. The output is the frame itself, in [0, 1].

  `filters` scales the widths (the decoder's are the encoder's first three in reverse, and its dense layer
  has 4 * filters[-1] units, 1024 at full width); the 4 layers and their kernels are fixed, because only
  they take 64 to 2x2 and 1x1 back to 64. Full width: ~4.35M parameters.
* the loss (Ha's code, per frame, then the batch mean): the squared error summed over the 64 x 64 x 3
  values in [0, 1] (a Gaussian likelihood of fixed variance, up to constants), plus the KL divergence of
  the posterior from N(0, I) with "free bits": max(KL, kl_tolerance * latent_dim), so a frame's first
  0.5 * 32 = 16 nats of KL cost nothing and the encoder is not pushed to throw them away. Below the floor
  the KL term has no gradient. The `kl` metric is the raw KL (what z actually carries), not the floored one.
* the frames: uint8 (as in a rollout shard: gdl/world_models/rollouts.py) or float in [0, 1], anywhere a
  frame goes in (`fit`, `encode`, ...). uint8 is converted inside the graph, so `fit` streams uint8 arrays
  (4x less memory than float32). A float array with values above 1 is refused where this module sees it
  in numpy (`to_float`), since it is almost surely 0-255 data.
* the seeds: weights from seeded initialisers (`build_vae(seed=...)`), the training noise eps from a Keras
  SeedGenerator seeded the same way. `encode` uses no noise: it returns (mu, logvar), and whoever needs a z
  draws it (M's windows and the controller do, from their own numpy Generators).
* the file: `save_vae` / `load_vae`: a folder (config.json + model.weights.h5, byte-identical for
  identical weights), or a `.keras` archive (with the optimizer state) for a path ending in .keras.
  `load_encoder(path)` is the function the controller's workers call, by import path, to get
  encode(uint8 frames (B, 64, 64, 3)) -> (mu, logvar) float32 (B, latent_dim) numpy arrays.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import initializers, layers, ops

from gdl.world_models import files
from gdl.world_models.rollouts import FRAME_SIZE

FRAME_SHAPE = (FRAME_SIZE, FRAME_SIZE, 3)
DECODER_KERNELS = (5, 5, 6, 6)  # 1 -> 5 -> 13 -> 30 -> 64 with stride 2, "valid" padding


# ------------------------------------------------------------------ frames ------------------------------
def to_float(frames) -> np.ndarray:
    """uint8 frames (0-255) or float frames in [0, 1] -> float32 in [0, 1] (numpy)."""
    frames = np.asarray(frames)
    if frames.dtype == np.uint8:
        return frames.astype(np.float32) / np.float32(255.0)
    if frames.size and (frames.min() < 0.0 or frames.max() > 1.0):
        raise ValueError(f"float frames must lie in [0, 1] (pass 0-255 data as uint8), got values in "
                         f"[{frames.min()}, {frames.max()}]")
    return frames.astype(np.float32)


def _check_frames(frames) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[1:] != FRAME_SHAPE:
        raise ValueError(f"expected frames (B, 64, 64, 3), got shape {frames.shape}")
    return frames


def _unit(frames):
    """The graph's version of `to_float`: uint8 -> / 255; floats are taken to be in [0, 1] already."""
    if keras.backend.standardize_dtype(frames.dtype) == "uint8":
        return ops.cast(frames, "float32") / 255.0
    return ops.cast(frames, "float32")


# ------------------------------------------------------------------ the loss ----------------------------
def kl_divergence(mu, logvar):
    """KL(N(mu, exp(logvar)) || N(0, I)) per frame, in nats: (B, L) -> (B,)."""
    return -0.5 * ops.sum(1.0 + logvar - ops.square(mu) - ops.exp(logvar), axis=-1)


def vae_loss(frames, reconstruction, mu, logvar, kl_tolerance=0.5):
    """Per frame (B,): (loss, reconstruction error, KL). frames and reconstruction in [0, 1].

    reconstruction error = sum of squares over the frame; loss = that + max(KL, kl_tolerance * L).
    """
    squared = ops.sum(ops.square(frames - reconstruction), axis=(1, 2, 3))
    kl = kl_divergence(mu, logvar)
    floor = kl_tolerance * ops.shape(mu)[-1]
    return squared + ops.maximum(kl, floor), squared, kl


# ------------------------------------------------------------------ the model ---------------------------
@keras.saving.register_keras_serializable(package="gdl")
class WorldModelVAE(keras.Model):
    """The convolutional VAE of the paper's appendix (layout and sizes in the module docstring)."""

    def __init__(self, latent_dim=32, filters=(32, 64, 128, 256), kl_tolerance=0.5, seed=0, **kwargs):
        super().__init__(**kwargs)
        filters = tuple(int(f) for f in filters)
        if len(filters) != 4:
            raise ValueError(f"filters: the paper's VAE has 4 conv layers (64 -> 2x2), got {filters}")
        self.latent_dim, self.filters, self.kl_tolerance, self.seed = latent_dim, filters, kl_tolerance, seed

        def glorot(offset):  # a distinct, fixed seed per weight matrix: same `seed`, same weights
            return initializers.GlorotUniform(seed=seed + offset)

        self.convs = [layers.Conv2D(f, 4, strides=2, activation="relu", kernel_initializer=glorot(i),
                                    name=f"enc_conv{i + 1}") for i, f in enumerate(filters)]
        self.flatten = layers.Flatten()
        self.mu_head = layers.Dense(latent_dim, kernel_initializer=glorot(4), name="enc_fc_mu")
        self.logvar_head = layers.Dense(latent_dim, kernel_initializer=glorot(5), name="enc_fc_log_var")
        self.dec_fc = layers.Dense(4 * filters[-1], kernel_initializer=glorot(6), name="dec_fc")
        self.deconvs = [
            layers.Conv2DTranspose(f, k, strides=2, activation=a, kernel_initializer=glorot(7 + i),
                                   name=f"dec_deconv{i + 1}")
            for i, (f, k, a) in enumerate(zip((*filters[2::-1], 3), DECODER_KERNELS,
                                              ("relu", "relu", "relu", "sigmoid")))]
        self.noise = keras.random.SeedGenerator(seed)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("loss", "reconstruction", "kl")}
        self._compiled = {}  # name -> tf.function, made on first use (`_function`)

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim, "filters": list(self.filters),
                "kl_tolerance": self.kl_tolerance, "seed": self.seed}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def encode_frames(self, frames):
        """frames (B, 64, 64, 3) uint8 or float in [0, 1] -> (mu, logvar), each (B, latent_dim)."""
        x = _unit(frames)
        for conv in self.convs:
            x = conv(x)
        x = self.flatten(x)
        return self.mu_head(x), self.logvar_head(x)

    def decode_latents(self, z):
        """z (B, latent_dim) -> frames (B, 64, 64, 3), float in [0, 1]."""
        x = ops.reshape(self.dec_fc(z), (-1, 1, 1, 4 * self.filters[-1]))
        for deconv in self.deconvs:
            x = deconv(x)
        return x

    def call(self, frames, training=False):
        """frames -> (reconstruction, mu, logvar); z is sampled when training, mu otherwise."""
        mu, logvar = self.encode_frames(frames)
        z = mu
        if training:
            z = mu + ops.exp(0.5 * logvar) * keras.random.normal(ops.shape(mu), seed=self.noise)
        return self.decode_latents(z), mu, logvar

    # -------------------------------------------------------------- training --------------------------
    def _loss_terms(self, data, training):
        """data: frames, or (frames,) / (frames, anything): the VAE learns from the frames alone (targets
        and sample weights, if any, are ignored)."""
        frames = data[0] if isinstance(data, (tuple, list)) else data
        reconstruction, mu, logvar = self(frames, training=training)
        return vae_loss(_unit(frames), reconstruction, mu, logvar, self.kl_tolerance)

    def _track(self, terms):
        for tracker, value in zip(self.metrics, terms):
            tracker.update_state(value)  # per-frame values: an epoch's metric is the mean over its frames
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            terms = self._loss_terms(data, training=True)
            loss = ops.mean(terms[0])
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))  # no clipping, as in Ha's code
        return self._track(terms)

    def test_step(self, data):
        return self._track(self._loss_terms(data, training=False))

    # -------------------------------------------------------------- inference -------------------------
    def _function(self, name):
        """The compiled float32 graph of `encode_frames` ("encode"), `decode_latents` ("decode") or both
        ("reconstruct", through mu), built once per model, any batch size (no retracing)."""
        if name not in self._compiled:
            import tensorflow as tf

            frames = tf.TensorSpec((None, *FRAME_SHAPE), tf.float32)
            fn, spec = {"encode": (self.encode_frames, frames),
                        "decode": (self.decode_latents, tf.TensorSpec((None, self.latent_dim), tf.float32)),
                        "reconstruct": (lambda x: self.decode_latents(self.encode_frames(x)[0]), frames)}[name]
            self._compiled[name] = tf.function(fn, input_signature=[spec])
        return self._compiled[name]


def build_vae(latent_dim=32, filters=(32, 64, 128, 256), kl_tolerance=0.5, learning_rate=1e-4,
              seed=0) -> WorldModelVAE:
    """A WorldModelVAE with its weights created (so a checkpoint can be restored into it), compiled with
    Adam (Ha's learning rate, 1e-4, is the default). Train with `model.fit(frames, batch_size=100, ...)`:
    frames uint8 (N, 64, 64, 3), no targets (Ha used batches of 100)."""
    model = WorldModelVAE(latent_dim, filters, kl_tolerance, seed)
    model(np.zeros((1, *FRAME_SHAPE), np.uint8))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return model


def save_vae(model: WorldModelVAE, path) -> None:
    """A `.keras` archive (path ending in .keras, with the optimizer) or a folder of config.json and
    model.weights.h5, byte-identical for identical weights (the pipeline's output): see files.py."""
    files.save(model, path)


def load_vae(path, compile: bool = True) -> WorldModelVAE:
    """The model `save_vae` wrote (compile=False: for encoding and decoding only, without the optimizer)."""
    return files.load(WorldModelVAE, path, compile, build=lambda m: m(np.zeros((1, *FRAME_SHAPE), np.uint8)))


def load_encoder(path):
    """V for the controller (gdl.world_models.controller.WorldModelPolicy's `encoder_loader`): the file
    -> encode(frames uint8 (B, 64, 64, 3)) -> (mu, logvar), float32 numpy (B, latent_dim) each. The caller
    keeps what this returns (the controller does, once per process); nothing is cached here."""
    model = load_vae(path, compile=False)

    def encode_frames(frames):
        return encode(model, frames)

    return encode_frames


# ------------------------------------------------------------------ numpy in, numpy out -----------------
def _batched(fn, inputs: np.ndarray, batch_size: int):
    """fn of each batch of `inputs` in turn (a generator; fn converts and returns numpy)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for start in range(0, len(inputs), batch_size):
        yield fn(inputs[start:start + batch_size])


def encode(model: WorldModelVAE, frames, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(mu, logvar) of each frame, float32 (N, latent_dim) each; deterministic (no noise drawn).

    frames: (N, 64, 64, 3), uint8 or float in [0, 1].
    """
    frames = _check_frames(frames)
    fn = model._function("encode")
    parts = list(_batched(lambda x: [t.numpy() for t in fn(to_float(x))], frames, batch_size))
    if not parts:
        empty = np.zeros((0, model.latent_dim), np.float32)
        return empty, empty.copy()
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def decode(model: WorldModelVAE, z, batch_size: int = 256) -> np.ndarray:
    """Frames uint8 (N, 64, 64, 3) of latents z (N, latent_dim): the decoder's output, rounded."""
    z = np.asarray(z, np.float32)
    if z.ndim != 2 or z.shape[1] != model.latent_dim:
        raise ValueError(f"expected z (N, {model.latent_dim}), got shape {z.shape}")
    fn = model._function("decode")
    parts = list(_batched(lambda x: fn(x).numpy(), z, batch_size))
    frames = np.concatenate(parts) if parts else np.zeros((0, *FRAME_SHAPE), np.float32)
    return np.round(np.clip(frames, 0.0, 1.0) * 255.0).astype(np.uint8)


def reconstruct(model: WorldModelVAE, frames, batch_size: int = 256) -> np.ndarray:
    """Each frame through V and back, through mu (no noise): uint8 (N, 64, 64, 3), for figures."""
    frames = _check_frames(frames)
    fn = model._function("reconstruct")
    parts = list(_batched(lambda x: fn(to_float(x)).numpy(), frames, batch_size))
    out = np.concatenate(parts) if parts else np.zeros((0, *FRAME_SHAPE), np.float32)
    return np.round(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)


def reconstruction_mse(model: WorldModelVAE, frames, batch_size: int = 256) -> float:
    """Mean squared error per value (pixel and channel) of the reconstruction through mu, in [0, 1] units
    (not rounded to uint8). Compare with `mean_frame_mse`. The `reconstruction` metric is this x 12288 (64*64*3)."""
    frames = _check_frames(frames)
    fn = model._function("reconstruct")

    def squared_error(x):
        x = to_float(x)
        return float(np.sum(np.square(fn(x).numpy().astype(np.float64) - x)))

    return sum(_batched(squared_error, frames, batch_size)) / max(frames.size, 1)


def mean_frame_mse(train_frames, frames, batch_size: int = 4096) -> float:
    """The ruler for `reconstruction_mse`: the MSE per value, in [0, 1] units, of predicting every frame
    by the mean training frame. A V that does not beat it has learnt nothing about the particular frame."""
    train_frames, frames = _check_frames(train_frames), _check_frames(frames)
    total = sum(_batched(lambda x: to_float(x).sum(axis=0, dtype=np.float64), train_frames, batch_size))
    mean = total / len(train_frames)
    squared = _batched(lambda x: float(np.sum(np.square(to_float(x) - mean))), frames, batch_size)
    return sum(squared) / max(frames.size, 1)
