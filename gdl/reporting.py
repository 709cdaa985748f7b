"""What the report notebooks call: load the stages' outputs with clear errors, draw, tabulate.

The notebooks are jupytext files: ``reports/templates/<images|points|summary>.py`` and each family's own
section ``gdl/families/<family>/report.py``; ``python -m stages.report`` executes them with papermill and
renders them to HTML. They do ``from gdl import reporting as R`` and keep their own code short.

Rules kept here so that every report follows them:

* No TensorFlow/Keras: a kernel start must stay cheap, and a report only reads files the pipeline wrote.
* Every bad input raises :class:`ReportInputError`, whose message names the file and the stage that
  writes it (and how to rebuild it); the report stage repeats it as its own error.
* Figures are :class:`matplotlib.figure.Figure` objects made by :func:`subplots` (no pyplot state, no GUI
  backend), rendered by :func:`show` to PNG at a fixed size and dpi with no timestamp or software tag:
  the same inputs give the same bytes, so a rerun rewrites identical reports.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

DPI = 100  # with the fixed figure sizes below: readable, and a few tens of kB per figure
MAX_POINTS = 3000  # per scatter panel (the first ones: the files are already in random order)
STYLE = {"font.size": 10, "axes.titlesize": 11, "legend.fontsize": 8, "figure.dpi": DPI, "savefig.dpi": DPI}
matplotlib.rcParams.update(STYLE)


# ---------------------------------------------------------------- errors and inputs ------------------
def how_to_rebuild(producer: str) -> str:
    """'written by stage X; run `dvc repro X`' for a DVC stage, else the producer as given."""
    if "<" in producer:  # a family of stages, e.g. evaluate@<model>
        return f"written by the {producer} stages; run `dvc repro`"
    if "@" in producer or producer in ("summary",):
        return f"written by stage {producer}; run `dvc repro {producer}`"
    return f"written by {producer}"


class ReportInputError(ValueError):
    """An input file is missing or malformed; the message names the file and the stage that writes it."""

    def __init__(self, path, problem: str, producer: str):
        self.path, self.problem, self.producer = str(path), problem, producer
        super().__init__(f"{path}: {problem} ({how_to_rebuild(producer)})")

    def __reduce__(self):
        return type(self), (self.path, self.problem, self.producer)


@dataclass(frozen=True)
class Input:
    path: Path
    producer: str  # the DVC stage that writes it


def model_inputs(model: str) -> dict[str, Input]:
    """The files a model's report reads, by role, with the stage that writes each."""
    return {
        "metrics": Input(Path("metrics") / f"{model}.json", f"evaluate@{model}"),
        "meta": Input(Path("metrics") / f"{model}.meta.json", f"evaluate@{model}"),
        "history": Input(Path("models") / model / "history.json", f"train@{model}"),
        "samples": Input(Path("samples") / f"{model}.npz", f"sample@{model}"),
    }


def _need(path, producer) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ReportInputError(path, "not found", producer)
    if path.stat().st_size == 0:
        raise ReportInputError(path, "empty file", producer)
    return path


def load_json(path, producer) -> dict:
    """A JSON object from `path`, or a ReportInputError."""
    path = _need(path, producer)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportInputError(path, f"not valid JSON ({exc})", producer) from None
    if not isinstance(data, dict):
        raise ReportInputError(path, f"expected a JSON object, got {type(data).__name__}", producer)
    return data


def load_npz(path, producer, required=()) -> dict[str, np.ndarray]:
    """Every array of an .npz (no pickles), checking that the `required` names are there."""
    path = _need(path, producer)
    if not zipfile.is_zipfile(path):
        raise ReportInputError(path, "not an .npz archive", producer)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:  # noqa: BLE001  zipfile.BadZipFile, ValueError (pickled object arrays), OSError, EOFError
        raise ReportInputError(path, f"not a readable .npz ({type(exc).__name__}: {exc})", producer) from None
    missing = [k for k in required if k not in arrays]
    if missing:
        raise ReportInputError(path, f"missing array(s) {missing} (has {sorted(arrays)})", producer)
    return arrays


def check_array(path, producer, name, array, ndim=None, last=None, length=None) -> np.ndarray:
    """`array` if it has `ndim` dimensions (an int or a tuple of them), a last dimension in `last`, `length`
    rows, at least one row and no NaN/inf; else a ReportInputError naming the array."""
    ndims = ndim if isinstance(ndim, tuple) else (ndim,)
    lasts = last if isinstance(last, tuple) else (last,)
    expected = []
    if ndim is not None and array.ndim not in ndims:
        expected.append(f"{' or '.join(map(str, ndims))} dimensions")
    elif last is not None and (array.ndim == 0 or array.shape[-1] not in lasts):
        expected.append(f"last dimension {' or '.join(map(str, lasts))}")
    if length is not None and (array.ndim == 0 or array.shape[0] != length):
        expected.append(f"{length} rows")
    if not expected and (array.ndim == 0 or array.shape[0] == 0):
        expected.append("at least one row")
    if expected:
        raise ReportInputError(path, f"array {name!r} has shape {array.shape}, expected {' and '.join(expected)}",
                               producer)
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        raise ReportInputError(path, f"array {name!r} contains NaN or inf", producer)
    return array


def load_history(path, producer) -> pd.DataFrame:
    """history.json, {"epoch": [...], "loss": [...], "val_loss": [...], ...} -> a frame indexed by epoch."""
    raw = load_json(path, producer)
    series = {k: v for k, v in raw.items() if isinstance(v, list)}
    if not any(k != "epoch" for k in series):
        raise ReportInputError(path, f"no per-epoch lists (expected e.g. 'loss', 'val_loss'; got keys {sorted(raw)})",
                               producer)
    lengths = {k: len(v) for k, v in series.items()}
    if len(set(lengths.values())) != 1 or 0 in lengths.values():
        raise ReportInputError(path, f"per-epoch lists are empty or differ in length {lengths}", producer)
    n = next(iter(lengths.values()))
    epochs = series.pop("epoch", list(range(1, n + 1)))
    try:
        columns = {k: np.array([np.nan if v is None else v for v in vs], dtype=float) for k, vs in series.items()}
        index = pd.Index(np.asarray(epochs, dtype=int), name="epoch")
    except (TypeError, ValueError) as exc:
        raise ReportInputError(path, f"a per-epoch list is not numeric ({exc})", producer) from None
    return pd.DataFrame(columns, index=index)


def is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def load_metrics(path, producer) -> dict:
    """metrics/<model>.json: figures only, the model's at the top level, `baseline` and `reference` dicts
    of the same keys (and other objects of numbers: World Models' second controller and constant policy).
    Anything else (a string, a deeper nesting) means a stale or foreign file."""
    raw = load_json(path, producer)
    for key, value in raw.items():
        if key in ("baseline", "reference") or isinstance(value, dict):
            if not isinstance(value, dict) or not all(is_number(v) for v in value.values()):
                raise ReportInputError(path, f"'{key}' must be an object of numbers, got {value!r}", producer)
        elif not is_number(value):
            raise ReportInputError(path, f"'{key}' is {value!r}, not a number (the file holds figures only; "
                                         "descriptions belong in the .meta.json beside it)", producer)
    if not figure_keys(raw):
        raise ReportInputError(path, f"no figures (keys: {sorted(raw)})", producer)
    return raw


def load_meta(path, producer, model: str | None = None) -> dict:
    meta = load_json(path, producer)
    if model is not None and meta.get("model") != model:
        raise ReportInputError(path, f"describes model {meta.get('model')!r}, expected {model!r}", producer)
    return meta


# ---------------------------------------------------------------- a model's report -------------------
@dataclass
class ModelReport:
    """A model's inputs, loaded and checked; `array(name)` reads samples/<model>.npz lazily."""

    model: str
    kind: str  # "images" | "points" | "labels" | "tokens" | "pianorolls"
    inputs: dict[str, Input]
    metrics: dict
    meta: dict
    history: pd.DataFrame
    _arrays: dict | None = field(default=None, repr=False)
    _data: dict | None = field(default=None, repr=False)

    @property
    def dataset(self) -> str:
        return str(self.meta.get("dataset", "?"))

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            inp = self.inputs["samples"]
            self._arrays = load_npz(inp.path, inp.producer)
        return self._arrays

    def has(self, name: str) -> bool:
        return name in self.arrays

    @property
    def data(self) -> dict[str, np.ndarray]:
        """The data the model was trained on (data/processed/<dataset>.npz, or data/tokens/<dataset>.npz for
        the sequence models), read on first use."""
        if self._data is None:
            inp = self.inputs["data"]
            self._data = load_npz(inp.path, inp.producer)
        return self._data

    def array(self, name: str, ndim=None, last=None, length=None) -> np.ndarray:
        """One array of samples/<model>.npz, checked (see check_array); a ReportInputError if absent."""
        inp = self.inputs["samples"]
        if name not in self.arrays:
            raise ReportInputError(inp.path, f"missing array {name!r} (has {sorted(self.arrays)})", inp.producer)
        return check_array(inp.path, inp.producer, name, self.arrays[name], ndim=ndim, last=last, length=length)

    def samples(self) -> np.ndarray:
        """The generated samples, checked against the family's kind: (n, H, W, 1|3) images, (n, 2) points, or
        a classifier's (n, classes) probabilities on the test split."""
        if self.kind == "images":
            return self.array("samples", ndim=4, last=(1, 3))
        if self.kind in ("labels", "tokens"):
            return self.array("samples", ndim=2)
        if self.kind == "pianorolls":
            return self.array("samples", ndim=5)
        return self.array("samples", ndim=2, last=2)


REPORT_KINDS = ("images", "points", "labels", "tokens", "pianorolls")


def load_model_report(model: str, kind: str) -> ModelReport:
    """Load and check everything a model's report reads (the stage calls this before a kernel starts)."""
    if kind not in REPORT_KINDS:
        raise ValueError(f"kind must be one of {REPORT_KINDS}, got {kind!r}")
    inputs = model_inputs(model)
    report = ModelReport(
        model=model, kind=kind, inputs=inputs,
        metrics=load_metrics(inputs["metrics"].path, inputs["metrics"].producer),
        meta=load_meta(inputs["meta"].path, inputs["meta"].producer, model),
        history=load_history(inputs["history"].path, inputs["history"].producer),
    )
    dataset = report.dataset
    data = Path(report.meta.get("data") or Path("data") / "processed" / f"{dataset}.npz")
    inputs["data"] = Input(data, f"{'tokenise' if data.parent.name == 'tokens' else 'preprocess'}@{dataset}")
    report.samples()
    return report


WM_ARRAYS = ("real_frames", "reconstructions", "dream_frames", "best_frames", "best_rewards", "worst_frames",
             "worst_rewards", *(f"{kind}_{name}" for kind in ("returns", "dream_returns")
                                for name in ("real", "dream", "random", "constant")))


@dataclass
class WorldModelsReport:
    """The World Models report's inputs, loaded and checked. `episodes`: samples/world_models.npz with
    uint8 frames turned into floats in [0, 1]; `controllers`: each mode's CMA-ES history file."""

    inputs: dict[str, Input]
    metrics: dict
    meta: dict
    episodes: dict[str, np.ndarray]
    controllers: dict[str, dict]


def load_world_models_report() -> WorldModelsReport:
    """Load and check everything the World Models report reads (the stage calls this before a kernel starts)."""
    evaluate = "wm_evaluate"
    inputs = {"metrics": Input(Path("metrics/world_models.json"), evaluate),
              "meta": Input(Path("metrics/world_models.meta.json"), evaluate),
              "episodes": Input(Path("samples/world_models.npz"), evaluate),
              **{f"controller_{mode}": Input(Path(f"models/world_models/controller_{mode}.json"), f"wm_controller@{mode}")
                 for mode in ("real", "dream")}}
    arrays = load_npz(inputs["episodes"].path, evaluate, required=WM_ARRAYS)
    for name in ("real_frames", "reconstructions", "dream_frames", "best_frames", "worst_frames"):
        check_array(inputs["episodes"].path, evaluate, name, arrays[name], ndim=4, last=(3,))
        if arrays[name].dtype == np.uint8:
            arrays[name] = arrays[name].astype(np.float32) / 255.0
    controllers = {mode: load_json(inputs[f"controller_{mode}"].path, inputs[f"controller_{mode}"].producer)
                   for mode in ("real", "dream")}
    for mode, saved in controllers.items():
        if not isinstance(saved.get("history"), list) or not saved["history"]:
            raise ReportInputError(inputs[f"controller_{mode}"].path, "no CMA-ES history", f"wm_controller@{mode}")
    return WorldModelsReport(inputs, load_metrics(inputs["metrics"].path, evaluate),
                             load_meta(inputs["meta"].path, evaluate, "world_models"), arrays, controllers)


def world_models_details(meta: dict) -> str:
    """Markdown: how the World Models figures were made (seeds, counts, versions)."""
    vae, m = meta.get("vae", {}), meta.get("mdnrnn", {})
    runs = ", ".join(f"{mode}: {c['generations']} generations, {c['evaluations']} candidate evaluations"
                     for mode, c in meta.get("controllers", {}).items())
    versions = ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items())
    return (f"Seed {meta.get('seed')}; real episodes on seeds {meta.get('episode_seeds')}. V: "
            f"{vae.get('frames', '?'):,} training frames, {vae.get('validation_frames', '?'):,} held out. M: "
            f"{m.get('windows', '?')} training windows, {m.get('validation_windows', '?')} held out. CMA-ES: {runs}. "
            f"Versions: {versions}.")


def show_gif(frames, caption: str = "", every_ms: int = 80, scale: int = 2) -> None:
    """An animated GIF of (n, H, W, 3) frames in [0, 1], embedded in the page (the same bytes every run)."""
    import base64

    from IPython.display import HTML, display
    from PIL import Image as PILImage

    pixels = (np.clip(np.asarray(frames, np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    pixels = pixels.repeat(scale, axis=1).repeat(scale, axis=2)
    images = [PILImage.fromarray(frame) for frame in pixels]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=every_ms, loop=0)
    data = base64.b64encode(buf.getvalue()).decode()
    display(HTML(f'<figure><img src="data:image/gif;base64,{data}" alt="{caption}"/>'
                 f"<figcaption>{caption}</figcaption></figure>"))


# ---------------------------------------------------------------- display ----------------------------
def png(fig) -> bytes:
    """A figure as PNG bytes: fixed dpi, no metadata that changes between runs."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    # A figure pyplot made (a family section may use pyplot) has a manager: free it. Figures from R.subplots
    # have none, so pyplot is not touched for them: in the kernel another thread may be importing pyplot at
    # that moment, and a half-imported module has no `close` (report@music_transformer failed so, once).
    if getattr(fig.canvas, "manager", None) is not None:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return buf.getvalue()


def show(fig) -> None:
    """Render a figure to PNG and display it inline (embedded as a data: URI in the HTML)."""
    from IPython.display import Image, display

    display(Image(data=png(fig), format="png"))


def say(text: str) -> None:
    from IPython.display import Markdown, display

    display(Markdown(text))


def table(frame: pd.DataFrame, right=None) -> None:
    """Display a frame as a markdown table (index included unless it is the default 0..n-1); columns in
    `right` (default: all but the first) right-aligned."""
    if not isinstance(frame.index, pd.RangeIndex):
        frame = frame.reset_index()
    frame = frame.astype(str)
    say(markdown_table(frame, right=list(frame.columns[1:]) if right is None else right))


def subplots(width: float, height: float, nrows: int = 1, ncols: int = 1, **kwargs):
    """(Figure, axes) of a fixed size in inches, with constrained layout; no pyplot involved."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    return fig, fig.subplots(nrows, ncols, **kwargs)


def sha256_prefix(path, n: int = 12) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:n]


def provenance(inputs: dict[str, Input]) -> str:
    """Markdown list of the files a report read, with size and SHA-256 prefix (compare with dvc.lock)."""
    lines = []
    for role, inp in inputs.items():
        p = Path(inp.path)
        if p.is_file():
            lines.append(f"- {role}: `{p}` ({p.stat().st_size:,} bytes, sha256 `{sha256_prefix(p)}`), "
                         f"from stage `{inp.producer}`")
    return "\n".join(lines)


# ---------------------------------------------------------------- figures and their tables -----------
LABELS = {"fid": "FID", "kid": "KID", "bits_per_dim": "bits/dim", "nll_nats": "NLL (nats/point)",
          "nn_distance_ratio": "nearest-train distance / test's", "reconstruction_mse": "reconstruction MSE",
          "conditional_accuracy": "conditional accuracy", "accuracy": "accuracy",
          "cross_entropy_nats": "cross-entropy (nats)", "return_mean": "real return",
          "dream_return_mean": "dream return", "next_z_nll": "next-z NLL (nats/dim)"}
LOWER_IS_BETTER = ("fid", "kid", "bits_per_dim", "nll", "nats", "perplexity", "loss", "error", "mse", "mae")
HIGHER_IS_BETTER = ("accuracy", "precision", "recall", "log_likelihood", "elbo", "return")
ARROW = {"lower": "↓", "higher": "↑", None: ""}
GLOSSARY = {
    "fid": "Fréchet distance between Gaussians fitted to the backbone's features of generated and test images; "
           "0 means identical feature statistics. ± its bootstrap standard deviation over both sample sets.",
    "kid": "kernel inception distance: an unbiased MMD² with a cubic polynomial kernel on the same features, "
           "less biased than FID for few samples (it can be slightly negative). ± its spread over random subsets.",
    "bits_per_dim": "negative log-likelihood of the test images in bits per pixel and channel (256 levels each); "
                    "8 is a uniform guess.",
    "nll_nats": "average negative log-likelihood of the test points, in nats; it can be negative (a density can "
                "exceed 1).",
}


def std_key(key: str) -> str:
    """The key of a figure's spread: `fid` -> `fid_std`, `return_mean` -> `return_std`."""
    return (key[: -len("_mean")] if key.endswith("_mean") else key) + "_std"


def figure_keys(metrics: dict) -> list[str]:
    """The figures of a metrics dict: numeric top-level keys, not their spreads (see std_key)."""
    top = {k: v for k, v in metrics.items() if k not in ("baseline", "reference") and is_number(v)}
    spreads = {std_key(k) for k in top}
    return [k for k in top if k not in spreads]


def label(key: str, meta: dict | None = None) -> str:
    """Readable name of a figure: 'fid' -> 'FID', 'elbo_bits_per_dim' -> 'bits/dim (elbo bound)'; a sequence
    model's (its meta lists `streams`): 'nll_nats' -> 'NLL (nats/token)', 'nll_nats_note' -> '..., note'."""
    if meta and "streams" in meta:
        for base, text in (("nll_nats", "NLL (nats/token)"), ("perplexity", "perplexity")):
            if key == base:
                return text
            if key.startswith(base + "_"):
                return f"{text}, {key[len(base) + 1:]}"
    if key in LABELS:
        return LABELS[key]
    for unit, text in LABELS.items():
        if key.endswith("_" + unit):  # a looser likelihood bound (elbo_bits_per_dim), or a variant (best_fid)
            prefix = key[: -len(unit) - 1]
            return f"{text} ({prefix} bound)" if unit in ("bits_per_dim", "nll_nats") else \
                f"{text}, {prefix.replace('_', ' ')}"
    return key


def direction(key: str, description: str = "") -> str | None:
    """'lower' or 'higher' (is better), from the description's own words, else from the name; or None."""
    text = description.lower()
    if "lower is better" in text:
        return "lower"
    if "higher is better" in text:
        return "higher"
    k = key.lower()
    if any(w in k for w in LOWER_IS_BETTER) or k.startswith(("neg_", "negative_")):
        return "lower"
    if any(w in k for w in HIGHER_IS_BETTER):
        return "higher"
    return None


def _get(d: dict, key: str):
    v = d.get(key)
    return float(v) if is_number(v) else None


def figure_rows(metrics: dict, meta: dict | None = None) -> list[dict]:
    """One row per figure: key, label, direction, model, model_std, baseline, baseline_std, reference,
    reference_std, gain (how many times better than the baseline; None where undefined)."""
    descriptions = (meta or {}).get("descriptions") or {}
    base, ref = metrics.get("baseline") or {}, metrics.get("reference") or {}
    data = metrics.get("data") or {}  # the training data's own figures (statistics a model should match)
    rows = []
    for key in figure_keys(metrics):
        d = direction(key, str(descriptions.get(key, "")))
        m, b = _get(metrics, key), _get(base, key)
        gain = None
        if d and m is not None and b is not None and m > 0 and b > 0:
            gain = b / m if d == "lower" else m / b
        rows.append({"key": key, "label": label(key, meta), "direction": d,
                     "model": m, "model_std": _get(metrics, std_key(key)),
                     "baseline": b, "baseline_std": _get(base, std_key(key)),
                     "reference": _get(ref, key), "reference_std": _get(ref, std_key(key)), "gain": gain,
                     "data": _get(data, key), "data_std": _get(data, std_key(key))})
    return rows


def headline(rows: list[dict]) -> dict | None:
    """The figure a model is judged by: the first one with a baseline (FID for images, NLL for points)."""
    return next((r for r in rows if r["baseline"] is not None), rows[0] if rows else None)


def fmt(v, std=None) -> str:
    """4 significant digits, '± std' when a spread is known, '—' when missing."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    s = f"{v:.4g}"
    return s if std is None or math.isnan(std) else f"{s} ± {f'{std:#.2g}'.rstrip('.')}"  # 3.0, not 3


def metrics_frame(rows: list[dict]) -> pd.DataFrame:
    """The model report's metrics table (strings): model vs baseline, and the reference where there is one."""
    with_reference = any(r["reference"] is not None for r in rows)
    out = []
    for r in rows:
        row = {"figure": f"{r['label']} {ARROW[r['direction']]}".strip(),
               "model": fmt(r["model"], r["model_std"]), "baseline": fmt(r["baseline"], r["baseline_std"]),
               "better than the baseline": "—" if r["gain"] is None else f"×{r['gain']:.3g}"}
        if with_reference:
            row["reference (real data)"] = fmt(r["reference"], r["reference_std"])
        if any(x.get("data") is not None for x in rows):
            row["training data"] = fmt(r.get("data"), r.get("data_std"))
        out.append(row)
    return pd.DataFrame(out)


def glossary(rows: list[dict], meta: dict) -> str:
    """Markdown: what each figure measures, what the baseline and the reference are."""
    descriptions = meta.get("descriptions") or {}
    likelihood = meta.get("likelihood") or []
    lines = []
    for r in rows:
        # Sequence models' and PixelCNN's (its own image size and `levels`) descriptions name their own units.
        own = "streams" in meta or "levels" in meta
        text = (descriptions.get(r["key"]) if own else None) or GLOSSARY.get(r["key"]) \
            or descriptions.get(r["key"], "")
        text = re.sub(r"\s*\((lower|higher) is better\)", "", text)  # the rule follows in its own words
        bound = next((u for u in ("bits_per_dim", "nll_nats") if r["key"].endswith("_" + u)), None)
        if r["key"] in ("bits_per_dim", "nll_nats") and likelihood:
            text += f" From the model's `{likelihood[0]}`."
        elif bound and not text:
            text = (f"the same as {LABELS[bound]}, from the model's `{r['key'][: -len(bound) - 1]}`: a looser "
                    f"bound, so never below the {LABELS[bound]} above.")
        rule = {"lower": "lower is better", "higher": "higher is better", None: "direction unknown"}[r["direction"]]
        if r["direction"] is None and "closer to the training data" in str(descriptions.get(r["key"], "")):
            rule = "closer to the training data is better"
            text = re.sub(r"\s*\(closer to the training data's is better\)", "", text)
        lines.append(f"- **{r['label']}** ({rule}): {text}".rstrip(": "))
    if meta.get("baseline"):
        lines.append(f"- **baseline**: {meta['baseline']}, scored the same way.")
    if meta.get("reference"):
        lines.append(f"- **reference**: {meta['reference']}, scored like the model: FID and KID are not 0 for a "
                     "finite sample even of real images, so this is the best a model can reach here.")
    return "\n".join(lines)


def run_details(meta: dict) -> str:
    """One line: seed, sample counts, the backbone the images were measured with."""
    parts = [f"seed {meta['seed']}" if "seed" in meta else None,
             f"{meta['num_samples']:,} samples" if "num_samples" in meta else None,
             f"{meta['num_test']:,} test examples" if "num_test" in meta else None]
    bb = meta.get("backbone")
    if isinstance(bb, dict):
        parts.append(f"features from the `{bb.get('name', '?')}` backbone (`{bb.get('path', '?')}`, "
                     f"sha256 `{str(bb.get('sha256', ''))[:12]}`)")
    return "Evaluated with " + ", ".join(p for p in parts if p) + "."


def show_metrics(report: ModelReport) -> list[dict]:
    rows = figure_rows(report.metrics, report.meta)
    say(run_details(report.meta))
    table(metrics_frame(rows))
    say(glossary(rows, report.meta))
    return rows


# ---------------------------------------------------------------- plots ------------------------------
def history_figure(history: pd.DataFrame):
    """One panel per quantity (`x` and `val_x` share one); log scale when a curve spans > 2 decades;
    a star on the best validation loss. -> (figure, notes)."""
    groups: dict[str, list[str]] = {}
    for col in history.columns:
        base = col[4:] if col.startswith("val_") and col[4:] in history.columns else col
        groups.setdefault(base, []).append(col)
    ncols = min(3, len(groups))
    nrows = math.ceil(len(groups) / ncols)
    fig, axes = subplots(4.4 * ncols, 3.2 * nrows, nrows, ncols, squeeze=False)
    notes = []
    for ax, (base, cols) in zip(axes.flat, groups.items()):
        for col in cols:
            y = history[col]
            ax.plot(history.index, y, marker="o" if len(y) <= 30 else None, ms=3,
                    label="validation" if col.startswith("val_") else "training")
            bad = int((~np.isfinite(y)).sum())
            if bad:
                notes.append(f"`{col}` has {bad} non-finite value(s), not drawn")
        vals = history[cols].to_numpy().ravel()
        vals = vals[np.isfinite(vals)]
        if len(vals) and vals.min() > 0 and vals.max() / vals.min() > 100:
            ax.set_yscale("log")
        val = f"val_{base}"
        if base == "loss" and val in cols and history[val].notna().any():
            best = history[val].idxmin()
            ax.plot([best], [history[val][best]], "k*", ms=10, label=f"best (epoch {best})")
            notes.append(f"lowest `{val}`: {history[val][best]:.4g} at epoch {best} of {history.index[-1]}")
        ax.set_title(base)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    for ax in list(axes.flat)[len(groups):]:
        ax.set_visible(False)
    return fig, notes


def show_history(report: ModelReport) -> None:
    fig, notes = history_figure(report.history)
    show(fig)
    if notes:
        say("\n".join(f"- {n}" for n in notes))


def to_images(array) -> tuple[np.ndarray, str | None, float]:
    """(n,H,W), (n,H,W,1) or (n,H,W,3) -> (images for imshow, colour map, fraction clipped from [0, 1])."""
    a = np.asarray(array, dtype=np.float32)
    if a.ndim == 4 and a.shape[-1] == 1:
        a = a[..., 0]
    clipped = float(np.mean((a < -1e-3) | (a > 1 + 1e-3))) if a.size else 0.0
    return np.clip(a, 0.0, 1.0), ("gray" if a.ndim == 3 else None), clipped


def mosaic(images: np.ndarray, ncols: int, pad: int = 1, fill: float = 0.5) -> np.ndarray:
    """Tile (n,H,W[,3]) images into one array with `pad` grey pixels between them (one imshow: crisp)."""
    n, h, w = images.shape[:3]
    nrows = math.ceil(n / ncols)
    out = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad) + images.shape[3:], fill, np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, ncols)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = img
    return out


def image_grid(array, ncols: int = 8, nrows: int = 8, title: str | None = None, cell: float = 0.9):
    """Up to ncols x nrows images as one figure, `cell` inches per image -> (figure, fraction clipped)."""
    imgs, cmap, clipped = to_images(np.asarray(array)[: ncols * nrows])
    rows = math.ceil(len(imgs) / ncols)
    fig, ax = subplots(cell * ncols, cell * rows + (0.3 if title else 0.0))
    ax.imshow(mosaic(imgs, ncols), cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title)
    return fig, clipped


def labelled_rows(images, ncols: int, row_labels: list[str], cell: float = 0.8, title: str | None = None) -> float:
    """Show images as rows of `ncols` with a label left of each row (originals above reconstructions,
    samples above their nearest training images, one row per class, ...) -> fraction clipped."""
    imgs, cmap, clipped = to_images(images)
    fig, ax = subplots(cell * ncols + 1.5, cell * len(row_labels) + (0.6 if title else 0.3))
    ax.imshow(mosaic(imgs, ncols), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    h = imgs.shape[1] + 1
    ax.set_yticks([0.5 + h * (i + 0.5) for i in range(len(row_labels))], row_labels)
    ax.set_xticks([])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    if title:
        ax.set_title(title)
    show(fig)
    return clipped


def clip_note(clipped: float, what: str) -> None:
    if clipped > 0:
        say(f"*{clipped:.2%} of the {what} pixel values lie outside [0, 1] and were clipped for display.*")


def limits(*arrays, q: float = 0.5, margin: float = 0.08) -> list[tuple[float, float]]:
    """Axis limits (x, y) covering the central 100-2q % of the points of 2-D arrays, plus a margin."""
    pts = np.concatenate([np.asarray(a)[:MAX_POINTS] for a in arrays])
    lo, hi = np.percentile(pts, q, axis=0), np.percentile(pts, 100 - q, axis=0)
    pad = np.maximum((hi - lo) * margin, 0.05)
    return [(float(lo[i] - pad[i]), float(hi[i] + pad[i])) for i in range(2)]


def outside(points, lims) -> int:
    """How many of the (first MAX_POINTS) points fall outside the axis limits."""
    p = np.asarray(points)[:MAX_POINTS]
    (x0, x1), (y0, y1) = lims
    return int(np.sum((p[:, 0] < x0) | (p[:, 0] > x1) | (p[:, 1] < y0) | (p[:, 1] > y1)))


def scatter_classes(ax, points, labels=None, names=None, s: float = 4, color="tab:green") -> None:
    """Scatter 2-D points, one colour per label (legend) or one colour for all."""
    points = np.asarray(points)[:MAX_POINTS]
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=s, alpha=0.5, color=color, linewidths=0)
        return
    labels = np.asarray(labels)[:MAX_POINTS]
    palette = matplotlib.colormaps["tab10" if len(np.unique(labels)) <= 10 else "tab20"].colors
    for i, c in enumerate(np.unique(labels)):
        sel = labels == c
        name = names[int(c)] if names is not None and 0 <= int(c) < len(names) else str(c)
        ax.scatter(points[sel, 0], points[sel, 1], s=s, alpha=0.6, color=palette[i % len(palette)],
                   linewidths=0, label=name)
    ax.legend(markerscale=3, loc="upper right", ncols=2 if len(np.unique(labels)) > 5 else 1)


def prior_circles(ax, radii=(1, 2, 3)) -> None:
    """Dashed circles at 1, 2, 3 standard deviations of N(0, I)."""
    t = np.linspace(0, 2 * np.pi, 200)
    for r in radii:
        ax.plot(r * np.cos(t), r * np.sin(t), "k--", lw=0.7, alpha=0.5)


def principal_plane(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project (n, d) codes on their first two principal directions -> (n, 2) points, variance fractions.

    The projection is of z itself, not z minus its mean: the directions are orthonormal, so the prior
    N(0, I) projects to the 2-D standard Gaussian and its circles stay where they belong. Signs are fixed
    (largest loading positive) so that reruns draw the same picture."""
    z = np.asarray(z, dtype=np.float64)
    centred = z - z.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    vt = vt[:2].copy()
    vt *= np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(axis=1)])[:, None]
    var = s**2 / max(np.sum(s**2), 1e-300)
    return z @ vt.T, var[:2]


# ---------------------------------------------------------------- the summary ------------------------
@dataclass
class ModelResult:
    """One model's figures for the summary: metrics/<model>.json, its .meta.json and the seed spread."""

    model: str
    metrics: dict
    meta: dict
    seeds: dict | None = None  # metrics/seeds/<model>.json where present

    @property
    def rows(self) -> list[dict]:
        return figure_rows(self.metrics, self.meta)


def load_results(metrics_dir="metrics") -> tuple[list[ModelResult], dict[str, dict]]:
    """Every model's results (one per metrics/<model>.meta.json, sorted by name) and the FID/KID rulers'
    test accuracy per dataset (metrics/feature_extractor_<dataset>.json)."""
    d = Path(metrics_dir)
    producer = "evaluate@<model>"
    metas = sorted(d.glob("*.meta.json"))
    if not metas:
        raise ReportInputError(f"{d}/", "no <model>.meta.json files", producer)
    results = []
    for meta_path in metas:
        model = meta_path.name[: -len(".meta.json")]
        stage = f"evaluate@{model}"
        meta = load_meta(meta_path, stage, model)
        metrics = load_metrics(d / f"{model}.json", stage)
        seeds_path = d / "seeds" / f"{model}.json"
        seeds = load_seeds(seeds_path) if seeds_path.exists() else None
        if seeds and (stale := stale_seed_figure(seeds, metrics)):
            # Printed, not warnings.warn: a warning names the kernel's temp file, and the notebook must be the
            # same bytes on every run.
            print(f"warning: {seeds_path}: left out, it is stale ({stale}); rerun scripts/seeds.py {model}",
                  file=sys.stderr)
            seeds = None
        results.append(ModelResult(model, metrics, meta, seeds))
    known = {r.model for r in results}
    for path in sorted(d.glob("*.json")):
        stem = path.name[: -len(".json")]
        if not stem.endswith(".meta") and not stem.startswith("feature_extractor_") and stem not in known:
            raise ReportInputError(d / f"{stem}.meta.json", f"not found beside {path}", f"evaluate@{stem}")
    rulers = {}
    for path in sorted(d.glob("feature_extractor_*.json")):
        dataset = path.stem[len("feature_extractor_"):]
        raw = load_json(path, f"feature_extractor@{dataset}")
        acc = raw.get("accuracy")
        if not is_number(acc):
            raise ReportInputError(path, f"'accuracy' is {acc!r}, not a number", f"feature_extractor@{dataset}")
        rulers[dataset] = {"accuracy": float(acc), "baseline": _get(raw.get("baseline") or {}, "accuracy")}
    return results, rulers


def load_seeds(path) -> dict:
    """metrics/seeds/<model>.json: {"seeds": [...], "figures": {key: {"mean", "std", "values"}}}, std null
    for a single seed (scripts/seeds.py writes it)."""
    producer = "scripts/seeds.py"
    raw = load_json(path, producer)
    figures = raw.get("figures")
    if not isinstance(raw.get("seeds"), list) or not isinstance(figures, dict):
        raise ReportInputError(path, "expected {'seeds': [...], 'figures': {...}}", producer)
    for key, f in figures.items():
        if not isinstance(f, dict) or not is_number(f.get("mean")) or not (f.get("std") is None or is_number(f["std"])):
            raise ReportInputError(path, f"figures.{key} must have a numeric 'mean' and 'std' (or null), got {f!r}",
                                   producer)
    return raw


def stale_seed_figure(seeds: dict, metrics: dict) -> str:
    """'' if the seed spread was measured on the model the metrics are from, else what differs: its run with
    the committed seed must have the committed figures (they are one of its values, scripts/seeds.py)."""
    committed = seeds.get("committed_seed")
    if committed not in seeds["seeds"]:
        return ""
    i = seeds["seeds"].index(committed)
    for key, f in seeds["figures"].items():
        values, current = f.get("values") or [], metrics.get(key)
        if "." not in key and is_number(current) and len(values) > i and is_number(values[i]) \
                and not math.isclose(float(values[i]), float(current), rel_tol=1e-9, abs_tol=1e-12):
            return f"{key} {float(values[i]):.4g} at seed {committed} there, {float(current):.4g} in the metrics"
    return ""


def seed_spread(result: ModelResult, key: str) -> str:
    """'mean ± std (n seeds)' of a figure across training seeds, or '' where not measured."""
    if not result.seeds or key not in result.seeds["figures"]:
        return ""
    f = result.seeds["figures"][key]
    n = len(f.get("values") or result.seeds["seeds"])
    return f"{fmt(float(f['mean']), None if f.get('std') is None else float(f['std']))} ({n} seed{'s' * (n != 1)})"


def ruler(meta: dict) -> str:
    bb = meta.get("backbone")
    if isinstance(bb, dict):
        return f"{bb.get('name', '?')} `{str(bb.get('sha256', ''))[:8]}`"
    if "episode_seeds" in meta:  # World Models: scored by driving
        return f"{meta.get('episodes', '?')} real episodes"
    return "test data"


def results_frame(results: list[ModelResult]) -> pd.DataFrame:
    """The results table: one row per (model, figure), strings; the model's columns only on its first row."""
    with_reference = any(r["reference"] is not None for res in results for r in res.rows)
    with_seeds = any(res.seeds for res in results)
    out = []
    for res in results:
        for i, r in enumerate(res.rows):
            row = {"model": res.model if i == 0 else "", "dataset": res.meta.get("dataset", "") if i == 0 else "",
                   "measured with": ruler(res.meta) if i == 0 else "",
                   "figure": f"{r['label']} {ARROW[r['direction']]}".strip(),
                   "value": fmt(r["model"], r["model_std"]), "baseline": fmt(r["baseline"], r["baseline_std"])}
            if with_reference:
                row["reference"] = "" if r["reference"] is None else fmt(r["reference"], r["reference_std"])
            if with_seeds:
                row["across seeds"] = seed_spread(res, r["key"])
            out.append(row)
    return pd.DataFrame(out)


def results_legend(results: list[ModelResult], rulers: dict[str, dict]) -> str:
    """What the columns mean, the baselines, and how good the rulers are (markdown)."""
    lines = [("*value*: the model's figure ± its noise (FID: bootstrap standard deviation over both sample sets; "
              "KID: spread over random subsets); *baseline*: a trivial model scored the same way")]
    if any(r["reference"] is not None for res in results for r in res.rows):
        lines[0] += ("; *reference*: training images scored like the samples, the floor that sample noise alone "
                     "gives")
    if any(res.seeds for res in results):
        lines[0] += "; *across seeds*: mean ± standard deviation of the figure over training seeds"
    lines[0] += (". ↓ lower is better, ↑ higher. *measured with*: the FID/KID backbone and its weights' SHA-256 "
                 "prefix (or the data the figures come from).")
    by_baseline: dict[str, list[str]] = {}
    for res in results:
        if res.meta.get("baseline"):
            by_baseline.setdefault(str(res.meta["baseline"]), []).append(res.model)
    if by_baseline:
        lines.append("Baselines: " + "; ".join(f"{', '.join(m)}: {b}" for b, m in by_baseline.items()) + ".")
    if rulers:
        lines.append("Backbone test accuracy: " + "; ".join(
            f"{ds} {fmt(r['accuracy'])}" + (f" (majority class {fmt(r['baseline'])})" if r["baseline"] is not None
                                            else "") for ds, r in rulers.items()) + ".")
    return "\n\n".join(lines)


def markdown_table(frame: pd.DataFrame, right=()) -> str:
    """GitHub markdown for a frame of strings, columns padded so the raw text reads as a table too."""
    cols = list(frame.columns)
    cells = [[str(v).replace("|", "\\|") for v in row] for row in frame.itertuples(index=False)]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]

    def line(values):
        return "| " + " | ".join(v.rjust(w) if c in right else v.ljust(w)
                                 for v, w, c in zip(values, widths, cols)) + " |"

    rule = "|" + "|".join((" " + "-" * (w - 1) + ": " if c in right else " :" + "-" * (w - 1) + " ")
                          for w, c in zip(widths, cols)) + "|"
    return "\n".join([line(cols), rule] + [line(row) for row in cells])


RESULTS_HEADER = "Generated by `dvc repro` (report stage summary); do not edit."


def results_table(results: list[ModelResult]) -> str:
    """The results table as GitHub markdown."""
    frame = results_frame(results)
    return markdown_table(frame, right=[c for c in ("value", "baseline", "reference", "across seeds")
                                        if c in frame.columns])


IMAGE_FIGURES = (("fid", "FID ↓"), ("kid", "KID ↓"), ("bits_per_dim", "bits/dim ↓"))


def image_families_frame(results: list[ModelResult], dataset: str) -> pd.DataFrame:
    """Every image model of one dataset in one table (all measured with the same backbone and sample count):
    FID and KID with their noise, bits/dim where the family has a likelihood (in the space its meta names, if
    not the data's) next to the per-pixel baseline's in that space, and the FID across training seeds. Two
    more rows: the per-pixel baseline's samples and training images (the floor), scored like the samples."""
    rows, baseline, reference = [], None, None
    for res in results:
        if res.meta.get("dataset") != dataset or not isinstance(res.meta.get("backbone"), dict):
            continue
        m, base = res.metrics, res.metrics.get("baseline") or {}
        row = {"model": res.model}
        for key, title in IMAGE_FIGURES:
            row[title] = fmt(_get(m, key), _get(m, std_key(key)))
        if _get(m, "bits_per_dim") is not None:
            row["baseline bits/dim"] = fmt(_get(base, "bits_per_dim"))
            meta = res.meta
            row["bits/dim of"] = (f"{meta['image_size']}x{meta['image_size']}, {meta['levels']} levels"
                                  if "levels" in meta and "image_size" in meta else "the data, 256 levels")
        row["FID across seeds"] = seed_spread(res, "fid")
        rows.append(row)
        baseline = baseline or base  # the same per-pixel samples for every model (same seed and count)
        reference = reference or res.metrics.get("reference")
    extra = [(name, figures) for name, figures in (("*per-pixel baseline*", baseline),
                                                   ("*training images*", reference)) if figures]
    rows += [{"model": name, **{title: fmt(_get(f, key), _get(f, std_key(key))) for key, title in IMAGE_FIGURES[:2]}}
             for name, f in extra]
    order = ["model", "FID ↓", "KID ↓", "bits/dim ↓", "baseline bits/dim", "bits/dim of", "FID across seeds"]
    frame = pd.DataFrame(rows)
    return frame[[c for c in order if c in frame.columns]].fillna("").replace("—", "")


def image_families_markdown(results: list[ModelResult]) -> str:
    """The image-family tables (one per image dataset), markdown; '' where there are no image models."""
    parts = []
    for dataset in sorted({r.meta.get("dataset") for r in results if isinstance(r.meta.get("backbone"), dict)}):
        frame = image_families_frame(results, dataset)
        backbone = next(ruler(r.meta) for r in results if r.meta.get("dataset") == dataset
                        and isinstance(r.meta.get("backbone"), dict))
        n = next(r.meta.get("num_samples") for r in results if r.meta.get("dataset") == dataset
                 and isinstance(r.meta.get("backbone"), dict))
        parts.append(f"**{dataset}**: every image model, {n} samples each, FID/KID in the features of {backbone}; "
                     "baseline: independent per-pixel marginals of the training split.\n\n"
                     + markdown_table(frame, right=[c for c in frame.columns if c not in ("model", "bits/dim of")]))
    return "\n\n".join(parts)


def results_markdown(results: list[ModelResult], rulers: dict[str, dict]) -> str:
    """reports/results.md: the table and what its columns mean, then the image families side by side."""
    parts = [RESULTS_HEADER, "", results_table(results), "", results_legend(results, rulers)]
    if images := image_families_markdown(results):
        parts += ["", "### Image families, one table per dataset", "", images]
    return "\n".join(parts) + "\n"


def summary_figure(results: list[ModelResult]):
    """One panel per model: its headline figure next to the baseline's (and the reference's), with their
    noise as error bars."""
    picked = [(res, headline(res.rows)) for res in results]
    picked = [(res, h) for res, h in picked if h is not None]
    ncols = min(4, max(1, len(picked)))
    nrows = max(1, math.ceil(len(picked) / ncols))
    fig, axes = subplots(3.2 * ncols, 3.0 * nrows, nrows, ncols, squeeze=False)
    for ax, (res, h) in zip(axes.flat, picked):
        bars = [("model", h["model"], h["model_std"], "tab:blue"),
                ("baseline", h["baseline"], h["baseline_std"], "tab:gray")]
        if h["reference"] is not None:
            bars.append(("reference", h["reference"], h["reference_std"], "tab:green"))
        bars = [b for b in bars if b[1] is not None]
        x = np.arange(len(bars))
        ax.bar(x, [b[1] for b in bars], yerr=[b[2] or 0.0 for b in bars], color=[b[3] for b in bars], capsize=4)
        ax.set_xticks(x, [b[0] for b in bars])
        for xi, b in zip(x, bars):  # the value above its error bar (below, for a negative one)
            up = b[1] >= 0
            ax.annotate(f"{b[1]:.3g}", (xi, b[1] + (b[2] or 0.0) * (1 if up else -1)), ha="center",
                        va="bottom" if up else "top", fontsize=8, xytext=(0, 2 if up else -2), textcoords="offset points")
        values = [b[1] for b in bars]
        if min(values) > 0 and max(values) / min(values) > 50:  # e.g. a baseline far off: keep the model visible
            ax.set_yscale("log")
        else:
            ax.axhline(0, color="k", lw=0.6)
        ax.set_title(f"{res.model} ({res.meta.get('dataset', '?')})")
        ax.set_ylabel(f"{h['label']} {ARROW[h['direction']]}".strip())
        ax.margins(y=0.15)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(picked):]:
        ax.set_visible(False)
    return fig


# ---------------------------------------------------------------- classifiers ------------------------
# A classifier's figures (stages/evaluate.py's label_figures), named and explained like FID and bits/dim.
GLOSSARY["accuracy"] = ("share of the test examples whose most probable class is the true one. ± its bootstrap "
                        "standard deviation over the test examples.")
GLOSSARY["cross_entropy_nats"] = ("mean −log *p*(true class) over the test examples, in nats: ln(number of classes) "
                                  "for a uniform guess, 0 for full confidence in every right answer.")


def classifier_outputs(report: ModelReport) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A classifier's (class probabilities, true labels, images) on the test split, checked against each
    other: samples/<model>.npz must hold one row of probabilities per test example of the dataset."""
    probs = report.samples()
    data_in, samples_in = report.inputs["data"], report.inputs["samples"]
    labels = check_array(data_in.path, data_in.producer, "test_y", report.data.get("test_y", np.empty(0)), ndim=1)
    images = check_array(data_in.path, data_in.producer, "test_x", report.data.get("test_x", np.empty(0)),
                         ndim=(3, 4), length=len(labels))
    if len(probs) != len(labels) or labels.min() < 0 or labels.max() >= probs.shape[1]:
        raise ReportInputError(samples_in.path, f"'samples' holds {probs.shape[1]} class probabilities for "
                               f"{len(probs)} examples, but the test split of {data_in.path} has {len(labels)} "
                               f"examples labelled {labels.min()}..{labels.max()}", samples_in.producer)
    return probs, labels.astype(np.int64), images


def class_names(data: dict, num_classes: int, keys=("label_names", "shape_names")) -> list[str]:
    """The classes' names: the first of `keys` the dataset holds with one name per class, else the ids."""
    for key in keys:
        names = data.get(key)
        if names is not None and np.ndim(names) == 1 and len(names) == num_classes:
            return [str(v) for v in names]
    return [str(i) for i in range(num_classes)]


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """(classes, classes) counts: row = true class, column = predicted class."""
    flat = np.asarray(y_true, np.int64) * num_classes + np.asarray(y_pred, np.int64)
    return np.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def confusion_matrix_figure(counts: np.ndarray, names: list[str], title: str | None = None):
    """The confusion matrix with its counts written in, coloured by the share of each row (true class), so
    that a rare class's mistakes show as clearly as a common one's."""
    k = len(names)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = 1.6 + 0.6 * k
    fig, ax = subplots(side + 1.4, side)
    im = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, shrink=0.8, label="share of the true class")
    if k <= 20:  # beyond that the numbers no longer fit in their cells
        for (i, j), n in np.ndenumerate(counts):
            ax.text(j, i, str(n), ha="center", va="center", fontsize=9 if k <= 10 else 6,
                    color="white" if share[i, j] > 0.5 else "black")
    long = max(map(len, names)) > 3  # long names slant, so that neighbours do not overlap
    ax.set_xticks(range(k), names, rotation=45 if long else 0, ha="right" if long else "center")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if title:
        ax.set_title(title)
    return fig


def per_class_frame(counts: np.ndarray, names: list[str]) -> pd.DataFrame:
    """Per true class: test examples, accuracy (the share classified correctly) and its commonest mistake."""
    rows = []
    for i, name in enumerate(names):
        n, hits = int(counts[i].sum()), int(counts[i, i])
        others = np.where(np.arange(len(names)) == i, -1, counts[i])
        worst = int(np.argmax(others))
        rows.append({"class": name, "test examples": n, "correct": hits,
                     "accuracy": f"{hits / n:.1%}" if n else "—",
                     "most often taken for": f"{names[worst]} ({others[worst]})" if others[worst] > 0 else "—"})
    return pd.DataFrame(rows)


def captioned_grid(images, captions: list[str], ncols: int = 8, cell: float = 1.15):
    """Images with a caption above each (e.g. true and predicted class) -> (figure, fraction clipped)."""
    imgs, cmap, clipped = to_images(images)
    nrows = max(1, math.ceil(len(imgs) / ncols))
    fig, axes = subplots(cell * ncols, (cell + 0.3) * nrows, nrows, ncols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, text in zip(axes.flat, imgs, captions):
        ax.imshow(img, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_title(text, fontsize=7)
    return fig, clipped


# ---------------------------------------------------------------- sequence models -------------------------------
def ngram_frame(report: ModelReport) -> pd.DataFrame:
    """The model's per-token figures next to both n-gram baselines', one row per figure (strings)."""
    rows = []
    for key in figure_keys(report.metrics):
        row = {"figure": label(key, report.meta), "model": fmt(_get(report.metrics, key), _get(report.metrics, std_key(key)))}
        for name in ("unigram", "bigram"):
            section = report.metrics.get(name) or {}
            row[name] = fmt(_get(section, key), _get(section, std_key(key)))
        rows.append(row)
    streams = report.meta.get("streams") or {}
    if streams:
        say("Per stream: " + "; ".join(
            f"`{name}`: {s['targets']:,} test tokens in {s['windows']:,} windows of {s['window']}, vocabulary "
            f"{s['vocab_size']:,}, unigram add-k {s['unigram_add_k']:g}, bigram discount {s['bigram_discount']:g} "
            f"(both picked on the validation split)" for name, s in streams.items()) + ".")
    return pd.DataFrame(rows)


def show_text_samples(report: ModelReport) -> None:
    """The generated continuations as a table: temperature, prompt in bold, continuation."""
    import html

    texts = report.array("texts", ndim=1)
    temps = report.array("temperatures", ndim=1, length=len(texts))
    prompt_lengths = report.array("prompt_lengths", ndim=1, length=len(texts))
    samples = report.samples()
    vocab = report.data["vocab"]
    lines = ["| temperature | sample |", "|---:|:---|"]
    for t, plen, ids in zip(temps, prompt_lengths, samples):
        prompt = " ".join(str(vocab[i]) for i in ids[:plen])
        rest = " ".join(str(vocab[i]) for i in ids[plen:] if i != 0)
        lines.append(f"| {t:g} | **{html.escape(prompt)}** {html.escape(rest).replace('|', '&#124;')} |")
    say("\n".join(lines))
