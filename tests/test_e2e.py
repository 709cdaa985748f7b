"""End to end on the smoke profile, in a copy of the repo: the three ways people use the pipeline.

The tests in this module share one workspace and run in order (each builds on the last): repro,
no-op repro, a param change, metrics diff, push/pull, determinism, resume, a corrupted input.
"""

import json
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import BIN, git, run

pytestmark = pytest.mark.slow
VAE_STAGES = {"train@vae", "sample@vae", "evaluate@vae", "report@vae", "summary"}


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def repo(smoke_repo):
    out = run(smoke_repo, "dvc", "repro").stdout
    smoke_repo.joinpath("first_repro.log").write_text(out)
    git(smoke_repo, "add", "-A")
    git(smoke_repo, "commit", "-qm", "first repro")
    return smoke_repo


def test_repro_builds_every_output(repo):
    log = repo.joinpath("first_repro.log").read_text()
    assert len(ran(log)) >= 20
    for path in ["data/processed/chorales.npz", "models/vae/model.weights.h5", "samples/realnvp.npz",
                 "reports/vae.html", "reports/realnvp.html", "reports/summary.html", "reports/results.md"]:
        assert (repo / path).is_file(), path
    for family, keys in {"vae": ["fid", "kid", "bits_per_dim"], "realnvp": ["nll_nats"]}.items():
        metrics = json.loads((repo / f"metrics/{family}.json").read_text())
        for key in keys:
            assert isinstance(metrics[key], float) and isinstance(metrics["baseline"][key], float)
        assert metrics["seed"] == 42 and metrics["num_samples"] == 100
    assert json.loads((repo / "metrics/vae.json").read_text())["backbone"] == "domain"
    assert "data:image/png;base64" in (repo / "reports/vae.html").read_text()


def test_mlflow_has_a_run_per_family(repo):
    code = ("import mlflow; mlflow.set_tracking_uri('sqlite:///mlflow/mlflow.db');"
            "print([len(mlflow.search_runs(experiment_names=[f])) for f in ('vae', 'realnvp')])")
    assert run(repo, sys.executable, "-c", code).stdout.strip().endswith("[1, 1]")
    artifacts = list((repo / "mlflow/artifacts/vae").rglob("*.png"))
    assert artifacts, "sample images are logged as artifacts"


def test_second_repro_runs_nothing(repo):
    out = run(repo, "dvc", "repro").stdout
    assert ran(out) == set()
    assert "Data and pipelines are up to date" in out


def test_changing_a_vae_param_reruns_exactly_the_vae_stages(repo):
    params = repo / "params.yaml"
    params.write_text(params.read_text().replace("  latent_dim: 2\n", "  latent_dim: 3\n"))
    out = run(repo, "dvc", "repro").stdout
    assert ran(out) == VAE_STAGES
    git(repo, "commit", "-qam", "vae latent_dim 3")


def test_metrics_diff_shows_the_changed_figures(repo):
    out = run(repo, "dvc", "metrics", "diff", "HEAD~1", "--md").stdout
    assert "metrics/vae.json" in out and "fid" in out and "bits_per_dim" in out
    assert "metrics/realnvp.json" not in out  # realnvp did not change


def test_push_then_pull_into_an_empty_cache_restores_everything(repo):
    run(repo, "dvc", "push")
    expected = (repo / "models/vae/model.weights.h5").read_bytes()
    for path in ["data", "models", "samples", ".dvc/cache"]:
        shutil.rmtree(repo / path)
    for html in (repo / "reports").glob("*.html"):
        html.unlink()
    run(repo, "dvc", "pull")
    assert (repo / "models/vae/model.weights.h5").read_bytes() == expected
    assert "up to date" in run(repo, "dvc", "status").stdout


def test_same_seed_gives_identical_metrics(repo):
    before = {f: (repo / f"metrics/{f}.json").read_text() for f in ("vae", "realnvp")}
    run(repo, "dvc", "repro", "--force", "evaluate@vae", "evaluate@realnvp")
    after = {f: (repo / f"metrics/{f}.json").read_text() for f in ("vae", "realnvp")}
    assert after == before


def test_killed_training_resumes_from_its_last_checkpoint(repo):
    params = repo / "params.yaml"
    params.write_text(params.read_text().replace("realnvp:\n  epochs: 2\n", "realnvp:\n  epochs: 8\n"))
    env_cmd = [str(BIN / "python"), "-m", "stages.train", "realnvp"]
    proc = subprocess.Popen(env_cmd, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    meta = repo / "checkpoints/realnvp/meta.json"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if meta.exists() and json.loads(meta.read_text())["epoch"] >= 2:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(meta.read_text())["epoch"]
    assert 2 <= killed_at < 8, "the run was killed mid-way"
    out = run(repo, str(BIN / "python"), "-m", "stages.train", "realnvp").stdout
    assert f"resuming realnvp from checkpoints/realnvp after epoch {killed_at}/8" in out
    history = json.loads((repo / "models/realnvp/history.json").read_text())
    assert history["epoch"] == list(range(1, 9))
    assert not meta.exists(), "a finished run removes its checkpoint"
    git(repo, "checkout", "params.yaml")


def test_corrupted_processed_file_fails_clearly_and_writes_nothing(repo):
    data = repo / "data/processed/digits.npz"
    blob = bytearray(data.read_bytes())
    blob[len(blob) // 2: len(blob) // 2 + 64] = bytes(64)
    data.write_bytes(bytes(blob))
    shutil.rmtree(repo / "models/vae")
    proc = run(repo, str(BIN / "python"), "-m", "stages.train", "vae", check=False)
    assert proc.returncode == 1
    assert "data/processed/digits.npz" in proc.stderr and "preprocess@digits" in proc.stderr
    assert not (repo / "models/vae").exists()
    assert not list((repo / "models").glob(".vae*")), "no temp dir left behind"


def test_invalid_params_stop_dvc_repro_before_any_stage_works(repo):
    params = repo / "params.yaml"
    params.write_text(params.read_text().replace("seed: 42", "seed: -3"))
    proc = run(repo, "make", "-s", "repro", "BIN=" + str(BIN), "STAMP=", check=False)
    assert proc.returncode != 0
    assert "params.yaml" in proc.stderr and "seed" in proc.stderr
    assert "Running stage" not in proc.stdout
    git(repo, "checkout", "params.yaml")
