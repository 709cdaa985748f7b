"""World Models rollouts: shard layout, determinism, Brownian smoothness, parallel = serial, failures named.

Real CarRacing episodes, kept short (20 recorded steps, plus the 49 zoom steps skipped at each start):
the whole file takes well under a minute on 2 cores.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("gymnasium", reason="gymnasium is not installed (pip install 'gymnasium[box2d]==1.4.0')")
pytest.importorskip("Box2D", reason="Box2D is not installed: CarRacing needs gymnasium's [box2d] extra")

from gdl.world_models import rollouts  # noqa: E402
from gdl.world_models.rollouts import (  # noqa: E402
    ACTION_HIGH, ACTION_LOW, NO_OP, RolloutError, collect_episode, collect_parallel, collect_shard, episode_seeds,
    make_policy, preprocess_frame, split_episodes,
)

SEED, EPISODES, STEPS = 7, 2, 20
PER_STEP = ("frames", "actions", "rewards", "dones")


def shard_of(seed: int, episodes: int = EPISODES, steps: int = STEPS, **kwargs):
    return collect_shard(seed, episodes, steps, "brownian", progress=False, **kwargs)


@pytest.fixture(scope="module")
def shard():
    return shard_of(SEED)


def assert_same(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
        assert a[key].tobytes() == b[key].tobytes(), f"{key} differs"


class FailingPolicy:
    """Brownian, but raises at its third action in episode 1 of shard SEED + 100 (and nowhere else)."""

    def __init__(self, seed: int):
        self.inner = make_policy("brownian", seed)
        self.fail = seed == episode_seeds(SEED + 100, 2)[1][1]
        self.calls = 0

    def __call__(self, frame):
        self.calls += 1
        if self.fail and self.calls == 3:
            raise FloatingPointError("boom")
        return self.inner(frame)


FAILING = f"{__name__}:FailingPolicy"  # importable by name in a spawned worker too


# ---------------------------------------------------------------- layout ----------------------------
def test_shard_has_the_documented_shapes_dtypes_and_ranges(shard):
    n = EPISODES * STEPS
    assert sorted(shard) == sorted([*PER_STEP, "episode_lengths", "env_seeds", "policy_seeds"])
    assert shard["frames"].dtype == np.uint8 and shard["frames"].shape == (n, 64, 64, 3)
    assert shard["actions"].dtype == np.float32 and shard["actions"].shape == (n, 3)
    assert shard["rewards"].dtype == np.float32 and shard["rewards"].shape == (n,)
    assert shard["dones"].dtype == bool and shard["dones"].shape == (n,)
    assert shard["episode_lengths"].dtype == np.int64 and shard["episode_lengths"].tolist() == [STEPS] * EPISODES
    assert shard["env_seeds"].dtype == np.uint64 and shard["env_seeds"].shape == (EPISODES,)
    assert len(set(shard["env_seeds"].tolist())) == EPISODES
    assert np.all(shard["actions"] >= ACTION_LOW) and np.all(shard["actions"] <= ACTION_HIGH)
    # -0.1 a step, plus 1000/N (N ~ 300 tiles) for a new tile; -100 only for leaving the playfield
    assert np.all(np.isfinite(shard["rewards"])) and np.all(np.abs(shard["rewards"]) < 101)
    assert not shard["dones"].any()  # 20 steps neither finish a lap nor leave the playfield
    assert shard["frames"].std() > 10  # grass, road and car, not a blank image
    episodes = split_episodes(shard)
    assert len(episodes) == EPISODES
    for i, episode in enumerate(episodes):
        for key in PER_STEP:
            np.testing.assert_array_equal(episode[key], shard[key][i * STEPS:(i + 1) * STEPS])


def test_preprocess_crops_the_status_bar_and_averages_areas_exactly():
    rng = np.random.default_rng(0)
    obs = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    frame = preprocess_frame(obs)
    assert frame.dtype == np.uint8 and frame.shape == (64, 64, 3)
    bar_changed = obs.copy()
    bar_changed[84:] = 255 - bar_changed[84:]
    np.testing.assert_array_equal(preprocess_frame(bar_changed), frame)
    # the same average in floating point: output row i covers input rows [i * 84/64, (i+1) * 84/64)
    def area_matrix(n_in):
        edges = np.arange(65) * n_in / 64
        lo, hi = edges[:-1, None], edges[1:, None]
        j = np.arange(n_in)[None, :]
        return np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0, None) / (n_in / 64)
    expected = np.einsum("ij,jkc,lk->ilc", area_matrix(84), obs[:84].astype(np.float64), area_matrix(96))
    assert np.abs(frame - expected).max() <= 0.5 + 1e-9
    np.testing.assert_array_equal(preprocess_frame(np.full((96, 96, 3), 77, np.uint8)), np.full((64, 64, 3), 77))
    with pytest.raises(ValueError, match="96x96x3 uint8"):
        preprocess_frame(obs[:84])


# ---------------------------------------------------------------- determinism -----------------------
def test_same_seed_is_bit_identical_and_another_seed_differs(shard):
    assert_same(shard, shard_of(SEED))
    other = shard_of(SEED + 1, episodes=1)
    assert not np.array_equal(other["frames"], shard["frames"][:STEPS])
    assert not np.array_equal(other["actions"], shard["actions"][:STEPS])


def test_an_episode_does_not_depend_on_how_many_episodes_its_shard_has(shard):
    first = shard_of(SEED, episodes=1)
    for key in PER_STEP:
        np.testing.assert_array_equal(first[key], shard[key][:STEPS])
    assert first["env_seeds"][0] == shard["env_seeds"][0]


def test_the_zoom_at_the_start_is_skipped():
    """Standing still (no gas), the view changes only while the start-of-episode zoom runs."""
    still = collect_episode(1, lambda frame: NO_OP, max_steps=3)
    assert all(np.array_equal(still["frames"][0], f) for f in still["frames"][1:])
    zooming = collect_episode(1, lambda frame: NO_OP, max_steps=3, skip_zoom=False)
    assert not np.array_equal(zooming["frames"][0], zooming["frames"][1])


def test_action_repeat_holds_each_action_and_sums_its_rewards():
    def gas(frame):  # straight ahead, half throttle: the car drives off along the road
        return np.array([0.0, 0.5, 0.0], np.float32)

    single = collect_episode(2, gas, max_steps=6)
    held = collect_episode(2, gas, max_steps=3, action_repeat=2)
    np.testing.assert_array_equal(held["frames"], single["frames"][::2])
    np.testing.assert_allclose(held["rewards"], single["rewards"].reshape(3, 2).sum(axis=1), atol=1e-5)
    assert not np.array_equal(single["frames"][0], single["frames"][1])  # the car does move


# ---------------------------------------------------------------- policies --------------------------
def test_brownian_actions_stay_in_the_box_and_move_smoothly(shard):
    def deltas(name, seed=0, steps=2000):
        policy = make_policy(name, seed)
        actions = np.stack([policy(None) for _ in range(steps)])
        assert actions.dtype == np.float32
        assert np.all(actions >= ACTION_LOW) and np.all(actions <= ACTION_HIGH), name
        again, other = make_policy(name, seed), make_policy(name, seed + 1)
        np.testing.assert_array_equal(np.stack([again(None) for _ in range(steps)]), actions)
        assert not np.array_equal(np.stack([other(None) for _ in range(steps)]), actions)
        return np.abs(np.diff(actions, axis=0)).mean()

    brownian, random = deltas("brownian"), deltas("random")
    assert brownian < 0.15 and random > 0.35 and brownian < 0.4 * random, (brownian, random)
    # in the recorded shard too (within each episode: the walk restarts at each episode)
    for episode in split_episodes(shard):
        assert np.abs(np.diff(episode["actions"], axis=0)).max() < 1.0


def test_unknown_policy_fails_before_any_work():
    with pytest.raises(ValueError, match="unknown policy 'nope'"):
        collect_parallel([1, 2], 2, 1, 5, policy_name="nope", progress=False)


# ---------------------------------------------------------------- parallel and failures -------------
def test_parallel_on_two_workers_equals_serial(shard):
    serial = [shard, shard_of(SEED + 2)]
    parallel = collect_parallel([SEED, SEED + 2], workers=2, episodes=EPISODES, max_steps=STEPS,
                                policy_name="brownian", progress=False)
    assert len(parallel) == 2
    for a, b in zip(serial, parallel):
        assert_same(a, b)


def test_a_shard_played_by_two_workers_is_the_serial_shard(shard):
    # What a shard stage does with its allotted CPUs: the episodes of ONE shard on two processes.
    assert_same(shard_of(SEED, workers=2), shard)


def test_a_failing_episode_names_its_shard_seed_and_index():
    with pytest.raises(RolloutError, match=rf"shard seed {SEED + 100}, episode 1 .*FloatingPointError: boom") as info:
        collect_shard(SEED + 100, 2, 5, FAILING, progress=False)
    assert isinstance(info.value.__cause__, FloatingPointError)


def test_a_failing_episode_in_a_worker_process_is_raised_with_its_shard_seed():
    with pytest.raises(RolloutError, match=rf"shard seed {SEED + 100}, episode 1 .*boom"):
        collect_parallel([SEED + 101, SEED + 100], workers=2, episodes=2, max_steps=5, policy_name=FAILING,
                         progress=False)
    with pytest.raises(RolloutError, match=rf"shard seed {SEED + 100}, episode 1 .*boom"):
        collect_shard(SEED + 100, 2, 5, FAILING, progress=False, workers=2)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="episodes must be >= 1"):
        collect_shard(1, 0, 5, progress=False)
    with pytest.raises(RolloutError, match="max_steps and action_repeat must be >= 1"):
        collect_shard(1, 1, 0, progress=False)
    with pytest.raises(RolloutError, match="sigma must be >= 0"):
        collect_shard(1, 1, 5, policy_kwargs={"sigma": -1.0}, progress=False)
    assert rollouts.ENV_ID == "CarRacing-v3"


def test_the_failure_hook_fails_the_named_episode_in_a_worker(monkeypatch):
    # What tests/test_world_models_pipeline.py injects into a shard stage (GDL_FAIL_EPISODE).
    monkeypatch.setenv(rollouts.FAIL_EPISODE_ENV, "1")
    with pytest.raises(RolloutError, match=rf"shard seed {SEED}, episode 1 .*GDL_FAIL_EPISODE=1"):
        collect_shard(SEED, 2, 5, "brownian", progress=False, workers=2)
