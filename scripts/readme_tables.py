"""Put the pipeline's own results table (reports/results.md) and a benchmark's figures into README.md.

    python scripts/benchmark.py --in-place --json /tmp/bench.json
    python scripts/readme_tables.py /tmp/bench.json
"""

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def replace_between(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(\n<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        sys.exit(f"README.md: markers <!-- {name}:start/end --> not found")
    return pattern.sub(lambda m: m.group(1) + body + m.group(2), text)


def benchmark_table(bench: dict) -> str:
    rows = ["Measured on the 2-core reference machine (default profile):", "",
            "| stage | wall time (s) |", "|---|---:|"]
    rows += [f"| `{stage}` | {seconds:.1f} |" for stage, seconds in bench["stages"].items()]
    rows += [f"| **full `dvc repro`** (sum) | **{bench['total']:.0f}** (target < 600) |",
             f"| no-op `dvc repro` | {bench['noop']:.1f} (target < 5) |"]
    return "\n".join(rows)


def world_models_table(metrics: dict) -> str:
    """The World Models returns, from metrics/world_models.json (wm_evaluate's)."""
    head, other = ("real", "dream") if "dream_trained" in metrics else ("dream", "real")
    where = {"real": "real env", "dream": "dream"}
    rows = [(f"controller trained in the {where[head]}", metrics),
            (f"controller trained in the {where[other]}", metrics[f"{other}_trained"]),
            ("random policy (`baseline`)", metrics["baseline"]), ("accelerate straight (`constant`)", metrics["constant"])]
    lines = ["| policy | real return | dream return |", "|---|---:|---:|"]
    lines += [f"| {name} | {m['return_mean']:.1f} ± {m['return_std']:.1f} | {m['dream_return_mean']:.1f} |"
              for name, m in rows]
    lines += ["", f"V's held-out reconstruction MSE {metrics['reconstruction_mse']:.5f} (the mean frame's "
                  f"{metrics['baseline']['reconstruction_mse']:.5f}); M's held-out next-z NLL {metrics['next_z_nll']:.3f} "
                  f"nats/dim (z(t+1) ~ N(z(t), σ²): {metrics['baseline']['next_z_nll']:.3f})."]
    return "\n".join(lines)


def sequences_table(metrics_dir: Path) -> str:
    """The token models' per-token NLL next to both n-gram baselines (metrics/<model>.json, evaluate's), and
    MuseGAN's statistics next to the data's and the baseline's."""
    lines = ["| model | stream | NLL (nats/token) | perplexity | unigram | bigram |", "|---|---|---:|---:|---:|---:|"]
    for model in ("lstm", "gpt", "music_transformer"):
        path = metrics_dir / f"{model}.json"
        if not path.exists():
            continue
        m = json.loads(path.read_text())
        streams = [""] if "nll_nats" in m else sorted({k[len("nll_nats_"):] for k in m
                                                       if k.startswith("nll_nats_") and not k.endswith("_std")})
        for stream in streams:
            key = "nll_nats" + (f"_{stream}" if stream else "")
            ppl = "perplexity" + (f"_{stream}" if stream else "")
            lines.append(f"| {model} | {stream or 'words'} | **{m[key]:.3f}** ± {m[key + '_std']:.3f} | {m[ppl]:.2f} | "
                         f"{m['unigram'][key]:.3f} | {m['bigram'][key]:.3f} |")
    path = metrics_dir / "musegan.json"
    if path.exists():
        m = json.loads(path.read_text())
        keys = [k for k in ("eb", "upc", "qn", "td") if k in m]
        lines += ["", "| musegan | " + " | ".join(k.upper() for k in keys) + " |", "|---|" + "---:|" * len(keys)]
        for name, section in (("model", m), ("training data", m["data"]), ("baseline (random notes)", m["baseline"])):
            lines.append(f"| {name} | " + " | ".join(f"{section[k]:.3f}" for k in keys) + " |")
    return "\n".join(lines)


def diffusion_tables(metrics_dir: Path) -> str:
    """DDIM's step sweep (FID and wall time per sample by eta and steps) and guidance sweep (FID and
    conditional accuracy by scale), from metrics/ddim.json and its .meta.json (evaluate@ddim's)."""
    m = json.loads((metrics_dir / "ddim.json").read_text())
    meta = json.loads((metrics_dir / "ddim.meta.json").read_text())
    steps, guidance = m["steps"], m["guidance"]
    etas = sorted({r["eta"] for r in meta["sweep"]})
    counts = sorted({r["steps"] for r in meta["sweep"]})
    seconds = {(r["eta"], r["steps"]): r["seconds_per_sample"] for r in meta["sweep"]}
    n = meta["sweep_samples"]
    lines = [f"| DDIM steps ({n} samples) | " + " | ".join(str(c) for c in counts) + " |", "|---|" + "---:|" * len(counts)]
    for eta in etas:
        tag = f"eta{eta:g}"
        lines.append(f"| FID, eta = {eta:g} | " + " | ".join(
            f"{steps[f'{tag}_steps{c}_fid']:.2f} ± {steps[f'{tag}_steps{c}_fid_std']:.2f}" for c in counts) + " |")
        lines.append(f"| ms per sample, eta = {eta:g} | " + " | ".join(
            f"{1000 * seconds[(eta, c)]:.0f}" for c in counts) + " |")
    lines += ["", f"Per-pixel baseline at {n} samples: FID {steps['baseline_fid']:.1f} ± {steps['baseline_fid_std']:.1f}.",
              "", f"| guidance scale w ({n} samples, {meta.get('guidance_steps', meta['sample_steps'])} steps) | FID "
              "| conditional accuracy |", "|---:|---:|---:|"]
    for r in meta["guidance"]:
        tag = f"scale{r['scale']:g}"
        lines.append(f"| {r['scale']:g} | {guidance[f'{tag}_fid']:.2f} ± {guidance[f'{tag}_fid_std']:.2f} | "
                     f"{guidance[f'{tag}_conditional_accuracy']:.3f} |")
    base = m["baseline"]
    lines += ["", f"Per-pixel baseline: FID {base['guided_fid']:.1f}, conditional accuracy "
                  f"{base['guided_conditional_accuracy']:.3f} (chance)."]
    return "\n".join(lines)


def main() -> None:
    readme = ROOT / "README.md"
    text = replace_between(readme.read_text(), "results", (ROOT / "reports/results.md").read_text().strip())
    wm = ROOT / "metrics/world_models.json"
    if wm.exists():
        text = replace_between(text, "world-models", world_models_table(json.loads(wm.read_text())))
    text = replace_between(text, "sequences", sequences_table(ROOT / "metrics"))
    if (ROOT / "metrics/ddim.json").exists():
        text = replace_between(text, "diffusion", diffusion_tables(ROOT / "metrics"))
    if len(sys.argv) > 1:
        text = replace_between(text, "benchmark", benchmark_table(json.loads(Path(sys.argv[1]).read_text())))
    readme.write_text(text)


if __name__ == "__main__":
    main()
