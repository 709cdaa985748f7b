"""train@<model>: fit one model on its processed dataset, resuming from a checkpoint if one exists.

Writes models/<model>/ (model.weights.h5, history.json) and the training curves plots/train/<model>.json
(a DVC plot). Logs params, per-epoch metrics and sample pictures to MLflow (experiment = family, run name
= family-dataset-commit). Kill it and run it again: it resumes after the last checkpoint.
"""

from __future__ import annotations

import json
import subprocess

from gdl.arrays import DataFileError, load_arrays
from gdl.atomic import atomic_dir, write_json
from gdl.params import model_seed
from stages.common import fail, model_args, quiet_tensorflow


def log_samples_to_mlflow(family, model, epoch: int, seed: int) -> None:
    """A picture of the model's samples as an MLflow artifact: an 8x8 grid of images, or a 2-D scatter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow

    fig, ax = plt.subplots(figsize=(4, 4))
    if family.samples == "images":
        samples = family.model().sample(model, 64, seed)
        n, h, w, c = samples.shape
        grid = samples.reshape(8, 8, h, w, c).transpose(0, 2, 1, 3, 4).reshape(8 * h, 8 * w, c)
        ax.imshow(grid.squeeze(), cmap="gray", vmin=0, vmax=1)
        ax.axis("off")
    else:  # points (n, 2)
        samples = family.model().sample(model, 2000, seed)
        ax.scatter(samples[:, 0], samples[:, 1], s=2)
    ax.set_title(f"samples after epoch {epoch}")
    mlflow.log_figure(fig, f"samples/epoch_{epoch:04d}.png")
    plt.close(fig)


def commit_id() -> str:
    """The checked-out commit (short), to name the MLflow run; "uncommitted" outside git."""
    proc = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else "uncommitted"


def curves(history: dict) -> list[dict]:
    """history.json's columns as rows, one per epoch: the DVC plots format."""
    keys = list(history)
    return [dict(zip(keys, values)) for values in zip(*history.values())]


def main(argv=None) -> None:
    inst, stage, params = model_args("train", __doc__, argv)
    quiet_tensorflow()
    cfg, seed = getattr(params, inst.name), model_seed(params, inst.name)
    try:
        data = load_arrays(f"data/processed/{inst.dataset}.npz")
    except DataFileError as exc:
        fail(stage, str(exc))

    from gdl.training import Checkpoint, fingerprint, fit_with_resume, set_seed

    set_seed(seed)
    family, module = inst.family, inst.family.model()
    model = module.build(cfg, data, seed)
    x, y, validation = module.train_arrays(data)
    checkpoint = Checkpoint(f"checkpoints/{inst.name}", fingerprint(cfg.model_dump(), seed, x))
    commit = commit_id()
    history = fit_with_resume(
        model, x, y=y, epochs=cfg.epochs, batch_size=cfg.batch_size, validation_data=validation,
        checkpoint=checkpoint, experiment=family.name, run_name=f"{family.name}-{inst.dataset}-{commit}",
        tags={"family": family.name, "model": inst.name, "dataset": inst.dataset, "commit": commit},
        params={"seed": seed, "dataset": inst.dataset, **cfg.model_dump()},
        log_samples=lambda m, epoch: log_samples_to_mlflow(family, m, epoch, seed))
    with atomic_dir(f"models/{inst.name}") as out:
        model.save_weights(out / "model.weights.h5")
        (out / "history.json").write_text(json.dumps(history, indent=1) + "\n")
    write_json(f"plots/train/{inst.name}.json", curves(history))
    checkpoint.clear()  # finished: a later run (new code, same params) must train from scratch
    print(f"{stage}: final " + ", ".join(f"{k}={v[-1]:.4f}" for k, v in history.items() if k != "epoch"))


if __name__ == "__main__":
    main()
