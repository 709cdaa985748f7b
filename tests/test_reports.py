"""Reports: gdl/reporting.py's helpers without a kernel, then the report stage for real (papermill runs the
jupytext templates on small synthetic inputs, nbconvert renders the HTML).

Each `python -m stages.report` run starts a Jupyter kernel (a few seconds), so the successful runs happen
once per module (fixture `built`, side by side) and the assertions share them.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gdl import families
from gdl import reporting as R

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = REPO / "reports" / "templates"
MODELS = ("vae", "vae_shapes", "realnvp")

IMAGE_METRICS = {"fid": 12.345, "fid_std": 0.4321, "kid": 0.0123, "kid_std": 0.0011, "bits_per_dim": 2.106,
                 "elbo_bits_per_dim": 2.318,
                 "baseline": {"fid": 150.5, "fid_std": 2.5, "kid": 0.2345, "kid_std": 0.0123, "bits_per_dim": 4.567},
                 "reference": {"fid": 1.875, "fid_std": 0.11, "kid": 0.0004321, "kid_std": 0.0002}}
POINT_METRICS = {"nll_nats": 1.2345, "baseline": {"nll_nats": 2.7182}}


def image_meta(model: str, dataset: str) -> dict:
    return {"model": model, "family": "vae", "dataset": dataset, "seed": 42, "num_samples": 100, "num_test": 360,
            "backbone": {"name": "domain", "path": f"backbones/{dataset}.weights.h5", "sha256": "ab12" * 16},
            "baseline": "independent per-pixel marginals of the training split",
            "reference": "training images (the floor that sample noise alone gives)",
            "likelihood": ["iwae", "elbo"], "descriptions": {"fid": "Frechet distance (lower is better)"}}


POINT_META = {"model": "realnvp", "family": "realnvp", "dataset": "moons", "seed": 42, "num_samples": 200,
              "num_test": 400, "baseline": "a single Gaussian, maximum likelihood on the training split",
              "likelihood": ["exact"], "descriptions": {"nll_nats": "nats per point (lower is better)"}}


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def write_history(path: Path, epochs: int, extra: bool = False) -> None:
    e = np.arange(1, epochs + 1)
    hist = {"epoch": e.tolist(), "loss": (100 / e + 50).tolist(), "val_loss": (110 / e + 52).tolist()}
    if extra:
        hist["kl_loss"] = (5 + np.log(e)).tolist()
        hist["val_kl_loss"] = (5.2 + np.log(e)).tolist()
    write_json(path, hist)


def make_inputs(root: Path) -> None:
    """A workspace as the pipeline leaves it before the report stages (small and synthetic)."""
    rng = np.random.default_rng(0)
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    m = root / "metrics"
    write_json(m / "vae.json", IMAGE_METRICS)
    write_json(m / "vae.meta.json", image_meta("vae", "digits"))
    write_json(m / "vae_shapes.json", {**IMAGE_METRICS, "fid": 30.5})
    write_json(m / "vae_shapes.meta.json", image_meta("vae_shapes", "shapes"))
    write_json(m / "realnvp.json", POINT_METRICS)
    write_json(m / "realnvp.meta.json", POINT_META)
    write_json(m / "feature_extractor_digits.json", {"accuracy": 0.9722, "baseline": {"accuracy": 0.1028}})
    write_json(m / "seeds" / "vae.json", {"seeds": [42, 1, 2], "figures": {
        "fid": {"mean": 13.1, "std": 0.9, "values": [12.3, 13.0, 14.0]}}})
    write_history(root / "models" / "vae" / "history.json", 5, extra=True)
    write_history(root / "models" / "vae_shapes" / "history.json", 3, extra=True)
    write_history(root / "models" / "realnvp" / "history.json", 4)

    yy, xx = np.mgrid[:16, :16]

    def blobs(n, channels):
        cx, cy = rng.uniform(4, 12, (2, n, 1, 1))
        b = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 8.0)[..., None]
        return (np.repeat(b, channels, -1) * rng.uniform(0.3, 1, (n, 1, 1, channels))).astype(np.float32)

    (root / "samples").mkdir()
    for model, channels, dim, classes in (("vae", 1, 2, 10), ("vae_shapes", 3, 16, 4)):
        originals = blobs(16, channels)
        labels = rng.integers(0, classes, 300)
        extra = {"latent_label_names": np.array(["circle", "square", "triangle", "diamond"])} if classes == 4 else {}
        np.savez(root / "samples" / f"{model}.npz", samples=blobs(100, channels), originals=originals,
                 reconstructions=np.clip(originals + rng.normal(0, 0.05, originals.shape), 0, 1).astype(np.float32),
                 latent_z=(rng.normal(0, 1, (300, dim)) + labels[:, None] * 0.3).astype(np.float32),
                 latent_labels=labels, **extra)
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
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    make_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ================================================================ helpers, no kernel ==================
def test_reporting_imports_no_tensorflow():
    code = "import sys, gdl.reporting; sys.exit(any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], env=_env(), check=False).returncode == 0


@pytest.mark.parametrize("content,problem", [
    (None, "not found"), ("", "empty file"), ("{nope", "not valid JSON"), ("[1, 2]", "expected a JSON object")])
def test_load_json_names_the_file_and_the_stage(tmp_path, content, problem):
    path = tmp_path / "m.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(R.ReportInputError) as err:
        R.load_json(path, "evaluate@vae")
    msg = str(err.value)
    assert msg.startswith(f"{path}: ") and problem in msg and "stage evaluate@vae" in msg
    assert "dvc repro evaluate@vae" in msg and err.value.path == str(path) and err.value.producer == "evaluate@vae"


def test_load_npz(tmp_path):
    path = tmp_path / "s.npz"
    path.write_text("garbage")
    with pytest.raises(R.ReportInputError, match=r"s\.npz: not an \.npz archive .*sample@vae"):
        R.load_npz(path, "sample@vae")
    np.savez(path, samples=np.zeros((2, 2)))
    with pytest.raises(R.ReportInputError, match=r"missing array\(s\) \['latent_z'\] \(has \['samples'\]\)"):
        R.load_npz(path, "sample@vae", ["samples", "latent_z"])
    np.savez(path, samples=np.array([{"a": 1}], dtype=object))
    with pytest.raises(R.ReportInputError, match="not a readable .npz"):
        R.load_npz(path, "sample@vae")


def test_check_array():
    a = np.zeros((5, 8, 8, 3), np.float32)
    assert R.check_array("f.npz", "s@m", "x", a, ndim=4, last=(1, 3), length=5) is a
    for kwargs, expected in [({"ndim": 2}, "expected 2 dimensions"), ({"ndim": (2, 3)}, "2 or 3 dimensions"),
                             ({"last": 1}, "last dimension 1"), ({"length": 4}, "4 rows")]:
        with pytest.raises(R.ReportInputError, match=expected):
            R.check_array("f.npz", "s@m", "x", a, **kwargs)
    with pytest.raises(R.ReportInputError, match="at least one row"):
        R.check_array("f.npz", "s@m", "x", np.zeros((0, 2)))
    with pytest.raises(R.ReportInputError, match="'x' contains NaN"):
        R.check_array("f.npz", "s@m", "x", np.array([1.0, np.nan]))


def test_load_history(tmp_path):
    path = tmp_path / "history.json"
    write_history(path, 3, extra=True)
    h = R.load_history(path, "train@vae")
    assert list(h.index) == [1, 2, 3] and h.index.name == "epoch"
    assert list(h.columns) == ["loss", "val_loss", "kl_loss", "val_kl_loss"]
    for bad, problem in [({"epoch": [1, 2], "loss": [1.0]}, "differ in length"), ({"loss": ["a"]}, "not numeric"),
                         ({"epoch": [1]}, "no per-epoch lists")]:
        write_json(path, bad)
        with pytest.raises(R.ReportInputError, match=problem):
            R.load_history(path, "train@vae")


def test_load_metrics_wants_figures_only(tmp_path):
    path = tmp_path / "vae.json"
    write_json(path, IMAGE_METRICS)
    assert R.load_metrics(path, "evaluate@vae") == IMAGE_METRICS
    assert R.figure_keys(IMAGE_METRICS) == ["fid", "kid", "bits_per_dim", "elbo_bits_per_dim"]
    # The old layout (descriptions mixed with figures) is a stale file: say so.
    write_json(path, {**IMAGE_METRICS, "family": "vae"})
    with pytest.raises(R.ReportInputError, match="'family' is 'vae', not a number.*evaluate@vae"):
        R.load_metrics(path, "evaluate@vae")
    write_json(path, {"fid": 1.0, "baseline": {"name": "x"}})
    with pytest.raises(R.ReportInputError, match="'baseline' must be an object of numbers"):
        R.load_metrics(path, "evaluate@vae")


def test_figure_rows_and_formatting():
    rows = {r["key"]: r for r in R.figure_rows(IMAGE_METRICS, image_meta("vae", "digits"))}
    fid = rows["fid"]
    assert fid["label"] == "FID" and fid["direction"] == "lower"
    assert (fid["model"], fid["model_std"], fid["baseline"], fid["baseline_std"]) == (12.345, 0.4321, 150.5, 2.5)
    assert fid["reference"] == 1.875 and fid["reference_std"] == 0.11
    assert fid["gain"] == pytest.approx(150.5 / 12.345)
    assert rows["elbo_bits_per_dim"]["label"] == "bits/dim (elbo bound)" and rows["elbo_bits_per_dim"]["gain"] is None
    assert R.headline(list(rows.values()))["key"] == "fid"
    assert R.direction("accuracy") == "higher" and R.direction("custom") is None
    assert R.direction("custom", "the thing (higher is better)") == "higher"
    assert R.fmt(88.52, 2.951) == "88.52 ± 3.0" and R.fmt(1.0, 12.0) == "1 ± 12" and R.fmt(2.0, 315.2) == "2 ± 3.2e+02"
    assert R.fmt(12.345, 0.4321) == "12.35 ± 0.43" and R.fmt(None) == "—" and R.fmt(float("nan")) == "—"
    table = R.metrics_frame(list(rows.values()))
    assert list(table["figure"]) == ["FID ↓", "KID ↓", "bits/dim ↓", "bits/dim (elbo bound) ↓"]
    assert table.loc[0, "better than the baseline"] == "×12.2" and table.loc[0, "reference (real data)"] == "1.875 ± 0.11"
    text = R.glossary(list(rows.values()), image_meta("vae", "digits"))
    assert "From the model's `iwae`" in text and "from the model's `elbo`: a looser bound" in text and "per-pixel marginals" in text


def test_markdown_table_escapes_and_aligns():
    import pandas as pd

    text = R.markdown_table(pd.DataFrame({"name": ["a|b", "c"], "value": ["1", "22"]}), right=["value"])
    lines = text.splitlines()
    assert lines[0] == "| name | value |" and lines[1] == "| :--- | ----: |"
    assert lines[2] == "| a\\|b |     1 |" and len({len(line) for line in lines}) == 1


def test_png_is_deterministic_and_of_fixed_size():
    from PIL import Image

    def draw():
        fig, ax = R.subplots(4.0, 3.0)
        ax.plot([0, 1, 2], [1, 0, 1])
        ax.set_title("t")
        return R.png(fig)

    first, second = draw(), draw()
    assert first == second
    assert b"tIME" not in first and b"Software" not in first and b"matplotlib" not in first.lower()
    assert Image.open(io.BytesIO(first)).size == (4 * R.DPI, 3 * R.DPI)


def test_image_grid_takes_grey_and_colour():
    from PIL import Image

    for channels in (1, 3):
        images = np.linspace(-0.5, 1.5, 8 * 8 * 8 * channels).reshape(8, 8, 8, channels)
        fig, clipped = R.image_grid(images, 4, 2, title="x")
        assert clipped == pytest.approx(0.5, abs=0.02)  # the values below 0 and above 1
        assert Image.open(io.BytesIO(R.png(fig))).size == (round(0.9 * 4 * R.DPI), round((0.9 * 2 + 0.3) * R.DPI))
    assert R.mosaic(np.ones((3, 2, 2)), 2).shape == (7, 7)


def test_principal_plane_keeps_the_prior_circles():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(2000, 16)) * np.r_[3.0, 2.0, np.ones(14)]
    points, variance = R.principal_plane(z)
    assert points.shape == (2000, 2) and variance[0] > variance[1] > 0
    assert np.allclose(points.std(axis=0), [3.0, 2.0], rtol=0.1)  # the two widest directions, unshifted
    assert np.array_equal(points, R.principal_plane(z.copy())[0])  # signs fixed
    assert abs(points.mean(axis=0)).max() < 0.2


def test_load_results_and_results_md(workspace):
    results, rulers = R.load_results("metrics")
    assert [r.model for r in results] == ["realnvp", "vae", "vae_shapes"]
    assert rulers == {"digits": {"accuracy": 0.9722, "baseline": 0.1028}}
    assert results[1].seeds["seeds"] == [42, 1, 2] and results[0].seeds is None
    md = R.results_markdown(results, rulers)
    lines = md.splitlines()
    assert lines[0] == R.RESULTS_HEADER
    main_table = md.split("### Image families")[0]
    rows = [line for line in main_table.splitlines() if line.startswith("|")]
    assert [c.strip() for c in rows[0].strip("|").split("|")] == [
        "model", "dataset", "measured with", "figure", "value", "baseline", "reference", "across seeds"]
    vae = next(r for r in rows if r.startswith("| vae "))
    assert "digits" in vae and "domain `ab12ab12`" in vae and "FID ↓" in vae
    assert "12.35 ± 0.43" in vae and "150.5 ± 2.5" in vae and "1.875 ± 0.11" in vae and "13.1 ± 0.90 (3 seeds)" in vae
    assert "| realnvp " in md and "1.234" in md and "2.718" in md and "NLL (nats/point) ↓" in md
    assert "*value*: the model's figure ± its noise" in md and "majority class 0.1028" in md
    assert "vae, vae_shapes: independent per-pixel marginals" in md
    assert len(rows) == 2 + 1 + 4 + 4  # header, rule, realnvp's one figure, each VAE's four


def test_image_families_table(workspace):
    """One table per image dataset: each image model's FID/KID with noise and bits/dim with the space they
    are in, then the per-pixel baseline's and training images' rows; points and labels stay out."""
    results, _ = R.load_results("metrics")
    results[1].meta.update(image_size=16, levels=4)  # a PixelCNN's own space
    md = R.image_families_markdown(results)
    assert md.count("**digits**") == 1 and "realnvp" not in md
    digits = md.split("**shapes**")[0] if "**shapes**" in md else md
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")]
            for line in digits.splitlines() if line.startswith("| ")}
    assert rows["model"] == ["model", "FID ↓", "KID ↓", "bits/dim ↓", "baseline bits/dim", "bits/dim of",
                             "FID across seeds"]
    assert rows["vae"][1:6] == ["12.35 ± 0.43", "0.0123 ± 0.0011", "2.106", "4.567", "16x16, 4 levels"]
    assert rows["*per-pixel baseline*"][1:3] == ["150.5 ± 2.5", "0.2345 ± 0.012"]
    assert rows["*training images*"][1] == "1.875 ± 0.11"
    assert "### Image families" in R.results_markdown(results, {})


def test_load_results_errors(workspace):
    (workspace / "metrics" / "vae.meta.json").unlink()
    with pytest.raises(R.ReportInputError, match=r"metrics/vae\.meta\.json: not found beside metrics/vae\.json "
                                                 r"\(written by stage evaluate@vae"):
        R.load_results("metrics")
    write_json(workspace / "metrics" / "vae.meta.json", image_meta("vae_shapes", "shapes"))
    with pytest.raises(R.ReportInputError, match="describes model 'vae_shapes', expected 'vae'"):
        R.load_results("metrics")
    write_json(workspace / "metrics" / "vae.meta.json", image_meta("vae", "digits"))
    write_json(workspace / "metrics" / "seeds" / "vae.json", {"seeds": [1]})
    with pytest.raises(R.ReportInputError, match=r"seeds/vae\.json: expected .* \(written by scripts/seeds\.py\)"):
        R.load_results("metrics")


def test_load_model_report(workspace):
    report = R.load_model_report("vae_shapes", "images")
    assert report.dataset == "shapes" and report.samples().shape == (100, 16, 16, 3)
    assert report.array("latent_z", ndim=2).shape == (300, 16)
    with pytest.raises(R.ReportInputError, match=r"samples/vae_shapes\.npz: missing array 'nope'.*sample@vae_shapes"):
        report.array("nope")
    with pytest.raises(R.ReportInputError, match=r"samples/realnvp\.npz: array 'samples' has shape \(200, 2\), "
                                                 r"expected 4 dimensions"):
        R.load_model_report("realnvp", "images")


# ================================================================ notebooks from jupytext files ========
def test_templates_are_jupytext_with_one_parameters_cell():
    from stages.report import build_notebook

    assert {"images.py", "points.py", "labels.py", "summary.py"} <= {p.name for p in TEMPLATES.glob("*.py")}
    assert not list(TEMPLATES.glob("*.ipynb")) and not (TEMPLATES / "make_templates.py").exists()
    for path in TEMPLATES.glob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(import|from)\s+(tensorflow|keras)", text, re.MULTILINE), path
        nb = build_notebook(path)
        assert nb.metadata["kernelspec"]["name"] == "python3"
        assert sum("parameters" in c.metadata.get("tags", []) for c in nb.cells) == 1


def test_family_sections_weave_into_their_template():
    from stages.report import build_notebook, template_files

    sections = [families.get(name) for name in families.names() if families.get(name).report_section]
    assert {f.name for f in sections} >= {"vae", "realnvp"}
    for inst in families.instances(REPO / "dvc.yaml").values():
        template, section = template_files(inst)
        nb = build_notebook(template, section)
        ids = [c.id for c in nb.cells]
        assert len(set(ids)) == len(ids) and nb == build_notebook(template, section)  # stable ids, same every time
        tags = [c.metadata.get("tags", []) for c in nb.cells]
        title = next(i for i, t in enumerate(tags) if "title" in t)
        if section:
            assert "intro" in tags[title + 1]  # what the model is, right under the title
            assert any(c.id.startswith(f"{inst.family.name}-") for c in nb.cells)
        assert "appendix" in tags[-1] and "appendix" in tags[-2]  # the inputs list stays last
        assert not any(c.cell_type == "code" and all(line.startswith("#") for line in c.source.splitlines())
                       for c in nb.cells)  # a section's opening comment is not a cell


# ================================================================ the stage, for real =================
@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("reports")
    make_inputs(root)
    procs = {name: subprocess.Popen([sys.executable, "-m", "stages.report", name], cwd=root, env=_env(),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in (*MODELS, "summary")}  # side by side: each waits mostly on its kernel
    for name, p in procs.items():
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, f"{name}: {out}\n{err}"
    return root


@pytest.mark.slow  # executes notebooks with papermill
@pytest.mark.parametrize("model,values,pngs", [
    ("vae", ["Variational autoencoder: <code>vae</code>", "12.35 ± 0.43", "150.5 ± 2.5", "×12.2",
             "0.0123 ± 0.0011", "1.875 ± 0.11", "4.567", "2.318", "Reconstructions", "The latent space",
             "sha256 <code>ab12ab12ab12</code>"], 4),
    ("vae_shapes", ["30.5 ± 0.43", "The latent space has 16 dimensions"], 4),
    ("realnvp", ["RealNVP normalizing flow: <code>realnvp</code>", "1.234", "2.718", "single Gaussian",
                 "From data to latent space and back", "How Gaussian"], 3),
])
def test_model_report(built, model, values, pngs):
    html = (built / "reports" / f"{model}.html").read_text()
    assert len(re.findall(r"<img [^>]*src=\"data:image/png;base64,", html)) == pngs
    for v in values:
        assert v in html, v
    body = re.sub(r"<style.*?</style>", "", html, flags=re.DOTALL)
    assert "Traceback" not in body and "Error" not in body and "Warning" not in body
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # self-contained: nothing fetched
    assert "R.load_model_report" not in html  # inputs hidden
    # The family's intro sits under the title, before the metrics; the inputs list is last.
    headings = re.findall(r"<h[23][^>]*>(.*?)<", html)
    assert headings[:3] == ["Metrics", "Training curves", "Samples"] and headings[-1].startswith("Inputs")
    nb = json.loads((built / "reports" / f"{model}.ipynb").read_text())
    assert "start_time" not in json.dumps(nb) and '"execution"' not in json.dumps(nb)
    assert nb["metadata"]["papermill"]["parameters"]["model"] == model
    assert nb["metadata"]["papermill"]["input_path"].startswith("reports/templates/")
    assert not list((built / "reports").glob(".*"))  # no temp files left


@pytest.mark.slow  # executes notebooks with papermill
def test_summary_report(built):
    md = (built / "reports" / "results.md").read_text()
    results, rulers = R.load_results(built / "metrics")
    assert md == R.results_markdown(results, rulers)
    html = (built / "reports" / "summary.html").read_text()
    assert len(re.findall(r"<img [^>]*src=\"data:image/png;base64,", html)) == 1
    assert "13.1 ± 0.90 (3 seeds)" in html and "vae_shapes" in html and "Traceback" not in html


@pytest.mark.slow  # executes notebooks with papermill
def test_rerun_is_reproducible(built):
    names = ("realnvp.ipynb", "realnvp.html")
    before = {p: (built / "reports" / p).read_bytes() for p in names}
    proc = run_stage(built, "realnvp")
    assert proc.returncode == 0, proc.stderr
    for p, content in before.items():
        assert (built / "reports" / p).read_bytes() == content, p


def test_missing_input_fails_before_the_kernel_and_leaves_nothing(workspace):
    (workspace / "samples" / "vae.npz").unlink()
    (workspace / "reports").mkdir()
    (workspace / "reports" / "vae.html").write_text("stale")
    proc = run_stage(workspace, "vae")
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("error in stage report@vae: samples/vae.npz: not found "
                                   "(written by stage sample@vae; run `dvc repro sample@vae`)")
    assert list((workspace / "reports").iterdir()) == []


@pytest.mark.slow  # executes notebooks with papermill
def test_corrupt_metrics_fail_the_summary_and_leave_nothing(workspace):
    (workspace / "metrics" / "realnvp.json").write_text('{"nll_nats": ')
    (workspace / "reports").mkdir()
    (workspace / "reports" / "results.md").write_text("stale")
    proc = run_stage(workspace, "summary")
    assert proc.returncode == 1
    assert "metrics/realnvp.json: not valid JSON" in proc.stderr and "evaluate@realnvp" in proc.stderr
    assert list((workspace / "reports").iterdir()) == []


@pytest.mark.slow  # executes notebooks with papermill
def test_bad_samples_fail_in_the_notebook_and_leave_nothing(workspace):
    """An array only the family's section needs is missing: the kernel raises, the stage names the file."""
    arrays = dict(np.load(workspace / "samples" / "vae.npz"))
    del arrays["latent_z"]
    np.savez(workspace / "samples" / "vae.npz", **arrays)
    (workspace / "reports").mkdir()
    (workspace / "reports" / "vae.ipynb").write_text("stale")
    proc = run_stage(workspace, "vae")
    assert proc.returncode == 1
    assert "samples/vae.npz: missing array 'latent_z'" in proc.stderr and "sample@vae" in proc.stderr, proc.stderr
    assert list((workspace / "reports").iterdir()) == []


def test_invalid_params_stop_before_anything(workspace):
    (workspace / "params.yaml").write_text("seed: -1\n")
    proc = run_stage(workspace, "vae")
    assert proc.returncode == 1 and "seed" in proc.stderr
    assert not (workspace / "reports").exists()


def test_unknown_model_is_refused(workspace):
    proc = run_stage(workspace, "nope")
    assert proc.returncode == 2 and "invalid choice: 'nope'" in proc.stderr


def test_seed_spread_with_a_single_seed(tmp_path):
    path = tmp_path / "vae.json"
    write_json(path, {"model": "vae", "seeds": [42], "committed_seed": 42,
                      "figures": {"fid": {"mean": 12.0, "std": None, "values": [12.0]}, "baseline.fid": {
                          "mean": 150.0, "std": None, "values": [150.0]}}})
    result = R.ModelResult("vae", IMAGE_METRICS, image_meta("vae", "digits"), R.load_seeds(path))
    assert R.seed_spread(result, "fid") == "12 (1 seed)" and R.seed_spread(result, "kid") == ""


def test_a_stale_seed_spread_is_left_out_with_a_warning(tmp_path, capsys):
    """The seed spread's run with the committed seed must have the committed figures; after the model
    changed (and before scripts/seeds.py reran) it does not, and the summary must not show it."""
    seeds = {"model": "vae", "seeds": [42, 1], "committed_seed": 42,
             "figures": {"fid": {"mean": 12.0, "std": 0.5, "values": [IMAGE_METRICS["fid"], 11.6]}}}
    assert R.stale_seed_figure(seeds, IMAGE_METRICS) == ""
    write_json(tmp_path / "vae.json", IMAGE_METRICS)
    write_json(tmp_path / "vae.meta.json", image_meta("vae", "digits"))
    write_json(tmp_path / "seeds" / "vae.json", seeds)
    assert R.load_results(tmp_path)[0][0].seeds is not None

    seeds["figures"]["fid"]["values"][0] = 53.6
    assert R.stale_seed_figure(seeds, IMAGE_METRICS).startswith("fid 53.6 at seed 42")
    write_json(tmp_path / "seeds" / "vae.json", seeds)
    capsys.readouterr()
    assert R.load_results(tmp_path)[0][0].seeds is None
    assert "seeds/vae.json: left out, it is stale (fid 53.6 at seed 42" in capsys.readouterr().err


def test_png_leaves_pyplot_alone_for_figures_it_did_not_make(monkeypatch):
    """R.subplots figures need no pyplot: a half-imported pyplot (another kernel thread importing it) must
    not break png(), while a pyplot figure is still closed after rendering."""
    import types

    import matplotlib.pyplot as plt

    fig, _ = R.subplots(1, 1)
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "matplotlib.pyplot", types.ModuleType("matplotlib.pyplot"))  # no `close` yet
        assert R.png(fig).startswith(b"\x89PNG")
    made = plt.figure()
    R.png(made)
    assert made.number not in plt.get_fignums()
