"""C, the controller of World Models (Ha & Schmidhuber 2018), and its training by CMA-ES.

One file, every detail visible (in the spirit of cleanrl). What is here:

* the controller: one linear layer from the features [z_t, h_t] (V's latent, 32; M's LSTM output, 256) to
  the three CarRacing actions, a = squash(W [z, h] + b), W (3, 288), b (3,): 3 * 288 + 3 = 867 numbers.
  The squashing is Ha's `carracing/model.py` exactly:

  - steer = tanh(u0)            in [-1, 1];
  - gas   = (tanh(u1) + 1) / 2  in [0, 1], 1/2 at u1 = 0;
  - brake = clip(tanh(u2), 0, 1) in [0, 1], exactly 0 for every u2 <= 0.

  Why the asymmetry: a random controller (CMA-ES starts from one) brakes only half of the time and not at
  all on that half, so the car can move from the first generation on; a sigmoid brake would hold the car
  at ~1/2 brake and the search would start from a car that barely moves (what the random rollout
  policies do: "mostly brakes").
* the parameter vector: ``flatten(W, b) = concat(W.ravel(), b)`` (W row-major, one row per action, then
  b), ``unflatten`` is its inverse. (Ha stores b first and W transposed; only this file reads the vector.)
* ``batched_actions``: the actions of a whole population x trials in one einsum. Agents are laid out
  candidate-major: agent ``p * trials + k`` is trial k of candidate p, in every array of this file.
* ``dream_returns``: fitness in M's dream. The P x K agents are stepped as ONE batch per time step: z_0
  from ``z0_sampler``, then a_t = C(z_t, h_t) and (z_t+1, r_t, d_t, h_t+1) = M.step(z_t, a_t, state,
  temperature). An agent is done when M's done probability is above 1/2 (thresholded, not sampled: Ha's
  DoomRNN dream ends the episode when the restart logit is > 0, the same thing); its reward of the step
  that ended it still counts (like the env's -100 for leaving the field), later ones do not (a mask).
  The loop stops as soon as every agent is done.
* ``real_returns``: fitness in the real CarRacing-v3 (``rollouts.collect_episode``: zoom skipped, the
  64x64 frame). Each (candidate, episode seed) pair is one job for a pool of spawned worker processes;
  every candidate meets the same episode seeds (common random numbers: candidates are compared on the
  same tracks), and an episode is a pure function of (candidate, seed). The policy in a worker is built
  by import path (``make_policy("gdl.world_models.controller:WorldModelPolicy", seed, ...)``), and loads V
  and M from files, once per process.
* ``train_cmaes``: CMA-ES (the ``cma`` package) on -return, checkpointed after every generation and
  resumed bit-identically (see "Determinism" there).

Import cost: numpy and tqdm (through rollouts); cma is imported by ``train_cmaes``; gymnasium when an
episode runs; TensorFlow only by the loaders that ``WorldModelPolicy`` calls.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import multiprocessing as mp
import os
import pickle
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from gdl.atomic import atomic_file
from gdl.world_models.rollouts import (
    RolloutError,
    collect_episode,
    cpu_count,
    make_policy,
)

LATENT = 32  # V's z
UNITS = 256  # M's LSTM h
ACTIONS = 3  # steer, gas, brake
POLICY = "gdl.world_models.controller:WorldModelPolicy"  # make_policy's name for the trained controller
DEFAULT_ENCODER_LOADER = "gdl.world_models.vae:load_encoder"
DEFAULT_MDNRNN_LOADER = "gdl.world_models.mdnrnn:load_model"


# ---------------------------------------------------------------- the controller --------------------
def n_params(latent: int = LATENT, units: int = UNITS) -> int:
    """Size of the parameter vector: 3 * (latent + units) + 3 (867 for 32 + 256)."""
    return ACTIONS * (latent + units) + ACTIONS


def flatten(weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """(W (3, d), b (3,)) -> the parameter vector [W row by row, b] (3d + 3,), float64."""
    weight, bias = np.asarray(weight, np.float64), np.asarray(bias, np.float64)
    if weight.ndim != 2 or weight.shape[0] != ACTIONS or bias.shape != (ACTIONS,):
        raise ValueError(f"expected W (3, d) and b (3,), got {weight.shape} and {bias.shape}")
    return np.concatenate([weight.ravel(), bias])


def unflatten(params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parameter vector(s) (..., 3d + 3) -> W (..., 3, d), b (..., 3): views, no copy."""
    params = np.asarray(params)
    size = params.shape[-1]
    if size < 2 * ACTIONS or (size - ACTIONS) % ACTIONS:
        raise ValueError(f"a controller has 3 * d + 3 parameters, got {size}")
    d = (size - ACTIONS) // ACTIONS
    return params[..., :-ACTIONS].reshape(*params.shape[:-1], ACTIONS, d), params[..., -ACTIONS:]


def squash(u: np.ndarray) -> np.ndarray:
    """Pre-activations (..., 3) -> [steer, gas, brake] inside the action box (Ha's carracing/model.py)."""
    t = np.tanh(u)
    return np.stack([t[..., 0], (t[..., 1] + 1.0) / 2.0, np.clip(t[..., 2], 0.0, 1.0)], axis=-1)


def actions(params: np.ndarray, z: np.ndarray, h: np.ndarray) -> np.ndarray:
    """One controller, a batch of features: params (n,), z (B, latent), h (B, units) -> (B, 3) float32."""
    weight, bias = unflatten(params)
    x = np.concatenate([z, h], axis=-1)
    if x.shape[-1] != weight.shape[-1]:
        raise ValueError(f"controller of {weight.shape[-1]} inputs fed z {z.shape} and h {h.shape}")
    return squash(x @ weight.T + bias).astype(np.float32)


def batched_actions(params: np.ndarray, z: np.ndarray, h: np.ndarray, trials: int) -> np.ndarray:
    """The actions of P candidates x K trials at once: params (P, n), z (P*K, latent), h (P*K, units).

    Row p*K + k of z and h belongs to trial k of candidate p; so does row p*K + k of the (P*K, 3) result.
    One einsum, no loop over agents: u[p, k] = W[p] @ [z, h][p, k] + b[p].
    """
    params = np.asarray(params, np.float64)
    if params.ndim != 2:
        raise ValueError(f"params must be (population, n), got {params.shape}")
    population = params.shape[0]
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    if z.shape[0] != population * trials or h.shape[0] != population * trials:
        raise ValueError(f"{population} candidates x {trials} trials need {population * trials} rows of z and "
                         f"h, got {z.shape[0]} and {h.shape[0]}")
    weight, bias = unflatten(params)  # (P, 3, d), (P, 3)
    x = np.concatenate([np.asarray(z, np.float64), np.asarray(h, np.float64)], axis=-1)
    if x.shape[-1] != weight.shape[-1]:
        raise ValueError(f"controllers of {weight.shape[-1]} inputs fed z {z.shape} and h {h.shape} "
                         f"({x.shape[-1]} features)")
    x = x.reshape(population, trials, -1)
    u = np.einsum("pad,pkd->pka", weight, x) + bias[:, None, :]
    return squash(u).reshape(population * trials, ACTIONS).astype(np.float32)


# ---------------------------------------------------------------- argument checks -------------------
def _check_population(params_population) -> np.ndarray:
    params = np.asarray(params_population, np.float64)
    if params.ndim != 2:
        raise ValueError(f"params_population must be (population, n_params), got shape {params.shape}")
    if params.shape[0] < 1:  # one is fine: a trained controller is scored alone (CMA-ES itself needs >= 2)
        raise ValueError(f"population must hold >= 1 candidate, got {params.shape[0]}")
    if not np.all(np.isfinite(params)):
        raise ValueError("params_population holds NaN or inf")
    return params


def _check_trials(trials: int) -> None:
    if int(trials) != trials or trials < 1:
        raise ValueError(f"trials must be an integer >= 1, got {trials}")


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:  # also refuses NaN
        raise ValueError(f"temperature must be > 0, got {temperature}")


# ---------------------------------------------------------------- fitness in the dream --------------
def dream_returns(params_population, mdnrnn_model, step_fn: Callable, initial_state_fn: Callable,
                  z0_sampler: Callable, trials: int, max_steps: int, temperature: float,
                  rng: np.random.Generator, per_trial: bool = False) -> np.ndarray:
    """Mean return of each candidate over `trials` dreamed episodes of at most `max_steps` steps: (P,).

    All P x K agents (agent p*K + k: trial k of candidate p) run as one batch through M per step
    (``dream``, with a = C(z, h) for every agent in one einsum). Returns float64; with `per_trial`, the
    (P, K) returns instead.
    """
    params = _check_population(params_population)
    _check_trials(trials)
    population = params.shape[0]

    def act(z, h):
        expected = n_params(z.shape[-1], h.shape[-1])
        if params.shape[1] != expected:
            raise ValueError(f"z {z.shape} and h {h.shape} need controllers of {expected} parameters, "
                             f"got {params.shape[1]}")
        return batched_actions(params, z, h, trials)

    returns = dream(act, population * trials, mdnrnn_model, step_fn, initial_state_fn, z0_sampler, max_steps,
                    temperature, rng).reshape(population, trials)
    return returns if per_trial else returns.mean(axis=1)


def dream(act: Callable, agents: int, mdnrnn_model, step_fn: Callable, initial_state_fn: Callable,
          z0_sampler: Callable, max_steps: int, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """The return of each of `agents` dreamed episodes of at most `max_steps` steps: (agents,) float64.

    One batch through M per step, for any policy act(z (B, L), h (B, H)) -> actions (B, 3):

        state = initial_state_fn(B); h = state[0]; z = z0_sampler(B, rng)
        a = act(z, h); z, r, d, state, h = step_fn(model, z, a, state, temperature, rng)

    r (B,) is added to an agent's return while it is alive; an agent dies after the step where d > 1/2
    (M's done probability, thresholded). step_fn may return numpy arrays or tensors (anything np.asarray
    takes); `state` is passed back as is.
    """
    _check_temperature(temperature)
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    state = initial_state_fn(agents)
    h = np.asarray(state[0])
    z = np.asarray(z0_sampler(agents, rng))
    if z.shape[0] != agents or h.shape[0] != agents:
        raise ValueError(f"z0 {z.shape} and h {h.shape} must have one row per agent ({agents})")
    total = np.zeros(agents, np.float64)
    alive = np.ones(agents, bool)
    for _ in range(max_steps):
        action = act(z, h)
        z_next, reward, done_prob, state, h_new = step_fn(mdnrnn_model, z, action, state, temperature, rng)
        reward = np.asarray(reward, np.float64).reshape(agents)
        done = np.asarray(done_prob, np.float64).reshape(agents) > 0.5
        total += np.where(alive, reward, 0.0)  # np.where, not alive * reward: a dead agent's NaN stays out
        alive &= ~done
        if not alive.any():
            break
        z, h = np.asarray(z_next), np.asarray(h_new)
    return total


# ---------------------------------------------------------------- the policy in the real env --------
_LOADED: dict[tuple[str, str], object] = {}  # (loader, file) -> what it loaded; one per process


def _resolve(path: str):
    """"package.module:function" -> the function (imported by name, as in a spawned worker)."""
    module, sep, qualname = path.partition(":")
    if not sep or not qualname:
        raise ValueError(f"expected 'package.module:function', got {path!r}")
    obj = importlib.import_module(module)
    for attr in qualname.split("."):
        obj = getattr(obj, attr)
    return obj


def _load_once(loader: str, file: str):
    key = (loader, str(Path(file).resolve()))
    if key not in _LOADED:
        _LOADED[key] = _resolve(loader)(file)
    return _LOADED[key]


def _initial_state(module, model, batch: int):
    """M's zero state: the module's ``initial_state(batch)``, or ``initial_state(model, batch)`` where it
    takes the model too (gdl.world_models.mdnrnn's does)."""
    import inspect

    takes = [p for p in inspect.signature(module.initial_state).parameters.values()
             if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return module.initial_state(model, batch) if len(takes) >= 2 else module.initial_state(batch)


class WorldModelPolicy:
    """The trained agent as a rollouts policy: 64x64x3 uint8 frame -> [steer, gas, brake] float32.

    Per step (Ha's carracing/model.py): mu, logvar = V(frame); z = mu + exp(logvar / 2) * eps (sampled,
    with this policy's seeded Generator; `sample_z=False` takes mu); a = C(z, h); then M takes (z, a) to
    the next hidden state. Picklable and cheap to build: files are read at the first call, once per
    process (`_LOADED`), so a worker that plays many episodes loads V and M once.

    kwargs (all plain values, so a worker can build it by import path; see ``make_policy``):

    * ``controller``: the parameter vector (n,) as an array, or a path to a ``.npy`` file holding it;
    * ``encoder``: V's weights file; ``encoder_loader`` ("module:function"): function(path) -> encode,
      where encode(frames uint8 (B, 64, 64, 3)) -> (mu, logvar), each (B, latent);
    * ``mdnrnn``: M's weights file; ``mdnrnn_loader`` ("module:function"): function(path) -> model; the
      same module must define ``initial_state(batch) -> (h, c)`` (or ``initial_state(model, batch)``) and
      ``step(model, z, action, state, temperature, rng) -> (z_next, reward, done_prob, state, h)``;
    * ``zero_features=True``: no V and no M; z and h are zeros (`latent`, `units` long): a stand-in for
      tests, and the "C sees nothing" baseline.
    """

    def __init__(self, seed: int, controller, encoder: str | None = None, mdnrnn: str | None = None,
                 encoder_loader: str = DEFAULT_ENCODER_LOADER, mdnrnn_loader: str = DEFAULT_MDNRNN_LOADER,
                 zero_features: bool = False, sample_z: bool = True, latent: int = LATENT, units: int = UNITS):
        self.rng = np.random.default_rng(seed)
        if isinstance(controller, (str, os.PathLike)):
            controller = np.load(controller)
        self.params = np.asarray(controller, np.float64)
        if self.params.ndim != 1 or not np.all(np.isfinite(self.params)):
            raise ValueError(f"controller must be a finite parameter vector (n,), got shape {self.params.shape}")
        unflatten(self.params)  # checks the size is 3d + 3
        self.zero_features, self.sample_z = bool(zero_features), bool(sample_z)
        if self.zero_features:
            if self.params.size != n_params(latent, units):
                raise ValueError(f"controller has {self.params.size} parameters; zero features of z {latent} "
                                 f"and h {units} need {n_params(latent, units)}")
            self.z, self.h = np.zeros((1, latent)), np.zeros((1, units))
        elif encoder is None or mdnrnn is None:
            raise ValueError("WorldModelPolicy needs encoder= and mdnrnn= files (or zero_features=True)")
        self.encoder, self.mdnrnn = encoder, mdnrnn
        self.encoder_loader, self.mdnrnn_loader = encoder_loader, mdnrnn_loader
        self.state = None  # M's (h, c) for this episode, made at the first frame

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if self.zero_features:
            return actions(self.params, self.z, self.h)[0]
        encode = _load_once(self.encoder_loader, self.encoder)
        model = _load_once(self.mdnrnn_loader, self.mdnrnn)
        module = importlib.import_module(self.mdnrnn_loader.partition(":")[0])
        if self.state is None:
            self.state = _initial_state(module, model, 1)
        mu, logvar = (np.asarray(t, np.float64) for t in encode(np.asarray(frame, np.uint8)[None]))
        z = mu + np.exp(logvar / 2.0) * self.rng.standard_normal(mu.shape) if self.sample_z else mu
        h = np.asarray(self.state[0], np.float64)
        action = actions(self.params, z, h)
        # M only advances the hidden state here; its sampled z_next is not used (temperature irrelevant).
        *_, self.state, _ = module.step(model, z.astype(np.float32), action, self.state, 1.0, self.rng)
        return action[0]


# ---------------------------------------------------------------- episodes in the real env ----------
def _play(job: tuple) -> tuple[int, int, dict]:
    """One (policy, seed) episode -> (policy index, seed index, {return, length[, frames, actions, rewards]}).

    Errors name the policy (`who`: "candidate 3", "policy random") and the episode seed."""
    index, k, seed, who, policy_name, policy_kwargs, max_steps, action_repeat, keep = job
    try:
        policy = make_policy(policy_name, seed, **policy_kwargs)
        episode = collect_episode(seed, policy, max_steps, action_repeat)
    except Exception as exc:
        raise RolloutError(f"{who}, episode seed {seed}: {type(exc).__name__}: {exc}") from exc
    out = {"return": float(np.sum(episode["rewards"], dtype=np.float64)), "length": len(episode["rewards"])}
    if keep:
        out.update(frames=episode["frames"], actions=episode["actions"], rewards=episode["rewards"])
    return index, k, out


@contextmanager
def worker_pool(workers: int | None = None):
    """A pool of `workers` spawned processes (default: one per allotted CPU) to pass to real_returns.

    Keep one pool for a whole training run: each worker imports gymnasium (and TensorFlow with V and M)
    and loads the models once, instead of once per generation.
    """
    workers = cpu_count() if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    with mp.get_context("spawn").Pool(workers) as pool:
        yield pool


def play(policies: Sequence[tuple[str, str, dict]], episode_seeds: Sequence[int], max_steps: int = 1000,
         workers: int | None = None, action_repeat: int = 1, pool=None, keep: Sequence[bool] | None = None
         ) -> list[list[dict]]:
    """Every policy on every episode seed in the real CarRacing: result[i][k] for policy i on seed k, a
    dict with its `return` and `length` (and, where keep[i], the episode's frames, actions and rewards).

    policies: (who, policy name, kwargs) each, `make_policy(name, seed, **kwargs)` building the policy
    for an episode (env seed = policy seed = the episode seed, so an episode is a pure function of the
    policy and its seed, and all policies meet the same tracks). The episodes are jobs for `pool` (see
    ``worker_pool``), or for a pool of `workers` spawned processes made for this call (default: one per
    allotted CPU); workers=1 without a pool plays them here, serially. A failure raises RolloutError
    naming `who` and the episode seed.
    """
    seeds = [int(s) for s in episode_seeds]
    _check_trials(len(seeds))
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    keep = [False] * len(policies) if keep is None else [bool(x) for x in keep]
    for who, name, kwargs in policies[:1]:
        make_policy(name, 0, **kwargs)  # bad kwargs fail before any process starts
    jobs = [(i, k, seed, who, name, dict(kwargs), max_steps, action_repeat, keep[i])
            for i, (who, name, kwargs) in enumerate(policies) for k, seed in enumerate(seeds)]
    results: list[list[dict | None]] = [[None] * len(seeds) for _ in policies]
    workers = cpu_count() if workers is None else int(workers)
    if pool is None and workers <= 1:
        for i, k, out in map(_play, jobs):
            results[i][k] = out
    else:
        with (worker_pool(min(workers, len(jobs))) if pool is None else _borrowed(pool)) as use:
            # One episode per task, unordered: the first failure surfaces at once (and the pool's exit
            # terminates the rest); the indices put each result in its place.
            for i, k, out in use.imap_unordered(_play, jobs, chunksize=1):
                results[i][k] = out
    return results


def real_returns(params_population, episode_seeds: Sequence[int], max_steps: int = 1000,
                 workers: int | None = None, policy_kwargs: dict | None = None, policy_name: str = POLICY,
                 action_repeat: int = 1, pool=None, per_trial: bool = False) -> np.ndarray:
    """Mean real CarRacing return of each candidate over the episodes `episode_seeds`: (P,) float64.

    Every candidate plays every seed (see ``play``: common random numbers, so all candidates are ranked
    on the same tracks). The policy is ``make_policy(policy_name, seed, controller=params[p],
    **policy_kwargs)``: by default the full agent, so policy_kwargs names V's and M's files (see
    ``WorldModelPolicy``). A failure raises RolloutError naming the candidate index and the episode seed.
    With `per_trial`, (P, K) returns.
    """
    params = _check_population(params_population)
    policy_kwargs = dict(policy_kwargs or {})
    if "controller" in policy_kwargs:
        raise ValueError("policy_kwargs must not hold 'controller': each job gets its candidate's params")
    policies = [(f"candidate {p}", policy_name, {"controller": params[p], **policy_kwargs}) for p in range(len(params))]
    played = play(policies, episode_seeds, max_steps, workers, action_repeat, pool)
    returns = np.array([[episode["return"] for episode in row] for row in played], dtype=np.float64)
    return returns if per_trial else returns.mean(axis=1)


@contextmanager
def _borrowed(pool):
    yield pool  # the caller's pool: not ours to close


# ---------------------------------------------------------------- seeds per generation --------------
def generation_seeds(seed: int, generation: int, count: int) -> list[int]:
    """`count` episode seeds for a generation (1-based): a pure function of (seed, generation)."""
    state = np.random.SeedSequence([int(seed), int(generation)]).generate_state(count, dtype=np.uint32)
    return [int(s) for s in state]


def generation_rng(seed: int, generation: int) -> np.random.Generator:
    """The dream's Generator for a generation: fitness stays a function of (params, generation)."""
    return np.random.default_rng([int(seed), int(generation)])


# ---------------------------------------------------------------- CMA-ES ----------------------------
class SeededRandn:
    """cma's `randn` option from its own Generator: randn(lam, n) -> (lam, n) standard normals.

    Why: by default cma draws from numpy's GLOBAL RandomState (option `seed` calls np.random.seed), which
    a pickled `es` does not carry, and which anything else in the process (a fitness function, a library)
    may draw from. With this object as `randn`, the sampler's whole random state lives inside `es`: pickle
    `es` and the next `ask()` after unpickling draws what it would have drawn uninterrupted.
    """

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def __call__(self, *shape: int) -> np.ndarray:
        return self.rng.standard_normal(shape if shape else None)


def _fingerprint(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _write_checkpoint(path: Path, payload: dict) -> None:
    """Pickle `payload` to a temp file beside `path`, fsync it, os.replace it in, fsync the folder."""
    with atomic_file(path) as tmp, open(tmp, "wb") as f:
        pickle.dump(payload, f, protocol=pickle.HIGHEST_PROTOCOL)
        f.flush()
        os.fsync(f.fileno())  # the bytes are on disk before the rename makes them the checkpoint
    fd = os.open(path.parent, os.O_RDONLY)  # the rename itself is durable once the folder is synced
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_checkpoint(checkpoint_path: str | Path, unpickle_es: bool = True) -> dict | None:
    """The checkpoint as a dict (None if there is none): fingerprint, settings, generation, history,
    generation_best (G, n) and es (unpickled unless `unpickle_es` is False: then the pickle's bytes, which
    need only builtins and numpy to read). `es.mean` is CMA-ES's current mean controller."""
    path = Path(checkpoint_path)
    if not path.exists():
        return None
    with open(path, "rb") as f:
        payload = pickle.load(f)
    if unpickle_es:
        payload["es"] = pickle.loads(payload["es"])
    return payload


def train_cmaes(fitness_fn: Callable[[np.ndarray, int], np.ndarray], n_params: int, popsize: int,
                sigma0: float, generations: int, seed: int, checkpoint_path: str | Path,
                on_generation: Callable[[int, dict], None] | None = None, x0: np.ndarray | None = None,
                settings: dict | None = None) -> tuple[np.ndarray, list[dict]]:
    """Maximise the return with CMA-ES: (best candidate seen, history: one dict per generation).

    fitness_fn(population (popsize, n) float64, generation (1-based)) -> returns (popsize,): it must be
    a pure function of its arguments for a resume to be exact (draw episode seeds or the dream's rng from
    ``generation_seeds`` / ``generation_rng``). cma minimises, so it is told -returns. The search starts
    at `x0` (default zeros: every action at its middle: steer 0, gas 1/2, brake 0) with step size sigma0.

    History row g: generation, best / mean / worst return of the generation, best_so_far, sigma (after
    the update), evaluations. The best candidate of every generation is kept in the checkpoint
    (`generation_best`), so the result for G generations is the same whether the run went further or not.

    After every generation the checkpoint (pickled `es` + history) replaces `checkpoint_path` atomically,
    then on_generation(generation, row) is called. On start, a checkpoint whose fingerprint (n_params,
    popsize, sigma0, seed, x0, cma's version and options, and `settings`: the fitness's own knobs) matches is resumed
    at its next generation; one that does not match is ignored, with a message, and overwritten.

    Determinism: cma samples with a ``SeededRandn(seed)`` stored in `es` (not numpy's global RNG), so a
    resumed run's history equals an uninterrupted one bit for bit (same machine and package versions).
    The number of generations is not in the fingerprint: asking for more continues an old run.
    """
    import cma

    n_params, popsize, generations = int(n_params), int(popsize), int(generations)
    if n_params < 1:
        raise ValueError(f"n_params must be >= 1, got {n_params}")
    if popsize < 2:
        raise ValueError(f"population (popsize) must be >= 2, got {popsize}")
    if not sigma0 > 0:
        raise ValueError(f"sigma0 must be > 0, got {sigma0}")
    if generations < 1:
        raise ValueError(f"generations must be >= 1, got {generations}")
    x0 = np.zeros(n_params) if x0 is None else np.asarray(x0, np.float64)
    if x0.shape != (n_params,):
        raise ValueError(f"x0 must have shape ({n_params},), got {x0.shape}")
    path = Path(checkpoint_path)
    options = {
        "popsize": popsize,
        "seed": np.nan,  # nan: cma leaves numpy's global RNG alone (an int would np.random.seed it)
        "verbose": -9, "verb_disp": 0, "verb_log": 0,  # no prints, no outcmaes/ files
        # Small populations (< 6) sample mirrored pairs; cma's default method re-injects the mirrors as
        # extra solutions, which a population of 2 has no room for ("Found unused injected
        # direction/solutions" in generation 2). Plain mirrored pairs work at every size.
        "CMA_mirrormethod": 0,
    }
    config = {"n_params": n_params, "popsize": popsize, "sigma0": float(sigma0), "seed": int(seed),
              "x0": hashlib.sha256(x0.tobytes()).hexdigest(), "cma": cma.__version__, "fitness": settings or {},
              "options": {k: v for k, v in options.items() if k != "seed"}}
    fingerprint = _fingerprint(config)

    saved = load_checkpoint(path, unpickle_es=False)
    if saved is not None and saved["fingerprint"] != fingerprint:
        old = saved["settings"]
        differ = sorted(k for k in {*old, *config} if old.get(k) != config.get(k))
        print(f"{path}: ignoring the checkpoint, it was made with other settings "
              f"({', '.join(f'{k}: {old.get(k)!r} there, {config.get(k)!r} here' for k in differ)}); "
              "starting afresh", flush=True)
        saved = None
    if saved is not None:
        es, history = pickle.loads(saved["es"]), saved["history"]
        generation_best = list(saved["generation_best"])
        print(f"{path}: resuming CMA-ES after generation {saved['generation']}/{generations}", flush=True)
    else:
        # randn: the sampler's RNG, pickled with es (see SeededRandn)
        es = cma.CMAEvolutionStrategy(x0, float(sigma0), {**options, "randn": SeededRandn(seed)})
        history, generation_best = [], []

    for generation in range(len(history) + 1, generations + 1):
        population = np.array(es.ask(), dtype=np.float64)  # (popsize, n)
        returns = np.asarray(fitness_fn(population, generation), dtype=np.float64)
        if returns.shape != (popsize,) or not np.all(np.isfinite(returns)):
            raise ValueError(f"generation {generation}: fitness_fn must return {popsize} finite returns, "
                             f"got shape {returns.shape}: {returns}")
        es.tell(list(population), list(-returns))  # cma minimises
        best = int(np.argmax(returns))
        generation_best.append(population[best].copy())
        best_so_far = max([row["best"] for row in history] + [float(returns[best])])
        row = {"generation": generation, "best": float(returns[best]), "mean": float(returns.mean()),
               "worst": float(returns.min()), "best_so_far": best_so_far, "sigma": float(es.sigma),
               "evaluations": int(es.countevals)}
        history.append(row)
        _write_checkpoint(path, {"fingerprint": fingerprint, "settings": config, "generation": generation,
                                 "history": history, "generation_best": np.stack(generation_best),
                                 "es": pickle.dumps(es, protocol=pickle.HIGHEST_PROTOCOL)})
        if on_generation is not None:
            on_generation(generation, row)

    history = history[:generations]  # a checkpoint from a longer run: its first `generations` rows
    winner = int(np.argmax([row["best"] for row in history]))  # the first generation to reach the best
    return np.array(generation_best[winner]), [dict(row) for row in history]
