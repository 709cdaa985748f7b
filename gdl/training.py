"""What every family's training shares: seeding, the input pipeline, MLflow logging, checkpoint/resume, timing.

A training run is `keras.Model.fit` on `epoch_batches` (the training set, reshuffled every epoch in an
order fixed by the seed and the epoch's number), one epoch per call into TensorFlow, plus two callbacks:
`TrainClock` times the gradient steps of each epoch; `EpochEnd`, after each epoch, validates (one
`test_on_batch` over the validation set), extends the history and, on its schedule, logs to MLflow and
writes a checkpoint (model AND optimizer variables, epoch, history, MLflow run id). Run the same stage
again after it was killed and `fit_with_resume` restores the checkpoint and carries on from the next
epoch, in the same MLflow run, with the batches an uninterrupted run would have seen: it ends with the
same weights, bit for bit. A checkpoint is only reused when its fingerprint (params section + training
data) matches, so changing a knob never resumes a stale run.

Small datasets make training overhead-bound (13 steps per epoch for the VAE on digits), so what is not a
gradient step is kept off the per-epoch path (figures: 2 cores, default params):

* a whole epoch per call (`steps_per_execution` = steps per epoch): RealNVP's 94 small steps ran 1.7x as
  fast, the VAE's 13 about 8% faster, with the same weights bit for bit;
* one input pipeline for all epochs, instead of Keras's per-epoch iterator over arrays;
* checkpoints by wall time, at most every `CHECKPOINT_SECONDS` (and after the last epoch), not every
  epoch; MLflow gets the epochs' metrics in one `log_batch` at each checkpoint, so what MLflow holds and
  what a resumed run starts from agree;
* `SAMPLE_PICTURES` sample pictures per run, evenly spaced;
* validation is `test_on_batch` on the whole validation set, not Keras's `validation_data`, which builds
  a new tf.data iterator every epoch (~100 ms per epoch, more than the VAE's forward pass over its 180
  validation images). The validation loss is the mean over the set (Keras's is a mean of batch means).

`set_seed` keeps TF's op determinism on: on this CPU it changed neither the weights (bit-identical with
and without) nor the speed (within noise), and it turns a nondeterministic op into an error.

Test hooks (environment variables, read when `fit_with_resume` starts):

* ``GDL_CHECKPOINT_SECONDS=S``: checkpoint at most every S seconds (0: after every epoch);
* ``GDL_KILL_AFTER_EPOCH=N``: right after the checkpoint of epoch N is on disk, the process SIGKILLs
  itself (a real kill, for the resume test; epoch N is always checkpointed).

Checkpoints live under `checkpoints/` (git-ignored, NOT a DVC output: DVC deletes a stage's outputs
before it runs, which would defeat resuming).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from gdl.arrays import load_arrays, save_arrays
from gdl.atomic import write_text

MLFLOW_DIR = Path("mlflow")
CHECKPOINT_SECONDS = 30.0  # at most one checkpoint per this much wall time (and one after the last epoch)
SAMPLE_PICTURES = 4  # sample pictures logged to MLflow per run, at evenly spaced epochs
VALIDATION_BATCH = 4096  # examples per validation call (one call for every validation set here)
CHECKPOINT_SECONDS_ENV = "GDL_CHECKPOINT_SECONDS"
KILL_AFTER_EPOCH_ENV = "GDL_KILL_AFTER_EPOCH"


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow, and make TF ops deterministic (same seed -> same weights on CPU)."""
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def fingerprint(*parts: object) -> str:
    """A short hash of JSON-able config and array contents, naming what a checkpoint was trained on."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, (tuple, list)) and any(isinstance(p, np.ndarray) for p in part):  # (notes, durations)
            h.update(fingerprint(*part).encode())
        elif isinstance(part, np.ndarray):
            h.update(str((part.dtype, part.shape)).encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def process_start_time(fallback: float) -> float:
    """`time.time()` when this process started (Linux: /proc/self/stat), else `fallback`."""
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime, in clock ticks
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return fallback


# ------------------------------------------------------------------ the input pipeline ------------------
def epoch_order(n: int, seed: int, epoch):
    """The order of the n training examples in epoch `epoch` (0-based): a permutation fixed by (seed, epoch)."""
    import tensorflow as tf

    key = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
    return tf.argsort(tf.random.stateless_uniform([n], seed=key, minval=None, maxval=None, dtype=tf.int64),
                      stable=True)


def epoch_batches(arrays: tuple, batch_size: int, seed: int, first_epoch: int, epochs: int):
    """The batches of epochs first_epoch..epochs-1, as one tf.data.Dataset of `arrays`-shaped tuples.

    Keras's own `fit(x, shuffle=True)` is no use here: under a global seed its `tf.random.shuffle` restarts
    with every epoch's new iterator, so every epoch sees the SAME order (tensorflow/tensorflow#29558), and
    the iterator rebuilt each epoch costs time. Here each epoch's order depends on (seed, epoch) only, so a
    run resumed at epoch k sees the batches an uninterrupted run sees from epoch k on. One iterator serves
    all epochs (fit with steps_per_epoch = ceil(n / batch_size)); the last batch of an epoch may be short.
    """
    import tensorflow as tf

    n = len(keras.tree.flatten(arrays)[0])

    def batches_of(epoch):
        return tf.data.Dataset.from_tensor_slices(epoch_order(n, seed, epoch)).batch(batch_size)

    indices = tf.data.Dataset.range(first_epoch, epochs).flat_map(batches_of)
    # The arrays ride along as one repeated element (as Keras does) rather than as constants in the graph.
    data = tf.data.Dataset.zip((indices, tf.data.Dataset.from_tensors(arrays).repeat()))
    return data.map(lambda i, a: keras.tree.map_structure(lambda t: tf.gather(t, i), a))


def steps_per_epoch(arrays: tuple, batch_size: int) -> int:
    return math.ceil(len(keras.tree.flatten(arrays)[0]) / batch_size)


# ------------------------------------------------------------------ MLflow ------------------------------
def commit_id() -> str:
    """The checked-out commit (short), to name the MLflow run; "uncommitted" outside git."""
    proc = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else "uncommitted"


def curves(history: dict) -> list[dict]:
    """history.json's columns as rows, one per epoch: the DVC plots format."""
    keys = list(history)
    return [dict(zip(keys, values)) for values in zip(*history.values())]


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


def log_metrics_batch(run_id: str, rows: list[tuple[str, float, int, int]]) -> None:
    """Log (key, value, timestamp_ms, step) rows to MLflow in as few calls as it allows (1000 per call)."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    metrics = [Metric(key, value, timestamp, step) for key, value, timestamp, step in rows]
    for start in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[start:start + 1000], synchronous=True)


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
        save_arrays(self.state_file, {_key(kind, i): np.asarray(v.numpy()) for kind, i, v in _state(model)})
        meta = {"fingerprint": self.fingerprint, "epoch": epoch, "history": history, "run_id": run_id}
        write_text(self.meta_file, json.dumps(meta))

    @staticmethod
    def restore(model: keras.Model, arrays: dict[str, np.ndarray]) -> None:
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        # (a model with several optimizers builds them itself, in its family's `build`)
        for kind, i, var in _state(model):
            key = _key(kind, i)
            if key not in arrays or arrays[key].shape != tuple(var.shape):
                raise RuntimeError(f"checkpoint does not match the model at {key} ({var.path}); "
                                   "delete the checkpoint to start afresh")
            var.assign(arrays[key])

    def clear(self) -> None:
        for f in (self.meta_file, self.state_file):
            f.unlink(missing_ok=True)


def _state(model: keras.Model):
    """The variables a resumed run needs: weights, RNG seed states (`model.variables`) and optimizer slots.

    Keyed by position, not by path: Keras names layers from a per-process counter (`dense_8`), so paths
    differ between two builds of the same model; the order of the variables does not.
    """
    yield from (("model", i, v) for i, v in enumerate(model.variables))
    yield from (("optim", i, v) for i, v in enumerate(model.optimizer.variables))
    # A GAN has one optimizer per network: `model.optimizer` is the generator's, the others are listed here.
    for k, optimizer in enumerate(getattr(model, "extra_optimizers", ())):
        yield from ((f"optim{k + 1}", i, v) for i, v in enumerate(optimizer.variables))


def _key(kind: str, index: int) -> str:
    return f"{kind}:{index:05d}"


# ------------------------------------------------------------------ callbacks ---------------------------
class TrainClock(keras.callbacks.Callback):
    """Wall time of the gradient steps of each epoch: from `on_epoch_begin` to the end of its last step.

    Put it first in the callback list, so its `on_epoch_end` runs before the others' work. No per-batch
    hooks: a callback with batch hooks makes Keras call back into Python after every step.
    """

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def _stop(self):
        if self._start is not None:
            self.seconds.append(time.perf_counter() - self._start)
            self._start = None

    def on_test_begin(self, logs=None):  # Keras's own validation, if a caller uses it
        self._stop()

    def on_epoch_end(self, epoch, logs=None):
        self._stop()

    def throughput(self, examples_per_epoch: int) -> float | None:
        """Examples per second after the first epoch (which traces the train step), None with one epoch."""
        rest = self.seconds[1:]
        return examples_per_epoch * len(rest) / sum(rest) if rest and sum(rest) > 0 else None


def sample_epochs(epochs: int, pictures: int = SAMPLE_PICTURES) -> set[int]:
    """The (1-based) epochs after which a sample picture is logged: `pictures` of them, evenly spaced."""
    return {math.ceil(k * epochs / pictures) for k in range(1, pictures + 1)}


class EpochEnd(keras.callbacks.Callback):
    """After each epoch: validate, extend the history; on its schedule, log to MLflow and checkpoint."""

    def __init__(self, checkpoint: Checkpoint, history: dict, run_id: str, *, validation_data=None,
                 log_samples: Callable[[keras.Model, int], None] | None = None, sample_at: set[int] = frozenset(),
                 checkpoint_seconds: float = CHECKPOINT_SECONDS, kill_after_epoch: int | None = None):
        super().__init__()
        self.checkpoint, self.history, self.run_id = checkpoint, history, run_id
        self.validation = (None if validation_data is None
                           else keras.utils.unpack_x_y_sample_weight(validation_data))
        self.log_samples, self.sample_at = log_samples, sample_at
        self.checkpoint_seconds, self.kill_after_epoch = checkpoint_seconds, kill_after_epoch
        self.pending: list[tuple[str, float, int, int]] = []  # metrics not yet in MLflow
        self.last_checkpoint = time.monotonic()

    def on_train_begin(self, logs=None):
        self.last_checkpoint = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        if logs is not None and self.validation is not None:
            logs.update({f"val_{k}": v for k, v in validate(self.model, *self.validation).items()})
        logs = {k: float(v) for k, v in (logs or {}).items()}
        self.history.setdefault("epoch", []).append(done)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)
        now_ms = int(time.time() * 1000)
        self.pending += [(k, v, now_ms, done) for k, v in logs.items()]
        if self.log_samples and done in self.sample_at:
            self.log_samples(self.model, done)
        last, kill = done == self.params.get("epochs"), done == self.kill_after_epoch
        if last or kill or time.monotonic() - self.last_checkpoint >= self.checkpoint_seconds:
            self.save(done)
        if kill:
            print(f"{KILL_AFTER_EPOCH_ENV}={done}: checkpoint written, killing this process", flush=True)
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    def save(self, epoch: int) -> None:
        """MLflow gets the pending metrics first, then the checkpoint is written (a kill in between can only
        make a resumed run log an epoch twice, never lose one)."""
        if self.pending:
            log_metrics_batch(self.run_id, self.pending)
            self.pending = []
        self.checkpoint.save(self.model, epoch, self.history, self.run_id)
        self.last_checkpoint = time.monotonic()


def validate(model: keras.Model, x, y=None, sample_weight=None, batch_size: int = VALIDATION_BATCH) -> dict:
    """The model's metrics on (x, y): one `test_on_batch` per `batch_size` examples, averaged by size."""
    n = len(keras.tree.flatten(x)[0])
    totals: dict[str, float] = {}
    for start in range(0, n, batch_size):
        part = [None if a is None else keras.tree.map_structure(lambda t, s=start: t[s:s + batch_size], a)
                for a in (x, y, sample_weight)]
        logs = model.test_on_batch(*part, return_dict=True)
        size = min(batch_size, n - start)
        for k, v in logs.items():
            totals[k] = totals.get(k, 0.0) + float(v) * size
    return {k: v / n for k, v in totals.items()}


# ------------------------------------------------------------------ fit ---------------------------------
@dataclass
class TrainResult:
    history: dict
    run_id: str
    epochs_run: int = 0  # in this process (fewer than `epochs` after a resume)
    examples_per_epoch: int = 0
    clock: TrainClock = field(default_factory=TrainClock)


def _env_number(name: str, kind: type, default):
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r}: expected a {kind.__name__}") from None


def fit_with_resume(model: keras.Model, x, *, epochs: int, batch_size: int, seed: int, validation_data,
                    checkpoint: Checkpoint, experiment: str, params: dict, run_name: str | None = None,
                    tags: dict | None = None, log_samples: Callable[[keras.Model, int], None] | None = None,
                    y=None) -> TrainResult:
    """`model.fit` that resumes from `checkpoint`, logs to MLflow and times its gradient steps."""
    checkpoint_seconds = _env_number(CHECKPOINT_SECONDS_ENV, float, CHECKPOINT_SECONDS)
    kill_after_epoch = _env_number(KILL_AFTER_EPOCH_ENV, int, None)
    state = checkpoint.load()
    history, initial_epoch, run_id = {}, 0, None
    if state is not None:
        Checkpoint.restore(model, state["arrays"])
        history, initial_epoch, run_id = state["history"], state["epoch"], state["run_id"]
        print(f"resuming {experiment} from {checkpoint.dir} after epoch {initial_epoch}/{epochs}")
    arrays = (x,) if y is None else (x, y)
    with mlflow_run(experiment, params, run_id=run_id, run_name=run_name, tags=tags) as run:
        result = TrainResult(history, run.info.run_id, epochs - initial_epoch, len(keras.tree.flatten(x)[0]))
        if initial_epoch < epochs:
            end = EpochEnd(checkpoint, history, run.info.run_id, validation_data=validation_data,
                           log_samples=log_samples, sample_at=sample_epochs(epochs),
                           checkpoint_seconds=checkpoint_seconds, kill_after_epoch=kill_after_epoch)
            steps, saved = steps_per_epoch(arrays, batch_size), model.steps_per_execution
            # A whole epoch per call into TensorFlow: one Python round trip per epoch, not per step.
            model.steps_per_execution = steps
            try:
                model.fit(epoch_batches(arrays, batch_size, seed, initial_epoch, epochs), steps_per_epoch=steps,
                          epochs=epochs, initial_epoch=initial_epoch, shuffle=False, verbose=2,
                          callbacks=[result.clock, end])
            finally:
                model.steps_per_execution = saved
    return result
