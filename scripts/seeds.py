"""The spread of a model's figures across training seeds -> metrics/seeds/<model>.json.

    python scripts/seeds.py MODEL --seeds 1 2 3 [--keep]      (make seeds MODEL=vae SEEDS="1 2 3")

One figure from one training run says little: on the same data, another seed trains another model.
This script trains, samples and evaluates MODEL once per seed, as real DVC experiments:

    dvc exp run --temp -n seeds-<model>-<seed>-<tag> -S <model>.seed=<seed> evaluate@<model>

one at a time, each in a temporary copy of the workspace (so the workspace, its outputs and dvc.lock
are left alone). `<model>.seed` is the model's own seed in params.yaml (null = the top-level `seed`),
which only train/sample/evaluate/report@<model> track, so nothing else reruns; report@<model> is left
out (the figures are all that is wanted). Each experiment's metrics/<model>.json is read from
`dvc exp show --json`, and the experiments are removed afterwards (`dvc exp remove <their names>`,
never anyone else's) unless --keep.

The committed run is one of the values: the workspace's metrics/<model>.json, trained with the model's
seed as params.yaml has it (null = the top-level seed, 42 by default). A requested seed equal to it is
not run again (same machine, same seed: the same figures). If `dvc status` says evaluate@<model> (or
anything upstream) is stale, the workspace figures are not those of the current code and params: they
are left out, with a warning (run `dvc repro evaluate@<model>` first to include them).

Written (json, indent 2):

    {"model": "vae", "seeds": [42, 1, 2, 3], "committed_seed": 42,
     "figures": {"fid": {"mean": .., "std": .., "values": [..]},      # values in the order of "seeds"
                 "baseline.fid": {...}, ...}}                          # every numeric figure, dotted

std is the sample std (ddof=1), so at least 2 runs are needed (else nothing is written, exit 1).
scripts/metrics_diff.py reads this file to judge whether a change of a figure is beyond the noise
between two training runs. Note: the same seed on another machine gives other figures (CPU float
rounding, DESIGN.md section 7); the spread here is that of seeds on this machine, a lower bound for
runs from different machines.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # gdl, when run as `python scripts/seeds.py`
sys.path.insert(0, str(Path(__file__).resolve().parent))  # one flatten() for both scripts
from metrics_diff import flatten  # noqa: E402  (DVC's dotted key names)

NON_FIGURES = {"seed"}  # bookkeeping that older metrics files held next to the figures


# ---------------------------------------------------------------- pure functions ------------------------
def numeric_figures(metrics: dict) -> dict[str, float]:
    """Every numeric figure of a metrics document, dotted (`baseline.fid`)."""
    return {k: v for k, v in flatten(metrics).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in NON_FIGURES}


def aggregate(runs: list[tuple[int, dict]]) -> dict[str, dict]:
    """{figure: {mean, std (ddof=1, None for one value), values}} over the runs [(seed, metrics)].

    Only figures that every run has (a figure missing from one run would give a mean over other seeds);
    values stay in the order of `runs`.
    """
    flat = [numeric_figures(m) for _, m in runs]
    if not flat:
        return {}
    keys = [k for k in flat[0] if all(k in f for f in flat[1:])]
    out = {}
    for key in keys:
        values = [float(f[key]) for f in flat]
        finite = all(math.isfinite(v) for v in values)
        out[key] = {"mean": statistics.fmean(values) if finite else None,
                    "std": statistics.stdev(values) if finite and len(values) > 1 else None,
                    "values": values}
    return out


def spread_document(model: str, runs: list[tuple[int, dict]], committed_seed: int | None) -> dict:
    return {"model": model, "seeds": [s for s, _ in runs], "committed_seed": committed_seed,
            "figures": aggregate(runs)}


def plan(requested: list[int], committed_seed: int | None) -> list[int]:
    """The seeds to run: the requested ones, once each, in order, without the committed run's."""
    return [s for s in dict.fromkeys(requested) if s != committed_seed]


def fmt(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def table(doc: dict) -> str:
    from tabulate import tabulate

    seeds = [f"seed {s}" + (" (committed)" if s == doc.get("committed_seed") and i == 0 else "")
             for i, s in enumerate(doc["seeds"])]
    body = [[key, fmt(f["mean"]), fmt(f["std"]), *map(fmt, f["values"])] for key, f in doc["figures"].items()]
    return tabulate(body, ["figure", "mean", "std", *seeds], tablefmt="simple", disable_numparse=True)


def find_experiment(show: list, name: str) -> dict | None:
    """The entry named `name` anywhere in `dvc exp show --json` output ({rev, name, data, ...})."""
    stack = list(show) if isinstance(show, list) else [show]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("name") == name and "data" in node:
                return node
            stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend(node)
    return None


# ---------------------------------------------------------------- running DVC -----------------------------
def dvc(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["dvc", *args], check=False, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"dvc {' '.join(args)} exited {proc.returncode}:\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def stale(target: str) -> str:
    """What `dvc status` says is out of date for `target` and what it depends on ('' if nothing)."""
    proc = dvc("status", "--with-deps", "--json", target, check=False)
    if proc.returncode != 0:
        return proc.stderr.strip() or "dvc status failed"
    status = json.loads(proc.stdout or "{}")
    return ", ".join(sorted(status))


def metrics_of(entry: dict, path: str) -> dict:
    """An experiment's metrics document: from `dvc exp show`, else from its git commit."""
    found = ((entry.get("data") or {}).get("metrics") or {}).get(path) or {}
    if "data" in found:
        return found["data"]
    proc = subprocess.run(["git", "show", f"{entry['rev']}:./{path}"], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def param_of(entry: dict, model: str):
    params = ((entry.get("data") or {}).get("params") or {}).get("params.yaml", {}).get("data", {})
    return (params.get(model) or {}).get("seed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/seeds.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a key of dvc.yaml's `vars: models:` (vae, realnvp, ...)")
    parser.add_argument("--seeds", type=int, nargs="+", required=True, metavar="N",
                        help="training seeds to run, besides the committed run")
    parser.add_argument("--keep", action="store_true", help="keep the experiments (dvc exp show / apply them)")
    parser.add_argument("--verbose", action="store_true", help="show each experiment's full output")
    args = parser.parse_args(argv)

    from gdl import families
    from gdl.params import ParamsError, load_params, model_seed

    try:
        models = families.instances()
        params = load_params()
    except (families.InstanceError, ParamsError) as exc:
        sys.exit(f"error: {exc}")
    model = args.model
    if model not in models:
        sys.exit(f"error: no model {model!r} in dvc.yaml's vars.models; known: {', '.join(models)}")
    if any(s < 0 for s in args.seeds):
        sys.exit("error: seeds must be >= 0")
    target, path = f"evaluate@{model}", f"metrics/{model}.json"

    runs: list[tuple[int, dict]] = []
    committed_seed = model_seed(params, model)
    problem = stale(target)
    if not Path(path).is_file():
        print(f"warning: no {path} in the workspace: the committed run is left out")
        committed_seed = None
    elif problem:
        print(f"warning: {target} is not up to date ({problem}): the workspace's {path} is not from the current "
              f"code and params, so the committed run is left out (run `dvc repro {target}` to include it)")
        committed_seed = None
    else:
        runs.append((committed_seed, json.loads(Path(path).read_text())))
        print(f"the committed run (seed {committed_seed}, params.yaml {model}.seed = "
              f"{getattr(params, model).seed}) is one of the values: {path} from the workspace")
    seeds = plan(args.seeds, committed_seed)
    if committed_seed in args.seeds:
        print(f"seed {committed_seed} is the committed run's: not run again")

    tag = secrets.token_hex(3)
    names = {seed: f"seeds-{model}-{seed}-{tag}" for seed in seeds}
    created: list[str] = []
    try:
        for i, seed in enumerate(seeds, 1):
            cmd = ["exp", "run", "--temp", "-n", names[seed], "-S", f"{model}.seed={seed}", target]
            print(f"[{i}/{len(seeds)}] dvc {' '.join(cmd)}", flush=True)
            start = time.time()
            proc = subprocess.run(["dvc", *cmd], check=False, text=True,
                                  **({} if args.verbose else {"capture_output": True}))
            if proc.returncode != 0:
                tail = "" if args.verbose else f"\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
                raise RuntimeError(f"dvc {' '.join(cmd)} exited {proc.returncode}{tail}")
            created.append(names[seed])
            print(f"      done in {time.time() - start:.0f} s", flush=True)
        if seeds:
            show = json.loads(dvc("exp", "show", "--json").stdout)
            for seed in seeds:
                entry = find_experiment(show, names[seed])
                if entry is None:
                    raise RuntimeError(f"experiment {names[seed]} not in `dvc exp show --json`")
                if param_of(entry, model) != seed:
                    raise RuntimeError(f"experiment {names[seed]}: params.yaml {model}.seed is "
                                       f"{param_of(entry, model)!r}, expected {seed}")
                runs.append((seed, metrics_of(entry, path)))
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        cleanup(created, args.keep)
        return 1
    cleanup(created, args.keep)

    doc = spread_document(model, runs, committed_seed)
    print()
    print(table(doc))
    if len(runs) < 2:  # keep whatever spread file there is rather than replace it with one without a std
        print(f"\nerror: {len(runs)} run(s): a spread needs at least 2; metrics/seeds/{model}.json not written",
              file=sys.stderr)
        return 1
    from gdl.atomic import write_json

    out = write_json(Path("metrics/seeds") / f"{model}.json", doc)
    print(f"\n{out}: {len(runs)} runs (seeds {', '.join(map(str, doc['seeds']))})"
          + (f"; seed {committed_seed} is the committed run" if committed_seed is not None else ""))
    return 0


def cleanup(names: list[str], keep: bool) -> None:
    if not names:
        return
    if keep:
        print(f"kept experiments: {', '.join(names)} (dvc exp show; dvc exp remove {' '.join(names)})")
    else:
        proc = dvc("exp", "remove", *names, check=False)
        if proc.returncode != 0:
            print(f"warning: could not remove experiments {names}: {proc.stderr.strip()}", file=sys.stderr)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
