"""World Models (chapter 12): the chain's stages, one module each, named after their dvc.yaml stages.

    python -m stages.world_models.rollouts 0        # rollouts@0:    data/rollouts/shard_0.npz
    python -m stages.world_models.vae               # wm_vae:        models/world_models/vae/ (V)
    python -m stages.world_models.encode            # wm_encode:     data/world_models/latents.npz
    python -m stages.world_models.mdnrnn            # wm_mdnrnn:     models/world_models/mdnrnn/ (M)
    python -m stages.world_models.controller real   # wm_controller@real (or @dream): C, by CMA-ES
    python -m stages.world_models.evaluate          # wm_evaluate:   metrics/world_models.json (+ .meta.json)
    python -m stages.report world_models            # wm_report:     reports/world_models.{ipynb,html}

One module per stage, so a stage's code deps are what it imports (tests/test_deps.py): changing V's code
reruns V and what follows, not the rollouts. This file holds what several of them share: paths, seeds,
the episodes' train/validation split.

Params: the `world_models` section of params.yaml (schema in gdl/params.py); the models are in
gdl/world_models/. Every part draws its seeds from world_models.seed (or the top-level seed): shard s
from (seed, s), V, M, C and the evaluation from their own tags, so changing one part's knobs leaves
the others' randomness as it was.

Processes: a shard's episodes and the real controller's episodes are played by spawned worker
processes, one per allotted CPU (the affinity mask Slurm sets from the rule's cpus_per_task;
world_models.controller.workers overrides it for the controller and the evaluation).

Resuming: V and M resume from their epoch checkpoints (gdl/training.py), C from its last CMA-ES
generation (checkpoints/wm_controller_<mode>.pkl, written atomically each generation). Test hooks:
GDL_KILL_AFTER_EPOCH=N as for every training stage; GDL_KILL_AFTER_GENERATION=N SIGKILLs the controller
stage right after generation N's checkpoint is on disk.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gdl.arrays import DataFileError, load_arrays
from stages.common import fail, params_or_exit

ROLLOUTS = Path("data/rollouts")
LATENTS = Path("data/world_models/latents.npz")
MODELS = Path("models/world_models")
VAE, MDNRNN = MODELS / "vae", MODELS / "mdnrnn"
CHECKPOINTS = Path("checkpoints")
METRICS, META = Path("metrics/world_models.json"), Path("metrics/world_models.meta.json")
EPISODES = Path("samples/world_models.npz")
MODES = ("real", "dream")
EXPERIMENT = "world_models"  # the MLflow experiment of every stage of the chain
# Seed tags: each part of the chain draws from SeedSequence([seed, tag, ...]).
TAG_SHARD, TAG_VAE, TAG_MDNRNN, TAG_CONTROLLER, TAG_EVALUATE = 1, 2, 3, 4, 5


def wm_seed(params) -> int:
    own = params.world_models.seed
    return params.seed if own is None else own


def derived_seed(params, *tags: int) -> int:
    """A 31-bit seed for one part of the chain, a pure function of (seed, tags)."""
    return int(np.random.SeedSequence([wm_seed(params), *tags]).generate_state(1, np.uint32)[0] >> 1)


def shard_path(shard: int) -> Path:
    return ROLLOUTS / f"shard_{shard}.npz"


def controller_path(mode: str) -> Path:
    return MODELS / f"controller_{mode}.npy"


def workers(params) -> int | None:
    return params.world_models.controller.workers or None  # None: one per allotted CPU


# ---------------------------------------------------------------- data for V and M ------------------
def load_shards(params, stage: str) -> dict[str, np.ndarray]:
    """Every shard, in the order of world_models.rollouts.shards, concatenated (episode_lengths too)."""
    keys = ("frames", "actions", "rewards", "dones", "episode_lengths")
    parts = []
    for shard in params.world_models.rollouts.shards:
        try:
            parts.append(load_arrays(shard_path(shard)))
        except DataFileError as exc:
            fail(stage, f"{exc} (rerun `dvc repro rollouts@{shard}`)")
    return {key: np.concatenate([p[key] for p in parts]) for key in keys}


def validation_episodes(lengths: np.ndarray, fraction: float) -> np.ndarray:
    """Which episodes are held out (bool, per episode): the last round(fraction * E), at least one when
    there are two or more. Shards are independent draws, so the last episodes are as good as any."""
    count = len(lengths)
    held = min(max(1, round(fraction * count)), count - 1) if count > 1 else 0
    return np.arange(count) >= count - held


def step_mask(lengths: np.ndarray, per_episode: np.ndarray) -> np.ndarray:
    return np.repeat(per_episode, lengths)


def load_latents(stage: str) -> dict[str, np.ndarray]:
    try:
        return load_arrays(LATENTS)
    except DataFileError as exc:
        fail(stage, f"{exc} (rerun `dvc repro wm_encode`)")


def split_latents(latents: dict, validation: bool) -> dict:
    """The steps of the training (or validation) episodes, laid out as make_sequences wants them."""
    keep = latents["validation"] == validation
    steps = step_mask(latents["episode_lengths"], keep)
    out = {k: latents[k][steps] for k in ("mu", "logvar", "actions", "rewards", "dones")}
    out["episode_lengths"] = latents["episode_lengths"][keep]
    return out


def agent_files() -> dict:
    """What a worker needs to build the full agent (see controller.WorldModelPolicy)."""
    return {"encoder": str(VAE), "mdnrnn": str(MDNRNN)}


def run(stage: str, doc: str, work: Callable, item: tuple[str, dict] | None = None, argv=None) -> int:
    """A stage's command line: parse (`--help`, the item if the stage has one), validate params.yaml, start
    TensorFlow quietly, then work(params) or work(params, item)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if item is not None:
        name, kwargs = item
        parser.add_argument(name, **kwargs)
    args = parser.parse_args(argv)
    value = getattr(args, item[0]) if item else None
    stage = stage.format(value)
    params = params_or_exit(stage)
    if item is None or item[0] != "shard":  # the rollouts need no TensorFlow
        from stages.common import quiet_tensorflow

        quiet_tensorflow()
    work(params, stage) if item is None else work(params, value, stage)
    return 0
