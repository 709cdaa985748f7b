"""CarRacing rollouts for World Models: the data that V (the VAE) and M (the MDN-RNN) learn from.

Ha & Schmidhuber (2018) collect 10,000 episodes of `CarRacing` driven by a policy that ignores what it sees,
keep each 96x96 frame cropped and shrunk to 64x64, and record the actions (M learns p(z_t+1 | z_t, a_t, h_t)).
Everything a later stage depends on is in this one file:

* the environment: gymnasium's ``CarRacing-v3`` (continuous actions: steer in [-1, 1], gas and brake in
  [0, 1]; 50 physics steps per simulated second; reward -0.1 per step, +1000/N per new track tile, -100 and
  the end of the episode for leaving the playfield; gymnasium truncates it after 1000 steps). Its observation
  is the 96x96x3 uint8 state that ``step()`` renders anyway, so no render mode is set: ``render_mode=None``
  and ``"rgb_array"`` measured the same here (~160 steps/s on one core, the 600x400 frame of ``"rgb_array"``
  is only drawn by ``render()``, which we never call).
* the start: the first second of every episode (50 steps) is a zoom animation from far above the track to
  the driving view. Those frames look like no other frame of the episode, and the controller never acts on
  them in a way that matters, so by default (``skip_zoom=True``) they are stepped through with the no-op
  action (the car stands still on the start line) and not recorded. They still count towards gymnasium's
  1000-step limit, so an episode records at most 1000 - 49 = 951 steps. The first recorded frame is the
  first fully zoomed-in one (tests/test_world_models_rollouts.py checks that the view no longer changes).
* the frame: ``preprocess_frame`` crops the status bar (rows 84-95: reward, speed, ABS, steering and gyro
  indicators, as in Ha's ``frame[0:84]``) and averages the 84x96 crop down to 64x64 by exact pixel areas
  (the aspect ratio is not kept, as in the paper). It uses integer arithmetic only, so a frame is the same
  byte for byte on every machine, with no BLAS threads in worker processes, and no image library.
* the policies: ``random`` (each action uniform in the box, independently every step: a jittering car that
  mostly brakes) and ``brownian`` (the action does a random walk clipped to the box, step
  ``sigma * N(0, 1)`` per coordinate, ``sigma = sqrt(1/50)``, starting from a uniform action). The paper only
  says "random"; the Brownian walk is ctallec/world-models' ``sample_continuous_policy(dt=1/50)``: smoother
  actions drive further and show M more of the track.
* the layout of a shard (``collect_shard``): episodes concatenated along the first axis,

  - ``frames`` uint8 (N, 64, 64, 3): the frame the action was chosen on;
  - ``actions`` float32 (N, 3): [steer, gas, brake], inside the box;
  - ``rewards`` float32 (N,): the reward of that action (summed over its ``action_repeat`` env steps);
  - ``dones`` bool (N,): the episode ended after this action (terminated: lap finished or off the
    playfield; or truncated at gymnasium's 1000 steps). An episode cut at ``max_steps`` is not done;
  - ``episode_lengths`` int64 (E,): ``split_episodes`` cuts the arrays back into episodes with it;
  - ``env_seeds``, ``policy_seeds`` uint64 (E,): enough to replay any one episode alone.

  So within an episode, frame t+1 is what action t led to (M's training pairs); the frame after an
  episode's last action is not kept.
* the seeds: each episode's env seed and policy seed come from ``np.random.SeedSequence(shard_seed)``
  (child ``i`` for episode ``i``), so a shard is a pure function of its arguments, episode ``i`` is the same
  whatever the number of episodes, and shards with different seeds are statistically independent.
  Every episode gets a freshly made environment, so nothing carries over from the previous one.
  Bit-identical means: on the same machine and package versions. Box2D is floating-point physics, so
  another CPU or compiler may drift after many steps; a stage should record the versions it ran with.

Import cost: numpy and tqdm only; gymnasium (with pygame and Box2D) is imported by ``make_env``.
"""

from __future__ import annotations

import importlib
import math
import multiprocessing as mp
import os
from collections.abc import Callable, Sequence

import numpy as np
from tqdm import tqdm

ENV_ID = "CarRacing-v3"
FRAME_SIZE = 64  # the VAE's input: 64x64x3
CROP_ROWS = 84  # rows 84-95 of the 96x96 state are the status bar (gymnasium's _render_indicators: 5/40 of H)
ZOOM_STEPS = 49  # reset() takes the first 1/50 s step; the zoom ends at t = 1 s, 49 steps later
ACTION_LOW = np.array([-1.0, 0.0, 0.0], dtype=np.float32)  # steer, gas, brake
ACTION_HIGH = np.array([1.0, 1.0, 1.0], dtype=np.float32)
NO_OP = np.zeros(3, dtype=np.float32)
# Test hook: GDL_FAIL_EPISODE=i makes episode i of every shard raise inside the process that plays it.
FAIL_EPISODE_ENV = "GDL_FAIL_EPISODE"


class RolloutError(RuntimeError):
    """An episode failed; the message names the shard seed and the episode index (and the cause)."""


# ---------------------------------------------------------------- environment -----------------------
def make_env(seed: int, skip_zoom: bool = True):
    """A fresh CarRacing environment reset with `seed`: (env, the first observation to record).

    With `skip_zoom`, the observation is the first one after the start-of-episode zoom animation.
    """
    # pygame prints a banner on import; the worker processes would print it once each.
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import gymnasium as gym

    # render_mode=None: step() renders the 96x96 observation itself, which is all we need.
    env = gym.make(ENV_ID)
    obs, _ = env.reset(seed=int(seed))  # the track is drawn from this seed
    if skip_zoom:
        for _ in range(ZOOM_STEPS):
            # No gas: the car stays on the start line, so these steps can neither end the episode nor
            # depend on the policy.
            obs, _, terminated, truncated, _ = env.step(NO_OP)
            assert not (terminated or truncated)
    return env, obs


# ---------------------------------------------------------------- frames ----------------------------
def _area_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Exact area-averaging weights from n_in pixels to n_out, as integers: (index, weight, divisor).

    Cut the line into n_in * n_out sub-cells: input pixel j owns n_out of them, output pixel i owns n_in.
    The weight of input j in output i is the number of sub-cells they share (divided by the common
    factor, so 84 -> 64 gives weights 16, 5 | 11, 10 | ... out of 21 and 96 -> 64 gives 2, 1 | 1, 2 out of
    3). index and weight are (n_out, taps) arrays, padded with weight 0.
    """
    g = math.gcd(n_in, n_out)
    weights = np.zeros((n_out, n_in), dtype=np.int64)
    for sub in range(n_in * n_out):
        weights[sub // n_in, sub // n_out] += 1
    weights //= g
    taps = int((weights > 0).sum(axis=1).max())
    index = np.zeros((n_out, taps), dtype=np.intp)
    weight = np.zeros((n_out, taps), dtype=np.int32)
    for i in range(n_out):
        nonzero = np.flatnonzero(weights[i])
        index[i, : len(nonzero)] = nonzero
        weight[i, : len(nonzero)] = weights[i, nonzero]
    return index, weight, n_in // g


_ROW_INDEX, _ROW_WEIGHT, _ROW_DIVISOR = _area_taps(CROP_ROWS, FRAME_SIZE)
_COL_INDEX, _COL_WEIGHT, _COL_DIVISOR = _area_taps(96, FRAME_SIZE)


def preprocess_frame(obs: np.ndarray) -> np.ndarray:
    """96x96x3 uint8 CarRacing state -> 64x64x3 uint8: status bar cropped, exact area average, rounded.

    Integer arithmetic throughout (sums of at most 255 * 21 * 3), so the result does not depend on the
    order of additions, BLAS or the machine; ~0.1 ms a frame.
    """
    if obs.shape != (96, 96, 3) or obs.dtype != np.uint8:
        raise ValueError(f"expected a 96x96x3 uint8 CarRacing frame, got {obs.dtype}{obs.shape}")
    crop = obs[:CROP_ROWS].astype(np.int32)
    rows = sum(_ROW_WEIGHT[:, t, None, None] * crop[_ROW_INDEX[:, t]] for t in range(_ROW_INDEX.shape[1]))
    sums = sum(_COL_WEIGHT[None, :, t, None] * rows[:, _COL_INDEX[:, t]] for t in range(_COL_INDEX.shape[1]))
    divisor = _ROW_DIVISOR * _COL_DIVISOR  # 63, odd: s / 63 is never exactly k + 1/2, so no ties to break
    return ((sums + divisor // 2) // divisor).astype(np.uint8)


# ---------------------------------------------------------------- policies --------------------------
class RandomPolicy:
    """Every action uniform in the box, independent of the last: steer U[-1,1], gas U[0,1], brake U[0,1]."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        return self.rng.uniform(ACTION_LOW, ACTION_HIGH).astype(np.float32)


class BrownianPolicy:
    """A random walk in the action box: a_0 uniform, a_t+1 = clip(a_t + sigma * N(0, I)).

    sigma = sqrt(dt) with dt = 1/50 (one physics step) is ctallec/world-models' choice: the walk crosses
    the box in about a simulated second, so the car both accelerates for a while and turns for a while.
    """

    def __init__(self, seed: int, sigma: float = math.sqrt(1 / 50)):
        if not sigma >= 0:
            raise ValueError(f"brownian policy: sigma must be >= 0, got {sigma}")
        self.rng = np.random.default_rng(seed)
        self.sigma = float(sigma)
        self.action: np.ndarray | None = None  # float64 internally; returned as float32

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if self.action is None:
            self.action = self.rng.uniform(ACTION_LOW, ACTION_HIGH)
        else:
            step = self.sigma * self.rng.standard_normal(3)
            self.action = np.clip(self.action + step, ACTION_LOW, ACTION_HIGH)
        return self.action.astype(np.float32)


class ConstantPolicy:
    """The same action every step; by default "accelerate straight" (steer 0, full gas, no brake): the
    baseline that drives off the track at the first bend."""

    def __init__(self, seed: int, action=(0.0, 1.0, 0.0)):
        self.action = np.asarray(action, dtype=np.float32)
        if self.action.shape != (3,) or not np.all((ACTION_LOW <= self.action) & (self.action <= ACTION_HIGH)):
            raise ValueError(f"constant policy: {action!r} is not a [steer, gas, brake] inside the box")

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        return self.action


POLICIES: dict[str, Callable[..., Callable[[np.ndarray], np.ndarray]]] = {
    "random": RandomPolicy,
    "brownian": BrownianPolicy,
    "constant": ConstantPolicy,
}


def make_policy(name: str, seed: int, **kwargs) -> Callable[[np.ndarray], np.ndarray]:
    """A policy by name: a key of POLICIES, or "package.module:Class" for one defined elsewhere.

    The import path is how a worker process finds a policy that is not built in (the trained controller
    later, a test's failing policy): it imports the module by name, as pickle would.
    """
    if ":" in name:
        module, _, qualname = name.partition(":")
        factory = importlib.import_module(module)
        for attr in qualname.split("."):
            factory = getattr(factory, attr)
        return factory(seed, **kwargs)
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; known: {', '.join(sorted(POLICIES))}, or module:Class")
    return POLICIES[name](seed, **kwargs)


# ---------------------------------------------------------------- episodes and shards ---------------
def episode_seeds(shard_seed: int, episodes: int) -> list[tuple[int, int]]:
    """(env seed, policy seed) of each episode of a shard: child i of SeedSequence(shard_seed) for episode i."""
    seeds = []
    for child in np.random.SeedSequence(shard_seed).spawn(episodes):
        env_seed, policy_seed = child.generate_state(2, dtype=np.uint64)  # 64 bits: no repeated tracks
        seeds.append((int(env_seed), int(policy_seed)))
    return seeds


def collect_episode(env_seed: int, policy: Callable[[np.ndarray], np.ndarray], max_steps: int,
                    action_repeat: int = 1, skip_zoom: bool = True,
                    progress_bar: tqdm | None = None) -> dict[str, np.ndarray]:
    """One episode of at most `max_steps` recorded steps: frames, actions, rewards, dones (see the module).

    The policy sees the preprocessed 64x64 frame and returns [steer, gas, brake]. With `action_repeat` k,
    each action is held for k env steps and recorded once (with the first frame and the summed reward).
    """
    if max_steps < 1 or action_repeat < 1:
        raise ValueError(f"max_steps and action_repeat must be >= 1, got {max_steps} and {action_repeat}")
    frames, actions, rewards, dones = [], [], [], []
    env, obs = make_env(env_seed, skip_zoom)
    try:
        for _ in range(max_steps):
            frame = preprocess_frame(obs)
            action = np.asarray(policy(frame), dtype=np.float32)
            if action.shape != (3,) or not np.all((ACTION_LOW <= action) & (action <= ACTION_HIGH)):
                raise ValueError(f"policy returned {action!r}, not a [steer, gas, brake] inside the box")
            reward, done = 0.0, False
            for _ in range(action_repeat):
                obs, r, terminated, truncated, _ = env.step(action)
                reward += float(r)
                done = bool(terminated or truncated)
                if done:
                    break
            frames.append(frame)
            actions.append(action)
            rewards.append(reward)
            dones.append(done)
            if progress_bar is not None:
                progress_bar.update(1)
            if done:
                break
    finally:
        env.close()
    return {
        "frames": np.stack(frames),
        "actions": np.stack(actions),
        "rewards": np.array(rewards, dtype=np.float32),
        "dones": np.array(dones, dtype=bool),
    }


def _shard_episode(job: tuple) -> tuple[int, dict[str, np.ndarray]]:
    """Episode `index` of a shard -> (index, episode); any failure re-raised as RolloutError naming both."""
    shard_seed, index, env_seed, policy_seed, policy_name, policy_kwargs, max_steps, action_repeat, skip_zoom, bar = job
    try:
        if os.environ.get(FAIL_EPISODE_ENV, "").strip() == str(index):
            raise RuntimeError(f"{FAIL_EPISODE_ENV}={index}: a failure injected for the tests")
        policy = make_policy(policy_name, policy_seed, **(policy_kwargs or {}))
        return index, collect_episode(env_seed, policy, max_steps, action_repeat, skip_zoom, bar)
    except Exception as exc:
        raise RolloutError(f"shard seed {shard_seed}, episode {index} (env seed {env_seed}, policy "
                           f"{policy_name}): {type(exc).__name__}: {exc}") from exc


def collect_shard(shard_seed: int, episodes: int, max_steps: int, policy_name: str = "brownian",
                  policy_kwargs: dict | None = None, action_repeat: int = 1, skip_zoom: bool = True,
                  progress: bool = True, position: int | None = None, workers: int = 1) -> dict[str, np.ndarray]:
    """`episodes` episodes seeded from `shard_seed`, concatenated (layout in the module docstring).

    A failure inside an episode (the env, the policy, a bad action) is re-raised as RolloutError naming
    the shard seed and the episode index; the original exception is its __cause__. With `workers` > 1 the
    episodes are played by that many spawned processes (one episode per task); every episode is a pure
    function of its seeds, so the shard is the same bytes as a serial one.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    seeds = episode_seeds(shard_seed, episodes)
    jobs = [(shard_seed, i, env_seed, policy_seed, policy_name, policy_kwargs, max_steps, action_repeat, skip_zoom)
            for i, (env_seed, policy_seed) in enumerate(seeds)]
    parts: list[dict[str, np.ndarray] | None] = [None] * episodes
    # The total assumes full-length episodes; one that ends early takes its missing steps off the total,
    # so the bar's steps/s stays the real rate.
    with tqdm(total=episodes * max_steps, unit="step", desc=f"shard {shard_seed}", disable=not progress,
              position=position, leave=position is None, mininterval=1.0) as bar:
        def done(index, episode):
            parts[index] = episode
            length = len(episode["dones"])
            if length < max_steps:
                bar.total -= max_steps - length
                bar.refresh()

        if workers <= 1 or episodes == 1:
            for job in jobs:
                done(*_shard_episode((*job, bar)))
        else:
            make_policy(policy_name, 0, **(policy_kwargs or {}))  # a bad name or kwarg fails before any process
            with mp.get_context("spawn").Pool(min(workers, episodes)) as pool:
                # Unordered: the first failure surfaces at once (leaving the `with` stops the others).
                for index, episode in pool.imap_unordered(_shard_episode, [(*job, None) for job in jobs]):
                    bar.update(len(episode["dones"]))
                    done(index, episode)
    shard = {key: np.concatenate([p[key] for p in parts]) for key in ("frames", "actions", "rewards", "dones")}
    shard["episode_lengths"] = np.array([len(p["dones"]) for p in parts], dtype=np.int64)
    shard["env_seeds"] = np.array([s[0] for s in seeds], dtype=np.uint64)
    shard["policy_seeds"] = np.array([s[1] for s in seeds], dtype=np.uint64)
    return shard


def split_episodes(shard: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """A shard's per-step arrays cut back into its episodes (in order), using `episode_lengths`."""
    cuts = np.cumsum(shard["episode_lengths"])[:-1]
    per_step = ("frames", "actions", "rewards", "dones")
    pieces = {key: np.split(shard[key], cuts) for key in per_step}
    return [{key: pieces[key][i] for key in per_step} for i in range(len(shard["episode_lengths"]))]


# ---------------------------------------------------------------- parallel collection ---------------
def cpu_count() -> int:
    """CPUs this process may use (its affinity mask, which Slurm and taskset set), not the machine's."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


_WORKER_POSITION: int | None = None  # in a worker process: its row for the progress bars


def _init_worker(counter, lock) -> None:
    """Runs once in each worker: take the next progress-bar row, share the parent's terminal lock."""
    global _WORKER_POSITION
    with counter.get_lock():
        _WORKER_POSITION = counter.value
        counter.value += 1
    tqdm.set_lock(lock)


def _collect_job(job: tuple[int, dict]) -> tuple[int, dict[str, np.ndarray]]:
    index, kwargs = job
    return index, collect_shard(**kwargs, position=_WORKER_POSITION)


def collect_parallel(shard_seeds: Sequence[int], workers: int, episodes: int, max_steps: int,
                     policy_name: str = "brownian", policy_kwargs: dict | None = None, action_repeat: int = 1,
                     skip_zoom: bool = True, progress: bool = True) -> list[dict[str, np.ndarray]]:
    """`collect_shard` for each seed, on `workers` processes: the shards, in the order of `shard_seeds`.

    Each shard is a pure function of its seed, so the result equals serial collection whatever the
    number of workers or the order shards finish in. workers <= 1 runs here, in this process. Worker
    processes are spawned (not forked): they start from a clean interpreter instead of a copy of a parent
    that may hold TensorFlow's or pygame's threads. The first failing shard stops the others and its
    RolloutError (naming shard seed and episode) is raised here.
    """
    make_policy(policy_name, 0, **(policy_kwargs or {}))  # a bad name or kwarg fails before any process starts
    jobs = [(i, dict(shard_seed=int(seed), episodes=episodes, max_steps=max_steps, policy_name=policy_name,
                     policy_kwargs=policy_kwargs, action_repeat=action_repeat, skip_zoom=skip_zoom,
                     progress=progress))
            for i, seed in enumerate(shard_seeds)]
    if workers <= 1 or len(jobs) <= 1:
        return [collect_shard(**kwargs) for _, kwargs in jobs]
    ctx = mp.get_context("spawn")
    counter, lock = ctx.Value("i", 0), ctx.RLock()
    results: list[dict[str, np.ndarray] | None] = [None] * len(jobs)
    with ctx.Pool(min(workers, len(jobs)), initializer=_init_worker, initargs=(counter, lock)) as pool:
        # Unordered, one shard per task: a failure surfaces as soon as it happens (leaving the `with`
        # terminates the other workers); the index puts each shard back in its place.
        for index, shard in pool.imap_unordered(_collect_job, jobs, chunksize=1):
            results[index] = shard
    return results
