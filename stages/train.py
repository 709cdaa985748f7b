"""train@<model>: fit one model on its processed dataset, resuming from a checkpoint if one exists.

Writes models/<model>/ (model.weights.h5, history.json) and the training curves plots/train/<model>.json
(a DVC plot). Logs params, per-epoch metrics and sample pictures to MLflow (experiment = family, run name
= family-dataset-commit). Kill it and run it again: it resumes after the last checkpoint (written at most
every 30 s of training and after the last epoch; see gdl/training.py).

It ends with a line on where its time went, e.g.
    train@vae: 60 epochs, 1258 images/epoch: gradient steps 101.2 s (first epoch 3.1 s, then 769 images/s),
    stage 112.0 s, overhead 9.6%
(the stage's wall time counts from the process's start; overhead = the share of it outside the gradient
steps). The figures go to MLflow as metrics too, never into the stage's outputs, which stay bit-identical
from run to run.

Test hooks (environment variables):
    GDL_CHECKPOINT_SECONDS=S   checkpoint at most every S seconds of training (0: after every epoch)
    GDL_KILL_AFTER_EPOCH=N     SIGKILL this process right after the checkpoint of epoch N is on disk
"""

from __future__ import annotations

import json
import time

from gdl.arrays import DataFileError, load_arrays
from gdl.atomic import atomic_dir, write_json
from gdl.params import model_seed
from gdl.sequences import vocab_of
from stages.common import fail, model_args, quiet_tensorflow

STARTED = time.time()  # the fallback for the process's start time, where /proc cannot tell


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


def main(argv=None) -> None:
    inst, stage, params = model_args("train", __doc__, argv)
    quiet_tensorflow()
    cfg, seed = getattr(params, inst.name), model_seed(params, inst.name)
    try:
        data = load_arrays(inst.data_path)
    except DataFileError as exc:
        fail(stage, str(exc))

    from gdl.training import (
        Checkpoint,
        commit_id,
        curves,
        fingerprint,
        fit_with_resume,
        process_start_time,
        set_seed,
    )

    started = process_start_time(STARTED)
    set_seed(seed)
    family, module = inst.family, inst.family.model()
    model = module.build(cfg, data, seed)
    x, y, validation = module.train_arrays(data, cfg)
    checkpoint = Checkpoint(f"checkpoints/{inst.name}", fingerprint(cfg.model_dump(), seed, x))
    commit = commit_id()
    result = fit_with_resume(
        model, x, y=y, epochs=cfg.epochs, batch_size=cfg.batch_size, seed=seed, validation_data=validation,
        checkpoint=checkpoint, experiment=family.name, run_name=f"{family.name}-{inst.dataset}-{commit}",
        tags={"family": family.name, "model": inst.name, "dataset": inst.dataset, "commit": commit},
        params={"seed": seed, "dataset": inst.dataset, **cfg.model_dump()},
        # (a classifier has no samples to draw: its report shows what it gets wrong; token and piano-roll
        # models' samples are drawn in their reports)
        log_samples=(lambda m, epoch: log_samples_to_mlflow(family, m, epoch, seed))
        if family.samples in ("images", "points") else None)
    history = result.history
    with atomic_dir(f"models/{inst.name}") as out:
        model.save_weights(out / "model.weights.h5")
        (out / "history.json").write_text(json.dumps(history, indent=1) + "\n")
        if vocab_of(data):  # what the model's token ids mean: sample and evaluate refuse any other tokenisation
            (out / "vocab.json").write_text(json.dumps(vocab_of(data), indent=0, ensure_ascii=False) + "\n")
    write_json(f"plots/train/{inst.name}.json", curves(history))
    checkpoint.clear()  # finished: a later run (new code, same params) must train from scratch
    print(f"{stage}: final " + ", ".join(f"{k}={v[-1]:.4f}" for k, v in history.items() if k != "epoch"))
    unit = {"labels": "images", "tokens": "windows"}.get(family.samples, family.samples)
    report_time(stage, result, unit, time.time() - started)


def time_figures(result, stage_seconds: float) -> dict[str, float]:
    """Where the stage's time went: gradient steps (all epochs run here, the first one's tracing included),
    their throughput after the first epoch, and the overhead (the rest of the stage's wall time)."""
    steps = sum(result.clock.seconds)
    figures = {"stage_seconds": stage_seconds, "gradient_step_seconds": steps,
               "overhead_percent": 100.0 * (stage_seconds - steps) / stage_seconds}
    if result.clock.seconds:
        figures["first_epoch_seconds"] = result.clock.seconds[0]
    throughput = result.clock.throughput(result.examples_per_epoch)
    if throughput is not None:
        figures["examples_per_second"] = throughput
    return figures


def report_time(stage: str, result, unit: str, stage_seconds: float) -> None:
    """Print the stage's time line and log its figures to the run's MLflow metrics (not to any output)."""
    from gdl.training import log_metrics_batch

    f = time_figures(result, stage_seconds)
    if "examples_per_second" in f:
        rate = f"first epoch {f['first_epoch_seconds']:.1f} s, then {f['examples_per_second']:.0f} {unit}/s"
    else:
        rate = "first epoch only" if result.clock.seconds else "no epoch run here"
    print(f"{stage}: {result.epochs_run} epochs, {result.examples_per_epoch} {unit}/epoch: gradient steps "
          f"{f['gradient_step_seconds']:.1f} s ({rate}), stage {stage_seconds:.1f} s, "
          f"overhead {f['overhead_percent']:.1f}%", flush=True)
    epochs = len(result.history.get("epoch", []))
    now_ms = int(time.time() * 1000)
    log_metrics_batch(result.run_id, [(f"time.{k}", v, now_ms, epochs) for k, v in f.items()])


def fast_exit() -> None:
    """Leave without the interpreter's teardown of the ~5,500 modules TensorFlow, Keras and MLflow load
    (2.5 s on 2 cores, more than a tenth of train@realnvp). Everything is written and closed by now and
    MLflow logs synchronously; only the standard streams and log handlers need flushing."""
    import logging
    import os
    import sys

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
    fast_exit()
