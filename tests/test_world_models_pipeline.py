"""The World Models chain as DVC stages, on the smoke profile: kill and resume of the controller, a crashing
episode in a shard. (The whole chain's outputs and figures: tests/test_e2e.py, which runs every stage.)

The kill is deterministic: GDL_KILL_AFTER_GENERATION=N makes the controller stage SIGKILL itself right after
generation N's checkpoint is on disk; GDL_FAIL_EPISODE=i makes episode i of a shard raise in its worker.
"""

import re
import signal

import pytest

from tests.conftest import BIN, run

pytestmark = pytest.mark.slow
pytest.importorskip("gymnasium", reason="gymnasium is not installed (pip install 'gymnasium[box2d]==1.4.0')")

CONTROLLER = [str(BIN / "python"), "-m", "stages.world_models.controller", "dream"]
OUTPUT = "models/world_models/controller_dream.npy"
CHECKPOINT = "checkpoints/wm_controller_dream.pkl"


@pytest.fixture(scope="module")
def repo(smoke_repo):
    """The smoke workspace with the chain run up to the dream-trained controller (3 generations)."""
    params = smoke_repo / "params.yaml"
    text, n = re.subn(r"(?m)^(    dream:\n      population: 2\n      trials: 2\n      generations:) 2$", r"\1 3",
                      params.read_text())
    assert n == 1, "params.yaml has world_models.controller.dream's population, trials, generations first"
    params.write_text(text)
    run(smoke_repo, "dvc", "repro", "wm_controller@dream")
    return smoke_repo


def test_killed_controller_resumes_from_its_last_generation_and_ends_the_same(repo, monkeypatch):
    monkeypatch.delenv("GDL_KILL_AFTER_GENERATION", raising=False)
    output, checkpoint = repo / OUTPUT, repo / CHECKPOINT
    uninterrupted = output.read_bytes()
    assert not checkpoint.exists(), "a finished run removes its checkpoint"
    output.unlink()

    with monkeypatch.context() as env:  # conftest.run passes the test's environment on
        env.setenv("GDL_KILL_AFTER_GENERATION", "2")
        killed = run(repo, *CONTROLLER, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-2000:] + killed.stderr[-2000:]
    assert "generation 2/3" in killed.stdout and "generation 3/3" not in killed.stdout
    assert checkpoint.exists() and not output.exists(), "a killed run leaves its checkpoint and no output"

    out = run(repo, *CONTROLLER).stdout
    assert "resuming CMA-ES after generation 2/3" in out
    assert "generation 3/3" in out and "generation 1/3" not in out
    assert output.read_bytes() == uninterrupted, "the resumed run ends with the uninterrupted run's controller"
    assert "wm_controller@dream" not in run(repo, "dvc", "status", "wm_controller@dream").stdout


def test_a_crashing_episode_fails_its_shard_stage_by_name_and_writes_nothing(repo, monkeypatch):
    shard = repo / "data/rollouts/shard_1.npz"
    before = shard.read_bytes()
    with monkeypatch.context() as env:
        env.setenv("GDL_FAIL_EPISODE", "1")
        failed = run(repo, "dvc", "repro", "--force", "--single-item", "rollouts@1", check=False)
    assert failed.returncode != 0
    message = failed.stdout + failed.stderr
    assert re.search(r"error in stage rollouts@1: shard seed \d+, episode 1 .*GDL_FAIL_EPISODE", message), message[-3000:]
    assert "nothing written" in message
    assert not shard.exists(), "no partial shard (DVC removed the old one; the stage wrote none)"

    run(repo, "dvc", "repro", "--single-item", "rollouts@1")  # a rerun starts clean: the same bytes as before
    assert shard.read_bytes() == before
