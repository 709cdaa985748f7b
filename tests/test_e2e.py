"""End to end on the smoke profile, in a copy of the repo: the three ways people use the pipeline.

The tests in this module share one workspace and run in order (each builds on the last): repro,
no-op repro, the frozen rulers, a param change, metrics and plots diff, push/pull, determinism, a corrupted
input. (Kill and resume: tests/test_training.py.)
"""

import hashlib
import json
import re
import shutil
import sys

import pytest
import yaml

from tests.conftest import BIN, git, run

pytestmark = pytest.mark.slow
VAE_STAGES = {"train@vae", "sample@vae", "evaluate@vae", "report@vae", "summary"}


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def repo(smoke_repo):
    # Every stage of the DAG on the smoke profile: about 14 min on the 2-core reference machine, so the
    # limit is generous (a slower or busier CI machine must not turn it into 14 fixture errors).
    out = run(smoke_repo, "dvc", "repro", timeout=2700).stdout
    smoke_repo.joinpath("first_repro.log").write_text(out)
    git(smoke_repo, "add", "-A")
    git(smoke_repo, "commit", "-qm", "first repro")
    return smoke_repo


def test_repro_builds_every_output(repo):
    log = repo.joinpath("first_repro.log").read_text()
    from gdl.families import instances

    models = instances(repo / "dvc.yaml")
    # data + preprocess per dataset, train/sample/evaluate/report per model, the summary; not the frozen rulers;
    # World Models: a stage per shard, V, encode, M, a controller per mode, evaluate, report
    shards = yaml.safe_load((repo / "params.yaml").read_text())["world_models"]["rollouts"]["shards"]
    dag = {k: v for d in yaml.safe_load((repo / "dvc.yaml").read_text())["vars"] for k, v in d.items()}
    # (+ tokenise per tokenised dataset, midi per music model)
    assert len(ran(log)) == 2 * 5 + len(dag["tokenised"]) + 4 * len(models) + len(dag["music_models"]) + 1 \
        + len(shards) + 7
    for path in ["data/processed/chorales.npz", "models/vae/model.weights.h5", "samples/realnvp.npz",
                 "models/vae_shapes/model.weights.h5", "plots/train/vae.json", "reports/vae.html",
                 "reports/vae_shapes.html", "reports/realnvp.html", "reports/summary.html", "reports/results.md"]:
        assert (repo / path).is_file(), path
    image_keys = ["fid", "fid_std", "kid", "kid_std", "bits_per_dim"]
    for model, keys in {"vae": image_keys, "vae_shapes": image_keys, "realnvp": ["nll_nats"]}.items():
        metrics = json.loads((repo / f"metrics/{model}.json").read_text())
        for key in keys:
            assert isinstance(metrics[key], float) and isinstance(metrics["baseline"][key], float)
        numbers = [v for v in metrics.values() if not isinstance(v, dict)]
        numbers += [v for section in metrics.values() if isinstance(section, dict) for v in section.values()]
        assert all(isinstance(v, float) for v in numbers), "metrics files hold figures only"
        meta = json.loads((repo / f"metrics/{model}.meta.json").read_text())
        assert meta["seed"] == 42 and meta["num_samples"] == 100
    meta = json.loads((repo / "metrics/vae_shapes.meta.json").read_text())
    ruler = repo / "backbones/shapes.weights.h5"
    assert meta["backbone"] == {"name": "domain", "path": "backbones/shapes.weights.h5",
                                "sha256": hashlib.sha256(ruler.read_bytes()).hexdigest()}
    assert "data:image/png;base64" in (repo / "reports/vae.html").read_text()


def test_sequence_models_are_scored_next_to_ngram_baselines(repo):
    for model, keys in {"lstm": ["nll_nats", "perplexity"], "gpt": ["nll_nats", "perplexity"],
                        "music_transformer": ["nll_nats_note", "nll_nats_duration"]}.items():
        metrics = json.loads((repo / f"metrics/{model}.json").read_text())
        for key in keys:
            for section in (metrics, metrics["baseline"], metrics["unigram"], metrics["bigram"]):
                assert isinstance(section[key], float) and section[key] > 0, (model, key)
        assert json.loads((repo / f"models/{model}/vocab.json").read_text())  # what its token ids mean
    musegan = json.loads((repo / "metrics/musegan.json").read_text())
    assert set(musegan["baseline"]) <= set(musegan) and set(musegan["data"]) <= set(musegan)
    for model in ("music_transformer", "musegan"):
        midi = sorted((repo / f"samples/{model}_midi").glob("*.mid"))
        assert midi and all(p.read_bytes().startswith(b"MThd") for p in midi)
    assert "data:image/png;base64" in (repo / "reports/gpt.html").read_text()


def test_a_model_refuses_data_tokenised_differently(repo):
    import numpy as np

    tokens = repo / "data/tokens/text.npz"
    saved = tokens.read_bytes()
    try:
        data = dict(np.load(tokens))
        data["vocab"] = np.concatenate([data["vocab"][:2], data["vocab"][3:4], data["vocab"][2:3], data["vocab"][4:]])
        np.savez(tokens, **data)
        proc = run(repo, sys.executable, "-m", "stages.sample", "lstm", check=False)
        assert proc.returncode == 1
        assert "models/lstm/vocab.json" in proc.stderr and "another tokenisation" in proc.stderr
    finally:
        tokens.write_bytes(saved)


def test_world_models_chain_scores_every_policy_with_the_same_keys(repo):
    metrics = json.loads((repo / "metrics/world_models.json").read_text())
    returns = {"return_mean", "return_std", "dream_return_mean"}
    assert returns | {"reconstruction_mse", "next_z_nll"} <= metrics.keys()
    assert returns <= metrics["baseline"].keys() and set(metrics["constant"]) == returns
    assert set(metrics["dream_trained"]) == returns  # the other controller (the headline one is `real`)
    meta = json.loads((repo / "metrics/world_models.meta.json").read_text())
    assert meta["headline_controller"] == "real" and len(meta["episode_seeds"]) == meta["episodes"] == 1
    html = (repo / "reports/world_models.html").read_text()
    assert "data:image/gif;base64" in html and "CMA-ES" in html
    assert "world_models" in (repo / "reports/results.md").read_text()
    curves = json.loads((repo / "plots/train/vae.json").read_text())
    assert [row["epoch"] for row in curves] == [1, 2] and {"loss", "val_loss"} <= curves[0].keys()


def test_the_rulers_are_never_retrained(repo):
    log = repo.joinpath("first_repro.log").read_text()
    assert not any(s.startswith("feature_extractor@") for s in ran(log))
    before = (repo / "backbones/digits.weights.h5").read_bytes()
    out = run(repo, "dvc", "repro", "--force", "feature_extractor@digits")
    assert ran(out.stdout) == set() and "frozen" in out.stdout + out.stderr
    assert (repo / "backbones/digits.weights.h5").read_bytes() == before


def test_mlflow_has_a_named_run_per_model(repo):
    code = ("import mlflow; mlflow.set_tracking_uri('sqlite:///mlflow/mlflow.db');"
            "print(sorted(mlflow.search_runs(experiment_names=['vae', 'realnvp'])['tags.mlflow.runName']))")
    commit = git(repo, "rev-parse", "--short", "HEAD~1").strip()  # the runs trained at the smoke-profile commit
    names = run(repo, sys.executable, "-c", code).stdout.strip().splitlines()[-1]
    assert names == str(sorted([f"vae-digits-{commit}", f"vae-shapes-{commit}", f"realnvp-moons-{commit}"]))
    artifacts = list((repo / "mlflow/artifacts/vae").rglob("*.png"))
    assert artifacts, "sample images are logged as artifacts"


def test_second_repro_runs_nothing(repo):
    out = run(repo, "dvc", "repro").stdout
    assert ran(out) == set()
    assert "Data and pipelines are up to date" in out


def test_changing_a_vae_param_reruns_exactly_the_vae_stages(repo):
    params = repo / "params.yaml"
    text = params.read_text()
    start = text.index("\nvae:\n")  # the vae section only: the autoencoder has a latent_dim of 2 too
    end = start + text[start:].index("  latent_dim: 2\n")
    params.write_text(text[:end] + "  latent_dim: 3\n" + text[end + len("  latent_dim: 2\n"):])
    out = run(repo, "dvc", "repro").stdout
    assert ran(out) == VAE_STAGES
    git(repo, "commit", "-qam", "vae latent_dim 3")


def test_metrics_diff_shows_the_changed_figures(repo):
    out = run(repo, "dvc", "metrics", "diff", "HEAD~1", "--md").stdout
    assert "metrics/vae.json" in out and "fid" in out and "bits_per_dim" in out
    assert "metrics/realnvp.json" not in out and "metrics/vae_shapes.json" not in out  # they did not change


def test_plots_diff_draws_both_commits_curves(repo):
    out = repo / "plots_diff"
    run(repo, "dvc", "plots", "diff", "HEAD~1", "-o", str(out))
    page = (out / "index.html").read_text()
    assert '"vae.json::loss"' in page and '"vae.json::val_loss"' in page and "HEAD~1" in page


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
    files = ["metrics/vae.json", "metrics/vae.meta.json", "metrics/realnvp.json"]
    before = {f: (repo / f).read_text() for f in files}
    run(repo, "dvc", "repro", "--force", "evaluate@vae", "evaluate@realnvp")
    assert {f: (repo / f).read_text() for f in files} == before


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
