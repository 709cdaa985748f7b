"""wm_controller@<mode>: C, the linear controller [z, h] -> 3 actions (867 numbers), by CMA-ES.

mode `real`: each candidate drives real CarRacing episodes (the same seeds for the whole population),
played by one spawned process per allotted CPU (world_models.controller.workers overrides). mode
`dream`: the whole population x trials is stepped as one batch through M per time step, at the dream's
temperature. Writes models/world_models/controller_<mode>.npy (CMA-ES's final mean), .json (the history:
best, mean and worst return per generation) and plots/train/wm_controller_<mode>.json.

Killed, it resumes after its last generation (checkpoints/wm_controller_<mode>.pkl, written atomically
each generation) and ends bit-identical to an uninterrupted run. Test hook: GDL_KILL_AFTER_GENERATION=N
SIGKILLs the stage right after generation N's checkpoint is on disk.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from contextlib import nullcontext

import numpy as np

from gdl.atomic import atomic_file, write_json, write_text
from gdl.download import sha256_file
from gdl.training import commit_id, log_metrics_batch, mlflow_run
from gdl.world_models import controller as C
from gdl.world_models import mdnrnn as M
from gdl.world_models.rollouts import RolloutError
from stages.common import fail
from stages.world_models import (
    CHECKPOINTS,
    EXPERIMENT,
    MDNRNN,
    MODELS,
    MODES,
    TAG_CONTROLLER,
    VAE,
    agent_files,
    controller_path,
    derived_seed,
    load_latents,
    run,
    split_latents,
    workers,
)

KILL_AFTER_GENERATION_ENV = "GDL_KILL_AFTER_GENERATION"

class Dream:
    """M with the initial latents of the training episodes: z_0 = mu + sigma * eps of a random first frame."""

    def __init__(self, stage: str):
        latents = load_latents(stage)
        train = split_latents(latents, False)
        firsts = np.cumsum(train["episode_lengths"]) - train["episode_lengths"]
        self.mu0, self.sigma0 = train["mu"][firsts], np.exp(0.5 * train["logvar"][firsts])
        self.module, self.model = M, M.load_model(MDNRNN, compile=False)

    def z0(self, agents: int, rng: np.random.Generator) -> np.ndarray:
        pick = rng.integers(0, len(self.mu0), agents)
        return (self.mu0[pick] + self.sigma0[pick] * rng.standard_normal(self.mu0[pick].shape)).astype(np.float32)

    def returns(self, params_population, trials, max_steps, temperature, rng, per_trial=False):
        return C.dream_returns(params_population, self.model, self.module.step, self.model.initial_state, self.z0,
                             trials, max_steps, temperature, rng, per_trial)

    def policy_returns(self, act, agents, max_steps, temperature, rng):
        return C.dream(act, agents, self.model, self.module.step, self.model.initial_state, self.z0, max_steps,
                     temperature, rng)


def train_controller(params, mode: str, stage: str) -> None:
    cfg = getattr(params.world_models.controller, mode)
    seed = derived_seed(params, TAG_CONTROLLER, MODES.index(mode))
    kill_after = os.environ.get(KILL_AFTER_GENERATION_ENV, "").strip()
    kill_after = int(kill_after) if kill_after else None
    checkpoint = CHECKPOINTS / f"wm_controller_{mode}.pkl"
    # A resumed run logs its generations to the MLflow run the killed one started.
    run_file = CHECKPOINTS / f"wm_controller_{mode}.mlflow_run"
    run_id = run_file.read_text().strip() if run_file.exists() and checkpoint.exists() else None
    # The fitness's own knobs (and the files it reads) make the fingerprint: other settings, other run.
    # Not the number of generations: a run killed at generation 10 of 20 and restarted for 40 carries on.
    settings = {"mode": mode, **cfg.model_dump(exclude={"generations"}),
                "vae": sha256_file(VAE / "model.weights.h5"), "mdnrnn": sha256_file(MDNRNN / "model.weights.h5")}
    dream = Dream(stage) if mode == "dream" else None
    commit = commit_id()
    started = time.perf_counter()
    with mlflow_run(EXPERIMENT, {"seed": seed, **settings}, run_id=run_id, run_name=f"controller-{mode}-{commit}",
                    tags={"stage": stage, "commit": commit}) as run, \
            (C.worker_pool(workers(params)) if mode == "real" else nullcontext()) as pool:
        write_text(run_file, run.info.run_id)

        def fitness(population, generation):
            if mode == "dream":
                return dream.returns(population, cfg.trials, cfg.max_steps, cfg.temperature,
                                     C.generation_rng(seed, generation))
            return C.real_returns(population, C.generation_seeds(seed, generation, cfg.trials), cfg.max_steps,
                                  policy_kwargs=agent_files(), pool=pool)

        def on_generation(generation, row):
            print(f"{stage}: generation {generation}/{cfg.generations}: best {row['best']:.1f}, mean "
                  f"{row['mean']:.1f}, worst {row['worst']:.1f} (sigma {row['sigma']:.4f}, "
                  f"{time.perf_counter() - started:.0f} s)", flush=True)
            now = int(time.time() * 1000)
            log_metrics_batch(run.info.run_id, [(k, float(row[k]), now, generation)
                                                for k in ("best", "mean", "worst", "sigma")])
            if generation == kill_after:
                print(f"{KILL_AFTER_GENERATION_ENV}={generation}: checkpoint written, killing this process", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)

        try:
            best, history = C.train_cmaes(fitness, C.n_params(), cfg.population, cfg.sigma0, cfg.generations, seed,
                                          checkpoint, on_generation, settings=settings)
        except RolloutError as exc:
            fail(stage, f"{exc} (nothing written; the checkpoint of the last finished generation is kept)")
    # CMA-ES's mean is its estimate of the best controller; the best candidate of one generation won on
    # that generation's tracks only (noisier). Both are kept; `controller` in the file is the mean.
    es = C.load_checkpoint(checkpoint)["es"]
    with atomic_file(controller_path(mode)) as tmp:
        np.save(tmp, np.asarray(es.mean, np.float64))
    write_json(MODELS / f"controller_{mode}.json", {"mode": mode, "seed": seed, "history": history,
                                                     "best_candidate": [float(v) for v in best]})
    write_json(f"plots/train/wm_controller_{mode}.json", history)
    checkpoint.unlink(missing_ok=True)
    run_file.unlink(missing_ok=True)
    print(f"{stage}: {len(history)} generations in {time.perf_counter() - started:.0f} s; wrote "
          f"{controller_path(mode)}")


if __name__ == "__main__":
    sys.exit(run("wm_controller@{}", __doc__, train_controller, item=("mode", {"choices": MODES, "help": "where the candidates are scored"})))
