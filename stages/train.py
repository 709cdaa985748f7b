"""train@<family>: fit one family on its processed dataset, resuming from a checkpoint if one exists.

Writes models/<family>/ (model.weights.h5, history.json). Logs params, per-epoch metrics and sample
images to MLflow (experiment = family). Kill it and run it again: it resumes after the last full epoch.
"""

from __future__ import annotations

import json

from gdl import families
from gdl.arrays import DataFileError, load_arrays
from stages.common import atomic_dir, fail, stage_args


def log_samples_to_mlflow(module, model, epoch: int, seed: int) -> None:
    """A picture of the model's samples as an MLflow artifact: an 8x8 grid of images, or a 2-D scatter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow

    samples = module.sample(model, 64, seed)
    fig, ax = plt.subplots(figsize=(4, 4))
    if samples.ndim == 4:  # images (n, H, W, C)
        n, h, w, c = samples.shape
        grid = samples.reshape(8, 8, h, w, c).transpose(0, 2, 1, 3, 4).reshape(8 * h, 8 * w, c)
        ax.imshow(grid.squeeze(), cmap="gray", vmin=0, vmax=1)
        ax.axis("off")
    else:  # points (n, 2)
        samples = module.sample(model, 2000, seed)
        ax.scatter(samples[:, 0], samples[:, 1], s=2)
    ax.set_title(f"samples after epoch {epoch}")
    mlflow.log_figure(fig, f"samples/epoch_{epoch:04d}.png")
    plt.close(fig)


def main(argv=None) -> None:
    family, stage, params = stage_args("train", __doc__, families.FAMILIES, "family", argv)
    cfg = getattr(params, family)
    try:
        data = load_arrays(f"data/processed/{cfg.dataset}.npz")
    except DataFileError as exc:
        fail(stage, str(exc))

    from gdl.training import Checkpoint, fingerprint, fit_with_resume, set_seed

    set_seed(params.seed)
    module = families.get(family)
    model = module.build(cfg, data, params.seed)
    x, y, validation = module.train_arrays(data)
    checkpoint = Checkpoint(f"checkpoints/{family}", fingerprint(cfg.model_dump(), params.seed, x))
    history = fit_with_resume(
        model, x, y=y, epochs=cfg.epochs, batch_size=cfg.batch_size, validation_data=validation,
        checkpoint=checkpoint, experiment=family,
        params={"seed": params.seed, "dataset": cfg.dataset, **cfg.model_dump()},
        log_samples=lambda m, epoch: log_samples_to_mlflow(module, m, epoch, params.seed))
    with atomic_dir(f"models/{family}") as out:
        model.save_weights(out / "model.weights.h5")
        (out / "history.json").write_text(json.dumps(history, indent=1) + "\n")
    checkpoint.clear()  # finished: a later run (new code, same params) must train from scratch
    print(f"{stage}: final " + ", ".join(f"{k}={v[-1]:.4f}" for k, v in history.items() if k != "epoch"))


if __name__ == "__main__":
    main()
