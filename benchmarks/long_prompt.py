"""A long prompt joining a running stream: how long the stream under way
waits between two tokens while the prompt goes through, and the prompt's
time to its first token.

    .venv/bin/python benchmarks/long_prompt.py [--prompt-tokens 1500] [--old-root DIR] [--rounds 2]

`llaf serve` (multicore, context 2048) from this checkout, and with
`--old-root` from that checkout with this checkout's build, one after the
other: a greedy stream of 300 tokens starts; after its 20th token a
completion of `--prompt-tokens` token ids (8 new tokens) is sent beside it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure(url: str, prompt_tokens: int) -> dict[str, float]:
    import httpx

    arrivals: list[float] = []
    joined = threading.Event()
    answer: dict[str, float] = {}

    def long_prompt() -> None:
        ids = [(7 * i) % 5000 + 100 for i in range(prompt_tokens)]
        body = {"prompt": ids, "max_tokens": 8, "temperature": 0, "stream": True}
        sent = time.monotonic()
        with httpx.Client(timeout=600) as c, c.stream("POST", url + "/v1/completions", json=body) as r:
            for line in r.iter_lines():
                if line.startswith("data: {") and "ttft" not in answer:
                    answer["ttft"] = time.monotonic() - sent
        answer["sent"] = sent

    body = {"prompt": "Once upon a time", "max_tokens": 300, "temperature": 0, "stream": True}
    joiner = threading.Thread(target=long_prompt)
    with httpx.Client(timeout=600) as c, c.stream("POST", url + "/v1/completions", json=body) as r:
        for line in r.iter_lines():
            if line.startswith("data: {") and json.loads(line[6:])["choices"]:
                arrivals.append(time.monotonic())
                if len(arrivals) == 20 and not joined.is_set():
                    joined.set()
                    joiner.start()
    joiner.join()
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    return {"longest_gap_s": max(gaps), "prompt_ttft_s": answer["ttft"], "stream_tokens": len(arrivals)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(ROOT / ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--prompt-tokens", type=int, default=1500)
    ap.add_argument("--old-root", default=None)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from llaf.serve_bench import Launched, free_port

    os.environ["LLAF_BUILD"] = str(ROOT / "build")  # every llaf server runs this checkout's build
    roots = [("llaf", ROOT), *([("llaf (old)", Path(args.old_root).resolve())] if args.old_root else [])]
    for _ in range(args.rounds):
        for name, root in roots:
            port = free_port()
            os.chdir(root)  # (`python -m llaf.cli` imports the llaf of its working directory)
            server = Launched(name, [sys.executable, "-m", "llaf.cli", "serve", "--model", args.model,
                                     "--backend", "multicore", "--context", "2048", "--port", str(port)],
                              port, "/health")
            try:
                server.wait_ready()
                measure(server.url, 64)  # warm-up
                r = measure(server.url, args.prompt_tokens)
            finally:
                server.stop()
                os.chdir(ROOT)
            print(f"{name}: the running stream's longest wait {r['longest_gap_s']:.2f} s; "
                  f"the {args.prompt_tokens}-token prompt's first token after {r['prompt_ttft_s']:.2f} s")


if __name__ == "__main__":
    main()
