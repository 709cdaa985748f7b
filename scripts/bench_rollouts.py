"""Benchmark: CarRacing rollout collection on one worker vs several, over the same shards.

    python scripts/bench_rollouts.py                          # 4 shards x 1 episode x 300 steps, 1 vs 2 workers
    python scripts/bench_rollouts.py --shards 8 --max-steps 500 --workers 1 2 4

Every run collects the same shards (seeds 0..shards-1, Brownian policy, no progress bars) with
`gdl.world_models.rollouts.collect_parallel`, so each run does exactly the same work; the script checks the
outputs are identical across runs. Figures: recorded steps/s (what lands in the data) and env steps/s (also
counting the 49 zoom steps skipped at each episode start). The one-worker run collects in this process
after a warm-up episode (imports done); the runs with more workers include starting their processes and
the imports there, so the speed-up is not flattered. Target of the issue: 2 workers >= 1.8x one worker's
steps/s, on a machine with 2 idle cores. Other jobs sharing the cores slow the wall-clock figures, so the
CPU time of each run (this process and its workers) is measured too: recorded steps per CPU-second falls
when processes fight over cores or pay start-up costs, and `projected` = workers x (steps per CPU-second) /
(one worker's) is the speed-up the same run would show on as many idle cores as workers (ignoring idle
workers at the end when shards do not divide evenly). The load average is printed for context.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gdl.world_models.rollouts import ZOOM_STEPS, collect_parallel  # noqa: E402

TARGET = 1.8  # 2 workers vs 1


def cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--episodes", type=int, default=1, help="episodes per shard")
    parser.add_argument("--max-steps", type=int, default=300, help="recorded steps per episode (at most 951)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--policy", default="brownian")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    seeds = list(range(args.shards))
    options = dict(episodes=args.episodes, max_steps=args.max_steps, policy_name=args.policy, progress=False)
    collect_parallel([10_000], 1, episodes=1, max_steps=5, policy_name=args.policy, progress=False)  # warm-up

    print(f"{args.shards} shards x {args.episodes} episodes x <= {args.max_steps} steps, policy {args.policy}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} before")
    rows, reference = [], None
    for workers in args.workers:
        cpu_start = cpu_seconds()
        start = time.perf_counter()
        shards = collect_parallel(seeds, workers, **options)
        seconds = time.perf_counter() - start
        cpu = cpu_seconds() - cpu_start  # the pool's workers are reaped (and counted) when it closes
        episodes = sum(len(s["episode_lengths"]) for s in shards)
        recorded = sum(int(s["episode_lengths"].sum()) for s in shards)
        env_steps = recorded + episodes * ZOOM_STEPS
        if reference is None:
            reference = shards
        else:  # the same data, whatever the number of workers
            assert all(a[k].tobytes() == b[k].tobytes() for a, b in zip(reference, shards) for k in a), workers
        rows.append(dict(workers=workers, seconds=round(seconds, 2), recorded_steps=recorded, env_steps=env_steps,
                         recorded_per_s=round(recorded / seconds, 1), env_per_s=round(env_steps / seconds, 1),
                         cpu_seconds=round(cpu, 2), recorded_per_cpu_s=round(recorded / cpu, 1)))

    base, base_cpu = rows[0]["recorded_per_s"], rows[0]["recorded_per_cpu_s"]
    print(f"{'workers':>7} {'seconds':>8} {'recorded steps/s':>17} {'env steps/s':>12} {'speed-up':>9} "
          f"{'CPU s':>7} {'steps/CPU s':>12} {'projected':>10}")
    for row in rows:
        row["speedup"] = round(row["recorded_per_s"] / base, 2)
        busy = min(row["workers"], args.shards)  # workers with a shard to collect
        row["projected_speedup"] = round(busy * row["recorded_per_cpu_s"] / base_cpu, 2)
        print(f"{row['workers']:>7} {row['seconds']:>8.2f} {row['recorded_per_s']:>17.1f} {row['env_per_s']:>12.1f} "
              f"{row['speedup']:>8.2f}x {row['cpu_seconds']:>7.1f} {row['recorded_per_cpu_s']:>12.1f} "
              f"{row['projected_speedup']:>9.2f}x")
    two = next((r for r in rows if r["workers"] == 2), None)
    if two is not None and rows[0]["workers"] == 1:
        verdict = "meets" if two["speedup"] >= TARGET else "misses"
        print(f"2 workers: {two['speedup']:.2f}x one worker's steps/s ({verdict} the {TARGET}x target; "
              f"{two['projected_speedup']:.2f}x projected on idle cores); load average {os.getloadavg()[0]:.2f} after")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "runs": rows},
                                        indent=2) + "\n")


if __name__ == "__main__":
    main()
