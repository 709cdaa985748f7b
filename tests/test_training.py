"""Training stages: a killed run resumes from its last checkpoint and ends where an uninterrupted run ends.

The kill is deterministic, not a race: GDL_KILL_AFTER_EPOCH=N makes the stage SIGKILL itself right after
the checkpoint of epoch N is on disk (stages/train.py), and GDL_CHECKPOINT_SECONDS=0 checkpoints every epoch.
"""

import json
import re
import signal
import sys

import pytest

from tests.conftest import BIN, run

pytestmark = pytest.mark.slow
EPOCHS, KILL_AFTER = 8, 3
TRAIN = [str(BIN / "python"), "-m", "stages.train", "realnvp"]


@pytest.fixture(scope="module")
def repo(smoke_repo):
    """The smoke workspace with moons preprocessed and realnvp set to train for EPOCHS epochs."""
    run(smoke_repo, "dvc", "repro", "preprocess@moons")
    params = smoke_repo / "params.yaml"
    text, n = re.subn(r"(?m)^(realnvp:\n  epochs:) \d+$", rf"\1 {EPOCHS}", params.read_text())
    assert n == 1, "params.yaml has realnvp.epochs first in its section"
    params.write_text(text)
    return smoke_repo


def mlflow_steps(repo, run_id: str, key: str) -> list[int]:
    code = ("from mlflow.tracking import MlflowClient; client = MlflowClient('sqlite:///mlflow/mlflow.db');"
            f"print(sorted(m.step for m in client.get_metric_history({run_id!r}, {key!r})))")
    return json.loads(run(repo, sys.executable, "-c", code).stdout.strip().splitlines()[-1])


def test_killed_training_resumes_from_its_last_checkpoint_with_the_same_weights(repo, monkeypatch):
    for name in ("GDL_KILL_AFTER_EPOCH", "GDL_CHECKPOINT_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    weights, history_file = repo / "models/realnvp/model.weights.h5", repo / "models/realnvp/history.json"
    meta = repo / "checkpoints/realnvp/meta.json"

    out = run(repo, *TRAIN).stdout  # uninterrupted
    assert re.search(rf"train@realnvp: {EPOCHS} epochs, \d+ points/epoch: gradient steps .* overhead", out)
    uninterrupted, uninterrupted_history = weights.read_bytes(), json.loads(history_file.read_text())
    assert not meta.exists()
    weights.unlink()

    with monkeypatch.context() as env:  # conftest.run passes the test's environment on
        env.setenv("GDL_KILL_AFTER_EPOCH", str(KILL_AFTER))
        env.setenv("GDL_CHECKPOINT_SECONDS", "0")
        killed = run(repo, *TRAIN, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-2000:] + killed.stderr[-2000:]
    state = json.loads(meta.read_text())
    assert state["epoch"] == KILL_AFTER and state["history"]["epoch"] == list(range(1, KILL_AFTER + 1))
    assert not weights.exists(), "a killed run writes no outputs"

    out = run(repo, *TRAIN).stdout
    assert f"resuming realnvp from checkpoints/realnvp after epoch {KILL_AFTER}/{EPOCHS}" in out
    assert f"train@realnvp: {EPOCHS - KILL_AFTER} epochs," in out, "the time line counts this process's epochs"
    history = json.loads(history_file.read_text())
    assert history["epoch"] == list(range(1, EPOCHS + 1))
    assert not meta.exists(), "a finished run removes its checkpoint"
    # Same batches (the order is a function of seed and epoch), same RNG and optimizer state: same run.
    assert history == uninterrupted_history
    assert weights.read_bytes() == uninterrupted, "the resumed run ends with the uninterrupted run's weights"
    # MLflow got each epoch once: epochs 1..3 before the kill (with their checkpoint), 4..8 after.
    assert mlflow_steps(repo, state["run_id"], "loss") == list(range(1, EPOCHS + 1))
