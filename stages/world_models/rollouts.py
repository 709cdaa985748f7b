"""rollouts@<shard>: one shard of CarRacing episodes -> data/rollouts/shard_<shard>.npz.

The shard's episodes (world_models.rollouts.rollouts / number of shards) are played by one spawned process
per allotted CPU; the file is the same bytes whatever their number (each episode is a pure function of
its seeds). A failing episode stops the stage with a message naming the shard seed and the episode, and
nothing is written.
"""

from __future__ import annotations

import sys

from gdl.arrays import save_arrays
from gdl.world_models.rollouts import RolloutError, collect_shard, cpu_count
from stages.common import describe, fail
from stages.world_models import TAG_SHARD, derived_seed, run, shard_path


def rollouts(params, shard: int, stage: str) -> None:
    cfg = params.world_models.rollouts
    if shard not in cfg.shards:
        fail(stage, f"shard {shard} is not in params.yaml's world_models.rollouts.shards {cfg.shards}")
    episodes = cfg.rollouts // len(cfg.shards)
    n = cpu_count()
    print(f"{stage}: {episodes} episodes of up to {cfg.max_steps} steps, {cfg.policy} policy, {n} processes",
          flush=True)
    try:
        data = collect_shard(derived_seed(params, TAG_SHARD, shard), episodes, cfg.max_steps, cfg.policy,
                             workers=n)
    except RolloutError as exc:
        fail(stage, f"{exc} (nothing written)")
    save_arrays(shard_path(shard), data)
    print(describe(shard_path(shard), data))


if __name__ == "__main__":
    sys.exit(run("rollouts@{}", __doc__, rollouts, item=("shard", {"type": int, "help": "the shard id (one of world_models.rollouts.shards)"})))
