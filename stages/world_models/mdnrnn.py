"""wm_mdnrnn: M, the MDN-RNN (LSTM 256, 5 Gaussians per latent dimension, reward and done heads), on the
encoded episodes -> models/world_models/mdnrnn/.

Also writes models/world_models/mdnrnn.json (held-out next-z NLL in nats per dimension, next to the
baseline z(t+1) ~ N(z(t), sigma^2)) and the curves plots/train/wm_mdnrnn.json. Resumes from its epoch
checkpoint (checkpoints/wm_mdnrnn/) when killed.
"""

from __future__ import annotations

import sys

import numpy as np

from gdl.atomic import write_json
from gdl.training import (
    Checkpoint,
    commit_id,
    curves,
    fingerprint,
    fit_with_resume,
    set_seed,
    validate,
)
from gdl.world_models import mdnrnn as M
from stages.world_models import (
    CHECKPOINTS,
    EXPERIMENT,
    MDNRNN,
    MODELS,
    TAG_MDNRNN,
    derived_seed,
    load_latents,
    run,
    split_latents,
)


def train_mdnrnn(params, stage: str) -> None:
    cfg = params.world_models.mdnrnn
    latents = load_latents(stage)
    seed = derived_seed(params, TAG_MDNRNN)
    set_seed(seed)
    rng = np.random.default_rng(seed)
    windows = {}
    for name, held in (("train", False), ("val", True)):
        part = split_latents(latents, held)
        if len(part["episode_lengths"]):
            windows[name] = M.make_sequences(part["mu"], part["logvar"], part["actions"], part["rewards"],
                                             part["dones"], part["episode_lengths"], cfg.seq_len, rng)
    windows.setdefault("val", windows["train"])
    x, y = M.fit_arrays(windows["train"])
    val_x, val_y = M.fit_arrays(windows["val"])
    model = M.build_mdnrnn(latent_dim=latents["mu"].shape[1], mixtures=cfg.mixtures, seed=seed,
                           learning_rate=cfg.learning_rate)
    checkpoint = Checkpoint(CHECKPOINTS / "wm_mdnrnn", fingerprint(cfg.model_dump(), seed, x[0], x[1]))
    commit = commit_id()
    print(f"{stage}: {len(x[0])} training windows of {cfg.seq_len} steps, {len(val_x[0])} validation", flush=True)
    result = fit_with_resume(model, x, y=y, epochs=cfg.epochs, batch_size=cfg.batch_size, seed=seed,
                             validation_data=(val_x, val_y), checkpoint=checkpoint, experiment=EXPERIMENT,
                             run_name=f"mdnrnn-{commit}", tags={"stage": stage, "commit": commit},
                             params={"seed": seed, **cfg.model_dump()})
    train, val = windows["train"], windows["val"]
    sigma2 = M.baseline_fit(train["z"], train["z_next"], train["next_mask"])
    held = validate(model, val_x, val_y)
    figures = {"next_z_nll": float(held["z_nll"]),
               "baseline_next_z_nll": M.baseline_nll(val["z"], val["z_next"], sigma2, val["next_mask"]),
               "reward_mse": float(held["reward_mse"]), "done_bce": float(held["done_bce"]),
               "windows": len(x[0]), "validation_windows": len(val_x[0])}
    M.save_model(model, MDNRNN)
    write_json(MODELS / "mdnrnn.json", {"figures": figures, "history": result.history})
    write_json("plots/train/wm_mdnrnn.json", curves(result.history))
    checkpoint.clear()
    print(f"{stage}: held-out next-z NLL {figures['next_z_nll']:.4f} nats/dim, the baseline's "
          f"{figures['baseline_next_z_nll']:.4f}")


if __name__ == "__main__":
    sys.exit(run("wm_mdnrnn", __doc__, train_mdnrnn))
