"""Benchmark: GPT generation with the key/value cache vs recomputing the context for every token.

    python scripts/bench_gpt_cache.py                     # the default profile's GPT, 1,000 tokens
    python scripts/bench_gpt_cache.py --profile book --tokens 1000 --batch 1

Both samplers draw from the same model (an untrained one is enough: the cost of a step does not depend on
the weights) with the same seed. The naive sampler reruns the last `seq_len` tokens through the whole
network for each new token; the cached one (gdl/families/gpt/model.py, CachedSampler) computes one new
position against the stored keys and values, and re-reads half a window when the window is full. Each is
warmed up first (tracing), then timed. Prints tokens/s for both and the speed-up.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default", choices=["default", "smoke", "book"])
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=1, help="sequences generated side by side")
    parser.add_argument("--vocab", type=int, default=3106, help="vocabulary size (the pydoc topics: 3,106)")
    args = parser.parse_args(argv)

    from stages.common import quiet_tensorflow

    quiet_tensorflow()
    import numpy as np

    from gdl.families.gpt import FAMILY
    from gdl.families.gpt import model as gpt
    from gdl.sequences import sample_tokens

    cfg = FAMILY.config("text", args.profile)
    data = {"vocab": np.array(["", "[UNK]"] + [f"w{i}" for i in range(args.vocab - 2)])}
    model = gpt.build(cfg, data, seed=0)
    prompt = np.full((args.batch, 1), 2, np.int32)
    print(f"GPT ({args.profile}): seq_len {cfg.seq_len}, embedding {cfg.embedding_dim}, {cfg.heads} heads x "
          f"{cfg.key_dim}, {cfg.blocks} block(s), vocabulary {args.vocab}; {args.tokens} tokens x batch {args.batch}")
    results = {}
    for name, make in (("naive (recompute)", gpt.next_log_probs_naive), ("cached keys/values", gpt.CachedSampler)):
        sampler = make(model)
        sample_tokens(sampler, prompt, cfg.seq_len + 4, 1.0, seed=0)  # trace every shape once
        start = time.perf_counter()
        tokens = sample_tokens(sampler, prompt, args.tokens, 1.0, seed=1)
        seconds = time.perf_counter() - start
        results[name] = seconds
        print(f"  {name:<20} {seconds:7.2f} s  {args.tokens * args.batch / seconds:8.1f} tokens/s  "
              f"({tokens.shape[1] - 1} tokens per sequence)")
    naive, cached = results.values()
    print(f"  speed-up of the cache: {naive / cached:.1f}x")


if __name__ == "__main__":
    main()
