"""The ``llaf`` command.

    llaf generate "Once upon a time" [--model M] [--max-new-tokens N] [--backend B]
    llaf chat [--model M] [--backend B]
    llaf assets                      # fetch the tokenizer files and the default model
    llaf bench [--model M] [--backend B]   # llaf against transformers (and llama.cpp)

Errors in what the user gave print one line, ``llaf: <problem>``, and exit 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

from .errors import LlafError


def _model_args(p: argparse.ArgumentParser) -> None:
    from .generation import DEFAULT_CONTEXT

    p.add_argument("--model", "-m", default=None,
                   help="a GGUF file, a Hugging Face directory or gpt2 (default: SmolLM2-135M-Instruct)")
    p.add_argument("--backend", "-b", default=None, help="pyopencl, c, multicore, opencl or cuda")
    p.add_argument("--context", type=int, default=DEFAULT_CONTEXT,
                   help=f"context length cap (default {DEFAULT_CONTEXT}, or the model's if smaller)")


def _print_stream(pieces: Iterable[str]) -> str:
    text = []
    for piece in pieces:
        text.append(piece)
        print(piece, end="", flush=True)
    print(flush=True)
    return "".join(text)


def generate(args: argparse.Namespace) -> None:
    from .generation import load

    model = load(args.model, backend=args.backend, context=args.context)
    print(args.prompt, end="", flush=True)
    _print_stream(model.stream(args.prompt, args.max_new_tokens))


def chat(args: argparse.Namespace) -> None:
    from .generation import load

    model = load(args.model, backend=args.backend, context=args.context)
    messages: list[dict[str, str]] = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    interactive = sys.stdin.isatty()
    while True:
        try:
            line = input("> " if interactive else "")
        except EOFError:
            break
        if not line.strip():
            continue
        messages.append({"role": "user", "content": line})
        reply = _print_stream(model.stream_chat(messages, args.max_new_tokens))
        messages.append({"role": "assistant", "content": reply})


def assets(args: argparse.Namespace) -> None:
    from .assets import fetch_gpt2_tokenizer, fetch_smollm2

    fetch_gpt2_tokenizer()
    fetch_smollm2()


def bench(args: argparse.Namespace) -> None:
    from .bench import main as bench_main

    bench_main(args.rest)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="llaf", description="LLM inference on a Futhark engine.")
    sub = ap.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="continue a prompt, streaming the text")
    g.add_argument("prompt")
    g.add_argument("--max-new-tokens", "-n", type=int, default=128)
    _model_args(g)
    g.set_defaults(run=generate)
    c = sub.add_parser("chat", help="talk with a chat model (its chat template); end with Ctrl-D")
    c.add_argument("--max-new-tokens", "-n", type=int, default=512)
    c.add_argument("--system", default=None, help="a system message")
    _model_args(c)
    c.set_defaults(run=chat)
    a = sub.add_parser("assets", help="fetch GPT-2's tokenizer files and the default model")
    a.set_defaults(run=assets)
    b = sub.add_parser("bench", help="time llaf, transformers and llama.cpp on the same weights",
                       add_help=False)
    b.set_defaults(run=bench)
    args, rest = ap.parse_known_args(argv)
    if args.command != "bench" and rest:
        ap.error(f"unrecognized arguments: {' '.join(rest)}")
    args.rest = rest
    try:
        args.run(args)
    except (LlafError, FileNotFoundError) as e:
        sys.exit(f"llaf: {e}")
    except KeyboardInterrupt:
        print(file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
