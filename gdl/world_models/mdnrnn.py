"""M, the MDN-RNN of World Models (Ha & Schmidhuber 2018): p(z_t+1 | z_t, a_t, h), and dreams inside it.

V (the VAE) turns each frame into a latent z_t (32 numbers); M learns how those latents move when the car
acts; C (the controller) acts on [z_t, h_t], and can be trained entirely inside M's "dream".

* the model: at each step the LSTM (256 units) reads x_t = [z_t, a_t]; its output h_t (its hidden state after
  that step) feeds three heads:

  - a mixture density network (MDN) over z_t+1. As in Ha's code, every latent dimension i has its own
    1-D mixture of K = 5 Gaussians (logits, means and log-stds of shape (latent_dim, K)), so the density
    factorises over dimensions, p(z) = prod_i sum_k pi_ik N(z_i; mu_ik, sigma_ik), and its negative log is
    a sum over dimensions: we report the mean, in nats per latent dimension (`z_nll`);
  - the reward r_t of action a_t (linear, mean squared error) and whether the episode ended after it
    (a logit, binary cross-entropy). Ha's CarRacing M had neither (his Doom M had the done head); they
    cost two dot products and let a dream end and score itself. rewards[t] and dones[t] are about the
    step t -> t+1, as in a rollout shard (gdl/world_models/rollouts.py), so all three heads read h_t.

  The loss of a step is z_nll + reward_weight * reward_mse + done_weight * done_bce; `z_nll` being per
  dimension keeps the three terms on comparable scales (ctallec/world-models divides the summed NLL by
  latent_dim + 2 for the same reason).
* the data: `make_sequences` cuts the encoded episodes (mu, logvar of V's posterior per frame, laid out as
  a rollout shard: episodes concatenated, `episode_lengths` to cut them) into windows of `seq_len` steps
  that never cross an episode boundary: each episode is chunked from its first step, the last chunk padded
  at the end (padding after the real steps cannot change the LSTM's outputs on them). The latent is
  re-sampled, z = mu + exp(logvar / 2) * eps, at every call, as in the paper: M learns the spread that V
  leaves in z, not a noise-free path through its posterior means, and sees fresh draws each epoch. The
  frame after an episode's last action is not kept, so that step has reward and done targets but no
  z_t+1: `next_mask` is 0 there (and on padding), `mask` only on padding. Dropping the step instead would
  leave the done head without a single positive example. `fit_arrays` packs the windows for `fit`:
  x = (z, actions), y = (z_next, rewards, dones, mask, next_mask).
* the ruler: `baseline_fit` / `baseline_nll`, the NLL of "nothing moves": z_t+1 ~ N(z_t, sigma^2), one
  sigma^2 per dimension fitted on the training pairs. An M that does not beat it has learnt no dynamics.
* the dream: `initial_state` and `step` advance any number of agents (population x trials stacked on the
  batch axis) by one step in one compiled TensorFlow program: the LSTM's own cell (`model.lstm.cell`,
  the same weight variables the sequence layer uses, so stepping it T times *is* the sequence model:
  tests/test_world_models_mdnrnn.py checks allclose), the heads, and the sampling. It is built once per
  model (XLA compiles it once per batch size; a dream keeps one). The controller acting at step t reads
  the h returned by step t - 1 (zeros at t = 0), as in the paper's [z_t, h_t]. Temperature tau, as in the
  paper: mixture logits / tau before the softmax, stds * sqrt(tau); tau = 0 gives the most likely
  component's mean.
* the seeds: weights from seeded initialisers (`build_mdnrnn(seed=...)`); windows and dream noise from a
  numpy Generator. Each `step` draws, in this order, u = rng.random((B, latent_dim)) (picks the component
  by inverting the mixture's CDF) and eps = rng.standard_normal((B, latent_dim)) (the Gaussian draw), both
  float32, so a seed gives the same dream, and row b of the draws is agent b's noise. Pass `noise=(u, eps)`
  instead of `rng` to fix them (tests do this to step agents alone and together with the same noise).
* the file: `save_model` / `load_model`: a folder (config.json + model.weights.h5, byte-identical
  for identical weights), or a `.keras` archive (with the optimizer state) for a path ending in .keras.
"""

from __future__ import annotations

import math
import time

import keras
import numpy as np
from keras import initializers, layers, ops

from gdl.world_models import files

LOG_STD_MIN = -7.0  # std 1e-3, well below any encoder's posterior std: a guard against exp overflow, not a prior
HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


# ------------------------------------------------------------------ the likelihood ---------------------
def mdn_log_prob(z_next, logits, means, log_stds):
    """log p(z_next) per latent dimension, in nats: z_next (..., L); logits, means, log_stds (..., L, K)."""
    z = ops.expand_dims(z_next, -1)  # broadcast against the K components
    log_normal = -0.5 * ops.square((z - means) * ops.exp(-log_stds)) - log_stds - HALF_LOG_2PI
    return ops.logsumexp(ops.log_softmax(logits, axis=-1) + log_normal, axis=-1)


def _masked_mean(values, mask, axis=None):
    """Mean of `values` where mask > 0. `where` (not just a product) so that a NaN or inf on a padded step
    cannot leak into the mean; a window with no valid step counts as 0."""
    total = ops.sum(ops.where(mask > 0, values * mask, 0.0), axis=axis)
    return total / ops.maximum(ops.sum(mask, axis=axis), 1.0)


def mdn_loss(z_next, logits, means, log_stds, mask=None):
    """Per example, the NLL in nats per latent dimension: the mean over dimensions and steps, (B,).

    z_next is (B, T, L) (or (B, L): one step each, no mask); mask, if given, (B, T): 0 where a step does
    not count.
    """
    nll = -ops.mean(mdn_log_prob(z_next, logits, means, log_stds), axis=-1)  # (B, T) or (B,)
    if len(nll.shape) == 1:
        return nll
    mask = ops.ones_like(nll) if mask is None else ops.cast(mask, nll.dtype)
    return _masked_mean(nll, mask, axis=tuple(range(1, len(nll.shape))))


def _done_bce(dones, done_logit):
    """Binary cross-entropy from a logit, the stable form: softplus(l) - y * l."""
    return ops.softplus(done_logit) - dones * done_logit


# ------------------------------------------------------------------ the model --------------------------
@keras.saving.register_keras_serializable(package="gdl")
class MDNRNN(keras.Model):
    """LSTM over [z_t, a_t]; from its output h_t: the MDN over z_t+1, the reward and the done logit."""

    def __init__(self, latent_dim=32, action_dim=3, units=256, mixtures=5, seed=0, reward_weight=1.0,
                 done_weight=1.0, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim, self.action_dim, self.units, self.mixtures = latent_dim, action_dim, units, mixtures
        self.seed, self.reward_weight, self.done_weight = seed, reward_weight, done_weight

        def glorot(offset):  # a distinct, fixed seed per weight matrix: same `seed`, same weights
            return initializers.GlorotUniform(seed=seed + offset)

        # Keras' defaults otherwise (tanh / sigmoid, forget-gate bias 1): the cuDNN path on a GPU, and a
        # cell that `step` can call on its own.
        self.lstm = layers.LSTM(units, return_sequences=True, return_state=True, kernel_initializer=glorot(0),
                                recurrent_initializer=initializers.Orthogonal(seed=seed + 1), name="lstm")
        size = latent_dim * mixtures
        self.mdn_logits = layers.Dense(size, kernel_initializer=glorot(2), name="mdn_logits")
        self.mdn_means = layers.Dense(size, kernel_initializer=glorot(3), name="mdn_means")
        self.mdn_log_stds = layers.Dense(size, kernel_initializer=glorot(4), name="mdn_log_stds")
        self.reward_head = layers.Dense(1, kernel_initializer=glorot(5), name="reward")
        self.done_head = layers.Dense(1, kernel_initializer=glorot(6), name="done")
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("loss", "z_nll", "reward_mse", "done_bce")}
        self._dream_step = None  # the compiled single step, made on first use (`_compiled_step`)

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim, "action_dim": self.action_dim,
                "units": self.units, "mixtures": self.mixtures, "seed": self.seed,
                "reward_weight": self.reward_weight, "done_weight": self.done_weight}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def heads(self, h):
        """h (..., units) -> dict: logits, means, log_stds (..., L, K); reward, done_logit (...)."""
        shape = tuple(ops.shape(h)[:-1]) + (self.latent_dim, self.mixtures)
        return {"logits": ops.reshape(self.mdn_logits(h), shape),
                "means": ops.reshape(self.mdn_means(h), shape),
                "log_stds": ops.maximum(ops.reshape(self.mdn_log_stds(h), shape), LOG_STD_MIN),
                "reward": ops.squeeze(self.reward_head(h), -1),
                "done_logit": ops.squeeze(self.done_head(h), -1)}

    def call(self, inputs, initial_state=None, training=False):
        """inputs (z (B, T, L), actions (B, T, A)) -> the heads of every step, h (B, T, units) and the
        final state (h_T, c_T). initial_state: (h, c), zeros when None (as at the start of an episode)."""
        z, actions = inputs
        h_seq, h_last, c_last = self.lstm(ops.concatenate([z, actions], axis=-1), initial_state=initial_state,
                                          training=training)
        return {**self.heads(h_seq), "h": h_seq, "state": (h_last, c_last)}

    # -------------------------------------------------------------- training --------------------------
    def _loss_terms(self, data, training):
        """data = ((z, actions), (z_next, rewards, dones[, mask[, next_mask]])), as `fit_arrays` packs it.

        The masks ride in the targets because `fit` only takes a sample_weight of one number per window;
        a (B, T) sample_weight is still honoured where it gets through (a tf.data dataset, train_on_batch).
        """
        (z, actions), targets, weight = keras.utils.unpack_x_y_sample_weight(data)
        z_next, rewards, dones = (ops.cast(t, "float32") for t in targets[:3])
        mask = ops.cast(targets[3], "float32") if len(targets) > 3 else ops.ones_like(rewards)
        if weight is not None:
            mask = mask * ops.cast(weight, "float32")
        next_mask = mask * ops.cast(targets[4], "float32") if len(targets) > 4 else mask
        out = self((z, actions), training=training)
        log_p = ops.mean(mdn_log_prob(z_next, out["logits"], out["means"], out["log_stds"]), axis=-1)  # (B, T)
        z_nll = _masked_mean(-log_p, next_mask)
        reward_mse = _masked_mean(ops.square(rewards - out["reward"]), mask)
        done_bce = _masked_mean(_done_bce(dones, out["done_logit"]), mask)
        loss = z_nll + self.reward_weight * reward_mse + self.done_weight * done_bce
        # Weighted by how many steps each figure averages, so an epoch's metric is the mean over its steps,
        # not over its batches (a batch of mostly padding counts for less).
        steps, next_steps = ops.sum(mask), ops.sum(next_mask)
        return loss, [(loss, steps), (z_nll, next_steps), (reward_mse, steps), (done_bce, steps)]

    def _track(self, terms):
        for tracker, (value, weight) in zip(self.metrics, terms):
            tracker.update_state(value, sample_weight=weight)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss, terms = self._loss_terms(data, training=True)
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        return self._track(terms)

    def test_step(self, data):
        return self._track(self._loss_terms(data, training=False)[1])

    # -------------------------------------------------------------- one dream step --------------------
    def _compiled_step(self):
        """The single-step program, built once per model: (z, action, h, c, tau, u, eps) -> (z_next,
        reward, done_prob, h, c). Every input has batch dimension None, and tau is a tensor, so no batch
        size or temperature retraces the Python function."""
        if self._dream_step is None:
            import tensorflow as tf

            def batch(*shape):
                return tf.TensorSpec((None, *shape), tf.float32)

            signature = [batch(self.latent_dim), batch(self.action_dim), batch(self.units), batch(self.units),
                         tf.TensorSpec((), tf.float32), batch(self.latent_dim), batch(self.latent_dim)]
            # jit_compile: XLA fuses the cell, heads and sampling into one kernel (about 30% faster per step
            # on a CPU here); it compiles once per batch size, and a dream keeps its batch size.
            self._dream_step = tf.function(self._one_step, input_signature=signature, jit_compile=True)
        return self._dream_step

    def _one_step(self, z, action, h, c, temperature, u, eps):
        # The sequence layer's own cell: the same kernel, recurrent kernel and bias variables, the same
        # gate arithmetic that the LSTM layer loops over on a CPU.
        h_new, (_, c_new) = self.lstm.cell(ops.concatenate([z, action], axis=-1), [h, c])
        out = self.heads(h_new)
        # The temperature of the paper; tau = 0 is allowed (the argmax component, no noise).
        log_pi = ops.log_softmax(out["logits"] / ops.maximum(temperature, 1e-8), axis=-1)  # (B, L, K)
        # Inverse CDF: component k is picked when cdf[k-1] <= u < cdf[k]; the minimum guards against a
        # cdf that rounds to just below 1.
        below = ops.sum(ops.cast(ops.cumsum(ops.exp(log_pi), axis=-1) <= u[..., None], "int32"), axis=-1)
        pick = ops.one_hot(ops.minimum(below, self.mixtures - 1), self.mixtures)
        mean = ops.sum(pick * out["means"], axis=-1)
        std = ops.exp(ops.sum(pick * out["log_stds"], axis=-1)) * ops.sqrt(temperature)
        return mean + std * eps, out["reward"], ops.sigmoid(out["done_logit"]), h_new, c_new

    def initial_state(self, batch):
        """(h, c) of zeros for `batch` agents: the state at the start of an episode."""
        return (np.zeros((batch, self.units), np.float32), np.zeros((batch, self.units), np.float32))


def build_mdnrnn(latent_dim=32, action_dim=3, units=256, mixtures=5, seed=0, learning_rate=1e-3,
                 reward_weight=1.0, done_weight=1.0) -> MDNRNN:
    """An MDNRNN with its weights created (so a checkpoint can be restored into it) and compiled with Adam.

    Gradients clipped to [-1, 1] per element, as in Ha's training code (grad_clip = 1.0).
    """
    model = MDNRNN(latent_dim, action_dim, units, mixtures, seed, reward_weight, done_weight)
    model((np.zeros((1, 1, latent_dim), np.float32), np.zeros((1, 1, action_dim), np.float32)))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipvalue=1.0))
    return model


def save_model(model: MDNRNN, path) -> None:
    """A `.keras` archive (path ending in .keras, with the optimizer) or a folder of config.json and
    model.weights.h5, byte-identical for identical weights (the pipeline's output): see files.py."""
    files.save(model, path)


def load_model(path, compile: bool = True) -> MDNRNN:
    """The model `save_model` wrote (compile=False: for dreaming only, without the optimizer)."""
    def build(model):
        model((np.zeros((1, 1, model.latent_dim), np.float32), np.zeros((1, 1, model.action_dim), np.float32)))
    return files.load(MDNRNN, path, compile, build=build)


# ------------------------------------------------------------------ the data ---------------------------
def make_sequences(mu, logvar, actions, rewards, dones, episode_lengths, seq_len, rng) -> dict[str, np.ndarray]:
    """Training windows of `seq_len` steps, (W, seq_len, ...) float32 each (layout in the module docstring).

    mu, logvar (N, L): V's posterior per frame; actions (N, A), rewards (N,), dones (N,); episodes
    concatenated, cut by episode_lengths (E,). Keys: z, actions, z_next, rewards, dones, mask, next_mask.
    Padded steps are all zeros with mask 0. z is drawn from `rng` (a numpy Generator) with one
    standard_normal((N, L)) call, so step n's draw does not depend on seq_len, and z_next at step t of a
    window is the same draw as z at step t + 1.
    """
    lengths = np.asarray(episode_lengths, np.int64)
    n = len(mu)
    if seq_len < 1 or lengths.sum() != n or np.any(lengths < 1):
        raise ValueError(f"make_sequences: need seq_len >= 1 and positive episode lengths summing to {n} "
                         f"steps, got seq_len {seq_len} and lengths summing to {lengths.sum()}")
    ends = np.cumsum(lengths)
    per_episode = -(-lengths // seq_len)  # ceil: the number of windows of each episode
    episode = np.repeat(np.arange(len(lengths)), per_episode)  # the episode of each window
    rank = np.arange(len(episode)) - np.repeat(np.cumsum(per_episode) - per_episode, per_episode)
    index = ((ends - lengths)[episode] + rank * seq_len)[:, None] + np.arange(seq_len)  # (W, T) step indices
    end = ends[episode][:, None]
    mask, next_mask = index < end, index + 1 < end

    mu, logvar = np.asarray(mu, np.float32), np.asarray(logvar, np.float32)
    z_all = mu + np.exp(0.5 * logvar) * rng.standard_normal(mu.shape, dtype=np.float32)

    def gather(values, idx, valid):
        values = np.asarray(values, np.float32)
        picked = values[np.minimum(idx, n - 1)]  # padded indices point anywhere valid, then are zeroed
        return np.where(valid.reshape(valid.shape + (1,) * (picked.ndim - 2)), picked, 0.0).astype(np.float32)

    return {"z": gather(z_all, index, mask), "actions": gather(actions, index, mask),
            "z_next": gather(z_all, index + 1, next_mask), "rewards": gather(rewards, index, mask),
            "dones": gather(dones, index, mask), "mask": mask.astype(np.float32),
            "next_mask": next_mask.astype(np.float32)}


def fit_arrays(windows: dict[str, np.ndarray]):
    """(x, y) for `fit` / `evaluate` from `make_sequences`' windows; the masks travel in y."""
    return ((windows["z"], windows["actions"]),
            (windows["z_next"], windows["rewards"], windows["dones"], windows["mask"], windows["next_mask"]))


# ------------------------------------------------------------------ the ruler --------------------------
def baseline_fit(z, z_next, mask=None) -> np.ndarray:
    """sigma^2 per dimension (L,) of z_t+1 - z_t on the (training) pairs: the ML fit of N(z_t, sigma^2)."""
    delta = np.asarray(z_next, np.float64) - np.asarray(z, np.float64)
    weight = np.ones(delta.shape[:-1]) if mask is None else np.asarray(mask, np.float64)
    flat, w = delta.reshape(-1, delta.shape[-1]), weight.reshape(-1)
    return (w @ np.square(flat)) / max(w.sum(), 1.0)


def baseline_nll(z, z_next, sigma2=None, mask=None) -> float:
    """Nats per latent dimension of z_t+1 ~ N(z_t, sigma2), averaged over the pairs (where mask > 0).

    sigma2 None: fitted on these very pairs (`baseline_fit`); pass the training fit to score other pairs.
    """
    sigma2 = baseline_fit(z, z_next, mask) if sigma2 is None else np.asarray(sigma2, np.float64)
    sigma2 = np.maximum(sigma2, 1e-12)  # a dimension that never moves
    delta = np.asarray(z_next, np.float64) - np.asarray(z, np.float64)
    nll = (0.5 * np.log(2 * np.pi * sigma2) + np.square(delta) / (2 * sigma2)).mean(-1)
    weight = np.ones(nll.shape) if mask is None else np.asarray(mask, np.float64)
    return float((nll * weight).sum() / max(weight.sum(), 1.0))


# ------------------------------------------------------------------ dreaming ---------------------------
def initial_state(model: MDNRNN, batch: int):
    """(h, c) zeros for `batch` agents (the same as `model.initial_state(batch)`)."""
    return model.initial_state(batch)


def step(model: MDNRNN, z, action, state, temperature=1.0, rng=None, noise=None):
    """One dream step for every agent at once: (z_next (B, L), reward (B,), done_prob (B,), (h, c), h).

    z (B, L) and action (B, A) are this step's latent and action, state the (h, c) before it (from
    `initial_state` or the previous step). The returned h is the new state's h: what the controller
    reads, with z_next, to choose the next action. noise = (u, eps), each (B, L), replaces the draws from
    `rng` (see the module docstring for their order). Outputs are numpy float32.
    """
    if not temperature >= 0:
        raise ValueError(f"step: temperature must be >= 0, got {temperature}")
    z = np.asarray(z, np.float32)
    if noise is None:
        if rng is None:
            raise ValueError("step: pass rng (a numpy Generator) or noise=(u, eps)")
        noise = (rng.random(z.shape, dtype=np.float32), rng.standard_normal(z.shape, dtype=np.float32))
    u, eps = (np.asarray(v, np.float32) for v in noise)
    z_next, reward, done_prob, h, c = model._compiled_step()(
        z, np.asarray(action, np.float32), np.asarray(state[0], np.float32), np.asarray(state[1], np.float32),
        np.float32(temperature), u, eps)
    h = h.numpy()
    return z_next.numpy(), reward.numpy(), done_prob.numpy(), (h, c.numpy()), h


def time_batched_vs_loop(model: MDNRNN, agents: int, steps: int, seed: int = 0) -> tuple[float, float]:
    """Seconds for `steps` dream steps of `agents` agents: (one batched step per time step, a Python loop
    over agents per time step). Both call the same compiled step, warmed up first at both batch sizes
    (XLA compiles once per batch size); actions are random."""
    rng = np.random.default_rng(seed)
    z0 = rng.standard_normal((agents, model.latent_dim)).astype(np.float32)
    actions = rng.uniform(-1.0, 1.0, (steps, agents, model.action_dim)).astype(np.float32)
    for size in (agents, 1):
        step(model, z0[:size], actions[0, :size], model.initial_state(size), 1.0, rng)

    start = time.perf_counter()
    z, state = z0, model.initial_state(agents)
    for t in range(steps):
        z, _, _, state, _ = step(model, z, actions[t], state, 1.0, rng)
    batched = time.perf_counter() - start

    start = time.perf_counter()
    zs, states = [z0[i:i + 1] for i in range(agents)], [model.initial_state(1) for _ in range(agents)]
    for t in range(steps):
        for i in range(agents):
            zs[i], _, _, states[i], _ = step(model, zs[i], actions[t, i:i + 1], states[i], 1.0, rng)
    return batched, time.perf_counter() - start
