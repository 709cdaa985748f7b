"""World Models' controller C and its CMA-ES training: the linear map and its squashing, the batched
population x trials actions, dream returns with a fake MDN-RNN (masking, early stop, one batch per step),
real CarRacing returns (same seed same return, workers = serial, failures named), and a CMA-ES run that is
stopped after generation 2 and resumed to the same history bit for bit.

No trained model is needed: M is a tiny fake with the MDN-RNN's interface, V and M in the real-env policy
are zero features or fakes loaded by import path. Real episodes are 20 recorded steps (plus the 49 zoom
steps skipped at each start); the whole file takes ~15 s on 2 cores.
"""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest

from gdl.world_models import controller as C
from gdl.world_models.controller import (
    POLICY,
    RolloutError,
    WorldModelPolicy,
    batched_actions,
    dream_returns,
    flatten,
    real_returns,
    squash,
    train_cmaes,
    unflatten,
)
from gdl.world_models.rollouts import ACTION_HIGH, ACTION_LOW, make_policy

HAS_BOX2D = all(importlib.util.find_spec(m) is not None for m in ("gymnasium", "Box2D"))
needs_env = pytest.mark.skipif(not HAS_BOX2D, reason="CarRacing needs gymnasium[box2d]")

LATENT, UNITS = 4, 3  # the fake M's sizes: controllers of 3 * 7 + 3 = 24 parameters
THIS = __name__  # importable by name in a spawned worker too


def constant(steer: float, gas: float, brake: float, latent: int = LATENT, units: int = UNITS) -> np.ndarray:
    """A controller that ignores its inputs: W = 0, b = the pre-activations of the wanted actions."""
    u = [np.arctanh(steer), np.arctanh(2 * gas - 1), np.arctanh(brake) if brake > 0 else -1.0]
    return flatten(np.zeros((3, latent + units)), np.array(u))


# ---------------------------------------------------------------- a fake MDN-RNN ---------------------
class FakeMDNRNN:
    """z' = 0.9 z + noise * sqrt(T) * eps; reward = gas + 0.01 sum(z); done (p 0.9) once an agent that
    steers right has taken `done_after` steps; h = tanh of a running sum of actions; c counts steps."""

    def __init__(self, done_after: int = 3, noise: float = 1.0):
        self.done_after, self.noise = done_after, noise
        self.batches: list[int] = []  # the batch size of every step call


def initial_state(batch):  # the module-level names the real-env policy looks up beside its loader
    return np.zeros((batch, UNITS)), np.zeros((batch, UNITS))


def step(model, z, action, state, temperature, rng):
    model.batches.append(len(z))
    h, c = state
    c = c + 1
    h = np.tanh(h + action.sum(axis=1, keepdims=True) * np.array([0.1, -0.2, 0.3]))
    z_next = 0.9 * z + model.noise * np.sqrt(temperature) * rng.standard_normal(z.shape)
    reward = action[:, 1] + 0.01 * z.sum(axis=1)
    done_prob = np.where((action[:, 0] > 0) & (c[:, 0] >= model.done_after), 0.9, 0.1)
    return z_next, reward, done_prob, (h, c), h


def z0_sampler(n, rng):
    return rng.standard_normal((n, LATENT))


def dream(params, trials=2, max_steps=10, temperature=1.0, seed=0, model=None, **kwargs):
    model = FakeMDNRNN() if model is None else model
    return dream_returns(params, model, step, initial_state, z0_sampler, trials, max_steps, temperature,
                         np.random.default_rng(seed), **kwargs)


# ---------------------------------------------------------------- the controller --------------------
def test_parameter_vector_layout():
    assert C.n_params() == 867  # 3 * (32 + 256) + 3, the paper's count
    rng = np.random.default_rng(0)
    weight, bias = rng.standard_normal((3, 288)), rng.standard_normal(3)
    params = flatten(weight, bias)
    assert params.shape == (867,)
    w, b = unflatten(params)
    np.testing.assert_array_equal(w, weight)
    np.testing.assert_array_equal(b, bias)
    w, b = unflatten(np.stack([params, 2 * params]))  # a population at once
    assert w.shape == (2, 3, 288) and b.shape == (2, 3)
    np.testing.assert_array_equal(w[1], 2 * weight)
    with pytest.raises(ValueError, match="3 \\* d \\+ 3"):
        unflatten(np.zeros(868))


def test_squashing_is_ha_s_and_stays_in_the_box():
    u = np.random.default_rng(1).standard_normal((1000, 3)) * 5
    a = squash(u)
    assert np.all(a >= ACTION_LOW) and np.all(a <= ACTION_HIGH)
    np.testing.assert_allclose(a[:, 0], np.tanh(u[:, 0]))
    np.testing.assert_allclose(a[:, 1], (np.tanh(u[:, 1]) + 1) / 2)
    assert np.all(a[u[:, 2] <= 0, 2] == 0.0)  # no brake at all for half of the pre-activations
    np.testing.assert_allclose(a[u[:, 2] > 0, 2], np.tanh(u[u[:, 2] > 0, 2]))
    np.testing.assert_allclose(squash(np.zeros(3)), [0.0, 0.5, 0.0])


def test_batched_actions_equal_one_candidate_at_a_time():
    rng = np.random.default_rng(2)
    population, trials = 5, 3
    params = rng.standard_normal((population, C.n_params())) * 0.1
    z, h = rng.standard_normal((population * trials, 32)), rng.standard_normal((population * trials, 256))
    got = batched_actions(params, z, h, trials)
    assert got.shape == (population * trials, 3) and got.dtype == np.float32
    for p in range(population):
        rows = slice(p * trials, (p + 1) * trials)  # candidate-major: agent p*K + k
        np.testing.assert_allclose(got[rows], C.actions(params[p], z[rows], h[rows]), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="need 15 rows"):
        batched_actions(params, z[:-1], h[:-1], trials)
    with pytest.raises(ValueError, match="trials must be >= 1"):
        batched_actions(params, z, h, 0)


# ---------------------------------------------------------------- dream -----------------------------
def test_dream_masks_done_agents_and_steps_the_population_as_one_batch():
    model = FakeMDNRNN(done_after=3)
    params = np.stack([constant(0.5, 0.8, 0), constant(-0.5, 0.3, 0), constant(0.5, 0.8, 0)])
    got = dream(params, trials=4, max_steps=10, model=model, per_trial=True)
    assert got.shape == (3, 4)
    assert model.batches == [12] * 10  # 3 candidates x 4 trials, one call per step, all 10 steps
    # z's share of the reward (0.01 sum z) is small; the gas share: 3 steps (the done step counts) vs 10.
    np.testing.assert_allclose(got[0], 3 * 0.8, atol=0.2)
    np.testing.assert_allclose(got[1], 10 * 0.3, atol=0.5)
    mean = dream(params, trials=4, max_steps=10)
    np.testing.assert_array_equal(mean, got.mean(axis=1))


def test_dream_stops_when_every_agent_is_done():
    model = FakeMDNRNN(done_after=4)
    params = np.stack([constant(0.5, 0.8, 0), constant(0.9, 0.1, 0.5)])  # both steer right: done at step 4
    dream(params, trials=3, max_steps=50, model=model)
    assert model.batches == [6] * 4


def test_dream_is_a_function_of_the_rng_and_the_temperature_matters():
    params = np.random.default_rng(3).standard_normal((4, 3 * (LATENT + UNITS) + 3))
    a, b = dream(params, seed=5), dream(params, seed=5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, dream(params, seed=6))
    assert not np.array_equal(a, dream(params, seed=5, temperature=0.5))


@pytest.mark.parametrize("kwargs, message", [
    ({"temperature": 0.0}, "temperature must be > 0"),
    ({"temperature": -1.0}, "temperature must be > 0"),
    ({"temperature": float("nan")}, "temperature must be > 0"),
    ({"trials": 0}, "trials must be an integer >= 1"),
    ({"max_steps": 0}, "max_steps must be >= 1"),
])
def test_dream_rejects_bad_arguments(kwargs, message):
    params = np.zeros((2, 24))
    with pytest.raises(ValueError, match=message):
        dream(params, **kwargs)


def test_population_must_be_non_empty_and_the_right_size():
    with pytest.raises(ValueError, match="population must hold >= 1 candidate"):
        dream(np.zeros((0, 24)))
    assert dream(np.zeros((1, 24))).shape == (1,)  # a trained controller scored alone
    with pytest.raises(ValueError, match="need controllers of 24 parameters, got 25"):
        dream(np.zeros((2, 25)))
    with pytest.raises(ValueError, match="population must hold >= 1 candidate"):
        real_returns(np.zeros((0, 867)), [1], workers=1, policy_kwargs={"zero_features": True})
    with pytest.raises(ValueError, match="trials must be an integer >= 1"):
        real_returns(np.zeros((2, 867)), [], workers=1, policy_kwargs={"zero_features": True})
    with pytest.raises(TypeError, match="numpy Generator"):
        dream_returns(np.zeros((2, 24)), FakeMDNRNN(), step, initial_state, z0_sampler, 1, 5, 1.0, 42)


# ---------------------------------------------------------------- the real-env policy ---------------
class FakeEncoder:
    def __init__(self, path):
        self.scale = float(Path(path).read_text())

    def __call__(self, frames):
        mu = frames.reshape(len(frames), -1)[:, :LATENT].astype(np.float64) / 255 * self.scale
        return mu, np.full_like(mu, -4.0)


def fake_encoder_loader(path):
    return FakeEncoder(path)


def fake_mdnrnn_loader(path):
    return FakeMDNRNN(noise=float(Path(path).read_text()))


def test_world_model_policy_by_import_path_reads_its_files(tmp_path):
    params = constant(-0.3, 0.7, 0.2, latent=32, units=256)
    np.save(tmp_path / "c.npy", params)
    policy = make_policy(POLICY, 0, controller=str(tmp_path / "c.npy"), zero_features=True)
    frame = np.zeros((64, 64, 3), np.uint8)
    action = policy(frame)
    assert action.dtype == np.float32 and action.shape == (3,)
    np.testing.assert_allclose(action, [-0.3, 0.7, 0.2], rtol=1e-6)
    with pytest.raises(ValueError, match="needs encoder= and mdnrnn="):
        WorldModelPolicy(0, controller=params)

    # The full agent, with V and M from fakes loaded by import path: h carries the past into the action.
    (tmp_path / "v").write_text("2.0")
    (tmp_path / "m").write_text("0.5")
    rng = np.random.default_rng(4)
    params = rng.standard_normal(3 * (LATENT + UNITS) + 3)
    kwargs = {"controller": params, "encoder": str(tmp_path / "v"), "mdnrnn": str(tmp_path / "m"),
              "encoder_loader": f"{THIS}:fake_encoder_loader", "mdnrnn_loader": f"{THIS}:fake_mdnrnn_loader"}
    frames = rng.integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)
    episode = [frames[0]] * 3 + list(frames[1:])

    def play(seed, **extra):
        policy = make_policy(POLICY, seed, **kwargs, **extra)
        return np.stack([policy(f) for f in episode])

    mean_z = play(7, sample_z=False)
    assert not np.allclose(mean_z[0], mean_z[1])  # the same frame (same z), another h: another action
    assert np.all(mean_z >= ACTION_LOW) and np.all(mean_z <= ACTION_HIGH)
    np.testing.assert_array_equal(play(7), play(7))  # z sampled with the policy's seed: reproducible
    assert not np.array_equal(play(7), play(8))
    assert not np.array_equal(play(7), mean_z)


# ---------------------------------------------------------------- real returns ----------------------
class CrashingPolicy:
    """Full gas; raises at its 5th frame for the candidate with brake bias 0.25 on episode seed 12."""

    def __init__(self, seed, controller):
        self.crash = seed == 12 and np.isclose(controller[-1], 0.25)
        self.calls = 0

    def __call__(self, frame):
        self.calls += 1
        if self.crash and self.calls == 5:
            raise FloatingPointError("boom")
        return np.array([0.0, 1.0, 0.0], np.float32)


STEPS, SEEDS = 20, [11, 12]
ZERO = {"zero_features": True}


@pytest.fixture(scope="module")
def serial_returns():
    params = np.stack([constant(0.0, 0.99, 0, 32, 256), constant(0.0, 1e-4, 0, 32, 256),
                       constant(0.0, 0.99, 0, 32, 256)])
    return params, real_returns(params, SEEDS, STEPS, workers=1, policy_kwargs=ZERO, per_trial=True)


@needs_env
def test_real_returns_same_candidate_same_seed_same_return(serial_returns):
    params, got = serial_returns
    assert got.shape == (3, 2)
    np.testing.assert_array_equal(got[0], got[2])  # candidates 0 and 2 are the same controller
    np.testing.assert_allclose(got[1], -0.1 * STEPS, atol=1e-4)  # no gas: no tile, -0.1 a step
    assert got[0, 0] != got[0, 1]  # two seeds, two tracks
    mean = real_returns(params[:2], SEEDS, STEPS, workers=1, policy_kwargs=ZERO)
    np.testing.assert_array_equal(mean, got[:2].mean(axis=1))


@needs_env
def test_real_returns_on_workers_equal_serial_and_failures_name_candidate_and_seed(serial_returns):
    params, serial = serial_returns
    with C.worker_pool(2) as pool:
        parallel = real_returns(params, SEEDS, STEPS, policy_kwargs=ZERO, pool=pool, per_trial=True)
        assert parallel.tobytes() == serial.tobytes()
        crashing = np.stack([params[0], params[0].copy()])
        crashing[1, -1] = 0.25
        with pytest.raises(RolloutError, match="candidate 1, episode seed 12: FloatingPointError: boom"):
            real_returns(crashing, SEEDS, STEPS, policy_name=f"{THIS}:CrashingPolicy", pool=pool)


# ---------------------------------------------------------------- CMA-ES ----------------------------
N, POP, SIGMA, SEED = 10, 8, 0.5, 3


def toy_fitness(population, generation):
    np.random.rand(3)  # anything else drawing from numpy's global RNG must not change the search
    return -np.sum((population - 1.0) ** 2, axis=1)


class Stop(Exception):
    pass


def stop_after(generation):
    def on_generation(g, row):
        if g == generation:
            raise Stop

    return on_generation


def train(path, generations=3, **kwargs):
    kwargs = {"sigma0": SIGMA, "seed": SEED, "popsize": POP, **kwargs}
    return train_cmaes(toy_fitness, N, generations=generations, checkpoint_path=path, **kwargs)


def test_cmaes_resumed_after_a_kill_equals_an_uninterrupted_run(tmp_path, capsys):
    best, history = train(tmp_path / "a.pkl")
    assert [row["generation"] for row in history] == [1, 2, 3]
    assert all(row["worst"] <= row["mean"] <= row["best"] <= row["best_so_far"] for row in history)
    assert history[-1]["best_so_far"] == max(row["best"] for row in history)
    assert toy_fitness(best[None], 0)[0] == history[-1]["best_so_far"]

    np.random.seed(123)  # the global RNG's state must not matter
    with pytest.raises(Stop):
        train(tmp_path / "b.pkl", on_generation=stop_after(2))
    assert C.load_checkpoint(tmp_path / "b.pkl")["generation"] == 2
    seen = []
    best_b, history_b = train(tmp_path / "b.pkl", on_generation=lambda g, row: seen.append(g))
    assert "resuming CMA-ES after generation 2/3" in capsys.readouterr().out
    assert seen == [3]  # only the missing generation ran
    assert history_b == history  # bit-identical floats
    assert best_b.tobytes() == best.tobytes()
    state_a, state_b = C.load_checkpoint(tmp_path / "a.pkl"), C.load_checkpoint(tmp_path / "b.pkl")
    assert state_a["es"].mean.tobytes() == state_b["es"].mean.tobytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pkl", "b.pkl"]  # no temp files left behind

    # A finished longer run answers a shorter request with its prefix, running nothing.
    best_2, history_2 = train(tmp_path / "a.pkl", generations=2, on_generation=stop_after(1))
    assert history_2 == history[:2]
    assert toy_fitness(best_2[None], 0)[0] == max(row["best"] for row in history[:2])


def test_cmaes_ignores_a_checkpoint_made_with_other_settings(tmp_path, capsys):
    path = tmp_path / "c.pkl"
    train(path, generations=2)
    capsys.readouterr()
    seen = []
    _, history = train(path, generations=2, sigma0=0.3, on_generation=lambda g, row: seen.append(g))
    out = capsys.readouterr().out
    assert "ignoring the checkpoint" in out and "sigma0: 0.5 there, 0.3 here" in out
    assert seen == [1, 2]
    _, fresh = train(tmp_path / "d.pkl", generations=2, sigma0=0.3)
    assert history == fresh
    seen.clear()
    train(path, generations=2, settings={"trials": 4}, on_generation=lambda g, row: seen.append(g))
    assert seen == [1, 2] and "fitness" in capsys.readouterr().out


def test_cmaes_runs_with_the_smallest_population(tmp_path):
    # Two candidates (the smoke profile's): cma's default mirror re-injection fails in generation 2.
    _, history = train(tmp_path / "two.pkl", generations=4, popsize=2)
    assert [row["generation"] for row in history] == [1, 2, 3, 4]


def test_cmaes_checkpoint_holds_the_sampler_state():
    es_rng = C.SeededRandn(5)
    copy = pickle.loads(pickle.dumps(es_rng))
    np.testing.assert_array_equal(es_rng(4, 3), copy(4, 3))
    assert es_rng(4, 3).shape == (4, 3)


@pytest.mark.parametrize("kwargs, message", [
    ({"popsize": 1}, "population \\(popsize\\) must be >= 2"),
    ({"sigma0": 0.0}, "sigma0 must be > 0"),
    ({"generations": 0}, "generations must be >= 1"),
])
def test_cmaes_rejects_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        train(tmp_path / "x.pkl", **kwargs)


def test_cmaes_rejects_a_bad_fitness(tmp_path):
    with pytest.raises(ValueError, match="must return 8 finite returns"):
        train_cmaes(lambda pop, g: np.full(len(pop), np.nan), N, POP, SIGMA, 1, SEED, tmp_path / "x.pkl")


def test_seeds_per_generation_are_pure_and_m_s_initial_state_may_take_the_model():
    assert C.generation_seeds(1, 2, 4) == C.generation_seeds(1, 2, 4)
    assert C.generation_seeds(1, 2, 4)[:2] == C.generation_seeds(1, 2, 2)
    assert C.generation_seeds(1, 2, 4) != C.generation_seeds(1, 3, 4)
    assert C.generation_rng(1, 2).random() == C.generation_rng(1, 2).random()

    class Module:  # gdl.world_models.mdnrnn's initial_state takes the model first
        @staticmethod
        def initial_state(model, batch):
            return model, batch

    assert C._initial_state(Module, "M", 1) == ("M", 1)
