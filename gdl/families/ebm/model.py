"""Energy-based model (chapter 7): a conv net gives every image a score, and sampling follows its gradient.

The model defines a density p(x) ∝ exp(-E(x)) through an *energy* E(x) = -score(x) that it never has to
normalise: the network only says which images are more probable than others. Training is contrastive
divergence (Hinton 2002; Du & Mordatch 2019, the book's recipe): push the score of training images up and
the score of the model's own samples down,

    loss = mean score(fake) - mean score(real) + alpha (mean score(real)^2 + mean score(fake)^2),

until the two meet. The "fake" images are drawn from the model itself by Langevin dynamics: start somewhere,
then repeat `langevin_steps` times: add a little Gaussian noise, step uphill along the score's gradient with
respect to the pixels (clipped per pixel). Chains start from a *replay buffer* of earlier negatives (and a
few from fresh uniform noise), so a short chain per step continues long chains across training.

Sampling from scratch is the same Langevin dynamics, from uniform noise and for longer (`sample_steps`).
Images are [0, 1] in the pipeline and [-1, 1] inside the model. There is no likelihood: the normalising
constant is unknown. The family interface (gdl/families/__init__.py): build, train_arrays, sample,
sample_outputs.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

SAMPLE_BATCH = 500  # chains run together when sampling from scratch


def build_scorer(image_shape, cfg) -> keras.Model:
    """The book's score network: stride-2 swish convs, a swish dense layer, one output."""
    if len(cfg.filters) != len(cfg.kernel_sizes):
        raise ValueError(f"filters ({len(cfg.filters)}) and kernel_sizes ({len(cfg.kernel_sizes)}) must have "
                         "the same length")
    x = image_in = keras.Input(image_shape, name="image")
    for f, k in zip(cfg.filters, cfg.kernel_sizes):
        x = layers.Conv2D(f, k, strides=2, padding="same", activation="swish")(x)
    x = layers.Dense(cfg.dense_units, activation="swish")(layers.Flatten()(x))
    return keras.Model(image_in, layers.Dense(1)(x)[:, 0], name="scorer")


def langevin(scorer, images, noise, cfg):
    """len(noise) Langevin steps from `images` ([-1, 1]): each adds noise[i] (already scaled), then moves
    step_size x the clipped gradient of the score. A tf.while_loop, so any step count is one small graph."""
    import tensorflow as tf

    def step(i, x):
        x = tf.clip_by_value(x + noise[i], -1.0, 1.0)
        with tf.GradientTape() as tape:
            tape.watch(x)
            score = tf.reduce_sum(scorer(x, training=False))
        grad = tf.clip_by_value(tape.gradient(score, x), -cfg.gradient_clip, cfg.gradient_clip)
        return i + 1, tf.clip_by_value(x + cfg.step_size * grad, -1.0, 1.0)

    _, images = tf.while_loop(lambda i, _: i < tf.shape(noise)[0], step, (tf.constant(0), images))
    return images


class EBM(keras.Model):
    """The score network, its replay buffer, and contrastive-divergence training."""

    def __init__(self, scorer, cfg, image_shape, seed: int, **kwargs):
        super().__init__(**kwargs)
        self.scorer, self.cfg = scorer, cfg
        self.buffer = self.add_weight(shape=(cfg.buffer_size, *image_shape), name="replay_buffer", trainable=False,
                                      initializer=keras.initializers.RandomUniform(-1.0, 1.0, seed=seed))
        self.seed_generator = keras.random.SeedGenerator(seed)
        names = ["loss", "cd_loss", "reg_loss", "score_real", "score_fake"]
        self.trackers = [keras.metrics.Mean(name=n) for n in names]

    @property
    def metrics(self):
        return self.trackers

    def call(self, images):
        return self.scorer(images)

    def negatives(self, batch):
        """`batch` Langevin chains continued from the buffer (a fresh_fraction of them from uniform noise);
        the buffer keeps where they ended."""
        import tensorflow as tf

        cfg, shape = self.cfg, ops.shape(self.buffer)[1:]
        batch = ops.minimum(batch, cfg.buffer_size)
        slots = ops.argsort(keras.random.uniform((cfg.buffer_size,), seed=self.seed_generator))[:batch]
        starts = ops.take(self.buffer, slots, axis=0)
        fresh = keras.random.uniform((batch, 1, 1, 1), seed=self.seed_generator) < cfg.fresh_fraction
        uniform = keras.random.uniform(ops.shape(starts), -1.0, 1.0, seed=self.seed_generator)
        starts = ops.where(fresh, uniform, starts)
        noise = cfg.noise * keras.random.normal((cfg.langevin_steps, batch, *shape), seed=self.seed_generator)
        fake = tf.stop_gradient(langevin(self.scorer, starts, noise, cfg))
        self.buffer.assign(tf.tensor_scatter_nd_update(self.buffer, slots[:, None], fake))
        return fake

    def train_step(self, data):
        import tensorflow as tf

        images = data[0] if isinstance(data, tuple) else data
        real = images * 2.0 - 1.0
        real = ops.clip(real + self.cfg.real_noise * keras.random.normal(ops.shape(real), seed=self.seed_generator),
                        -1.0, 1.0)
        fake = self.negatives(ops.shape(real)[0])
        with tf.GradientTape() as tape:
            score_real = self.scorer(real, training=True)
            score_fake = self.scorer(fake, training=True)
            cd_loss = ops.mean(score_fake) - ops.mean(score_real)
            reg_loss = self.cfg.alpha * (ops.mean(score_real**2) + ops.mean(score_fake**2))
            loss = cd_loss + reg_loss
        grads = tape.gradient(loss, self.scorer.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.scorer.trainable_weights))
        for tracker, value in zip(self.trackers, (loss, cd_loss, reg_loss, ops.mean(score_real), ops.mean(score_fake))):
            tracker.update_state(value)
        return {m.name: m.result() for m in self.trackers}

    def test_step(self, data):
        """Validation: the score gap between validation images and fresh negatives (no update)."""
        images = data[0] if isinstance(data, tuple) else data
        score_real = self.scorer(images * 2.0 - 1.0, training=False)
        score_fake = self.scorer(ops.take(self.buffer, ops.arange(ops.minimum(ops.shape(images)[0],
                                                                               self.cfg.buffer_size)), axis=0))
        cd_loss = ops.mean(score_fake) - ops.mean(score_real)
        reg_loss = self.cfg.alpha * (ops.mean(score_real**2) + ops.mean(score_fake**2))
        values = (cd_loss + reg_loss, cd_loss, reg_loss, ops.mean(score_real), ops.mean(score_fake))
        for tracker, value in zip(self.trackers, values):
            tracker.update_state(value)
        return {m.name: m.result() for m in self.trackers}


# ------------------------------------------------------------------ the family interface ---------------
def build(cfg, data: dict, seed: int) -> EBM:
    image_shape = tuple(data["train_x"].shape[1:])
    model = EBM(build_scorer(image_shape, cfg), cfg, image_shape, seed)
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate, beta_1=cfg.beta_1, beta_2=0.999))
    model.optimizer.build(model.scorer.trainable_variables)
    model.built = True
    return model


def train_arrays(data: dict, cfg=None):
    """(x, y, validation_data): images only; validation compares the scores of validation images and of the
    buffer's negatives."""
    return data["train_x"], None, (data["val_x"],)


def run_chains(model: EBM, n: int, steps: int, seed: int, snapshots: bool = False):
    """n Langevin chains of `steps` steps from uniform noise, in [0, 1]: (final images, and with snapshots
    the first 8 chains at the start and after each tenth of the steps, (8 * 11, H, W, C), row-major by
    chain). Stateless random numbers keyed by the seed: a seed fixes the samples."""
    import tensorflow as tf

    cfg, shape = model.cfg, tuple(model.buffer.shape[1:])
    run = tf.function(lambda x, noise: langevin(model.scorer, x, noise, cfg))
    marks = np.unique(np.linspace(0, steps, 11).astype(int)[1:])  # the chains run in tenths (snapshots)
    finals, frames = [], []
    for b, start in enumerate(range(0, n, SAMPLE_BATCH)):
        m = min(SAMPLE_BATCH, n - start)
        x = tf.random.stateless_uniform((m, *shape), seed=(seed, b), minval=-1.0, maxval=1.0)
        keep = snapshots and b == 0
        frames += [x[:8]] if keep else []
        done = 0
        for stop in marks:
            noise = cfg.noise * tf.random.stateless_normal((stop - done, m, *shape), seed=(seed, 1000 * (b + 1) + done))
            x, done = run(x, noise), stop
            frames += [x[:8]] if keep else []
        finals.append(x.numpy())
    to_unit = lambda a: np.clip((np.asarray(a) + 1.0) / 2.0, 0.0, 1.0).astype(np.float32)
    images = to_unit(np.concatenate(finals))
    if not snapshots:
        return images, None
    chains = np.stack([to_unit(f) for f in frames], axis=1)  # (8, 11, H, W, C)
    return images, chains.reshape(-1, *shape)


def sample(model: EBM, n: int, seed: int) -> np.ndarray:
    return run_chains(model, n, model.cfg.sample_steps, seed)[0]


def energies(model: EBM, images: np.ndarray) -> np.ndarray:
    """E(x) = -score(x) for [0, 1] images (low energy = probable under the model)."""
    return -model.scorer.predict(np.asarray(images, np.float32) * 2.0 - 1.0, verbose=0, batch_size=500)


def sample_outputs(model: EBM, data: dict, n: int, seed: int) -> dict[str, np.ndarray]:
    """Samples, 8 chains from noise at 11 points along the way, and the energies the report compares:
    test images, samples, uniform noise."""
    samples, chains = run_chains(model, n, model.cfg.sample_steps, seed, snapshots=True)
    noise = np.random.default_rng(seed + 1).uniform(0.0, 1.0, (min(n, len(data["test_x"])), *samples.shape[1:]))
    return {"samples": samples, "chains": chains, "energy_test": energies(model, data["test_x"]),
            "energy_samples": energies(model, samples), "energy_noise": energies(model, noise.astype(np.float32))}
