"""Benchmark: wall time of every stage of `dvc repro`, of a no-op `dvc repro`, and where training time goes.

    python scripts/benchmark.py                 # default profile, in a fresh clone under /tmp
    python scripts/benchmark.py --profile smoke
    python scripts/benchmark.py --in-place      # here (leaves the outputs, dvc.lock and metrics)
    python scripts/benchmark.py --training-only --repeat 3   # only the training section, 3 runs per model

Stages run one at a time (`dvc repro --single-item`) in the DAG's order so each gets its own figure;
the sum is the time of a full `dvc repro` on this machine. Targets (2 cores): default run <= 15 min,
no-op < 5 s. Then the kernels (`--kernels-only`): the machine's float32 matmul peak, the DDIM U-Net's
training throughput in images/s and as a share of that peak (target >= 25%), and how long PixelCNN takes
to draw 64 samples pixel by pixel. Then the quality targets of the issues (`--quality-only`: on the
metrics here).

Training section, for every model of dvc.yaml's `vars: models:`: the figures its train@<model> stage
prints about itself (gradient steps, their throughput after the first epoch, the stage's wall time from
its process's start, the overhead = the share of it outside the gradient steps), next to a plain
`model.fit(x, epochs=E, batch_size=B, verbose=0)` of the same architecture on the same arrays, in a fresh
process (`family.model().build(cfg, data, seed)`; its throughput also after the first epoch, which
traces the train step). Targets: overhead <= 15% of the stage, gradient-step throughput >= the plain fit.
With --training-only the stages run directly (`python -m stages.train <model>`, after
`dvc repro preprocess@<dataset>`), --repeat times each, alternating with the plain fits; figures are
medians with [min-max] spreads, as the CPU may be shared.

Prints tables and writes them as JSON with --json: {profile, stages, total, noop, training}; `stages`,
`total` and `noop` are absent with --training-only.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OVERHEAD_TARGET = 15.0  # percent of a training stage's wall time
PLAIN_FIT_EPOCHS = 10  # the plain fit's epochs (at most the stage's): its first one only traces
TIME_LINE = re.compile(
    r"(?P<stage>train@\S+): (?P<epochs>\d+) epochs, (?P<examples>\d+) (?P<unit>\w+)/epoch: gradient steps "
    r"(?P<steps>[\d.]+) s \((?:first epoch (?P<first>[\d.]+) s, then (?P<rate>[\d.]+) \w+/s|[^)]*)\), "
    r"stage (?P<stage_seconds>[\d.]+) s, overhead (?P<overhead>-?[\d.]+)%")


def run(cmd: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start, proc.stdout + proc.stderr


def stages_in_order(cwd: Path) -> list[str]:
    sys.path.insert(0, str(cwd))
    from gdl.pipeline import dvc_stages, edges  # noqa: E402

    stages = dvc_stages(cwd)
    deps = {s["name"]: set() for s in stages}
    for up, down in edges(stages):
        deps[down].add(up)
    ordered, done = [], set()
    while len(ordered) < len(deps):  # a topological order, ties in dvc.yaml's order
        for name in deps:
            if name not in done and deps[name] <= done:
                ordered.append(name)
                done.add(name)
                break
    return ordered


def models(cwd: Path) -> dict[str, str]:
    """{model: dataset} from the checkout's dvc.yaml."""
    sys.path.insert(0, str(cwd))
    from gdl import families  # noqa: E402

    return {name: inst.dataset for name, inst in families.instances(cwd / "dvc.yaml").items()}


# ------------------------------------------------------------------ training ----------------------------
def stage_figures(output: str, model: str) -> dict:
    """The time line train@<model> printed, as numbers."""
    found = [m for m in TIME_LINE.finditer(output) if m["stage"] == f"train@{model}"]
    if not found:
        sys.exit(f"train@{model} printed no time line (is the checkout older than the timed train stage?)")
    m = found[-1]
    figures = {"epochs": int(m["epochs"]), "examples_per_epoch": int(m["examples"]), "unit": m["unit"],
               "gradient_step_seconds": float(m["steps"]), "stage_seconds": float(m["stage_seconds"]),
               "overhead_percent": float(m["overhead"])}
    if m["rate"]:
        figures |= {"first_epoch_seconds": float(m["first"]), "examples_per_second": float(m["rate"])}
    return figures


def plain_fit(model: str, epochs: int) -> dict:
    """In this process (run from the checkout's root): build the model as train@<model> does and time a
    plain `model.fit` on its training arrays, without validation, checkpoints or logging."""
    sys.path.insert(0, str(Path.cwd()))
    from stages.common import quiet_tensorflow

    quiet_tensorflow()
    from gdl import families
    from gdl.arrays import load_arrays
    from gdl.params import load_params, model_seed
    from gdl.training import TrainClock, set_seed

    inst, params = families.instance(model), load_params()
    cfg, seed = getattr(params, model), model_seed(params, model)
    data = load_arrays(inst.data_path)
    set_seed(seed)
    module = inst.family.model()
    net = module.build(cfg, data, seed)
    x, y, _ = module.train_arrays(data, cfg)
    clock, epochs = TrainClock(), min(epochs, cfg.epochs)
    net.fit(x, y, epochs=epochs, batch_size=cfg.batch_size, verbose=0, callbacks=[clock])
    return {"epochs": epochs, "first_epoch_seconds": clock.seconds[0],
            "examples_per_second": clock.throughput(len(x)), "gradient_step_seconds": sum(clock.seconds)}


def matmul_peak(n: int = 2048, repeats: int = 20) -> float:
    """The machine's float32 peak as TensorFlow reaches it: GFLOP/s of the best of several n x n matmuls."""
    import tensorflow as tf

    a = tf.random.stateless_normal((n, n), seed=(0, 1))
    b = tf.random.stateless_normal((n, n), seed=(0, 2))
    matmul = tf.function(lambda a, b: tf.reduce_sum(tf.matmul(a, b)))
    matmul(a, b).numpy()  # trace and warm up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def kernels(epochs: int = 3) -> dict:
    """In this process (run from the checkout's root): the float32 matmul peak, the DDIM U-Net's training
    throughput (images/s after the first epoch, and as a share of the peak: FLOPs per image = 3 x the forward
    pass, counted over its Conv2D/Dense layers) and the time PixelCNN takes to draw 64 samples pixel by pixel
    (its trained weights where train@pixelcnn has run; the time does not depend on them)."""
    sys.path.insert(0, str(Path.cwd()))
    from stages.common import quiet_tensorflow

    quiet_tensorflow()
    from gdl import families
    from gdl.arrays import load_arrays
    from gdl.params import load_params, model_seed
    from gdl.training import TrainClock, set_seed

    params, out = load_params(), {"matmul_gflops": matmul_peak()}
    inst = families.instance("ddim")
    cfg, seed = params.ddim, model_seed(params, "ddim")
    data = load_arrays(inst.data_path)
    set_seed(seed)
    module = inst.family.model()
    net = module.build(cfg, data, seed)
    x, y, _ = module.train_arrays(data, cfg)
    clock = TrainClock()
    net.fit(x, y, epochs=epochs, batch_size=cfg.batch_size, verbose=0, callbacks=[clock])
    rate = clock.throughput(len(data["train_x"]))
    flops = 3 * module.forward_flops(net)
    out |= {"unet_images_per_second": rate, "unet_train_gflop_per_image": flops / 1e9,
            "unet_gflops": rate * flops / 1e9, "unet_share_of_peak": rate * flops / 1e9 / out["matmul_gflops"]}
    inst = families.instance("pixelcnn")
    cfg, seed = params.pixelcnn, model_seed(params, "pixelcnn")
    data = load_arrays(inst.data_path)
    module = inst.family.model()
    net = module.build(cfg, data, seed)
    if Path("models/pixelcnn/model.weights.h5").exists():
        net.load_weights("models/pixelcnn/model.weights.h5")
    module.sample(net, 8, seed)  # trace
    start = time.perf_counter()
    module.sample(net, 64, seed)
    out["pixelcnn_seconds_per_64_samples"] = time.perf_counter() - start
    return out


def print_kernels(k: dict) -> None:
    print(f"float32 matmul peak        {k['matmul_gflops']:8.1f} GFLOP/s")
    print(f"DDIM U-Net training        {k['unet_images_per_second']:8.1f} images/s x "
          f"{k['unet_train_gflop_per_image']:.3f} GFLOP = {k['unet_gflops']:.1f} GFLOP/s, "
          f"{100 * k['unet_share_of_peak']:.0f}% of peak (target >= 25%)")
    print(f"PixelCNN, 64 samples       {k['pixelcnn_seconds_per_64_samples']:8.1f} s")


def run_plain_fit(cwd: Path, model: str, epochs: int) -> dict:
    _, out = run([sys.executable, str(Path(__file__).resolve()), "--plain-fit", model,
                  "--fit-epochs", str(epochs)], cwd)
    return json.loads(out.strip().splitlines()[-1])


def run_kernels(cwd: Path) -> dict:
    _, out = run([sys.executable, str(Path(__file__).resolve()), "--kernels"], cwd)
    return json.loads(out.strip().splitlines()[-1])


def summarize(model: str, stage_runs: list[dict], fit_runs: list[dict]) -> dict:
    """Medians (and spreads) of a model's stage runs and plain fits, and whether the targets are met."""
    def spread(runs, key):
        values = [r[key] for r in runs if r.get(key) is not None]
        return {"median": statistics.median(values), "min": min(values), "max": max(values)} if values else None

    out = {"stage_runs": stage_runs, "plain_fit_runs": fit_runs,
           **{key: spread(stage_runs, key) for key in ("stage_seconds", "gradient_step_seconds",
                                                        "examples_per_second", "overhead_percent")},
           "plain_fit_examples_per_second": spread(fit_runs, "examples_per_second")}
    overhead, rate, plain = (out[k] for k in ("overhead_percent", "examples_per_second",
                                              "plain_fit_examples_per_second"))
    out["targets_met"] = {
        "overhead": overhead["median"] <= OVERHEAD_TARGET,
        "throughput": None if rate is None or plain is None else rate["median"] >= plain["median"]}
    return out


def print_training(training: dict) -> None:
    def cell(s, fmt):
        if s is None:
            return "-"
        text = format(s["median"], fmt)
        return text if s["min"] == s["max"] else f"{text} [{format(s['min'], fmt)}-{format(s['max'], fmt)}]"

    print(f"\ntraining: overhead target <= {OVERHEAD_TARGET:.0f}% of the stage, gradient-step throughput >= "
          f"a plain model.fit (both after the first epoch)")
    print(f"{'model':12s} {'epochs':>6s} {'stage s':>18s} {'steps s':>18s} {'overhead %':>18s} "
          f"{'stage ex/s':>20s} {'plain fit ex/s':>20s}  targets")
    for model, t in training.items():
        first = t["stage_runs"][0]
        met = t["targets_met"]
        verdict = ", ".join(f"{k} {'ok' if v else 'MISSED' if v is False else '-'}" for k, v in met.items())
        print(f"{model:12s} {first['epochs']:6d} {cell(t['stage_seconds'], '.1f'):>18s} "
              f"{cell(t['gradient_step_seconds'], '.1f'):>18s} {cell(t['overhead_percent'], '.1f'):>18s} "
              f"{cell(t['examples_per_second'], '.0f'):>20s} {cell(t['plain_fit_examples_per_second'], '.0f'):>20s}"
              f"  {verdict}")


def training_only(cwd: Path, repeat: int, fit_epochs: int) -> dict:
    training = {}
    for model, dataset in models(cwd).items():
        run(["dvc", "repro", f"preprocess@{dataset}"], cwd)
        stage_runs, fit_runs = [], []
        for _ in range(repeat):  # alternate, so a busy spell on a shared CPU hits both
            _, out = run([sys.executable, "-m", "stages.train", model], cwd)
            stage_runs.append(stage_figures(out, model))
            fit_runs.append(run_plain_fit(cwd, model, fit_epochs))
            print(f"train@{model}: {stage_runs[-1]}; plain fit: {fit_runs[-1]}", flush=True)
        training[model] = summarize(model, stage_runs, fit_runs)
    return training


# The quality targets of the issues, checked on the metrics a run wrote: (model, description, test).
def closer_to_data(key: str):
    """A test: the model's statistic `key` is strictly closer to the training data's than the baseline's."""
    return lambda m: abs(m[key] - m["data"][key]) < abs(m["baseline"][key] - m["data"][key])


QUALITY_TARGETS = [
    ("dcgan", "FID <= 1/3 of the per-pixel baseline's", lambda m: m["fid"] <= m["baseline"]["fid"] / 3),
    ("wgan_gp", "FID <= 1/3 of the per-pixel baseline's", lambda m: m["fid"] <= m["baseline"]["fid"] / 3),
    ("cgan", "FID <= 1/3 of the per-pixel baseline's", lambda m: m["fid"] <= m["baseline"]["fid"] / 3),
    ("cgan", "conditional accuracy >= 0.90", lambda m: m["conditional_accuracy"] >= 0.90),
    ("mlp", "accuracy far above the majority class (> 1.5x)", lambda m: m["accuracy"] > 1.5 * m["baseline"]["accuracy"]),
    ("cnn", "accuracy above the MLP's", lambda m, metrics: m["accuracy"] > metrics["mlp"]["accuracy"]),
    ("autoencoder", "reconstruction MSE below PCA's", lambda m: m["reconstruction_mse"] < m["baseline"]["reconstruction_mse"]),
    # Every family beats its trivial baseline on its headline figures.
    ("vae", "bits/dim below the per-pixel baseline's", lambda m: m["bits_per_dim"] < m["baseline"]["bits_per_dim"]),
    ("vae_shapes", "bits/dim below the per-pixel baseline's",
     lambda m: m["bits_per_dim"] < m["baseline"]["bits_per_dim"]),
    ("vae_shapes", "FID below the per-pixel baseline's", lambda m: m["fid"] < m["baseline"]["fid"]),
    ("autoencoder", "FID below the per-pixel baseline's", lambda m: m["fid"] < m["baseline"]["fid"]),
    ("vae_shapes", "attribute vector raises the white-background share",
     lambda m: m["background_white_share"] > m["baseline"]["background_white_share"]),
    # World Models (issue 7): the headline controller's real return vs the random and constant policies.
    ("world_models", "real return >= random policy's + 100",
     lambda m: m["return_mean"] >= m["baseline"]["return_mean"] + 100),
    ("world_models", "real return above accelerate-straight's", lambda m: m["return_mean"] > m["constant"]["return_mean"]),
    ("world_models", "V's reconstruction MSE below the mean frame's",
     lambda m: m["reconstruction_mse"] < m["baseline"]["reconstruction_mse"]),
    ("world_models", "M's next-z NLL below N(z_t, sigma^2)'s", lambda m: m["next_z_nll"] < m["baseline"]["next_z_nll"]),
    # Text and music (issue 8): `baseline` is the better of the unigram and the Kneser-Ney bigram.
    ("lstm", "perplexity below the better n-gram baseline's", lambda m: m["perplexity"] < m["baseline"]["perplexity"]),
    ("gpt", "perplexity below the better n-gram baseline's", lambda m: m["perplexity"] < m["baseline"]["perplexity"]),
    ("music_transformer", "note NLL below the bigram's", lambda m: m["nll_nats_note"] < m["bigram"]["nll_nats_note"]),
    ("music_transformer", "duration NLL below the bigram's",
     lambda m: m["nll_nats_duration"] < m["bigram"]["nll_nats_duration"]),
    *[("musegan", f"{k.upper()} closer to the data's than the baseline's", closer_to_data(k)) for k in ("eb", "upc", "qn")],
    # PixelCNN, EBM, DDIM (issue 9): bits/dim in the model's own space, against marginals in that space.
    ("pixelcnn", "bits/dim below the per-pixel baseline's (same levels)",
     lambda m: m["bits_per_dim"] < m["baseline"]["bits_per_dim"]),
    ("pixelcnn_mixture", "bits/dim below the per-pixel baseline's (same levels)",
     lambda m: m["bits_per_dim"] < m["baseline"]["bits_per_dim"]),
    ("ebm", "FID below the per-pixel baseline's", lambda m: m["fid"] < m["baseline"]["fid"]),
    ("ddim", "best FID of the step sweep <= 1/3 of the baseline's (same count)",
     lambda m: m["best_fid"] <= m["steps"]["baseline_fid"] / 3),
    ("ddim", "a guidance scale with conditional accuracy >= 0.90 and FID <= 1/2 the baseline's",
     lambda m: any(m["guidance"][k] >= 0.90 and m["guidance"][k.replace("conditional_accuracy", "fid")]
                   <= m["baseline"]["guided_fid"] / 2 for k in m["guidance"] if k.endswith("_conditional_accuracy")
                   and not k.startswith("baseline"))),
]


def quality(cwd: Path) -> list[dict]:
    """Each quality target with the figures it reads and whether it holds (missing metrics: skipped)."""
    metrics = {p.stem: json.loads(p.read_text()) for p in (cwd / "metrics").glob("*.json")
               if not p.name.endswith(".meta.json")}
    rows = []
    for model, text, test in QUALITY_TARGETS:
        if model not in metrics:
            continue
        try:
            ok = test(metrics[model], metrics) if test.__code__.co_argcount == 2 else test(metrics[model])
        except KeyError as exc:
            ok = f"missing {exc}"
        rows.append({"model": model, "target": text, "holds": ok})
        print(f"{model:18s} {text:52s} {'yes' if ok is True else 'NO' if ok is False else ok}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default")
    parser.add_argument("--in-place", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--training-only", action="store_true", help="only the training section")
    parser.add_argument("--repeat", type=int, default=1, help="runs per model in --training-only")
    parser.add_argument("--fit-epochs", type=int, default=PLAIN_FIT_EPOCHS,
                        help=f"epochs of each plain fit, at most the stage's (default {PLAIN_FIT_EPOCHS})")
    parser.add_argument("--plain-fit", metavar="MODEL", help=argparse.SUPPRESS)  # internal: one plain fit
    parser.add_argument("--quality-only", action="store_true", help="only check the quality targets on metrics/")
    parser.add_argument("--kernels-only", action="store_true",
                        help="only the matmul peak, the U-Net's training throughput and PixelCNN's sampling time")
    parser.add_argument("--kernels", action="store_true", help=argparse.SUPPRESS)  # internal: print them as JSON
    args = parser.parse_args()
    if args.quality_only:
        quality(ROOT)
        return
    if args.kernels:
        print(json.dumps(kernels()))
        return
    if args.kernels_only:
        print_kernels(run_kernels(ROOT))
        return
    if args.plain_fit:
        print(json.dumps(plain_fit(args.plain_fit, args.fit_epochs)))
        return
    if args.in_place:
        cwd = ROOT
    else:
        cwd = Path(tempfile.mkdtemp(prefix="gdl-bench-")) / "repo"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(cwd)], check=True)
    subprocess.run([sys.executable, "-m", "gdl.params", "use", args.profile], cwd=cwd, check=True)
    result: dict = {"profile": args.profile}
    if args.training_only:
        result["training"] = training_only(cwd, args.repeat, args.fit_epochs)
    else:
        times, training = {}, {}
        for stage in stages_in_order(cwd):
            times[stage], out = run(["dvc", "repro", "--single-item", "--force", stage], cwd)
            print(f"{stage:28s} {times[stage]:7.1f} s", flush=True)
            if stage.startswith("train@"):
                training[stage.removeprefix("train@")] = stage_figures(out, stage.removeprefix("train@"))
        total = sum(times.values())
        noop, _ = run(["dvc", "repro"], cwd)
        print(f"{'total (full dvc repro)':28s} {total:7.1f} s   target < 900 s")
        print(f"{'no-op dvc repro':28s} {noop:7.1f} s   target < 5 s")
        result |= {"stages": times, "total": total, "noop": noop,
                   "training": {model: summarize(model, [figures], [run_plain_fit(cwd, model, args.fit_epochs)])
                                for model, figures in training.items()}}
    print_training(result["training"])
    if not args.training_only:
        result["kernels"] = run_kernels(cwd)
        print_kernels(result["kernels"])
        result["quality"] = quality(cwd)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
