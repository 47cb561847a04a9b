"""Batched decode: the time of one `llaf.step` for B sequences decoded
together, for several B, in one process (docs/PERFORMANCE.md, "Where the
time goes now").

    .venv/bin/python benchmarks/batch_steps.py [--model FILE.gguf] [--backend multicore] [--batches 1,4,8,16]
        [--steps N] [--profile N]

Each sequence gets a prompt of a different length (16, 19, 22, ... tokens),
the prompts `llaf bench`'s 8 sequences get; the steps feed made-up token
ids (speed does not depend on them).  Run it under `perf record` to see the kernels,
or with `--profile N` for the N slowest operations of a step by Futhark's own
profiler (llaf/profile.py; multicore), each with the source line it computes.
"""

from __future__ import annotations

import argparse
import os
import time

import llaf
from llaf import profile
from llaf.bench import prompt_ids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="a model as llaf.load names it (default SmolLM2-135M-Instruct)")
    ap.add_argument("--backend", default="multicore")
    ap.add_argument("--batches", default="1,4,8,16", help="sequences decoded together, comma-separated")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="print the N slowest operations of a step, by Futhark's profiler (multicore)")
    args = ap.parse_args()
    if args.profile:
        os.environ[profile.ENV] = "1"
    try:
        params = llaf.load(args.model, backend=args.backend).params
    except llaf.LlafError as e:
        raise SystemExit(f"batch_steps: {e}") from None
    batches = [int(x) for x in args.batches.split(",")]
    first = None  # the first batch's tokens/s: the others' reference
    for b in batches:
        prompts = [prompt_ids(params.vocab, 16 + 3 * i) for i in range(b)]  # as llaf bench's
        _, cache = llaf.prefill(params, prompts, capacity=16 + 3 * b + args.steps + 4)
        for i in range(3):  # untimed: the first steps fault in the cache's pages
            llaf.step(cache, [99 - i] * b)
        if args.profile:
            params.engine.profile()  # (what the prefill and those steps recorded, dropped)
        start = time.perf_counter()
        for i in range(args.steps):
            llaf.step(cache, [100 + i] * b)
        ms = (time.perf_counter() - start) / args.steps * 1000
        rate = b / ms * 1000
        first = first or rate
        print(f"{b:3d} sequences: {ms:6.1f} ms a step, {rate:6.0f} tok/s in all, "
              f"{rate / first:.2f}x the rate of {batches[0]}")
        if args.profile:
            print(profile.table(params.engine.profile(), per=args.steps, top=args.profile))


if __name__ == "__main__":
    main()
