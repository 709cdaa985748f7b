"""wm_vae: V, the paper's conv VAE (z 32), on every shard's frames -> models/world_models/vae/.

The last world_models.vae.val_fraction of the episodes are held out (for V and M alike). Also writes
models/world_models/vae.json (held-out reconstruction MSE and the mean frame's, the history) and the
curves plots/train/wm_vae.json. Resumes from its epoch checkpoint (checkpoints/wm_vae/) when killed.
"""

from __future__ import annotations

import sys

from gdl.atomic import write_json
from gdl.training import (
    Checkpoint,
    commit_id,
    curves,
    fingerprint,
    fit_with_resume,
    set_seed,
)
from gdl.world_models import vae as V
from stages.world_models import (
    CHECKPOINTS,
    EXPERIMENT,
    MODELS,
    TAG_VAE,
    VAE,
    derived_seed,
    load_shards,
    run,
    step_mask,
    validation_episodes,
)


def train_vae(params, stage: str) -> None:
    cfg = params.world_models.vae
    data = load_shards(params, stage)
    val = step_mask(data["episode_lengths"], validation_episodes(data["episode_lengths"], cfg.val_fraction))
    train_frames, val_frames = data["frames"][~val], data["frames"][val]
    seed = derived_seed(params, TAG_VAE)
    set_seed(seed)
    model = V.build_vae(kl_tolerance=cfg.kl_tolerance, learning_rate=cfg.learning_rate, seed=seed)
    checkpoint = Checkpoint(CHECKPOINTS / "wm_vae", fingerprint(cfg.model_dump(), seed, train_frames))
    commit = commit_id()
    print(f"{stage}: {len(train_frames)} training frames, {len(val_frames)} validation frames", flush=True)
    result = fit_with_resume(
        model, train_frames, epochs=cfg.epochs, batch_size=cfg.batch_size, seed=seed,
        validation_data=(val_frames,) if len(val_frames) else None, checkpoint=checkpoint, experiment=EXPERIMENT,
        run_name=f"vae-{commit}", tags={"stage": stage, "commit": commit}, params={"seed": seed, **cfg.model_dump()})
    held_out = val_frames if len(val_frames) else train_frames
    figures = {"reconstruction_mse": V.reconstruction_mse(model, held_out),
               "mean_frame_mse": V.mean_frame_mse(train_frames, held_out),
               "frames": len(train_frames), "validation_frames": len(val_frames)}
    V.save_vae(model, VAE)
    write_json(MODELS / "vae.json", {"figures": figures, "history": result.history})
    write_json("plots/train/wm_vae.json", curves(result.history))
    checkpoint.clear()
    print(f"{stage}: reconstruction MSE {figures['reconstruction_mse']:.5f} on held-out frames, "
          f"the mean frame's {figures['mean_frame_mse']:.5f}")


if __name__ == "__main__":
    sys.exit(run("wm_vae", __doc__, train_vae))
