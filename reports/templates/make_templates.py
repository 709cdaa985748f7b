"""Generate the report templates (`*.ipynb` in this folder) from the Python below.

The notebooks are executed by `python -m stages.report <name>` (papermill) and rendered to HTML. They are
written from this script so they can be reviewed as plain Python; the generated `.ipynb` files are
committed too (DVC tracks them as dependencies of the report stages). After editing this file run

    python reports/templates/make_templates.py          # rewrite the templates
    python reports/templates/make_templates.py --check  # exit 1 if a committed template is stale

Rules for the notebook code: no TensorFlow (a kernel start must stay cheap), matplotlib on the Agg
backend with figures rendered explicitly to PNG at a fixed size and dpi (deterministic bytes, embedded
in the HTML), and every input error raised as a `ReportInputError` naming the file and the stage that
writes it, so the report stage can say what to fix.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

# ------------------------------------------------------------------------------------------------
# Code shared by every template (one hidden "helpers" cell). Tests exec this string directly to check
# the table logic without starting a kernel.
# ------------------------------------------------------------------------------------------------
COMMON = r'''
import hashlib
import io
import json
import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no GUI, no inline backend: figures are rendered to PNG explicitly by show()
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd
from IPython.display import HTML, Image, Markdown, display

DPI = 100  # with the fixed figure sizes below: readable, and a few tens of kB per figure
plt.rcParams.update({"figure.dpi": DPI, "savefig.dpi": DPI, "font.size": 10, "axes.titlesize": 11})
pd.set_option("display.float_format", lambda v: f"{v:.4g}")


class ReportInputError(ValueError):
    """An input file is missing or malformed; the message names the file and the stage that writes it."""


def show(fig):
    """Render a figure to PNG (no timestamps, no software tag) and display it inline."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    display(Image(data=buf.getvalue(), format="png"))


def say(text):
    display(Markdown(text))


# ---------------------------------------------------------------- input files ------------------------
def _need(path, producer):
    path = Path(path)
    if not path.is_file():
        raise ReportInputError(f"{path}: not found (written by stage {producer}; run `dvc repro {producer}`)")
    return path


def load_json(path, producer):
    path = _need(path, producer)
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportInputError(f"{path}: not valid JSON ({exc}); written by stage {producer}") from None
    if not isinstance(data, dict):
        raise ReportInputError(f"{path}: expected a JSON object, got {type(data).__name__}; written by stage {producer}")
    return data


def load_npz(path, producer, required=()):
    """Load every array of an .npz (no pickles) and check that `required` names are present."""
    path = _need(path, producer)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:  # zipfile.BadZipFile, ValueError (pickled object arrays), OSError
        raise ReportInputError(f"{path}: not a readable .npz ({type(exc).__name__}: {exc}); written by stage {producer}") from None
    missing = [k for k in required if k not in arrays]
    if missing:
        raise ReportInputError(f"{path}: missing array(s) {missing} (has {sorted(arrays)}); written by stage {producer}")
    return arrays


def check_shape(path, producer, name, array, ndim=None, last=None, length=None):
    """Raise a ReportInputError unless `array` has `ndim` dims, last dim in `last`, first dim `length`."""
    problems = []
    if ndim is not None and array.ndim not in (ndim if isinstance(ndim, tuple) else (ndim,)):
        problems.append(f"{ndim} dimension(s)")
    elif last is not None and array.shape[-1] not in (last if isinstance(last, tuple) else (last,)):
        problems.append(f"last dimension in {last}")
    if length is not None and (array.ndim == 0 or array.shape[0] != length):
        problems.append(f"{length} rows")
    if array.ndim and array.shape[0] == 0:
        problems.append("at least one row")
    if problems:
        raise ReportInputError(f"{path}: array {name!r} has shape {array.shape}, expected {' and '.join(problems)}; "
                               f"written by stage {producer}")
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        raise ReportInputError(f"{path}: array {name!r} contains NaN or inf; written by stage {producer}")
    return array


def load_history(path, producer):
    """history.json: {"epoch": [...], "loss": [...], "val_loss": [...], ...} -> DataFrame indexed by epoch."""
    raw = load_json(path, producer)
    series = {k: v for k, v in raw.items() if isinstance(v, list)}
    if not series or not any(k != "epoch" for k in series):
        raise ReportInputError(f"{path}: no per-epoch lists (expected e.g. 'loss', 'val_loss'); written by stage {producer}")
    lengths = {k: len(v) for k, v in series.items()}
    if len(set(lengths.values())) != 1:
        raise ReportInputError(f"{path}: per-epoch lists differ in length {lengths}; written by stage {producer}")
    n = next(iter(lengths.values()))
    epochs = series.pop("epoch", list(range(1, n + 1)))
    try:
        frame = pd.DataFrame({k: pd.to_numeric(pd.Series(v, dtype="object"), errors="raise").astype(float).to_numpy()
                              for k, v in series.items()}, index=pd.Index(epochs, name="epoch"))
    except (TypeError, ValueError) as exc:
        raise ReportInputError(f"{path}: a per-epoch list is not numeric ({exc}); written by stage {producer}") from None
    return frame


def provenance(paths):
    """Table of the input files this report read: size and SHA-256 prefix (compare with dvc.lock)."""
    rows = []
    for role, p in paths.items():
        p = Path(p)
        if p.is_dir():
            for f in sorted(p.glob("*.json")):
                rows.append({"input": role, "file": str(f), "bytes": f.stat().st_size,
                             "sha256": hashlib.sha256(f.read_bytes()).hexdigest()[:12]})
        elif p.is_file():
            rows.append({"input": role, "file": str(p), "bytes": p.stat().st_size,
                         "sha256": hashlib.sha256(p.read_bytes()).hexdigest()[:12]})
    display(pd.DataFrame(rows).set_index("input"))


# ---------------------------------------------------------------- metrics -----------------------------
LOWER_IS_BETTER = ("fid", "kid", "bits_per_dim", "bpd", "nll", "nats", "perplexity", "loss", "mse", "mae",
                   "error", "distance", "wasserstein", "mmd")
HIGHER_IS_BETTER = ("accuracy", "precision", "recall", "f1", "auc", "inception_score", "log_likelihood")
# Numeric entries that describe the run rather than measure the model.
META_KEYS = {"seed", "epochs", "batch_size", "num_samples", "iw_samples", "kid_subsets", "kid_subset_size",
             "image_size", "latent_dim", "feature_dim"}
META_PREFIXES = ("num_", "n_")
META_SUFFIXES = ("_seed", "_samples", "_subsets", "_size")

GLOSSARY = {
    "fid": "Fréchet distance between Gaussians fitted to features of real and generated images "
           "(features from the `backbone` network). 0 means identical feature statistics.",
    "kid": "Kernel Inception Distance: unbiased MMD with a cubic polynomial kernel on the same features, "
           "averaged over random subsets (± its standard deviation over subsets). Less biased than FID for few samples.",
    "bits_per_dim": "Negative log-likelihood of the test set in bits per pixel (for the VAE an importance-weighted "
                    "upper bound, tighter than the ELBO).",
    "elbo_bits_per_dim": "The negative ELBO on the test set in bits per pixel: the looser bound the VAE is trained on.",
    "nll_nats": "Average negative log-likelihood of the test points in nats (exact for a normalizing flow).",
    "perplexity": "exp(cross-entropy per token) on the test set: the effective number of equally likely next tokens.",
    "accuracy": "Fraction of correct predictions.",
}


def metrics_producer(stem):
    """The dvc.yaml stage that writes metrics/<stem>.json."""
    if stem.startswith("feature_extractor_"):
        return f"feature_extractor@{stem[len('feature_extractor_'):]}"
    return f"evaluate@{stem}"


def is_number(v):
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def direction(key):
    """'lower' or 'higher' is better, or None when the key name does not say."""
    k = key.lower().rsplit(".", 1)[-1]
    if "accuracy" in k:
        return "higher"
    if k.startswith(("neg_", "negative_")) or any(low in k for low in LOWER_IS_BETTER):
        return "lower"
    if any(high in k for high in HIGHER_IS_BETTER):
        return "higher"
    return None


def is_meta_key(key):
    k = key.rsplit(".", 1)[-1]
    return k in META_KEYS or k.startswith(META_PREFIXES) or k.endswith(META_SUFFIXES)


def _is_std(key, numbers):
    return key.endswith("_std") and key[:-4] in numbers


def split_metrics(raw):
    """-> (metadata dict, list of metric rows). A row: metric, direction, model, model_std, baseline,
    baseline_std, reference, reference_std, ratio (baseline / model), better ('yes'/'no'/'').

    `baseline` (what the model must beat) and `reference` (the same figure for real data: the floor a
    perfect model would reach) are dicts with the model's keys plus a `name`. `<key>_std` is the spread of
    `<key>`. Other nested dicts are flattened to dotted keys. Non-numeric values are metadata, and so are
    numbers whose key describes the run (seed, num_*, *_samples, *_size, ...)."""
    raw = dict(raw)
    compare = {}
    for side in ("baseline", "reference"):
        d = raw.pop(side, None) or {}
        compare[side] = flatten(d if isinstance(d, dict) else {"value": d})
    flat = flatten(raw)
    meta = {k: v for k, v in flat.items() if not is_number(v) or is_meta_key(k)}
    numbers = {k: float(v) for k, v in flat.items() if k not in meta}
    other = {}
    for side, values in compare.items():
        other[side] = {k: float(v) for k, v in values.items() if is_number(v) and not is_meta_key(k)}
        meta.update({f"{side} {k}": v for k, v in values.items() if not is_number(v)})
    keys = [k for k in numbers if not _is_std(k, numbers)]
    keys += [k for k in other["baseline"] if k not in numbers and not _is_std(k, other["baseline"])]
    rows = []
    for k in keys:
        m, b = numbers.get(k), other["baseline"].get(k)
        ratio = b / m if m is not None and b is not None and m != 0 else None
        d = direction(k)
        better = ""
        if d and m is not None and b is not None and math.isfinite(m) and math.isfinite(b):
            better = "yes" if (m < b if d == "lower" else m > b) else "no"
        rows.append({"metric": k, "direction": d, "model": m, "model_std": numbers.get(k + "_std"),
                     "baseline": b, "baseline_std": other["baseline"].get(k + "_std"),
                     "reference": other["reference"].get(k), "reference_std": other["reference"].get(k + "_std"),
                     "ratio": ratio, "better": better})
    return meta, rows


def missing(v):
    return v is None or (is_number(v) and math.isnan(v))


def fmt(v, std=None):
    """4 significant digits; '—' for a missing value; '± std' when a spread is known."""
    if missing(v):
        return "—"
    s = f"{v:.4g}"
    return s if missing(std) else f"{s} ± {std:.2g}"


ARROW = {"lower": "↓", "higher": "↑", None: ""}


def metrics_table(rows):
    """Display frame: one row per metric; model vs baseline with the ratio baseline / model (and the
    real-data reference when the metrics file has one)."""
    with_reference = any(not missing(r.get("reference")) for r in rows)
    return pd.DataFrame([{
        "metric": f"{r['metric']} {ARROW[r['direction']]}".strip(),
        "better is": r["direction"] or "?",
        "model": fmt(r["model"], r["model_std"]),
        "baseline": fmt(r["baseline"], r["baseline_std"]),
        "baseline / model": fmt(r["ratio"]),
        "model beats baseline": r["better"] or "—",
        **({"reference (real data)": fmt(r.get("reference"), r.get("reference_std"))} if with_reference else {}),
    } for r in rows]).set_index("metric")


def describe_run(meta):
    parts = [f"**{k}**: `{v}`" for k, v in meta.items()]
    return " · ".join(parts) if parts else "(no metadata)"


def glossary(rows, baseline_name=None, reference_name=None):
    lines = []
    for r in rows:
        base = r["metric"].rsplit(".", 1)[-1]
        text = GLOSSARY.get(base, "")
        d = r["direction"]
        rule = {"lower": "lower is better", "higher": "higher is better", None: "direction unknown"}[d]
        lines.append(f"- **{r['metric']}** ({rule}). {text}".rstrip())
    if baseline_name:
        lines.append(f"- **baseline**: {baseline_name}.")
    if reference_name:
        lines.append(f"- **reference**: {reference_name} scored like the model: the value a perfect model would "
                     "reach with this many samples (FID and KID are biased for finite samples, so it is not 0).")
    return "\n".join(lines)


def render_metrics(path, producer):
    raw = load_json(path, producer)
    meta, rows = split_metrics(raw)
    if not rows:
        raise ReportInputError(f"{path}: no numeric metrics (got keys {sorted(raw)}); written by stage {producer}")
    say(describe_run(meta))
    display(metrics_table(rows))
    say(glossary(rows, meta.get("baseline name"), meta.get("reference name")))
    return raw, meta, rows


# ---------------------------------------------------------------- plots -------------------------------
def plot_history(history, path=""):
    """One panel per quantity; `x` and `val_x` share a panel. Log scale when a curve spans > 2 decades."""
    groups = {}
    for col in history.columns:
        base = col[4:] if col.startswith("val_") and col[4:] in history.columns else col
        groups.setdefault(base, []).append(col)
    ncols = min(3, len(groups))
    nrows = math.ceil(len(groups) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.4 * nrows), squeeze=False)
    notes = []
    for ax, (base, cols) in zip(axes.flat, groups.items()):
        for col in cols:
            y = history[col]
            ax.plot(history.index, y, marker="o" if len(y) <= 30 else None, ms=3,
                    label="validation" if col.startswith("val_") else "training")
            finite = y[np.isfinite(y)]
            if len(finite) < len(y):
                notes.append(f"`{col}` has {len(y) - len(finite)} non-finite value(s), not drawn")
        vals = history[cols].to_numpy().ravel()
        vals = vals[np.isfinite(vals)]
        if len(vals) and vals.min() > 0 and vals.max() / vals.min() > 100:
            ax.set_yscale("log")
        val = f"val_{base}"
        if base == "loss" and val in cols and history[val].notna().any():  # the objective, not its parts
            best = history[val].idxmin() if direction(base) != "higher" else history[val].idxmax()
            ax.plot([best], [history[val][best]], "k*", ms=10, label=f"best ({best})")
            notes.append(f"best `{val}` = {history[val][best]:.4g} at epoch {best} of {history.index[-1]}")
        ax.set_title(base)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(groups):]:
        ax.set_visible(False)
    fig.tight_layout()
    show(fig)
    if notes:
        say("\n".join(f"- {n}" for n in notes))


def to_images(array):
    """(n,H,W), (n,H,W,1) or (n,H,W,3) floats -> (images for imshow, cmap, fraction clipped from [0,1])."""
    a = np.asarray(array, dtype=np.float32)
    if a.ndim == 4 and a.shape[-1] == 1:
        a = a[..., 0]
    clipped = float(np.mean((a < -1e-3) | (a > 1 + 1e-3))) if a.size else 0.0
    return np.clip(a, 0.0, 1.0), ("gray" if a.ndim == 3 else None), clipped


def is_image_batch(array):
    return array.ndim == 3 and min(array.shape[1:]) >= 4 or array.ndim == 4 and array.shape[-1] in (1, 3)


def mosaic(imgs, ncols, pad=1, fill=0.5):
    """Tile (n,H,W[,3]) images into one array, `pad` grey pixels between them (one imshow: fast, crisp)."""
    n, h, w = imgs.shape[:3]
    nrows = math.ceil(n / ncols)
    out = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad) + imgs.shape[3:], fill, np.float32)
    for i, img in enumerate(imgs):
        r, c = divmod(i, ncols)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = img
    return out


def image_grid(array, ncols=8, nrows=8, title=None, cell=0.9):
    """Up to ncols x nrows images as one figure of fixed size (cell inches per image)."""
    imgs, cmap, clipped = to_images(array[: ncols * nrows])
    rows = math.ceil(len(imgs) / ncols)
    fig, ax = plt.subplots(figsize=(cell * ncols, cell * rows + (0.35 if title else 0.0)))
    ax.imshow(mosaic(imgs, ncols), cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title)
    fig.tight_layout(pad=0.2)
    show(fig)
    return clipped


def clip_note(clipped, what):
    if clipped > 0:
        say(f"*Note: {clipped:.2%} of the {what} pixel values lie outside [0, 1] and were clipped for display.*")
'''


# ------------------------------------------------------------------------------------------------
# Notebook builders
# ------------------------------------------------------------------------------------------------
def _src(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def notebook(name: str, cells: list[tuple[str, str, list[str]]]):
    nb = new_notebook()
    nb.metadata.update({
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    for i, (kind, text, tags) in enumerate(cells):
        make = new_markdown_cell if kind == "md" else new_code_cell
        cell = make(_src(text))
        cell.id = f"{name}-{i:02d}"  # stable ids: regenerating gives byte-identical files
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    return nb


def md(text):
    return ("md", text, [])


def code(text, *tags):
    return ("code", text, list(tags))


def hidden_code_note(name):
    return (f"*The code is hidden in this HTML page. The executed notebook `reports/{name}.ipynb` has it, and "
            "`reports/templates/make_templates.py` generates the template. Rebuild with `dvc repro`.*")


HELPERS = code(COMMON, "helpers")


def family_inputs_cell(extra=""):
    return code(f"""
        say(f"Inputs of this report (SHA-256 prefixes; `dvc.lock` records the full hashes):")
        provenance({{"metrics": metrics_path, "history": history_path, "samples": samples_path}})
        {extra}
    """)


def vae_notebook():
    return notebook("vae", [
        md(f"""
            # Variational autoencoder (VAE)

            A VAE (book chapter 3) learns an encoder that maps an image *x* to a Gaussian
            *q*(*z* | *x*) = N(μ(*x*), σ²(*x*)) over a small latent space, and a decoder that maps a
            latent point *z* back to pixel probabilities *p*(*x* | *z*). Training maximises the evidence lower
            bound (ELBO): reconstruct the input well, while a KL term keeps *q*(*z* | *x*) close to the prior
            N(0, *I*), so that decoding random draws from the prior produces new images.

            This report shows how well that worked: the metrics against a baseline, the training curves,
            new images, reconstructions of test images, and where test images land in the latent space.

            {hidden_code_note("vae")}
        """),
        code("""
            # Parameters (papermill injects the stage's values after this cell).
            family = "vae"
            metrics_path = "metrics/vae.json"
            samples_path = "samples/vae.npz"
            history_path = "models/vae/history.json"
        """, "parameters"),
        HELPERS,
        family_inputs_cell(),
        md("""
            ## Metrics

            Every number is computed on the held-out test split by the `evaluate` stage, next to the same number
            for a simple reference model (the baseline, named below when the `evaluate` stage records its name).
            The column *baseline / model* says how many times smaller the model's number is — above 1 means the
            model wins for metrics where lower is better (↓). The *reference* column, when present, scores real
            training images the same way: the best a model can get, since FID and KID are not 0 for a finite
            sample even of real images.
        """),
        code("""
            metrics, meta, rows = render_metrics(metrics_path, f"evaluate@{family}")
        """),
        md("""
            ## Training curves

            The loss is the negative ELBO (reconstruction term plus KL term), on the training data and on the
            validation split after every epoch. The two curves falling together means the model is still
            learning; a validation curve that turns upward while the training curve keeps falling is the sign
            of over-fitting. The star marks the epoch with the lowest validation loss.
        """),
        code("""
            history = load_history(history_path, f"train@{family}")
            plot_history(history, history_path)
        """),
        md("""
            ## New images from the prior

            Each image below is the decoder's output for a point *z* drawn from the prior N(0, *I*) —
            no test image involved. Good samples are sharp and recognisable; blurry ones are typical of a VAE,
            whose pixel-wise likelihood averages over the images compatible with a latent point.
        """),
        code("""
            producer = f"sample@{family}"
            arrays = load_npz(samples_path, producer,
                              ["samples", "originals", "reconstructions", "latent_z", "latent_labels"])
            samples = check_shape(samples_path, producer, "samples", arrays["samples"], ndim=(3, 4))
            if not is_image_batch(samples):
                raise ReportInputError(f"{samples_path}: 'samples' of shape {samples.shape} are not images "
                                       f"(expected (n, H, W, 1)); written by stage {producer}")
            clip_note(image_grid(samples, 8, 8, title=f"{min(64, len(samples))} of {len(samples)} samples"), "sample")
        """),
        md("""
            ## Reconstructions

            Top row: test images the model never trained on. Bottom row: the decoder's output for the mean of
            the encoder's distribution, μ(*x*). The gap between the rows is what the latent bottleneck throws
            away; with a 2-dimensional latent space some confusion between similar digits is expected.
        """),
        code("""
            originals = check_shape(samples_path, producer, "originals", arrays["originals"], ndim=(3, 4))
            recon = check_shape(samples_path, producer, "reconstructions", arrays["reconstructions"], ndim=(3, 4))
            if originals.shape != recon.shape:
                raise ReportInputError(f"{samples_path}: 'originals' {originals.shape} and 'reconstructions' "
                                       f"{recon.shape} differ in shape; written by stage {producer}")
            n = min(16, len(originals))
            imgs, cmap, clipped = to_images(np.concatenate([originals[:n], recon[:n]]))
            fig, ax = plt.subplots(figsize=(0.8 * n + 1.2, 2.0))
            ax.imshow(mosaic(imgs, n), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
            h = imgs.shape[1] + 1
            ax.set_yticks([0.5 + h / 2, 0.5 + h * 1.5], ["original", "reconstruction"])
            ax.set_xticks([]); ax.tick_params(length=0)
            for side in ax.spines.values():
                side.set_visible(False)
            fig.tight_layout(pad=0.2)
            show(fig)
            o, r = to_images(originals[:n])[0], to_images(recon[:n])[0]
            say(f"Mean absolute pixel error over these {n} pairs: **{np.abs(o - r).mean():.4f}** (pixel values in [0, 1]).")
            clip_note(clipped, "original/reconstruction")
        """),
        md("""
            ## The latent space

            Each point is a test image placed at its latent mean μ(*x*), coloured by its digit. Clusters show
            that the encoder separates digits without ever seeing a label; the dashed circles mark one and two
            standard deviations of the prior, the region that the KL term pulls the codes into and that the
            sampler above draws from. Gaps inside the circles are regions that decode to implausible images.
        """),
        code("""
            z = check_shape(samples_path, producer, "latent_z", arrays["latent_z"], ndim=2)
            labels = check_shape(samples_path, producer, "latent_labels", arrays["latent_labels"], ndim=1, length=len(z))
            dim = z.shape[1]
            classes = np.unique(labels)
            cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20", len(classes))
            codes = np.searchsorted(classes, labels)
            fig, ax = plt.subplots(figsize=(7.5, 6.5))
            if dim >= 2:
                sc = ax.scatter(z[:, 0], z[:, 1], c=codes, cmap=cmap, vmin=-0.5, vmax=len(classes) - 0.5,
                                s=6, alpha=0.7, linewidths=0)
                t = np.linspace(0, 2 * np.pi, 200)
                for r in (1, 2):
                    ax.plot(r * np.cos(t), r * np.sin(t), "k--", lw=0.8, alpha=0.6)
                ax.set_xlabel("$z_1$"); ax.set_ylabel("$z_2$"); ax.set_aspect("equal", adjustable="datalim")
            else:
                rng = np.random.default_rng(0)
                sc = ax.scatter(z[:, 0], codes + rng.uniform(-0.3, 0.3, len(z)), c=codes, cmap=cmap,
                                vmin=-0.5, vmax=len(classes) - 0.5, s=6, alpha=0.7, linewidths=0)
                ax.set_xlabel("$z_1$"); ax.set_ylabel("label (jittered)")
            cbar = fig.colorbar(sc, ax=ax, ticks=range(len(classes)), fraction=0.046, pad=0.04)
            cbar.ax.set_yticklabels([str(c) for c in classes])
            cbar.set_label("label")
            ax.set_title(f"latent means of {len(z)} test images")
            ax.grid(alpha=0.2)
            fig.tight_layout()
            show(fig)
            if dim > 2:
                say(f"*The latent space has {dim} dimensions; only the first two are plotted, so clusters may "
                    "overlap here that are separated in the other dimensions.*")
            elif dim == 1:
                say("*The latent space has a single dimension: each test image's code on the x axis, its label "
                    "(jittered) on the y axis.*")
            rounded = lambda a: [round(float(v), 3) for v in a[:4]]
            say(f"Latent means: per-dimension mean {rounded(z.mean(0))}, "
                f"standard deviation {rounded(z.std(0))}" + (" (first 4 dims)" if dim > 4 else "")
                + " — the prior has mean 0 and standard deviation 1.")
        """),
        md("""
            A decoded grid of the latent space (decoding an evenly spaced grid of *z*) would need the model
            itself; this report only reads the files the pipeline wrote, so it is not shown here.
        """),
    ])


def realnvp_notebook():
    return notebook("realnvp", [
        md(f"""
            # RealNVP normalizing flow

            RealNVP (book chapter 6) is an invertible network *f* that maps a data point *x* to a latent point
            *z* = *f*(*x*) with a tractable Jacobian determinant, so the exact log-likelihood is
            log *p*(*x*) = log N(*f*(*x*); 0, *I*) + log |det ∂*f*/∂*x*|. Training maximises it; sampling runs the
            flow backwards, *x* = *f*⁻¹(*z*) with *z* ~ N(0, *I*).

            On the two-moons data this is easy to see in two dimensions: the flow should turn the moons into a
            round Gaussian blob, and turn Gaussian draws into moons.

            {hidden_code_note("realnvp")}
        """),
        code("""
            # Parameters (papermill injects the stage's values after this cell).
            family = "realnvp"
            metrics_path = "metrics/realnvp.json"
            samples_path = "samples/realnvp.npz"
            history_path = "models/realnvp/history.json"
        """, "parameters"),
        HELPERS,
        family_inputs_cell(),
        md("""
            ## Metrics

            The flow's likelihood is exact, so the natural metric is the average negative log-likelihood of the
            test points in nats. The baseline is the best single Gaussian (maximum-likelihood mean and
            covariance), i.e. what the flow would be with no coupling layers at all. *baseline / model* above 1
            means the flow explains the test data better than the Gaussian.
        """),
        code("""
            metrics, meta, rows = render_metrics(metrics_path, f"evaluate@{family}")
        """),
        md("""
            ## Training curves

            The loss is the negative log-likelihood per point (plus the L2 penalty of the coupling networks on
            the training curve). It can go below zero: a density can exceed 1. The star marks the epoch with
            the lowest validation loss.
        """),
        code("""
            history = load_history(history_path, f"train@{family}")
            plot_history(history, history_path)
        """),
        md("""
            ## From data to latent space and back

            Top row, left to right: test points *x* (coloured by moon), and the same points mapped forward,
            *f*(*x*) — if the flow fits, they look like a standard Gaussian and the two colours sit side by side
            without overlapping. Bottom row, right to left: draws *z* ~ N(0, *I*), and the generated points
            *f*⁻¹(*z*), which should look like the moons. Panels in the same column share axis limits
            (data space on the left, latent space on the right), so they can be compared directly; the dashed
            circles in latent space mark 1, 2 and 3 standard deviations.
        """),
        code("""
            producer = f"sample@{family}"
            arrays = load_npz(samples_path, producer, ["samples", "data", "data_labels", "data_latent", "latent"])
            data = check_shape(samples_path, producer, "data", arrays["data"], ndim=2, last=2)
            labels = check_shape(samples_path, producer, "data_labels", arrays["data_labels"], ndim=1, length=len(data))
            data_latent = check_shape(samples_path, producer, "data_latent", arrays["data_latent"], ndim=2, last=2, length=len(data))
            latent = check_shape(samples_path, producer, "latent", arrays["latent"], ndim=2, last=2)
            samples = check_shape(samples_path, producer, "samples", arrays["samples"], ndim=2, last=2, length=len(latent))

            MAX_POINTS = 3000  # per panel; the first ones (files are already in random order)

            def limits(*arrays, q=0.5, margin=0.08):
                pts = np.concatenate([a[:MAX_POINTS] for a in arrays])
                lo, hi = np.percentile(pts, q, axis=0), np.percentile(pts, 100 - q, axis=0)
                pad = np.maximum((hi - lo) * margin, 0.05)
                return [(lo[i] - pad[i], hi[i] + pad[i]) for i in range(2)]

            def outside(a, lim):
                a = a[:MAX_POINTS]
                return int(np.sum((a[:, 0] < lim[0][0]) | (a[:, 0] > lim[0][1]) | (a[:, 1] < lim[1][0]) | (a[:, 1] > lim[1][1])))

            x_lim = limits(data, samples)
            z_lim = limits(data_latent, latent)
            r = max(abs(v) for pair in z_lim for v in pair)
            z_lim = [(-r, r), (-r, r)]  # latent space: square and centred on the prior's mean

            classes = np.unique(labels)
            palette = plt.get_cmap("tab10").colors
            fig, axes = plt.subplots(2, 2, figsize=(10, 9))
            panels = [
                (axes[0, 0], data, labels, x_lim, f"data space: test points $x$ (n={min(len(data), MAX_POINTS)})"),
                (axes[0, 1], data_latent, labels, z_lim, "latent space: $f(x)$"),
                (axes[1, 1], latent, None, z_lim, r"latent space: draws $z \\sim \\mathcal{N}(0, I)$"),
                (axes[1, 0], samples, None, x_lim, "data space: generated $f^{-1}(z)$"),
            ]
            t = np.linspace(0, 2 * np.pi, 200)
            for ax, pts, lab, lim, title in panels:
                pts = pts[:MAX_POINTS]
                if lab is None:
                    ax.scatter(pts[:, 0], pts[:, 1], s=4, alpha=0.5, color="tab:green", linewidths=0)
                else:
                    lab = lab[:MAX_POINTS]
                    for i, c in enumerate(classes):
                        sel = lab == c
                        ax.scatter(pts[sel, 0], pts[sel, 1], s=4, alpha=0.5, color=palette[i % 10], linewidths=0,
                                   label=f"label {c}")
                    ax.legend(markerscale=4, fontsize=8, loc="upper right")
                if lim is z_lim:
                    for rad in (1, 2, 3):
                        ax.plot(rad * np.cos(t), rad * np.sin(t), "k--", lw=0.7, alpha=0.5)
                ax.set_xlim(lim[0]); ax.set_ylim(lim[1])
                ax.set_title(title)
                ax.grid(alpha=0.2)
            fig.tight_layout(h_pad=2.0, w_pad=2.0)
            show(fig)

            notes = []
            for name, a, lim in [("test points", data, x_lim), ("f(x)", data_latent, z_lim),
                                 ("Gaussian draws", latent, z_lim), ("generated points", samples, x_lim)]:
                k = outside(a, lim)
                if k:
                    notes.append(f"{k} of the plotted {name} fall outside the axis limits (set from the central 99% of the points)")
            say("\\n".join(f"- {n}" for n in notes) or "All plotted points fall inside the axis limits.")
        """),
        md("""
            ### How Gaussian is *f*(*x*)?

            If the flow is a perfect fit, the mapped test points have mean 0 and identity covariance. The table
            compares their moments with the Gaussian draws that produced the samples.
        """),
        code("""
            def moments(a):
                c = np.cov(a.T)
                return {"mean z1": a[:, 0].mean(), "mean z2": a[:, 1].mean(), "var z1": c[0, 0],
                        "var z2": c[1, 1], "cov z1 z2": c[0, 1]}
            display(pd.DataFrame({"f(x) of test points": moments(data_latent), "Gaussian draws z": moments(latent),
                                  "target N(0, I)": {"mean z1": 0.0, "mean z2": 0.0, "var z1": 1.0, "var z2": 1.0,
                                                      "cov z1 z2": 0.0}}))
        """),
    ])


def family_notebook():
    return notebook("family", [
        md(f"""
            # Model report

            This is the generic report, used for a model family that has no dedicated template yet: the
            metrics against their baseline, the training curves, and the generated samples if they are images
            (or 2-D points).

            {hidden_code_note("<family>")}
        """),
        code("""
            # Parameters (papermill injects the stage's values after this cell).
            family = "family"
            metrics_path = "metrics/family.json"
            samples_path = "samples/family.npz"
            history_path = "models/family/history.json"
        """, "parameters"),
        HELPERS,
        code("""
            say(f"## Family `{family}`")
        """),
        family_inputs_cell(),
        md("""
            ## Metrics

            Computed on the held-out test split by the `evaluate` stage. *baseline / model* above 1 is an
            improvement for metrics where lower is better (↓), below 1 for metrics where higher is better (↑).
        """),
        code("""
            metrics, meta, rows = render_metrics(metrics_path, f"evaluate@{family}")
        """),
        md("""
            ## Training curves

            Training and validation curves after every epoch; the star marks the best validation epoch.
        """),
        code("""
            history = load_history(history_path, f"train@{family}")
            plot_history(history, history_path)
        """),
        md("""
            ## Samples

            What the trained model generates, straight from its prior / sampler.
        """),
        code("""
            producer = f"sample@{family}"
            if not Path(samples_path).is_file():
                say(f"*No samples file (`{samples_path}`); nothing to show.*")
            elif not samples_path.endswith(".npz"):
                say(f"*Samples are in `{samples_path}`, which this generic report does not render.*")
            else:
                arrays = load_npz(samples_path, producer, ["samples"])
                samples = arrays["samples"]
                if samples.dtype.kind in "fiu" and is_image_batch(samples):
                    clip_note(image_grid(samples, 8, 8, title=f"{min(64, len(samples))} of {len(samples)} samples"), "sample")
                elif samples.dtype.kind in "fiu" and samples.ndim == 2 and samples.shape[1] == 2:
                    fig, ax = plt.subplots(figsize=(6, 6))
                    if "data" in arrays and arrays["data"].ndim == 2 and arrays["data"].shape[1] == 2:
                        ax.scatter(*arrays["data"][:3000].T, s=3, alpha=0.4, label="test data", linewidths=0)
                    ax.scatter(*samples[:3000].T, s=3, alpha=0.4, label="samples", linewidths=0)
                    ax.legend(markerscale=4)
                    ax.grid(alpha=0.2)
                    show(fig)
                else:
                    say(f"*`samples` has shape {samples.shape} and dtype {samples.dtype}: not images or 2-D points, "
                        "so the generic report does not draw them.*")
        """),
    ])


def summary_notebook():
    return notebook("summary", [
        md("""
            # Results summary

            One row per model family, one column per metric, each from `metrics/<family>.json` (the `evaluate`
            stage; other metrics files, such as the feature extractor's, come last). A cell reads *model / baseline (×ratio)* where the ratio is baseline ÷ model: for a metric
            where lower is better (↓) a ratio above 1 means the model beats its baseline by that factor.

            The same table is written as GitHub markdown to `reports/results.md`, which the README embeds.

            *The code is hidden in this HTML page. The executed notebook `reports/summary.ipynb` has it, and
            `reports/templates/make_templates.py` generates the template. Rebuild with `dvc repro`.*
        """),
        code("""
            # Parameters (papermill injects the stage's values after this cell).
            metrics_dir = "metrics"
            results_md = "reports/results.md"
        """, "parameters"),
        HELPERS,
        code("""
            files = sorted(Path(metrics_dir).glob("*.json"))
            if not files:
                raise ReportInputError(f"{metrics_dir}/: no *.json metrics files (written by the evaluate@<family> stages; "
                                       "run `dvc repro`)")
            say("Inputs of this report (SHA-256 prefixes; `dvc.lock` records the full hashes):")
            provenance({"metrics": metrics_dir})

            # One row per file, named by the file (unique): metrics/<family>.json from evaluate@<family>, then
            # the other metrics files (e.g. feature_extractor_digits.json: the FID/KID backbone's accuracy).
            results = {}
            for f in sorted(files, key=lambda f: (metrics_producer(f.stem) != f"evaluate@{f.stem}", f.stem)):
                raw = load_json(f, metrics_producer(f.stem))
                results[f.stem] = split_metrics(raw)
        """),
        md("""
            ## All families

            Every metric a family reports, model next to baseline. Empty cells: the family does not report that
            metric (each family is judged by the metrics that suit its data: image distances for image models,
            likelihoods for density models).
        """),
        code("""
            # Long form: one row per (family, metric), numeric columns.
            long = pd.DataFrame([{"family": fam, "dataset": meta.get("dataset", ""), **r}
                                 for fam, (meta, rows) in results.items() for r in rows])
            if long.empty:
                raise ReportInputError(f"{metrics_dir}/: the metrics files hold no numeric metrics")
            metric_order = list(dict.fromkeys(long["metric"]))
            arrows = {m: ARROW[direction(m)] for m in metric_order}

            def cell(r):
                s = fmt(r["model"], r["model_std"])
                if r["baseline"] is not None and not pd.isna(r["baseline"]):
                    s += f" / {fmt(r['baseline'], r['baseline_std'])}"
                    if r["ratio"] is not None and not pd.isna(r["ratio"]):
                        s += f" (×{r['ratio']:.3g})"
                return s

            wide = pd.DataFrame("", index=pd.Index(list(results), name="family"),
                                columns=["dataset"] + [f"{m} {arrows[m]}".strip() for m in metric_order])
            for fam, (meta, rows) in results.items():
                wide.loc[fam, "dataset"] = str(meta.get("dataset", ""))
                for r in rows:
                    wide.loc[fam, f"{r['metric']} {arrows[r['metric']]}".strip()] = cell(r)
            display(wide)
        """),
        code("""
            detail = long.assign(
                **{"better is": long["direction"].fillna("?")},
                model=[fmt(m, s) for m, s in zip(long["model"], long["model_std"])],
                baseline=[fmt(b, s) for b, s in zip(long["baseline"], long["baseline_std"])],
                **{"baseline / model": [fmt(v) for v in long["ratio"]],
                   "model beats baseline": long["better"].replace("", "—"),
                   "reference (real data)": [fmt(v, s) for v, s in zip(long["reference"], long["reference_std"])]},
            )[["family", "dataset", "metric", "better is", "model", "baseline", "baseline / model", "model beats baseline"]
              + (["reference (real data)"] if long["reference"].notna().any() else [])]
            display(detail.set_index(["family", "metric"]))
            first_row = {}
            for _, rows in results.values():
                for r in rows:
                    first_row.setdefault(r["metric"], r)
            say(glossary(list(first_row.values())))
        """),
        md("""
            ## Improvement over the baselines

            How many times better than its baseline each model is, on a log scale: baseline ÷ model for metrics
            where lower is better, model ÷ baseline where higher is better. Bars to the right of 1 (green) are
            wins; to the left (red), the model is worse than the baseline.
        """),
        code("""
            bars = []
            for fam, (meta, rows) in results.items():
                for r in rows:
                    if r["direction"] and r["ratio"] and r["ratio"] > 0 and math.isfinite(r["ratio"]):
                        factor = r["ratio"] if r["direction"] == "lower" else 1 / r["ratio"]
                        bars.append((f"{fam}: {r['metric']}", factor))
            if bars:
                fig, ax = plt.subplots(figsize=(8, 0.45 * len(bars) + 1.2))
                labels_, factors = zip(*bars)
                # Bars grow from 1 (no improvement) to the factor, right for wins and left for losses.
                ax.barh(range(len(bars)), [f - 1 for f in factors], left=1,
                        color=["tab:green" if f > 1 else "tab:red" for f in factors])
                ax.set_xscale("log")
                ax.set_xlim(min(0.5, min(factors) / 2), max(2.0, max(factors) * 3))
                ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"×{v:g}"))
                ax.axvline(1.0, color="k", lw=1)
                ax.set_yticks(range(len(bars)), labels_)
                ax.invert_yaxis()
                for i, f in enumerate(factors):
                    ax.text(f, i, f" ×{f:.3g}", va="center", fontsize=8)
                ax.set_xlabel("improvement factor over the baseline (log scale)")
                ax.grid(axis="x", alpha=0.3, which="both")
                fig.tight_layout()
                show(fig)
            else:
                say("*No metric has both a model and a baseline value with a known direction; nothing to plot.*")
        """),
        md("""
            ## `reports/results.md`

            The table above as GitHub markdown (pipes are escaped). It is rewritten on every `dvc repro`; edit the
            templates, not the file.
        """),
        code("""
            def markdown_table(frame):
                \"\"\"GitHub markdown for a frame of strings (index included). pandas' to_markdown needs tabulate.\"\"\"
                frame = frame.reset_index().astype(str).apply(lambda col: col.str.replace("|", "\\\\|", regex=False))
                try:
                    import tabulate  # noqa: F401  (a dependency of dvc; checked, not assumed)
                    return frame.to_markdown(index=False, disable_numparse=True)
                except ImportError:
                    cols = list(frame.columns)
                    widths = [max([len(str(c))] + [len(v) for v in frame[c]]) for c in cols]
                    line = lambda cells: "| " + " | ".join(v.ljust(w) for v, w in zip(cells, widths)) + " |"
                    out = [line(cols), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                    out += [line(list(row)) for row in frame.itertuples(index=False)]
                    return "\\n".join(out)

            legend = ("Each cell: model / baseline (×ratio, baseline ÷ model). ↓ lower is better, ↑ higher is better: "
                      "the model beats its baseline when the ratio is above 1 for ↓ metrics, below 1 for ↑ metrics.")
            baselines = [f"{fam}: {meta['baseline name']}" for fam, (meta, _) in results.items() if "baseline name" in meta]
            text = "\\n".join(["Generated by `dvc repro` (report stage summary); do not edit.", "",
                               markdown_table(wide), "", legend]
                              + ([ "", "Baselines: " + "; ".join(baselines) + "."] if baselines else [])) + "\\n"
            target = Path(results_md)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, target)  # atomic: a reader never sees half a table
            display(Markdown("```markdown\\n" + text + "```"))
        """),
    ])


TEMPLATES = {
    "vae": vae_notebook,
    "realnvp": realnvp_notebook,
    "family": family_notebook,
    "summary": summary_notebook,
}


def render(name: str) -> str:
    nb = TEMPLATES[name]()
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if a template on disk differs from this script")
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write the templates to (default: %(default)s)")
    args = parser.parse_args(argv)
    stale = []
    for name in TEMPLATES:
        path = args.out / f"{name}.ipynb"
        text = render(name)
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print("stale templates (run python reports/templates/make_templates.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
