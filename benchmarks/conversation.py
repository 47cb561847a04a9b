"""A conversation with a server, as the chat page and OpenAI clients hold
one: each turn sends the whole history and streams the reply (greedy). Per
turn: the prompt's tokens, how many of them the server kept from the turn
before (usage's `cached_tokens`, where the server reports it), the time to
the first token and the whole turn's time.

    .venv/bin/python benchmarks/conversation.py [--turns 8] [--max-tokens 64]
        [--backend multicore] [--old-root DIR] [--peer-python PYTHON] [--rounds 1]

Servers run one at a time on loopback, each alone on the machine: `llaf
serve` from this checkout; with `--old-root`, also from that checkout (a
`git worktree` of an older commit, say) with this checkout's build (or
the one `LLAF_BUILD` names, to compare two builds of the engine); with
`--peer-python`, llama-cpp-python's server (`python -m llama_cpp.server`,
which keeps the longest common beginning of its last prompt) run by that
Python, on the same GGUF. With `--library`, the same conversation through
`Model.stream_chat` in a process of its own instead (what `llaf chat` does),
for this checkout and the old one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

CONTEXT = 2048
QUESTIONS = (
    "I am planning a week-long trip to the mountains in early autumn with two friends. We like hiking, "
    "cooking over a fire and watching the stars. What should we pack?",
    "Which of those things matter most if the nights get colder than expected, and why?",
    "We also want to take photographs of the night sky. What camera settings would you suggest for that?",
    "How do we keep food safe from animals at the campsite at night?",
    "One of my friends has never hiked more than ten kilometres. How should we plan the first two days?",
    "What simple meals could we cook over a fire with few ingredients?",
    "If it rains for two days, what can we do at the campsite to keep everyone in good spirits?",
    "Finally, write a short checklist we can print and take with us.",
)


def llaf_command(model: str, backend: str, port: int) -> list[str]:
    return [sys.executable, "-m", "llaf.cli", "serve", "--model", model, "--backend", backend,
            "--context", str(CONTEXT), "--port", str(port)]


def peer_command(python: str, model: str, port: int) -> list[str]:
    return [python, "-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1", "--port", str(port),
            "--n_threads", "2", "--n_threads_batch", "2", "--n_ctx", str(CONTEXT)]


def turn(client: Any, url: str, messages: list[dict[str, str]], max_tokens: int) -> dict[str, Any]:
    body = {"messages": messages, "max_tokens": max_tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}
    sent = time.monotonic()
    first, text, usage = None, "", None
    with client.stream("POST", url + "/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            for choice in chunk.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content") or ""
                if piece and first is None:
                    first = time.monotonic()
                text += piece
            usage = chunk.get("usage") or usage
    done = time.monotonic()
    details = (usage or {}).get("prompt_tokens_details") or {}
    return {"prompt_tokens": (usage or {}).get("prompt_tokens"), "cached_tokens": details.get("cached_tokens"),
            "ttft_s": (first or done) - sent, "turn_s": done - sent, "reply": text}


def conversation(url: str, questions: Sequence[str], max_tokens: int) -> list[dict[str, Any]]:
    import httpx

    messages: list[dict[str, str]] = []
    out = []
    with httpx.Client(timeout=600) as client:
        for question in questions:
            messages.append({"role": "user", "content": question})
            t = turn(client, url, messages, max_tokens)
            messages.append({"role": "assistant", "content": t["reply"]})
            out.append(t)
    return out


def library_conversation(root: str, model_path: str, backend: str, turns: int, max_tokens: int) -> None:
    """(In a child process:) the conversation through `Model.stream_chat` of
    the llaf at `root`, its turns printed as JSON."""
    sys.path.insert(0, root)
    import llaf

    model = llaf.load(model_path, backend=backend, context=CONTEXT)
    model.chat([{"role": "user", "content": "Hello!"}], 4)  # warm-up, as for the servers
    messages: list[dict[str, str]] = []
    out = []
    for question in QUESTIONS[:turns]:
        messages.append({"role": "user", "content": question})
        sent = time.monotonic()
        stream = model.stream_chat(messages, max_tokens)
        pieces = iter(stream)
        reply = next(pieces, "")
        first = time.monotonic()
        reply += "".join(pieces)
        done = time.monotonic()
        messages.append({"role": "assistant", "content": reply})
        out.append({"prompt_tokens": stream.prompt_tokens, "cached_tokens": getattr(stream, "cached_tokens", None),
                    "ttft_s": first - sent, "turn_s": done - sent, "reply": reply})
    print(json.dumps(out))


def in_process(root: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    import subprocess

    command = [sys.executable, __file__, "--model", args.model, "--backend", args.backend, "--turns", str(args.turns),
               "--max-tokens", str(args.max_tokens), "--library-of", str(root)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return list(json.loads(done.stdout.splitlines()[-1]))


def measure(name: str, command: list[str], ready: str, cwd: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    from llaf.serve_bench import Launched

    port = int(command[command.index("--port") + 1])
    os.chdir(cwd)  # (`python -m llaf.cli` imports the llaf of its working directory)
    server = Launched(name, command, port, ready)
    try:
        server.wait_ready()
        conversation(server.url, ["Hello!"], 4)  # warm-up (first pass, page faults): nothing to keep from it
        return conversation(server.url, QUESTIONS[:args.turns], args.max_tokens)
    finally:
        server.stop()
        os.chdir(ROOT)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(ROOT / ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--backend", default="multicore")
    ap.add_argument("--turns", type=int, default=len(QUESTIONS))
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--old-root", default=None, help="a checkout whose llaf serves as the old one")
    ap.add_argument("--peer-python", default=None, help="a Python with llama-cpp-python's server")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--library", action="store_true", help="Model.stream_chat in a process, not a server")
    ap.add_argument("--library-of", default=None, help=argparse.SUPPRESS)  # (the child process of --library)
    args = ap.parse_args()
    # every llaf runs this checkout's build, or the one LLAF_BUILD names (to compare builds)
    os.environ.setdefault("LLAF_BUILD", str(ROOT / "build"))
    if args.library_of:
        library_conversation(args.library_of, args.model, args.backend, args.turns, args.max_tokens)
        return
    if args.library:
        for _ in range(args.rounds):
            for name, root in [("llaf", ROOT), *([("llaf (old)", Path(args.old_root).resolve())]
                                                 if args.old_root else [])]:
                show(f"{name}, Model.stream_chat", in_process(root, args))
        return
    sys.path.insert(0, str(ROOT))  # (not before: --library-of imports the llaf it is given)
    from llaf.serve_bench import free_port

    servers: list[tuple[str, list[str], str, Path]] = []
    for _ in range(args.rounds):
        servers.append(("llaf", llaf_command(args.model, args.backend, free_port()), "/health", ROOT))
        if args.old_root:
            servers.append(("llaf (old)", llaf_command(args.model, args.backend, free_port()), "/health",
                            Path(args.old_root).resolve()))
        if args.peer_python:
            servers.append(("llama-cpp-python", peer_command(args.peer_python, args.model, free_port()),
                            "/v1/models", ROOT))
    for name, command, ready, cwd in servers:
        show(name, measure(name, command, ready, cwd, args))


def show(name: str, turns: list[dict[str, Any]]) -> None:
    print(f"{name}: turn, prompt tokens, cached, TTFT (s), turn (s)")
    for i, t in enumerate(turns, 1):
        print(f"  {i:2} {t['prompt_tokens']!s:>6} {t['cached_tokens']!s:>6} {t['ttft_s']:8.3f} {t['turn_s']:8.3f}")
    later = turns[1:]
    print(f"  turns 2-{len(turns)}: TTFT median {statistics.median(t['ttft_s'] for t in later):.3f} s, "
          f"all turns {sum(t['turn_s'] for t in turns):.2f} s")


if __name__ == "__main__":
    main()
