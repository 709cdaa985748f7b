"""GANs (chapter 4): the book's DCGAN and WGAN-GP, and the conditional WGAN-GP (CGAN), in one file.

A generator maps noise z (and, for the CGAN, a one-hot label) to an image; a critic scores images (the
CGAN's also sees the label, as extra constant channels). Two objectives, a param:

* ``dcgan`` (Radford et al. 2016): the critic is a real-vs-fake classifier trained with binary cross-entropy
  on smoothed targets (real ~ 1 - noise, fake ~ noise); the generator maximises log D(G(z)). BatchNorm in both
  networks, as in the book.
* ``wgan_gp`` (Gulrajani et al. 2017): the critic's mean score gap real - fake estimates the Wasserstein
  distance; a penalty (||grad critic(x_hat)|| - 1)^2 at random points between real and fake images keeps it
  1-Lipschitz. No BatchNorm in the critic (the penalty is per example), `critic_steps` critic updates per
  generator update. The interpolation weight is uniform in [0, 1] per example, as in the paper (the book's
  notebook draws it from a normal distribution).

Images are [0, 1] in the pipeline and [-1, 1] (tanh) inside the networks.

The family interface (gdl/families/__init__.py): build, train_arrays, sample, sample_outputs, extra_metrics.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops


# ------------------------------------------------------------------ the networks -----------------------
def build_generator(image_shape, cfg, num_classes: int) -> keras.Model:
    height, width, channels = image_shape
    down = 2 ** len(cfg.generator_filters)
    z_in = keras.Input((cfg.latent_dim,), name="z")
    inputs, x = [z_in], z_in
    if cfg.conditional:
        label_in = keras.Input((num_classes,), name="label")
        inputs.append(label_in)
        x = layers.Concatenate()([z_in, label_in])
    x = layers.Dense((height // down) * (width // down) * cfg.generator_filters[0], use_bias=False)(x)
    x = layers.Reshape((height // down, width // down, cfg.generator_filters[0]))(x)
    x = layers.LeakyReLU(0.2)(layers.BatchNormalization(momentum=0.9)(x))
    for f in cfg.generator_filters[1:]:
        x = layers.Conv2DTranspose(f, 4, strides=2, padding="same", use_bias=False)(x)
        x = layers.LeakyReLU(0.2)(layers.BatchNormalization(momentum=0.9)(x))
    image = layers.Conv2DTranspose(channels, 4, strides=2, padding="same", activation="tanh")(x)
    return keras.Model(inputs, image, name="generator")


def build_critic(image_shape, cfg, num_classes: int) -> keras.Model:
    height, width, _ = image_shape
    image_in = keras.Input(image_shape, name="image")
    inputs, x = [image_in], image_in
    if cfg.conditional:
        label_in = keras.Input((num_classes,), name="label")
        inputs.append(label_in)
        if cfg.critic_conditioning == "channels":  # the label as num_classes constant planes beside the image
            planes = layers.Reshape((1, 1, num_classes))(label_in)
            x = layers.Concatenate()([image_in, ops.tile(planes, (1, height, width, 1))])
    for i, f in enumerate(cfg.critic_filters):
        x = layers.Conv2D(f, 4, strides=2, padding="same")(x)
        if cfg.objective == "dcgan" and i > 0:
            x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.LeakyReLU(0.2)(x)
        x = layers.Dropout(cfg.dropout)(x)
    features = layers.Flatten()(x)
    score = layers.Dense(1)(features)  # a logit (dcgan) or a score (wgan_gp)
    if cfg.conditional and cfg.critic_conditioning == "projection":
        embedded = layers.Dense(features.shape[-1], use_bias=False)(label_in)  # one vector per class
        score = score + ops.sum(embedded * features, axis=1, keepdims=True)
    if cfg.conditional and cfg.classifier_weight > 0:  # AC-GAN: the critic also names the class it sees
        return keras.Model(inputs, [score, layers.Dense(num_classes, name="class_logits")(features)], name="critic")
    return keras.Model(inputs, score, name="critic")


# ------------------------------------------------------------------ the adversarial game ---------------
class GAN(keras.Model):
    """Generator + critic. `optimizer` (compile) trains the generator; `critic_optimizer` the critic;
    `ema_generator`, the running average of the generator's weights, draws the samples."""

    def __init__(self, generator, critic, cfg, num_classes: int, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.generator, self.critic = generator, critic
        self.ema, self.ema_generator = cfg.ema, keras.models.clone_model(generator)
        self.ema_generator.set_weights(generator.get_weights())
        self.objective, self.conditional = cfg.objective, cfg.conditional
        self.latent_dim, self.num_classes = cfg.latent_dim, num_classes
        self.critic_steps, self.gp_weight, self.label_noise = cfg.critic_steps, cfg.gp_weight, cfg.label_noise
        self.classifier_weight = cfg.classifier_weight if cfg.conditional else 0.0
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.critic_optimizer = keras.optimizers.Adam(cfg.critic_learning_rate or cfg.learning_rate,
                                                      beta_1=cfg.beta_1, beta_2=cfg.beta_2)
        names = ["d_loss", "g_loss"] + (["w_distance", "gradient_penalty"] if cfg.objective == "wgan_gp"
                                        else ["d_real_accuracy", "d_fake_accuracy"])
        names += ["class_loss"] if self.classifier_weight > 0 else []
        self.trackers = [keras.metrics.Mean(name=n) for n in names]

    @property
    def extra_optimizers(self):  # saved in checkpoints beside `optimizer` (gdl/training.py)
        return [self.critic_optimizer]

    @property
    def metrics(self):
        return self.trackers

    def _inputs(self, x, labels):
        return [x, labels] if self.conditional else x

    def _score(self, images, labels):
        """(critic score, class cross-entropy per example or None): the auxiliary classifier's loss is
        the critic's on real images and the generator's on fakes (Odena et al. 2017)."""
        out = self.critic(self._inputs(images, labels), training=True)
        if self.classifier_weight <= 0:
            return out, None
        score, logits = out
        return score, keras.losses.categorical_crossentropy(labels, logits, from_logits=True)

    def _noise(self, batch):
        return keras.random.normal((batch, self.latent_dim), seed=self.seed_generator)

    def _critic_loss(self, real, labels):
        batch = ops.shape(real)[0]
        fake = self.generator(self._inputs(self._noise(batch), labels), training=True)
        real_score, real_class_loss = self._score(real, labels)
        fake_score, _ = self._score(fake, labels)
        class_extras, class_term = (), 0.0
        if real_class_loss is not None:
            class_extras = (ops.mean(real_class_loss),)
            class_term = self.classifier_weight * class_extras[0]
        if self.objective == "wgan_gp":
            w_distance = ops.mean(real_score) - ops.mean(fake_score)
            penalty = self._gradient_penalty(real, fake, labels)
            return -w_distance + self.gp_weight * penalty + class_term, (w_distance, penalty, *class_extras)
        # One-sided noise on the targets (the book's "label noise"): the discriminator is never asked for
        # certainty, which keeps its gradients to the generator alive.
        real_target = 1.0 - self.label_noise * keras.random.uniform(ops.shape(real_score), seed=self.seed_generator)
        fake_target = self.label_noise * keras.random.uniform(ops.shape(fake_score), seed=self.seed_generator)
        loss = 0.5 * (ops.mean(keras.losses.binary_crossentropy(real_target, real_score, from_logits=True))
                      + ops.mean(keras.losses.binary_crossentropy(fake_target, fake_score, from_logits=True)))
        accuracy = (ops.mean(ops.cast(real_score > 0, "float32")), ops.mean(ops.cast(fake_score < 0, "float32")))
        return loss + class_term, (*accuracy, *class_extras)

    def _gradient_penalty(self, real, fake, labels):
        import tensorflow as tf

        alpha = keras.random.uniform((ops.shape(real)[0], 1, 1, 1), seed=self.seed_generator)  # U[0, 1]
        between = real + alpha * (fake - real)
        with tf.GradientTape() as tape:
            tape.watch(between)
            score, _ = self._score(between, labels)
        grads = tape.gradient(score, between)
        norm = ops.sqrt(ops.sum(ops.square(grads), axis=(1, 2, 3)) + 1e-12)
        return ops.mean(ops.square(norm - 1.0))

    def _generator_loss(self, batch, labels):
        fake = self.generator(self._inputs(self._noise(batch), labels), training=True)
        score, class_loss = self._score(fake, labels)
        class_term = 0.0 if class_loss is None else self.classifier_weight * ops.mean(class_loss)
        if self.objective == "wgan_gp":
            return -ops.mean(score) + class_term
        return ops.mean(keras.losses.binary_crossentropy(ops.ones_like(score), score, from_logits=True)) + class_term

    def train_step(self, data):
        import tensorflow as tf

        images = data[0] if isinstance(data, tuple) else data
        real = images * 2.0 - 1.0
        labels = (ops.one_hot(ops.cast(data[1][:, self.condition_column], "int32"), self.num_classes)
                  if self.conditional else None)
        for _ in range(self.critic_steps):  # unrolled: a handful of steps inside one traced function
            with tf.GradientTape() as tape:
                d_loss, extras = self._critic_loss(real, labels)
            grads = tape.gradient(d_loss, self.critic.trainable_weights)
            self.critic_optimizer.apply_gradients(zip(grads, self.critic.trainable_weights))
        with tf.GradientTape() as tape:
            g_loss = self._generator_loss(ops.shape(real)[0], labels)
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        for average, current in zip(self.ema_generator.weights, self.generator.weights):  # BN statistics too
            average.assign(self.ema * average + (1.0 - self.ema) * current)
        for tracker, value in zip(self.trackers, (d_loss, g_loss, *extras)):
            tracker.update_state(value)
        return {m.name: m.result() for m in self.trackers}


# ------------------------------------------------------------------ the family interface ---------------
def class_columns(data: dict, split: str = "train") -> np.ndarray:
    """The classes a GAN can be conditioned on, as int columns: the labels, then each attribute (if any)."""
    columns = [data[f"{split}_y"]]
    if f"{split}_attributes" in data:
        columns += list(data[f"{split}_attributes"].T)
    return np.stack(columns, axis=1).astype(np.int32)


def condition_column(data: dict, condition: str | None) -> int:
    if condition is None:
        return 0
    names = [str(c) for c in data.get("attribute_names", [])]
    if condition not in names or f"{condition}_names" not in data:
        raise ValueError(f"condition: {condition!r} is not a categorical attribute of this dataset ({names})")
    return 1 + names.index(condition)


def build(cfg, data: dict, seed: int) -> GAN:
    image_shape = tuple(data["train_x"].shape[1:])
    if any(s % 2 ** len(cfg.generator_filters) for s in image_shape[:2]):
        raise ValueError(f"generator_filters: {len(cfg.generator_filters)} stride-2 steps do not divide images "
                         f"of {image_shape}")
    column = condition_column(data, cfg.condition)
    k = int(class_columns(data)[:, column].max()) + 1
    gan = GAN(build_generator(image_shape, cfg, k), build_critic(image_shape, cfg, k), cfg, k, seed=seed)
    gan.condition, gan.condition_column = cfg.condition, column
    gan.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate, beta_1=cfg.beta_1, beta_2=cfg.beta_2))
    # Create every variable now (networks and both optimizers' slots), so a checkpoint can be restored.
    gan.optimizer.build(gan.generator.trainable_variables)
    gan.critic_optimizer.build(gan.critic.trainable_variables)
    gan.built = True  # its networks are built functional models; Keras asks before saving weights
    return gan


def train_arrays(data: dict, cfg=None):
    """(x, y, validation_data) for `fit`: images and their classes (labels and attributes; a conditional GAN
    uses its `condition` column); no validation set (a GAN has no held-out loss worth the name; evaluation
    scores its samples)."""
    return data["train_x"], class_columns(data), None


def generate(gan: GAN, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """Images in [0, 1] for latent codes z (and class labels, for a conditional GAN), from the averaged generator."""
    inputs = [z, np.eye(gan.num_classes, dtype=np.float32)[labels]] if gan.conditional else z
    images = gan.ema_generator.predict(inputs, verbose=0, batch_size=256)
    return np.clip((images + 1.0) / 2.0, 0.0, 1.0).astype(np.float32)


def latents(gan: GAN, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, gan.latent_dim)).astype(np.float32)


def balanced_labels(gan: GAN, n: int) -> np.ndarray:
    """0, 1, ..., k-1, 0, 1, ...: every class equally often (a conditional GAN's requested labels)."""
    return np.arange(n) % gan.num_classes


def sample(gan: GAN, n: int, seed: int) -> np.ndarray:
    return generate(gan, latents(gan, n, seed), balanced_labels(gan, n) if gan.conditional else None)


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation between two latent codes, at the fractions t (Gaussian codes live near a sphere)."""
    omega = np.arccos(np.clip(np.dot(a / np.linalg.norm(a), b / np.linalg.norm(b)), -1.0, 1.0))
    if omega < 1e-6:
        return np.outer(1 - t, a) + np.outer(t, b)
    return (np.outer(np.sin((1 - t) * omega), a) + np.outer(np.sin(t * omega), b)) / np.sin(omega)


def sample_outputs(gan: GAN, data: dict, n: int, seed: int) -> dict[str, np.ndarray]:
    out = {"samples": sample(gan, n, seed)}
    z = latents(gan, 8, seed + 1)
    walks = np.concatenate([slerp(z[2 * i], z[2 * i + 1], np.linspace(0, 1, 8)) for i in range(4)])
    if gan.conditional:
        k = gan.num_classes
        out["sample_labels"] = balanced_labels(gan, n)
        # One row per class, the same 8 noise vectors in every row: the label alone changes the image.
        out["class_grid"] = generate(gan, np.tile(z, (k, 1)), np.repeat(np.arange(k), len(z)))
        walks_labels = np.repeat(np.arange(4) % k, 8)
        out["interpolations"] = generate(gan, walks.astype(np.float32), walks_labels)
    else:
        out["interpolations"] = generate(gan, walks.astype(np.float32))
    return out


def extra_metrics(gan: GAN, data: dict, cfg, seed: int, ruler, outputs: dict, evaluation) -> dict:
    """A conditional GAN's `conditional_accuracy`: the share of samples the dataset's classifier (the ruler)
    assigns to the label they were generated for; baseline: unconditional per-pixel samples with the same
    requested labels (chance); reference: the classifier on test images (its own accuracy)."""
    if not gan.conditional:
        return {}
    def predict(images):
        return ruler.predict_labels(images) if cfg.condition is None else ruler.predict_attribute(images, cfg.condition)

    requested = outputs["sample_labels"]
    truth = class_columns(data, "test")[:, gan.condition_column]
    what = "label" if cfg.condition is None else cfg.condition
    return {
        "figures": {"conditional_accuracy": float(np.mean(predict(outputs["samples"]) == requested))},
        "baseline": {"conditional_accuracy": float(np.mean(predict(outputs["baseline"]) == requested))},
        "reference": {"conditional_accuracy": float(np.mean(predict(data["test_x"]) == truth))},
        "descriptions": {"conditional_accuracy": f"share of samples the dataset's classifier sees with the {what} "
                                                 "they were generated for (higher is better)"},
        "meta": {"condition": what},
    }
