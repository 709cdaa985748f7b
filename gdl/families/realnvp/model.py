"""RealNVP normalizing flow (chapter 6) on two moons, as in the book and the keras-io example.

A stack of affine coupling layers with alternating masks: each leaves half of the coordinates as they are
and scales/shifts the other half by functions (`s`, `t` MLPs) of the first half, so the Jacobian is
triangular and log|det| is just the sum of `s`. Training maximises the exact log-likelihood
log p(x) = log N(f(x); 0, I) + log|det df/dx|, which evaluation reports as nats per point.

The family interface (gdl/families/__init__.py): build, train_arrays, sample, sample_outputs, log_likelihood.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers, ops, regularizers


def coupling_network(dim: int, hidden_units: int, hidden_layers: int, l2: float) -> keras.Model:
    """(s, t) for one coupling layer; tanh keeps the log-scale bounded, which keeps training stable."""
    x_in = keras.Input((dim,))
    s = t = x_in
    for _ in range(hidden_layers):
        s = layers.Dense(hidden_units, activation="relu", kernel_regularizer=regularizers.l2(l2))(s)
        t = layers.Dense(hidden_units, activation="relu", kernel_regularizer=regularizers.l2(l2))(t)
    s = layers.Dense(dim, activation="tanh", kernel_regularizer=regularizers.l2(l2))(s)
    t = layers.Dense(dim, activation="linear", kernel_regularizer=regularizers.l2(l2))(t)
    return keras.Model(x_in, [s, t])


class RealNVP(keras.Model):
    def __init__(self, coupling_layers: int, hidden_units: int, hidden_layers: int, l2: float, dim: int = 2,
                 **kwargs):
        super().__init__(**kwargs)
        self.dim = dim
        half = np.arange(dim) % 2
        self.masks = np.stack([half if i % 2 == 0 else 1 - half for i in range(coupling_layers)]).astype("float32")
        self.couplings = [coupling_network(dim, hidden_units, hidden_layers, l2) for _ in range(coupling_layers)]
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def to_latent(self, x):
        """x -> z and log|det dz/dx| (the direction used for the likelihood)."""
        log_det = ops.zeros(ops.shape(x)[:1])
        for mask, coupling in reversed(list(zip(self.masks, self.couplings))):
            s, t = coupling(x * mask)
            s, t = s * (1 - mask), t * (1 - mask)
            x = x * mask + (1 - mask) * (x - t) * ops.exp(-s)
            log_det = log_det - ops.sum(s, axis=1)
        return x, log_det

    def to_data(self, z):
        """z -> x, the inverse of `to_latent`, used for sampling."""
        for mask, coupling in zip(self.masks, self.couplings):
            s, t = coupling(z * mask)
            s, t = s * (1 - mask), t * (1 - mask)
            z = z * mask + (1 - mask) * (z * ops.exp(s) + t)
        return z

    def call(self, x):
        return self.to_latent(x)

    def log_prob(self, x):
        z, log_det = self.to_latent(x)
        return -0.5 * ops.sum(ops.square(z), axis=1) - 0.5 * self.dim * math.log(2 * math.pi) + log_det

    def train_step(self, data):
        import tensorflow as tf

        x = data[0] if isinstance(data, tuple) else data
        with tf.GradientTape() as tape:
            # The L2 penalty regularises the weights; the reported loss is the NLL alone.
            nll = -ops.mean(self.log_prob(x))
            loss = nll + ops.sum(self.losses)
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.loss_tracker.update_state(nll)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data):
        x = data[0] if isinstance(data, tuple) else data
        self.loss_tracker.update_state(-ops.mean(self.log_prob(x)))
        return {"loss": self.loss_tracker.result()}


# ------------------------------------------------------------------ the family interface ---------------
def build(cfg, data: dict, seed: int) -> RealNVP:
    dim = data["train_x"].shape[1]
    flow = RealNVP(cfg.coupling_layers, cfg.hidden_units, cfg.hidden_layers, cfg.l2, dim=dim)
    flow.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate))
    flow(data["train_x"][:1])  # create the weights now, so a checkpoint can be restored into them
    return flow


def train_arrays(data: dict, cfg=None):
    return data["train_x"], None, (data["val_x"],)


def latent_draws(flow: RealNVP, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, flow.dim)).astype(np.float32)


def sample(flow: RealNVP, n: int, seed: int) -> np.ndarray:
    """n points from the model: Gaussian draws pushed through the inverse flow."""
    return np.asarray(flow.to_data(latent_draws(flow, n, seed)))


def encode(flow: RealNVP, x: np.ndarray) -> np.ndarray:
    return np.asarray(flow.to_latent(x)[0])


def log_likelihood(flow: RealNVP, x: np.ndarray, cfg, seed: int) -> dict[str, np.ndarray]:
    """Exact log p(x) per point, in nats, in the (standardised) space the flow was trained in."""
    return {"log_likelihood": np.asarray(flow.log_prob(x), dtype=np.float64)}


def sample_outputs(flow: RealNVP, data: dict, n: int, seed: int) -> dict[str, np.ndarray]:
    latent = latent_draws(flow, n, seed)
    return {"samples": np.asarray(flow.to_data(latent)), "latent": latent,
            "data": data["test_x"], "data_labels": data["test_y"], "data_latent": encode(flow, data["test_x"])}
