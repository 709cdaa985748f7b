"""wm_encode: every frame of every shard through V -> data/world_models/latents.npz.

mu and logvar of V's posterior per frame, with the actions, rewards, dones and episode lengths, and which
episodes are held out (`validation`, per episode): what M learns from.
"""

from __future__ import annotations

import sys

from gdl.arrays import save_arrays
from gdl.world_models import vae as V
from stages.common import describe
from stages.world_models import LATENTS, VAE, load_shards, run, validation_episodes


def encode(params, stage: str) -> None:
    cfg = params.world_models.vae
    data = load_shards(params, stage)
    model = V.load_vae(VAE, compile=False)
    mu, logvar = V.encode(model, data["frames"])
    out = {"mu": mu, "logvar": logvar, **{k: data[k] for k in ("actions", "rewards", "dones", "episode_lengths")},
           "validation": validation_episodes(data["episode_lengths"], cfg.val_fraction)}
    save_arrays(LATENTS, out)
    print(describe(LATENTS, out))


if __name__ == "__main__":
    sys.exit(run("wm_encode", __doc__, encode))
