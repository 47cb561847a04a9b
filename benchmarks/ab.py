"""Two builds of the engine compared on one host: each build's module run in
a fresh process of its own, the builds alternating round after round (a
host's speed drifts; docs/PERFORMANCE.md records such A/Bs).

    .venv/bin/python benchmarks/ab.py OLD_BUILD NEW_BUILD [--backend multicore] [--rounds 3]
        [--model FILE.gguf] [--prompt 512] [--tokens 128]

A build is a folder laid out as `build/` is (`LLAF_BUILD`), e.g. a copy of
`build/` made before a change. Each run: prefill of `--prompt` random ids
(`llaf.forward`, best of 3) with the page faults it takes, then `llaf.gen` of
`--tokens` after 8 of them (best of 3), and the process's peak RSS. The
prefill's logits must be bit-identical between the builds, or it says so.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run_one(args: argparse.Namespace) -> dict[str, float]:
    """One build, in this process (`LLAF_BUILD` set by the caller)."""
    import llaf
    from llaf.assets import default_model_path

    params = llaf.init(args.model or str(default_model_path()), backend=args.backend, progress=False)
    ids = [int(i) for i in np.random.default_rng(0).integers(1, 256, args.prompt)]
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    prefill = np.inf
    for _ in range(3):
        start = time.perf_counter()
        logits = llaf.forward(params, ids)
        prefill = min(prefill, time.perf_counter() - start)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) // 3
    np.save(args.logits, logits)
    decode = np.inf
    for _ in range(3):
        start = time.perf_counter()
        llaf.gen(ids[:8], params, args.tokens)
        decode = min(decode, time.perf_counter() - start)
    return {"prefill_tok_s": args.prompt / prefill, "decode_tok_s": args.tokens / decode,
            "faults_per_prefill": faults, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("builds", nargs=2, type=Path, help="the old build folder and the new one")
    ap.add_argument("--backend", default="multicore")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--model", default=None, help="a GGUF file (default: SmolLM2 Q4_1)")
    ap.add_argument("--prompt", type=int, default=512, help="tokens of the timed prefill")
    ap.add_argument("--tokens", type=int, default=128, help="tokens of the timed generation")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--logits", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args)))
        return
    for build in args.builds:
        if not (build / args.backend).is_dir():
            raise SystemExit(f"ab: {build} has no {args.backend} build ({build / args.backend} is missing)")
    results: dict[Path, list[dict[str, float]]] = {b: [] for b in args.builds}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for i, build in enumerate(args.builds):
                logits = Path(tmp) / f"{i}.npy"
                command = [sys.executable, __file__, *map(str, args.builds), "--one", "--backend", args.backend,
                           "--prompt", str(args.prompt), "--tokens", str(args.tokens), "--logits", str(logits)]
                if args.model:
                    command += ["--model", args.model]
                out = subprocess.run(command, env={**os.environ, "LLAF_BUILD": str(build.resolve())},
                                     check=True, capture_output=True, text=True).stdout
                result = json.loads(out.splitlines()[-1])
                results[build].append(result)
                print(f"round {round_ + 1} {build}: " + ", ".join(f"{k} {v:.1f}" for k, v in result.items()))
            same = np.array_equal(np.load(Path(tmp) / "0.npy"), np.load(Path(tmp) / "1.npy"))
            print(f"round {round_ + 1}: logits {'bit-identical' if same else 'DIFFER'}")
    for key in ("prefill_tok_s", "decode_tok_s"):
        old, new = ([r[key] for r in results[b]] for b in args.builds)
        print(f"{key}: {', '.join(f'{v:.1f}' for v in old)} -> {', '.join(f'{v:.1f}' for v in new)} "
              f"(medians {np.median(old):.1f} -> {np.median(new):.1f})")


if __name__ == "__main__":
    main()
