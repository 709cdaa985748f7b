"""Benchmark: the batched dream (World Models' M stepping a whole CMA-ES population at once) vs a Python loop
over the agents, on the same compiled step and the same cores.

    python scripts/bench_dream.py                       # full-size M (z 32, LSTM 256, 5 Gaussians)
    python scripts/bench_dream.py --agents 64 256 1024 --steps 20

`gdl.world_models.mdnrnn.time_batched_vs_loop` warms the compiled step up at both batch sizes first, then
times `steps` dream steps of all agents as one batch per step, and the same steps one agent at a time.
The issue's target: the batched dream >= 20x faster than the per-agent loop. An untrained M is enough:
the cost of a step does not depend on the weights.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET = 20.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, nargs="+", default=[64, 256], help="population x trials")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--latent", type=int, default=32)
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--mixtures", type=int, default=5)
    args = parser.parse_args(argv)

    from gdl.world_models.mdnrnn import build_mdnrnn, time_batched_vs_loop

    model = build_mdnrnn(latent_dim=args.latent, units=args.units, mixtures=args.mixtures, seed=0)
    print(f"M: z {args.latent}, LSTM {args.units}, {args.mixtures} Gaussians; {args.steps} dream steps")
    print(f"{'agents':>7} {'batched s':>10} {'loop s':>9} {'speed-up':>9}")
    for agents in args.agents:
        batched, loop = time_batched_vs_loop(model, agents, args.steps)
        verdict = "meets" if loop / batched >= TARGET else "misses"
        print(f"{agents:>7} {batched:>10.3f} {loop:>9.2f} {loop / batched:>8.1f}x  ({verdict} the {TARGET:.0f}x target)",
              flush=True)


if __name__ == "__main__":
    main()
