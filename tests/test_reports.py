"""The report stage, for real: papermill executes the templates on synthetic inputs, nbconvert renders HTML.

Each `python -m stages.report` run starts a Jupyter kernel (a few seconds), so the expensive runs happen
once per module (fixture `built`) and the assertions share them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = REPO / "reports" / "templates"

VAE_METRICS = {"family": "vae", "dataset": "digits", "backbone": "domain", "num_samples": 100, "seed": 42,
               "fid": 12.345, "kid": 0.0123, "kid_std": 0.0011, "bits_per_dim": 2.106, "elbo_bits_per_dim": 2.318,
               "baseline": {"fid": 150.5, "kid": 0.2345, "kid_std": 0.0123, "bits_per_dim": 4.567,
                            "name": "independent Bernoulli pixels"},
               "reference": {"name": "training images", "fid": 1.875, "kid": 0.0004321, "kid_std": 0.0002}}
REALNVP_METRICS = {"family": "realnvp", "dataset": "moons", "num_samples": 100, "seed": 42, "nll_nats": 1.2345,
                   "baseline": {"nll_nats": 2.7182, "name": "single Gaussian (MLE)"}}


def write_history(path: Path, epochs: int, extra: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    e = np.arange(1, epochs + 1)
    hist = {"epoch": e.tolist(), "loss": (100 / e + 50).tolist(), "val_loss": (110 / e + 52).tolist()}
    if extra:
        hist["kl_loss"] = (5 + np.log(e)).tolist()
        hist["val_kl_loss"] = (5.2 + np.log(e)).tolist()
    path.write_text(json.dumps(hist))


def make_inputs(root: Path) -> None:
    rng = np.random.default_rng(0)
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    (root / "metrics").mkdir()
    (root / "samples").mkdir()
    (root / "metrics" / "vae.json").write_text(json.dumps(VAE_METRICS))
    (root / "metrics" / "realnvp.json").write_text(json.dumps(REALNVP_METRICS))
    (root / "metrics" / "feature_extractor_digits.json").write_text(json.dumps({
        "family": "feature_extractor", "dataset": "digits", "seed": 42, "num_test": 360, "accuracy": 0.9722,
        "baseline": {"name": "majority class", "accuracy": 0.1028}}))
    write_history(root / "models" / "vae" / "history.json", 5, extra=True)
    write_history(root / "models" / "realnvp" / "history.json", 4)

    h = w = 16
    yy, xx = np.mgrid[:h, :w]
    def blobs(n):
        cx, cy = rng.uniform(4, 12, (2, n, 1, 1))
        return np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 8.0)[..., None].astype(np.float32)
    originals = blobs(16)
    labels = rng.integers(0, 10, 300)
    np.savez(root / "samples" / "vae.npz", samples=blobs(100), originals=originals,
             reconstructions=np.clip(originals + rng.normal(0, 0.05, originals.shape), 0, 1).astype(np.float32),
             latent_z=(rng.normal(0, 1, (300, 2)) + labels[:, None] * 0.3).astype(np.float32), latent_labels=labels)

    t = rng.uniform(0, np.pi, 400)
    moon = rng.integers(0, 2, 400)
    data = np.where(moon[:, None] == 0, np.c_[np.cos(t), np.sin(t)], np.c_[1 - np.cos(t), 0.5 - np.sin(t)])
    latent = rng.normal(size=(200, 2))
    np.savez(root / "samples" / "realnvp.npz", samples=(latent * 0.5 + [0.5, 0.25]).astype(np.float32),
             data=data.astype(np.float32), data_labels=moon, data_latent=rng.normal(size=(400, 2)).astype(np.float32),
             latent=latent.astype(np.float32))


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))


def run_stage(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stages.report", *args], cwd=root, env=_env(),
                          capture_output=True, text=True, timeout=300)


def start_stage(root: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "stages.report", *args], cwd=root, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("reports")
    make_inputs(root)
    # A future family with no template of its own: the generic report, without a samples file.
    (root / "metrics" / "toy.json").write_text(json.dumps({"family": "toy", "dataset": "text", "accuracy": 0.75,
                                                           "perplexity": 12.5, "baseline": {"perplexity": 80.0}}))
    write_history(root / "models" / "toy" / "history.json", 3)
    old = Path.cwd()
    os.chdir(root)
    try:  # the reports are independent: run them side by side (each waits mostly on its kernel)
        procs = {name: start_stage(root, name) for name in ("vae", "realnvp", "toy", "summary")}
        runs = {name: (*p.communicate(timeout=300), p.returncode) for name, p in procs.items()}
    finally:
        os.chdir(old)
    for name, (out, err, rc) in runs.items():
        assert rc == 0, f"{name}: {out}\n{err}"
    return root


def test_templates_are_generated_from_the_script():
    proc = subprocess.run([sys.executable, str(TEMPLATES / "make_templates.py"), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for name in ("vae", "realnvp", "summary", "family"):
        nb = json.loads((TEMPLATES / f"{name}.ipynb").read_text())
        assert nb["metadata"]["kernelspec"]["name"] == "python3"
        tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1
        assert "tensorflow" not in json.dumps(nb) and "keras" not in json.dumps(nb)


@pytest.mark.parametrize("name,values", [
    ("vae", ["12.35", "150.5", "0.0123 ± 0.0011", "2.106", "4.567", "2.318", "1.875", "0.0004321 ± 0.0002"]),
    ("realnvp", ["1.234", "2.718", "single Gaussian (MLE)"]),
])
def test_family_report(built, name, values):
    html = (built / "reports" / f"{name}.html").read_text()
    n_png = html.count("data:image/png;base64")
    assert n_png >= (4 if name == "vae" else 2), n_png
    for v in values:
        assert v in html, v
    assert "Traceback" not in html and "ReportInputError" not in html and "Warning" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # self-contained: nothing fetched
    nb = json.loads((built / "reports" / f"{name}.ipynb").read_text())
    # Timestamps and durations are stripped; the parameters papermill injected point at the inputs.
    assert "start_time" not in json.dumps(nb)
    assert nb["metadata"]["papermill"]["parameters"]["samples_path"] == f"samples/{name}.npz"
    assert not list((built / "reports").glob(".*"))  # no temp files left


def test_generic_report_for_a_family_without_template(built):
    html = (built / "reports" / "toy.html").read_text()
    assert "data:image/png;base64" in html  # training curves
    assert "accuracy ↑" in html and "higher" in html and "12.5" in html and "80" in html
    assert "No samples file" in html
    md = (built / "reports" / "results.md").read_text()
    assert re.search(r"\|\s*toy\s*\|", md) and "accuracy ↑" in md


def test_ratio_and_direction(built):
    html = (built / "reports" / "vae.html").read_text()
    assert "12.19" in html  # fid ratio 150.5 / 12.345
    assert "lower" in html


def test_summary(built):
    md = (built / "reports" / "results.md").read_text()
    assert md.startswith("Generated by `dvc repro` (report stage summary); do not edit.")
    rows = [line for line in md.splitlines() if line.startswith("|")]
    assert any(re.match(r"\|\s*vae\s*\|", r) for r in rows) and any(re.match(r"\|\s*realnvp\s*\|", r) for r in rows)
    assert "12.35 / 150.5 (×12.2)" in md and "1.234 / 2.718 (×2.2)" in md
    assert "nll_nats ↓" in md and "fid ↓" in md
    families = [r.split("|")[1].strip() for r in rows[2:]]
    assert families == ["realnvp", "toy", "vae", "feature_extractor_digits"]  # families first, then the rest
    assert "0.9722 / 0.1028 (×0.106)" in md and "360" not in md  # num_test is metadata, not a metric
    html = (built / "reports" / "summary.html").read_text()
    assert "data:image/png;base64" in html and "12.35" in html and "realnvp" in html


def test_rerun_is_reproducible(built):
    before = {p: (built / "reports" / p).read_bytes() for p in ("realnvp.ipynb", "realnvp.html")}
    proc = run_stage(built, "realnvp")
    assert proc.returncode == 0, proc.stderr
    for p, content in before.items():
        assert (built / "reports" / p).read_bytes() == content, p


def test_missing_samples_fails_cleanly(tmp_path):
    make_inputs(tmp_path)
    (tmp_path / "samples" / "vae.npz").unlink()
    proc = run_stage(tmp_path, "vae")
    assert proc.returncode == 1
    assert "samples/vae.npz" in proc.stderr and "sample@vae" in proc.stderr
    assert not (tmp_path / "reports" / "vae.html").exists()
    assert not (tmp_path / "reports" / "vae.ipynb").exists()


def test_bad_samples_fail_in_the_notebook_and_leave_nothing(tmp_path):
    make_inputs(tmp_path)
    np.savez(tmp_path / "samples" / "vae.npz", samples=np.zeros((4, 8, 8, 1), np.float32))  # arrays missing
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "vae.html").write_text("stale")
    proc = run_stage(tmp_path, "vae")
    assert proc.returncode == 1
    assert "samples/vae.npz" in proc.stderr and "latent_z" in proc.stderr, proc.stderr
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == []


def test_invalid_params_stop_before_anything(tmp_path):
    make_inputs(tmp_path)
    (tmp_path / "params.yaml").write_text("seed: -1\n")
    proc = run_stage(tmp_path, "vae")
    assert proc.returncode == 1 and "seed" in proc.stderr
    assert not (tmp_path / "reports").exists()


# ---------------------------------------------------------------- table logic, no kernel -------------
@pytest.fixture(scope="module")
def helpers():
    sys.path.insert(0, str(TEMPLATES))
    try:
        import make_templates
    finally:
        sys.path.remove(str(TEMPLATES))
    ns: dict = {}
    exec(make_templates.COMMON, ns)
    return ns


def test_split_metrics_handles_any_numeric_key(helpers):
    meta, rows = helpers["split_metrics"]({
        "family": "x", "seed": 1, "num_samples": 10, "accuracy": 0.9, "perplexity": 20.0, "custom": 3,
        "kid": 0.1, "kid_std": 0.01, "flag": True, "extra": {"loss": 2.0, "note": "n"},
        "baseline": {"accuracy": 0.1, "perplexity": 80.0, "name": "uniform"},
        "reference": {"name": "real", "kid": 0.001, "kid_std": 0.0005}})
    by = {r["metric"]: r for r in rows}
    assert set(by) == {"accuracy", "perplexity", "custom", "kid", "extra.loss"}
    assert meta["seed"] == 1 and meta["num_samples"] == 10 and meta["baseline name"] == "uniform" and meta["flag"] is True
    assert by["accuracy"]["direction"] == "higher" and by["accuracy"]["better"] == "yes"
    assert by["perplexity"]["direction"] == "lower" and by["perplexity"]["ratio"] == 4.0
    assert by["custom"]["direction"] is None and by["custom"]["baseline"] is None and by["custom"]["ratio"] is None
    assert by["kid"]["model_std"] == 0.01 and by["kid"]["reference"] == 0.001 and by["kid"]["reference_std"] == 0.0005
    assert by["extra.loss"]["direction"] == "lower" and meta["extra.note"] == "n" and meta["reference name"] == "real"
    table = helpers["metrics_table"](rows)
    assert table.loc["accuracy ↑", "better is"] == "higher"
    assert helpers["direction"]("neg_log_likelihood") == "lower"
