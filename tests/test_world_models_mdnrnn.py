"""World Models' M (gdl/world_models/mdnrnn.py): the likelihood, the windows, learning, and the dream step.

Tiny sizes throughout (latent 4, LSTM 16 units, 3 mixtures): the whole file runs in well under a minute on
2 cores, most of it XLA compiling the single step once per batch size.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from gdl.world_models.mdnrnn import (
    MDNRNN, baseline_fit, baseline_nll, build_mdnrnn, fit_arrays, initial_state, load_model, make_sequences, mdn_loss,
    save_model, step, time_batched_vs_loop,
)

LATENT, ACTIONS, UNITS, MIXTURES = 4, 3, 16, 3


@pytest.fixture(scope="module")
def model() -> MDNRNN:
    return build_mdnrnn(LATENT, ACTIONS, UNITS, MIXTURES, seed=0)


def random_inputs(rng, batch, steps):
    z = rng.standard_normal((batch, steps, LATENT)).astype(np.float32)
    return z, rng.uniform(-1, 1, (batch, steps, ACTIONS)).astype(np.float32)


def noise(rng, batch):
    return rng.random((batch, LATENT), dtype=np.float32), rng.standard_normal((batch, LATENT), dtype=np.float32)


def numpy_sample(logits, means, log_stds, temperature, u, eps):
    """The documented sampling rule, in numpy: the component by inverse CDF of softmax(logits / tau) at u,
    then its mean + its std * sqrt(tau) * eps. logits etc. (B, L, K); u, eps (B, L)."""
    scaled = logits / max(temperature, 1e-8)
    pi = np.exp(scaled - scaled.max(-1, keepdims=True))
    pi /= pi.sum(-1, keepdims=True)
    k = np.minimum((np.cumsum(pi, -1) <= u[..., None]).sum(-1), logits.shape[-1] - 1)[..., None]
    mean, log_std = np.take_along_axis(means, k, -1)[..., 0], np.take_along_axis(log_stds, k, -1)[..., 0]
    return mean + np.exp(log_std) * math.sqrt(temperature) * eps


# ---------------------------------------------------------------- shapes and the likelihood ---------
def test_shapes_dtypes_and_seeded_weights(model):
    z, a = random_inputs(np.random.default_rng(0), 5, 7)
    out = model((z, a))
    for key in ("logits", "means", "log_stds"):
        assert tuple(out[key].shape) == (5, 7, LATENT, MIXTURES) and out[key].dtype == "float32", key
    assert tuple(out["reward"].shape) == tuple(out["done_logit"].shape) == (5, 7)
    assert tuple(out["h"].shape) == (5, 7, UNITS) and [tuple(s.shape) for s in out["state"]] == [(5, UNITS)] * 2

    h0, c0 = initial_state(model, 5)
    assert h0.shape == c0.shape == (5, UNITS) and not h0.any() and not c0.any()
    z_next, reward, done_prob, (h, c), h_new = step(model, z[:, 0], a[:, 0], (h0, c0), 1.0, np.random.default_rng(0))
    assert z_next.shape == (5, LATENT) and reward.shape == done_prob.shape == (5,)
    assert h.shape == c.shape == (5, UNITS) and h_new is h
    assert all(x.dtype == np.float32 for x in (z_next, reward, done_prob, h, c))
    assert np.all((0 < done_prob) & (done_prob < 1))

    same = build_mdnrnn(LATENT, ACTIONS, UNITS, MIXTURES, seed=0)
    other = build_mdnrnn(LATENT, ACTIONS, UNITS, MIXTURES, seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(model.get_weights(), same.get_weights()))
    assert not np.array_equal(model.get_weights()[0], other.get_weights()[0])


def test_mdn_loss_is_the_mixture_density_per_dimension():
    # By hand: one component N(0, 1) at z = 0 is 0.5 log(2 pi) nats; two equal copies change nothing.
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    z = np.zeros((1, 1), np.float32)
    for k in (1, 2):
        zeros = np.zeros((1, 1, k), np.float32)
        assert float(mdn_loss(z, zeros, zeros, zeros)[0]) == pytest.approx(half_log_2pi, abs=1e-6)

    # A general case against the density written out in numpy: (B, T, L, K) = (2, 3, 4, 3).
    rng = np.random.default_rng(1)
    z_next = rng.standard_normal((2, 3, 4)).astype(np.float32)
    logits, means = rng.standard_normal((2, 2, 3, 4, 3)).astype(np.float32)
    log_stds = rng.uniform(-1, 0.5, (2, 3, 4, 3)).astype(np.float32)
    pi = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    std = np.exp(log_stds.astype(np.float64))
    density = (pi * np.exp(-0.5 * ((z_next[..., None] - means) / std) ** 2) / (std * math.sqrt(2 * math.pi))).sum(-1)
    nll = -np.log(density)  # (B, T, L)
    np.testing.assert_allclose(mdn_loss(z_next, logits, means, log_stds), nll.mean((1, 2)), rtol=1e-5)

    mask = np.array([[1, 1, 0], [1, 0, 0]], np.float32)
    expected = [nll[0, :2].mean(), nll[1, :1].mean()]
    np.testing.assert_allclose(mdn_loss(z_next, logits, means, log_stds, mask), expected, rtol=1e-5)


def test_baseline_is_the_gaussian_random_walk_fitted_per_dimension():
    rng = np.random.default_rng(2)
    sigma = np.array([0.1, 0.5, 1.0, 2.0])
    z = rng.standard_normal((20000, 4))
    z_next = z + sigma * rng.standard_normal((20000, 4))
    np.testing.assert_allclose(baseline_fit(z, z_next), sigma ** 2, rtol=0.05)
    expected = np.mean(0.5 * np.log(2 * np.pi * np.e * sigma ** 2))  # the entropy of N(0, sigma^2), per dim
    assert baseline_nll(z, z_next) == pytest.approx(expected, abs=0.02)
    # Masked pairs do not count, however wild.
    wild = np.concatenate([z_next, z_next + 1e3])
    mask = np.r_[np.ones(20000), np.zeros(20000)]
    assert baseline_nll(np.concatenate([z, z]), wild, mask=mask) == pytest.approx(baseline_nll(z, z_next))


# ---------------------------------------------------------------- the windows -----------------------
def test_make_sequences_stays_inside_episodes_and_masks_padding():
    lengths = np.array([5, 12, 3, 8])
    n, seq_len = lengths.sum(), 4
    episode = np.repeat(np.arange(4), lengths)
    # z reads back (step, episode)
    mu = np.stack([np.arange(n), episode, np.zeros(n), np.zeros(n)], 1).astype(np.float32)
    logvar = np.full((n, 4), -60.0, np.float32)  # std 1e-13: z is mu
    actions = np.stack([np.arange(n)] * 3, 1).astype(np.float32) + 1
    rewards = np.arange(n, dtype=np.float32) + 1
    dones = np.zeros(n, bool)
    dones[np.cumsum(lengths) - 1] = True
    w = make_sequences(mu, logvar, actions, rewards, dones, lengths, seq_len, np.random.default_rng(0))

    windows = int(np.sum(-(-lengths // seq_len)))  # 2 + 3 + 1 + 2
    assert all(v.shape[:2] == (windows, seq_len) and v.dtype == np.float32 for v in w.values())
    seen = []
    for i in range(windows):
        valid = int(w["mask"][i].sum())
        assert valid >= 1 and np.all(w["mask"][i, :valid] == 1) and np.all(w["mask"][i, valid:] == 0)
        index = np.rint(w["z"][i, :valid, 0]).astype(int)
        assert np.all(np.diff(index) == 1), "steps of a window are consecutive"
        assert len(set(episode[index])) == 1, "a window never crosses an episode boundary"
        last = np.cumsum(lengths)[episode[index[0]]] - 1
        np.testing.assert_array_equal(w["next_mask"][i, :valid], (index < last).astype(np.float32))
        has_next = w["next_mask"][i] == 1
        np.testing.assert_allclose(w["z_next"][i, has_next, 0], index[has_next[:valid]] + 1)
        np.testing.assert_array_equal(w["actions"][i, :valid], actions[index])
        np.testing.assert_array_equal(w["rewards"][i, :valid], rewards[index])
        np.testing.assert_array_equal(w["dones"][i, :valid], dones[index])
        for key in ("z", "actions", "rewards", "dones", "next_mask"):
            assert not w[key][i, valid:].any(), f"padding of {key} is zero"
        assert not w["z_next"][i, ~has_next].any()
        seen.extend(index)
    assert sorted(seen) == list(range(n)), "every step is in exactly one window"

    with pytest.raises(ValueError, match="summing"):
        make_sequences(mu, logvar, actions, rewards, dones, [5, 12], seq_len, np.random.default_rng(0))


def test_make_sequences_resamples_z_from_the_encoder_distribution():
    n = 4000
    mu, logvar = np.full((n, 4), 3.0, np.float32), np.full((n, 4), math.log(0.25), np.float32)  # N(3, 0.5^2)
    args = (mu, logvar, np.zeros((n, 3)), np.zeros(n), np.zeros(n), [1000] * 4, 50)
    w = make_sequences(*args, np.random.default_rng(5))
    z = w["z"][w["mask"] == 1]
    assert abs(z.mean() - 3.0) < 0.02 and abs(z.std() - 0.5) < 0.02
    np.testing.assert_array_equal(w["z_next"][:, :-1], w["z"][:, 1:])  # one draw per step, shared
    again, other = make_sequences(*args, np.random.default_rng(5)), make_sequences(*args, np.random.default_rng(6))
    assert np.array_equal(again["z"], w["z"]) and not np.array_equal(other["z"], w["z"])


# ---------------------------------------------------------------- learning --------------------------
def drifting_episodes(rng, episodes, length):
    """z_t+1 = z_t + 0.1 * a_t[0] (a_t[0] = +-1), observed through an encoder with std 0.01."""
    a = rng.uniform(-1, 1, (episodes, length, ACTIONS)).astype(np.float32)
    a[..., 0] = rng.choice([-1.0, 1.0], (episodes, length))
    mu = np.zeros((episodes, length, LATENT), np.float32)
    mu[:, 0] = rng.uniform(-0.5, 0.5, (episodes, LATENT))
    for t in range(length - 1):
        mu[:, t + 1] = mu[:, t] + 0.1 * a[:, t, :1]
    logvar = np.full_like(mu, 2 * math.log(0.01))
    steps = episodes * length
    return make_sequences(mu.reshape(steps, LATENT), logvar.reshape(steps, LATENT), a.reshape(steps, ACTIONS),
                          np.zeros(steps), np.zeros(steps), [length] * episodes, 16, rng)


def test_a_few_hundred_steps_beat_the_random_walk_baseline_on_held_out_episodes():
    rng = np.random.default_rng(3)
    train, test = drifting_episodes(rng, 32, 33), drifting_episodes(rng, 16, 33)
    sigma2 = baseline_fit(train["z"], train["z_next"], train["next_mask"])
    baseline = baseline_nll(test["z"], test["z_next"], sigma2, test["next_mask"])  # about -0.9 nats/dim

    m = build_mdnrnn(LATENT, ACTIONS, UNITS, MIXTURES, seed=0, learning_rate=1e-2)
    before = m.evaluate(*fit_arrays(test), verbose=0, return_dict=True)
    x, y = fit_arrays(train)
    for _ in range(300):
        m.train_on_batch(x, y)
    after = m.evaluate(*fit_arrays(test), verbose=0, return_dict=True)
    assert set(after) == {"loss", "z_nll", "reward_mse", "done_bce"}
    assert after["loss"] < before["loss"] - 1.0
    assert after["z_nll"] < baseline - 0.5, (after, baseline)  # it learnt the action's effect (about -2 vs -0.9)


def test_padded_steps_do_not_count(model):
    rng = np.random.default_rng(4)
    w = drifting_episodes(rng, 3, 21)  # 21 = 16 + 5: each second window is mostly padding
    x, y = fit_arrays(w)
    junk = [v.copy() for v in y]
    junk[0][w["next_mask"] == 0] = 1e3
    junk[1][w["mask"] == 0] = 1e3
    junk[2][w["mask"] == 0] = 1.0
    clean, dirty = (model.evaluate(x, tuple(t), verbose=0, return_dict=True) for t in (y, junk))
    assert clean == pytest.approx(dirty, rel=1e-6)


# ---------------------------------------------------------------- the dream step --------------------
def test_stepping_the_cell_reproduces_the_sequence_model(model):
    rng = np.random.default_rng(5)
    z, a = random_inputs(rng, 3, 7)
    h0, c0 = (0.5 * rng.standard_normal((3, UNITS)).astype(np.float32) for _ in range(2))
    for start in (initial_state(model, 3), (h0, c0)):
        out = model((z, a), initial_state=list(start))
        out = {k: (v.numpy() if hasattr(v, "numpy") else v) for k, v in out.items()}
        state = start
        for t in range(7):
            u, eps = noise(rng, 3)
            z_next, reward, done_prob, state, h = step(model, z[:, t], a[:, t], state, 1.0, noise=(u, eps))
            np.testing.assert_allclose(h, out["h"][:, t], atol=1e-5)
            np.testing.assert_allclose(reward, out["reward"][:, t], atol=1e-5)
            np.testing.assert_allclose(done_prob, 1 / (1 + np.exp(-out["done_logit"][:, t])), atol=1e-5)
            expected = numpy_sample(out["logits"][:, t], out["means"][:, t], out["log_stds"][:, t], 1.0, u, eps)
            np.testing.assert_allclose(z_next, expected, atol=1e-4)
        np.testing.assert_allclose(state[0], out["state"][0].numpy(), atol=1e-5)
        np.testing.assert_allclose(state[1], out["state"][1].numpy(), atol=1e-5)


def test_64_agents_stepped_together_equal_each_agent_stepped_alone(model):
    rng = np.random.default_rng(6)
    agents, steps = 64, 3
    z0, a = random_inputs(rng, agents, steps)
    z0 = z0[:, 0]
    draws = [noise(rng, agents) for _ in range(steps)]

    z, state, together = z0, initial_state(model, agents), []
    for t in range(steps):
        z, reward, done_prob, state, h = step(model, z, a[:, t], state, 1.15, noise=draws[t])
        together.append((z, reward, done_prob, h))
    for i in range(agents):
        zi, si = z0[i:i + 1], initial_state(model, 1)
        for t in range(steps):
            u, eps = draws[t]
            zi, reward, done_prob, si, h = step(model, zi, a[i:i + 1, t], si, 1.15, noise=(u[i:i + 1], eps[i:i + 1]))
            for alone, batched in zip((zi, reward, done_prob, h), together[t]):
                np.testing.assert_allclose(alone, batched[i:i + 1], atol=1e-5)


def test_a_small_temperature_concentrates_on_the_most_likely_components_mean(model):
    rng = np.random.default_rng(7)
    agents = 2000  # one agent, copied: the spread of its next latent
    z = np.repeat(rng.standard_normal((1, LATENT)).astype(np.float32), agents, 0)
    a = np.repeat(rng.uniform(-1, 1, (1, ACTIONS)).astype(np.float32), agents, 0)
    out = model((z[:1, None], a[:1, None]))
    logits, means = out["logits"].numpy()[0, 0], out["means"].numpy()[0, 0]  # (L, K)
    mode = means[np.arange(LATENT), logits.argmax(-1)]

    samples = {tau: step(model, z, a, initial_state(model, agents), tau, rng)[0] for tau in (1.0, 1e-2, 1e-6, 0.0)}
    assert np.all(samples[0.0] == samples[0.0][0]), "tau = 0: no noise at all"
    np.testing.assert_allclose(samples[0.0][0], mode, atol=1e-5)  # XLA's rounding, not the sequence layer's
    np.testing.assert_allclose(samples[1e-6], np.broadcast_to(mode, (agents, LATENT)), atol=1e-2)
    spread = {tau: float(np.mean(np.abs(s - mode))) for tau, s in samples.items()}
    assert spread[1e-2] < 0.2 * spread[1.0]


def test_a_seed_gives_the_same_dream(model):
    def dream(seed):
        rng = np.random.default_rng(seed)
        z, state, trace = np.zeros((8, LATENT), np.float32), initial_state(model, 8), []
        for _ in range(5):
            z, reward, done_prob, state, _ = step(model, z, np.full((8, ACTIONS), 0.3, np.float32), state, 1.0, rng)
            trace += [z, reward, done_prob]
        return np.concatenate([t.ravel() for t in trace])

    assert dream(1).tobytes() == dream(1).tobytes()
    assert not np.array_equal(dream(1), dream(2))
    with pytest.raises(ValueError, match="rng"):
        step(model, np.zeros((1, LATENT)), np.zeros((1, ACTIONS)), initial_state(model, 1), 1.0)


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # Keras' saving, not ours
def test_a_saved_model_loads_back_and_dreams_the_same(model, tmp_path):
    save_model(model, tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras", compile=False)
    assert (loaded.latent_dim, loaded.units, loaded.mixtures) == (LATENT, UNITS, MIXTURES)
    assert all(np.array_equal(x, y) for x, y in zip(model.get_weights(), loaded.get_weights()))
    z, a = random_inputs(np.random.default_rng(8), 2, 1)
    first, again = (step(m, z[:, 0], a[:, 0], initial_state(m, 2), 1.0, np.random.default_rng(9))
                    for m in (model, loaded))
    np.testing.assert_array_equal(first[0], again[0])


def test_time_batched_vs_loop_returns_both_timings(model):
    batched, loop = time_batched_vs_loop(model, agents=16, steps=3)
    assert 0 < batched < loop  # 3 calls against 48
