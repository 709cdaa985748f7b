"""What every family's training shares: seeding, MLflow logging, and checkpoint/resume.

A training run is `keras.Model.fit` plus one callback (`EpochEnd`) that, after every epoch, logs the epoch's
metrics to MLflow and writes a checkpoint (model AND optimizer variables, epoch, history, MLflow run id).
Run the same stage again after it was killed and `fit_with_resume` restores the checkpoint and carries on
from the next epoch, in the same MLflow run. A checkpoint is only reused when its fingerprint (params
section + training data) matches, so changing a knob never resumes a stale run.

Checkpoints live under `checkpoints/` (git-ignored, NOT a DVC output: DVC deletes a stage's outputs
before it runs, which would defeat resuming).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import keras
import numpy as np

from gdl.arrays import load_arrays, save_arrays
from gdl.atomic import write_text

MLFLOW_DIR = Path("mlflow")


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow, and make TF ops deterministic (same seed -> same weights on CPU)."""
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def fingerprint(*parts: object) -> str:
    """A short hash of JSON-able config and array contents, naming what a checkpoint was trained on."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(str((part.dtype, part.shape)).encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


# ------------------------------------------------------------------ MLflow ------------------------------
def _tracking_uri() -> str:
    # A user's own server wins; otherwise a sqlite store in the repo (mlflow 3 deprecates the file store).
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(MLFLOW_DIR / 'mlflow.db').resolve()}"


@contextmanager
def mlflow_run(experiment: str, params: dict, run_id: str | None = None, run_name: str | None = None,
               tags: dict | None = None):
    import mlflow

    mlflow.set_tracking_uri(_tracking_uri())
    found = mlflow.get_experiment_by_name(experiment)
    if found is None:
        artifacts = (MLFLOW_DIR / "artifacts" / experiment).resolve()
        experiment_id = mlflow.create_experiment(experiment, artifact_location=artifacts.as_uri())
    else:
        experiment_id = found.experiment_id
    # A given run name: MLflow's random one is drawn after the seed is set, so every run got the same.
    with mlflow.start_run(run_id=run_id, experiment_id=None if run_id else experiment_id,
                          run_name=None if run_id else run_name, tags=None if run_id else tags) as run:
        if run_id is None:
            mlflow.log_params(_flatten(params))
        yield run


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(_flatten(v, key + ".") if isinstance(v, dict) else {key: v})
    return out


# ------------------------------------------------------------------ checkpoints -------------------------
class Checkpoint:
    """Model + optimizer variables and the bookkeeping needed to resume, written atomically."""

    def __init__(self, directory: str | Path, fingerprint: str):
        self.dir = Path(directory)
        self.fingerprint = fingerprint
        self.state_file = self.dir / "state.npz"
        self.meta_file = self.dir / "meta.json"

    def load(self) -> dict | None:
        if not self.meta_file.exists():
            return None
        meta = json.loads(self.meta_file.read_text())
        if meta.get("fingerprint") != self.fingerprint:
            print(f"{self.dir}: checkpoint is for other params/data; starting afresh")
            return None
        meta["arrays"] = load_arrays(self.state_file)
        return meta

    def save(self, model: keras.Model, epoch: int, history: dict, run_id: str | None) -> None:
        save_arrays(self.state_file, {_key(kind, v): np.asarray(v.numpy()) for kind, v in _state(model)})
        meta = {"fingerprint": self.fingerprint, "epoch": epoch, "history": history, "run_id": run_id}
        write_text(self.meta_file, json.dumps(meta))

    @staticmethod
    def restore(model: keras.Model, arrays: dict[str, np.ndarray]) -> None:
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        for kind, var in _state(model):
            key = _key(kind, var)
            if key not in arrays:
                raise RuntimeError(f"checkpoint has no value for {key}; delete the checkpoint to start afresh")
            var.assign(arrays[key])

    def clear(self) -> None:
        for f in (self.meta_file, self.state_file):
            f.unlink(missing_ok=True)


def _state(model: keras.Model):
    """The variables a resumed run needs: weights, RNG seed states (`model.variables`) and optimizer slots."""
    yield from (("model", v) for v in model.variables)
    yield from (("optim", v) for v in model.optimizer.variables)


def _key(kind: str, var) -> str:
    return f"{kind}:{var.path.replace('/', '|')}"  # array names in a .npz cannot hold "/"


class EpochEnd(keras.callbacks.Callback):
    """After each epoch: extend the history, log to MLflow, save the checkpoint, maybe log samples."""

    def __init__(self, checkpoint: Checkpoint, history: dict, run_id: str,
                 log_samples: Callable[[keras.Model, int], None] | None = None, sample_every: int = 10):
        super().__init__()
        self.checkpoint, self.history, self.run_id = checkpoint, history, run_id
        self.log_samples, self.sample_every = log_samples, sample_every

    def on_epoch_end(self, epoch, logs=None):
        import mlflow

        logs = {k: float(v) for k, v in (logs or {}).items()}
        self.history.setdefault("epoch", []).append(epoch + 1)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)
        mlflow.log_metrics(logs, step=epoch + 1)
        last = epoch + 1 == self.params.get("epochs")
        if self.log_samples and ((epoch + 1) % self.sample_every == 0 or last):
            self.log_samples(self.model, epoch + 1)
        self.checkpoint.save(self.model, epoch + 1, self.history, self.run_id)


def fit_with_resume(model: keras.Model, x, *, epochs: int, batch_size: int, validation_data,
                    checkpoint: Checkpoint, experiment: str, params: dict, run_name: str | None = None,
                    tags: dict | None = None, log_samples: Callable[[keras.Model, int], None] | None = None,
                    y=None) -> dict:
    """`model.fit` that resumes from `checkpoint` and logs every epoch to MLflow; returns the history."""
    state = checkpoint.load()
    history, initial_epoch, run_id = {}, 0, None
    if state is not None:
        Checkpoint.restore(model, state["arrays"])
        history, initial_epoch, run_id = state["history"], state["epoch"], state["run_id"]
        print(f"resuming {experiment} from {checkpoint.dir} after epoch {initial_epoch}/{epochs}")
    with mlflow_run(experiment, params, run_id=run_id, run_name=run_name, tags=tags) as run:
        if initial_epoch < epochs:
            model.fit(x, y, epochs=epochs, initial_epoch=initial_epoch, batch_size=batch_size,
                      validation_data=validation_data, shuffle=True, verbose=2,
                      callbacks=[EpochEnd(checkpoint, history, run.info.run_id, log_samples)])
    return history
