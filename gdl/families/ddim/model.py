"""Denoising diffusion implicit models (chapter 8): the book's (and keras-io's) DDIM, with classifier-free guidance.

Training: take an image x, a diffusion time t ~ U[0, 1] and Gaussian noise e; the *offset cosine* schedule
gives signal and noise rates s(t) = cos(a(t)), n(t) = sin(a(t)), a going linearly from acos(0.95) at t = 0 to
acos(0.02) at t = 1 (s^2 + n^2 = 1: the noisy image keeps unit variance). A U-Net sees the noisy image
s x + n e, the noise variance n^2 (as a 32-dim sinusoidal embedding) and the class label, and predicts e;
the loss is its mean absolute error (the book; or MSE, a param).

The U-Net: a 1x1 conv lifts the image to widths[0] channels, the embedding (broadcast over the image) is
concatenated to it (the book's only conditioning; with `block_conditioning`, the default, every residual
block also adds a dense projection of it, as the DDPM U-Net does: see Config); then per width but the last, `block_depth` residual blocks (each output kept as a skip)
and a 2x average pooling; `block_depth` blocks at the last width; then back up, bilinear upsampling and, per
block, the matching skip concatenated before a residual block; a zero-initialised 1x1 conv gives the noise.

Classifier-free guidance (Ho & Salimans 2022): the label embedding is added to the noise embedding, and
during training the label is replaced by a "null" label (index = number of classes) a share `label_dropout`
of the time, so one network predicts both e(x, y) and e(x, null). Sampling with scale w uses

    e = e(x, null) + w (e(x, y) - e(x, null))

so **w = 0 is unconditional, w = 1 plain conditional**, w > 1 pushes away from the unconditional prediction
(Ho & Salimans' w' = w - 1). w in {0, 1} costs one network evaluation per step, any other w two.
Guided samples use eta `guidance_eta` (default 1: fresh noise each step lets the guidance re-steer a sample
whose initial noise leans to another class; deterministic eta 0 left more of them in the wrong class).

Sampling (Song et al. 2020): from pure noise at t = 1, each of `steps` steps predicts e, hence the clean
image x0 = (x_t - n e) / s, and moves to the next time t' = t - 1/steps:

    x_t' = s' x0 + sqrt(n'^2 - sigma^2) e + sigma z,   sigma = eta (n'/n) sqrt(1 - s^2/s'^2)

eta = 0: deterministic DDIM (the same noise, the same image); eta = 1: DDPM's posterior variance. The image
returned is the last step's x0 (as keras-io), so `steps` steps cost exactly `steps` network evaluations.
Sampling uses the EMA network (an exponential moving average of the weights, `ema`).

Images are [0, 1] in the pipeline; inside, standardised with the training set's pixel mean and std (the
book's Normalization layer) or scaled to [-1, 1].

The family interface (gdl/families/__init__.py): build, train_arrays, sample, sample_outputs, extra_metrics;
and `forward_flops` for the benchmark.
"""

from __future__ import annotations

import math
import time

import keras
import numpy as np
from keras import layers, ops

CHUNK = 500  # images per network call when sampling (memory: the U-Net's activations of a chunk)


# ------------------------------------------------------------------ the schedule -----------------------
def diffusion_schedule(t, min_signal_rate: float, max_signal_rate: float):
    """(noise rates, signal rates) at diffusion times t in [0, 1]: the offset cosine schedule (works on numpy
    arrays and tensors alike). t = 0: signal max_signal_rate; t = 1: min_signal_rate."""
    start, end = math.acos(max_signal_rate), math.acos(min_signal_rate)
    angles = start + t * (end - start)
    return ops.sin(angles), ops.cos(angles)


# ------------------------------------------------------------------ the U-Net --------------------------
def sinusoidal_embedding(x, dim: int):
    """(b, 1, 1, 1) noise variances -> (b, 1, 1, dim): sines and cosines at frequencies 1..1000 (log-spaced),
    as keras-io: the network can tell 1e-3 from 2e-3 and 0.5 from 0.6 alike."""
    frequencies = np.exp(np.linspace(math.log(1.0), math.log(1000.0), dim // 2)).astype("float32")
    angular = ops.convert_to_tensor(2.0 * math.pi * frequencies)
    return ops.concatenate([ops.sin(angular * x), ops.cos(angular * x)], axis=3)


def residual_block(x, width: int, embedding=None):
    """The book's block: BN, 3x3 conv, swish, 3x3 conv, plus the input (1x1-projected where the width
    changes). With `embedding` (b, 1, 1, d), a dense projection of it is added after the first conv, as in
    the DDPM U-Net, so every block hears the noise level and the label, not only the input layer."""
    residual = x if x.shape[-1] == width else layers.Conv2D(width, 1)(x)  # match the channels of the sum
    x = layers.BatchNormalization(center=False, scale=False)(x)
    x = layers.Conv2D(width, 3, padding="same")(x)
    if embedding is not None:
        x = layers.Add()([x, layers.Dense(width)(embedding)])
    x = layers.Activation("swish")(x)
    x = layers.Conv2D(width, 3, padding="same")(x)
    return layers.Add()([x, residual])


def build_network(image_shape, cfg, num_classes: int) -> keras.Model:
    """The noise predictor: (noisy images, noise variances (b, 1, 1, 1), labels (b,) in 0..num_classes, the
    last one null) -> predicted noise."""
    height, width, channels = image_shape
    images = keras.Input(image_shape, name="noisy_images")
    variances = keras.Input((1, 1, 1), name="noise_variances")
    labels = keras.Input((), dtype="int32", name="labels")
    e = layers.Lambda(lambda v: sinusoidal_embedding(v, cfg.embedding_dim), name="noise_embedding")(variances)
    # Unit-variance label codes, as loud as the sines beside them: with Keras's default (uniform +-0.05) the
    # codes were drowned by the noise embedding and hardly moved in training (conditional accuracy at chance,
    # 0.08, whatever the guidance scale): the noise loss rewards knowing the class only at high noise levels.
    c = layers.Embedding(num_classes + 1, cfg.embedding_dim, embeddings_initializer=keras.initializers.RandomNormal(
        stddev=1.0), name="label_embedding")(labels)
    e = layers.Add()([e, layers.Reshape((1, 1, cfg.embedding_dim))(c)])
    block_e = e if cfg.block_conditioning else None
    e = layers.UpSampling2D((height, width), interpolation="nearest")(e)  # the same vector at every pixel
    x = layers.Concatenate()([layers.Conv2D(cfg.widths[0], 1)(images), e])
    skips = []
    for w in cfg.widths[:-1]:
        for _ in range(cfg.block_depth):
            x = residual_block(x, w, block_e)
            skips.append(x)
        x = layers.AveragePooling2D(2)(x)
    for _ in range(cfg.block_depth):
        x = residual_block(x, cfg.widths[-1], block_e)
    for w in reversed(cfg.widths[:-1]):
        x = layers.UpSampling2D(2, interpolation="bilinear")(x)
        for _ in range(cfg.block_depth):
            x = residual_block(layers.Concatenate()([x, skips.pop()]), w, block_e)
    noise = layers.Conv2D(channels, 1, kernel_initializer="zeros")(x)  # starts predicting "no noise"
    return keras.Model([images, variances, labels], noise, name="unet")


def forward_flops(model) -> float:
    """FLOPs of one forward pass of the U-Net for one image: 2 x multiply-adds of its Conv2D and Dense layers
    (2 H_out W_out k_h k_w C_in C_out / groups per conv, 2 C_in C_out per dense position), the rest ignored."""
    network = getattr(model, "network", model)
    total = 0.0
    for layer in network.layers:
        if isinstance(layer, layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            k_h, k_w = layer.kernel_size
            c_in = layer.input.shape[-1]
            total += 2.0 * h * w * k_h * k_w * c_in * c_out / layer.groups
        elif isinstance(layer, layers.Dense):
            positions = int(np.prod(layer.output.shape[1:-1])) if len(layer.output.shape) > 2 else 1
            total += 2.0 * positions * layer.input.shape[-1] * layer.units
    return total


# ------------------------------------------------------------------ the diffusion model ----------------
class DiffusionModel(keras.Model):
    """The noise predictor `network`, its running average `ema_network` (which samples) and the pixel
    statistics images are normalised with; every one of them a tracked variable (saved, restored on resume)."""

    def __init__(self, network, ema_network, cfg, num_classes: int, mean, std, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.network, self.ema_network = network, ema_network
        self.num_classes, self.null_label = num_classes, num_classes
        self.ema, self.label_dropout, self.loss_kind = cfg.ema, cfg.label_dropout, cfg.loss
        self.min_signal_rate, self.max_signal_rate = cfg.min_signal_rate, cfg.max_signal_rate
        self.sample_steps, self.guidance_scales = cfg.sample_steps, list(cfg.guidance_scales)
        self.guidance_eta = cfg.guidance_eta
        self.sweep_steps, self.sweep_etas = list(cfg.sweep_steps), list(cfg.sweep_etas)
        self.pixel_mean = self.add_weight(shape=(), initializer=keras.initializers.Constant(mean),
                                          trainable=False, name="pixel_mean")
        self.pixel_std = self.add_weight(shape=(), initializer=keras.initializers.Constant(std),
                                         trainable=False, name="pixel_std")
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def normalise(self, images):
        return (images - self.pixel_mean) / self.pixel_std

    def denormalise(self, x):
        return ops.clip(x * self.pixel_std + self.pixel_mean, 0.0, 1.0)

    def _noise_loss(self, images, labels, noises, times, training: bool):
        x = self.normalise(images)
        noise_rates, signal_rates = diffusion_schedule(times, self.min_signal_rate, self.max_signal_rate)
        noisy = signal_rates * x + noise_rates * noises
        predicted = self.network([noisy, noise_rates ** 2, labels], training=training)
        error = predicted - noises
        return ops.mean(ops.abs(error)) if self.loss_kind == "mae" else ops.mean(ops.square(error))

    def train_step(self, data):
        import tensorflow as tf

        images, labels = data[0], ops.cast(data[1], "int32")
        batch = ops.shape(images)[0]
        noises = keras.random.normal(ops.shape(images), seed=self.seed_generator)
        times = keras.random.uniform((batch, 1, 1, 1), seed=self.seed_generator)
        dropped = keras.random.uniform((batch,), seed=self.seed_generator) < self.label_dropout
        labels = ops.where(dropped, self.null_label, labels)  # classifier-free guidance's unconditional share
        with tf.GradientTape() as tape:
            loss = self._noise_loss(images, labels, noises, times, training=True)
        grads = tape.gradient(loss, self.network.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.network.trainable_weights))
        for average, current in zip(self.ema_network.weights, self.network.weights):  # BN statistics too
            average.assign(self.ema * average + (1.0 - self.ema) * current)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data):
        """The EMA network's noise loss on fixed noise and times (the same every epoch, so epochs compare),
        with the true labels dropped at the same rate as in training."""
        images, labels = data[0], ops.cast(data[1], "int32")
        batch = ops.shape(images)[0]
        noises = keras.random.normal(ops.shape(images), seed=1234)
        times = keras.random.uniform((batch, 1, 1, 1), seed=1235)
        labels = ops.where(keras.random.uniform((batch,), seed=1236) < self.label_dropout, self.null_label, labels)
        x = self.normalise(images)
        noise_rates, signal_rates = diffusion_schedule(times, self.min_signal_rate, self.max_signal_rate)
        predicted = self.ema_network([signal_rates * x + noise_rates * noises, noise_rates ** 2, labels],
                                     training=False)
        error = predicted - noises
        loss = ops.mean(ops.abs(error)) if self.loss_kind == "mae" else ops.mean(ops.square(error))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}


def build(cfg, data: dict, seed: int) -> DiffusionModel:
    image_shape = tuple(data["train_x"].shape[1:])
    if any(s % 2 ** (len(cfg.widths) - 1) for s in image_shape[:2]):
        raise ValueError(f"widths: {len(cfg.widths) - 1} poolings do not divide images of {image_shape}")
    num_classes = int(data["train_y"].max()) + 1
    if cfg.normalisation == "standardise":
        mean, std = float(data["train_x"].mean()), float(data["train_x"].std())
    else:
        mean, std = 0.5, 0.5  # [0, 1] -> [-1, 1]
    network, ema_network = (build_network(image_shape, cfg, num_classes) for _ in range(2))
    ema_network.set_weights(network.get_weights())
    model = DiffusionModel(network, ema_network, cfg, num_classes, mean, std, seed=seed)
    model.compile(optimizer=keras.optimizers.AdamW(cfg.learning_rate, weight_decay=cfg.weight_decay))
    model.optimizer.build(network.trainable_variables)  # every variable exists now: checkpoints restore
    model.built = True
    return model


def train_arrays(data: dict, cfg=None):
    """(x, y, validation_data): images and labels; the validation noise loss on the validation split."""
    return data["train_x"], data["train_y"].astype(np.int32), (data["val_x"], data["val_y"].astype(np.int32))


# ------------------------------------------------------------------ the sampler ------------------------
def _predictor(model: DiffusionModel):
    """A compiled call of the EMA network (one trace per batch shape), cached on the model."""
    import tensorflow as tf

    if getattr(model, "_ema_call", None) is None:
        network = model.ema_network
        model._ema_call = tf.function(lambda x, v, y: network([x, v, y], training=False), reduce_retracing=True)
    return model._ema_call


def guided_noise(model: DiffusionModel, x, noise_rate: float, labels, guidance: float) -> np.ndarray:
    """e(x, null) + w (e(x, y) - e(x, null)) at one noise rate, for a batch; one network call either way."""
    call, n = _predictor(model), len(x)
    null = np.full(n, model.null_label, np.int32)
    if guidance == 0.0 or labels is None:
        batch_x, batch_y = x, null
    elif guidance == 1.0:
        batch_x, batch_y = x, labels
    else:
        batch_x, batch_y = np.concatenate([x, x]), np.concatenate([labels, null])
    variances = np.full((len(batch_x), 1, 1, 1), noise_rate ** 2, np.float32)
    eps = np.asarray(call(batch_x, variances, batch_y.astype(np.int32)))
    if len(eps) == n:
        return eps
    conditional, unconditional = eps[:n], eps[n:]
    return unconditional + guidance * (conditional - unconditional)


def ddim(model: DiffusionModel, noise: np.ndarray, steps: int, eta: float = 0.0, labels=None,
         guidance: float = 0.0, seed: int = 0, trajectory: bool = False):
    """Images in [0, 1] from initial noise (b, H, W, C) by `steps` DDIM steps: a pure function of its
    arguments (the eta > 0 noise comes from `seed`). labels: requested classes (b,), used when guidance > 0.
    trajectory: also return the predicted clean images after each step, (steps, b, H, W, C)."""
    if steps < 1 or not 0.0 <= eta <= 1.0:
        raise ValueError(f"steps must be >= 1 and eta in [0, 1], got steps={steps}, eta={eta}")
    rng = np.random.default_rng(seed)
    rates = lambda t: [float(r) for r in diffusion_schedule(t, model.min_signal_rate, model.max_signal_rate)]
    x = np.asarray(noise, np.float32)
    labels = None if labels is None else np.asarray(labels, np.int32)
    history = []
    for k in range(steps):
        t, t_next = 1.0 - k / steps, 1.0 - (k + 1) / steps
        n, s = rates(t)
        eps = np.concatenate([guided_noise(model, x[i:i + CHUNK], n, None if labels is None else labels[i:i + CHUNK],
                                           guidance) for i in range(0, len(x), CHUNK)])
        x0 = (x - n * eps) / s
        if trajectory:
            history.append(x0)
        if k == steps - 1:
            break
        n_next, s_next = rates(t_next)
        sigma = eta * (n_next / n) * math.sqrt(max(0.0, 1.0 - (s / s_next) ** 2))
        x = s_next * x0 + math.sqrt(max(0.0, n_next ** 2 - sigma ** 2)) * eps
        if sigma > 0:
            x = x + sigma * rng.standard_normal(x.shape).astype(np.float32)
    to_images = lambda z: np.asarray(model.denormalise(z), np.float32)
    return (to_images(x0), np.stack([to_images(h) for h in history])) if trajectory else to_images(x0)


def initial_noise(model: DiffusionModel, n: int, seed: int) -> np.ndarray:
    shape = tuple(model.network.inputs[0].shape[1:])
    return np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float32)


def balanced_labels(model: DiffusionModel, n: int) -> np.ndarray:
    return (np.arange(n) % model.num_classes).astype(np.int32)


def sample(model: DiffusionModel, n: int, seed: int, steps: int | None = None) -> np.ndarray:
    """n unconditional images (null label), deterministic DDIM (eta 0) at the configured `sample_steps`."""
    return ddim(model, initial_noise(model, n, seed), steps or model.sample_steps, eta=0.0, seed=seed)


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation between two noise images at the fractions t (Gaussian noise lives near a sphere)."""
    a_flat, b_flat = a.ravel(), b.ravel()
    omega = math.acos(float(np.clip(a_flat @ b_flat / (np.linalg.norm(a_flat) * np.linalg.norm(b_flat)), -1, 1)))
    t = np.asarray(t, np.float32)[:, None]
    mixed = (np.sin((1 - t) * omega) * a_flat + np.sin(t * omega) * b_flat) / math.sin(omega)
    return mixed.reshape((len(t), *a.shape)).astype(np.float32)


GRID_COLUMNS = 6  # images per class in the report's grid per guidance scale


def sample_outputs(model: DiffusionModel, data: dict, n: int, seed: int) -> dict[str, np.ndarray]:
    """The samples, and for the report: interpolations (4 pairs of noise images, 8 slerp points each, eta 0),
    a class grid per guidance scale (classes x GRID_COLUMNS, the same noise in every grid, eta `guidance_eta`),
    a strip of one sample's predicted clean image after each step, and 8 images per sweep step count (eta 0
    and eta 1)."""
    steps = model.sample_steps
    out = {"samples": sample(model, n, seed)}
    pairs = initial_noise(model, 8, seed + 1)
    walks = np.concatenate([slerp(pairs[2 * i], pairs[2 * i + 1], np.linspace(0, 1, 8)) for i in range(4)])
    out["interpolations"] = ddim(model, walks, steps, eta=0.0)
    k = model.num_classes
    noise = np.tile(initial_noise(model, GRID_COLUMNS, seed + 2), (k, 1, 1, 1))
    labels = np.repeat(np.arange(k), GRID_COLUMNS).astype(np.int32)
    out["guidance_scales"] = np.asarray(model.guidance_scales, np.float32)
    out["guidance_grids"] = np.stack([ddim(model, noise, steps, eta=model.guidance_eta, labels=labels, guidance=w,
                                           seed=seed) for w in model.guidance_scales])
    _, out["trajectory"] = ddim(model, initial_noise(model, 1, seed + 3), steps, trajectory=True)
    strip = initial_noise(model, 8, seed + 4)
    out["sweep_steps"] = np.asarray(model.sweep_steps, np.int32)
    out["sweep_etas"] = np.asarray(model.sweep_etas, np.float32)
    out["sweep_grids"] = np.stack([np.stack([ddim(model, strip, s, eta=eta, seed=seed) for s in model.sweep_steps])
                                   for eta in model.sweep_etas])  # (etas, steps, 8, H, W, C)
    return out


# ------------------------------------------------------------------ evaluation -------------------------
def extra_metrics(model: DiffusionModel, data: dict, cfg, seed: int, ruler, outputs: dict, evaluation) -> dict:
    """The DDIM paper's trade-off and the guidance trade-off, at `sweep_samples` images each (the baseline's
    FID at the same count beside them):

    * sections["steps"]: per eta and step count, FID (bootstrap std) and KID (std over subsets) of
      unconditional samples, all from the same initial noise;
    * sections["guidance"]: per scale w, FID and the conditional accuracy (the ruler's label = the requested
      one) of samples asked for balanced labels 0..k-1, at `sample_steps` steps, eta `guidance_eta`;
    * figures: the best FID over the step sweep, and the conditional accuracy and FID at the scale with the
      highest accuracy whose FID stays within half the baseline's (else the most accurate one).

    Seconds per sample go to meta (they are wall time, not figures)."""
    from gdl.metrics import distance_figures

    m = cfg.sweep_samples
    test = ruler.features(data["test_x"])
    subset = min(evaluation.kid_subset_size, m)

    def measure(images):  # scored as stages/evaluate.py scores the samples, at the sweep's count
        return distance_figures(ruler.features(images), test, evaluation, seed, subset_size=subset)

    base = measure(outputs["baseline"][:m])
    noise = initial_noise(model, m, seed + 10)
    ddim(model, noise, 1)  # trace the network for this batch first: the timings below are sampling only
    steps_section, seconds, grid = {}, {}, []
    unconditional_default = None
    for eta in cfg.sweep_etas:
        for s in cfg.sweep_steps:
            start = time.perf_counter()
            images = ddim(model, noise, s, eta=eta, seed=seed)
            name = f"eta{eta:g}_steps{s}"
            seconds[name] = (time.perf_counter() - start) / m
            figures = measure(images)
            steps_section.update({f"{name}_{k}": v for k, v in figures.items()})
            grid.append({"eta": eta, "steps": s, "fid": figures["fid"], "fid_std": figures["fid_std"],
                         "kid": figures["kid"], "kid_std": figures["kid_std"], "seconds_per_sample": seconds[name]})
            if eta == cfg.guidance_eta and s == cfg.sample_steps:
                unconditional_default = (images, figures)
    steps_section.update({f"baseline_{k}": v for k, v in base.items()})

    labels = balanced_labels(model, m)
    predicted_baseline = ruler.predict_labels(outputs["baseline"][:m])
    guidance_section, scales = {}, []
    for w in cfg.guidance_scales:
        if w == 0.0 and unconditional_default is not None:  # the null label ignores the labels: reuse
            images, figures = unconditional_default
        else:
            images = ddim(model, noise, cfg.sample_steps, eta=cfg.guidance_eta, labels=labels, guidance=w, seed=seed)
            figures = measure(images)
        accuracy = float(np.mean(ruler.predict_labels(images) == labels))
        name = f"scale{w:g}"
        guidance_section.update({f"{name}_fid": figures["fid"], f"{name}_fid_std": figures["fid_std"],
                                 f"{name}_conditional_accuracy": accuracy})
        scales.append({"scale": w, "fid": figures["fid"], "fid_std": figures["fid_std"], "conditional_accuracy": accuracy})
    guidance_section.update({"baseline_fid": base["fid"], "baseline_fid_std": base["fid_std"],
                             "baseline_conditional_accuracy": float(np.mean(predicted_baseline == labels))})

    best = min(grid, key=lambda g: g["fid"])
    fair = [g for g in scales if g["fid"] <= base["fid"] / 2] or scales
    chosen = max(fair, key=lambda g: g["conditional_accuracy"])
    figures = {"best_fid": best["fid"], "best_fid_std": best["fid_std"],
               "guided_conditional_accuracy": chosen["conditional_accuracy"],
               "guided_fid": chosen["fid"], "guided_fid_std": chosen["fid_std"]}
    baseline = {"best_fid": base["fid"], "best_fid_std": base["fid_std"], "guided_fid": base["fid"],
                "guided_fid_std": base["fid_std"],
                "guided_conditional_accuracy": guidance_section["baseline_conditional_accuracy"]}
    return {
        "figures": figures,
        "baseline": baseline,
        "sections": {"steps": steps_section, "guidance": guidance_section},
        "descriptions": {
            "best_fid": f"the lowest FID over the DDIM sweep (eta x steps), {m} samples vs the test split; the "
                        f"baseline's at the same count (lower is better)",
            "guided_conditional_accuracy": "share of guided samples the dataset's classifier sees with the label "
                                           "they were asked for, at the guidance scale in meta (higher is better)",
            "guided_fid": f"FID of the guided samples at that scale, {m} samples (lower is better)",
        },
        "meta": {"sweep": grid, "guidance": scales, "guided_scale": chosen["scale"],
                 "best_sweep": {"eta": best["eta"], "steps": best["steps"]}, "sweep_samples": m,
                 "steps_seconds_per_sample": seconds, "sample_steps": cfg.sample_steps,
                 "guidance_eta": cfg.guidance_eta,
                 "schedule": {"min_signal_rate": cfg.min_signal_rate, "max_signal_rate": cfg.max_signal_rate},
                 "forward_flops": forward_flops(model)},
    }
