"""Benchmark: wall time of every stage of `dvc repro`, then of a no-op `dvc repro`.

    python scripts/benchmark.py                 # default profile, in a fresh clone under /tmp
    python scripts/benchmark.py --profile smoke
    python scripts/benchmark.py --in-place      # here (leaves the outputs, dvc.lock and metrics)

Stages run one at a time (`dvc repro --single-item`) in the DAG's order so each gets its own figure;
the sum is the time of a full `dvc repro` on this machine. Targets (2 cores): default run < 10 min,
no-op < 5 s. Prints a table and writes it as JSON with --json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default")
    parser.add_argument("--in-place", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.in_place:
        cwd = ROOT
    else:
        cwd = Path(tempfile.mkdtemp(prefix="gdl-bench-")) / "repo"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(cwd)], check=True)
    subprocess.run([sys.executable, "-m", "gdl.params", "use", args.profile], cwd=cwd, check=True)
    times = {}
    for stage in stages_in_order(cwd):
        times[stage] = run(["dvc", "repro", "--single-item", "--force", stage], cwd)
        print(f"{stage:28s} {times[stage]:7.1f} s", flush=True)
    total = sum(times.values())
    noop = run(["dvc", "repro"], cwd)
    print(f"{'total (full dvc repro)':28s} {total:7.1f} s   target < 600 s")
    print(f"{'no-op dvc repro':28s} {noop:7.1f} s   target < 5 s")
    if args.json:
        args.json.write_text(json.dumps({"profile": args.profile, "stages": times, "total": total, "noop": noop},
                                        indent=1))


if __name__ == "__main__":
    main()
