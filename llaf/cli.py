"""The ``llaf`` command.

    llaf generate "Once upon a time" [--model M] [--max-new-tokens N] [--backend B] [sampling]
    llaf chat [--model M] [--backend B] [sampling]
    llaf serve [--model M] [--host H] [--port P] [--allowed-hosts H,...] [--max-body N]
                                     # OpenAI-compatible HTTP server and a chat page
    llaf assets                      # fetch the tokenizer files and the default model
    llaf bench [--model M] [--backend B]   # llaf against transformers (and llama.cpp)

Sampling flags: --temperature T (0, the default, is greedy), --top-k K,
--top-p P, --repetition-penalty R, --seed S, --stop TEXT (repeatable).
Errors in what the user gave print one line, ``llaf: <problem>``, and exit 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .errors import LlafError, OutOfMemoryError

if TYPE_CHECKING:
    from .sampling import SamplingParams


def _model_args(p: argparse.ArgumentParser) -> None:
    from .generation import DEFAULT_CONTEXT

    p.add_argument("--model", "-m", default=None,
                   help="a GGUF file or a directory holding one, a model's name (SmolLM2-135M-Instruct, the default), "
                        "a Hugging Face directory or gpt2")
    p.add_argument("--backend", "-b", default=None, help="pyopencl, c, multicore, opencl or cuda")
    p.add_argument("--context", type=int, default=DEFAULT_CONTEXT,
                   help=f"context length cap (default {DEFAULT_CONTEXT}, or the model's if smaller)")
    p.add_argument("--storage", default=None, choices=["f32", "f16", "q8", "q4"],
                   help="how the engine keeps the weights (default: a GGUF file's own form, else f32)")


def _sampling_args(p: argparse.ArgumentParser) -> None:
    s = p.add_argument_group("sampling (the defaults are greedy decoding)")
    s.add_argument("--temperature", "-t", type=float, default=0.0, help="0 is greedy (default 0)")
    s.add_argument("--top-k", type=int, default=0, help="draw from the k most likely tokens only (0: all)")
    s.add_argument("--top-p", type=float, default=1.0, help="draw from the most likely tokens up to this probability")
    s.add_argument("--repetition-penalty", type=float, default=1.0, help="above 1 discourages repeats (default 1)")
    s.add_argument("--seed", type=int, default=None, help="the same seed gives the same text")
    s.add_argument("--stop", action="append", default=[], metavar="TEXT",
                   help="end the text before this string (repeatable)")


def _sampling(args: argparse.Namespace) -> SamplingParams:
    from .sampling import SamplingParams

    return SamplingParams(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                          repetition_penalty=args.repetition_penalty, seed=args.seed, stop=tuple(args.stop))


def _print_stream(pieces: Iterable[str]) -> str:
    text = []
    for piece in pieces:
        text.append(piece)
        print(piece, end="", flush=True)
    print(flush=True)
    return "".join(text)


def generate(args: argparse.Namespace) -> None:
    from .generation import load
    from .tokenizer import check_text

    # Bytes in argv that are not UTF-8 reach Python as lone surrogates, which
    # no tokenizer takes: say so before loading the model.
    check_text(args.prompt, "the prompt", from_bytes=True)
    sampling = _sampling(args)
    model = load(args.model, backend=args.backend, context=args.context, storage=args.storage)
    stream = model.stream(args.prompt, args.max_new_tokens, sampling=sampling)
    print(args.prompt, end="", flush=True)
    _print_stream(stream)


def chat(args: argparse.Namespace) -> None:
    from .generation import load
    from .tokenizer import check_text

    if args.system:
        check_text(args.system, "the system message", from_bytes=True)
    sampling = _sampling(args)
    model = load(args.model, backend=args.backend, context=args.context, storage=args.storage)
    messages: list[dict[str, str]] = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    interactive = sys.stdin.isatty()
    while True:
        try:
            line = input("> " if interactive else "")
        except EOFError:
            break
        except UnicodeDecodeError as e:  # stdin decoded strictly (a UTF-8 locale)
            raise LlafError(f"the input is not valid UTF-8 (byte 0x{e.object[e.start]:02x})") from None
        if not line.strip():
            continue
        check_text(line, "the input line", from_bytes=True)  # stdin decoded with surrogateescape (C locale)
        messages.append({"role": "user", "content": line})
        reply = _print_stream(model.stream_chat(messages, args.max_new_tokens, sampling=sampling))
        messages.append({"role": "assistant", "content": reply})


def serve(args: argparse.Namespace) -> None:
    from .server import serve as run_server

    hosts = None if args.allowed_hosts is None else [h.strip() for h in args.allowed_hosts.split(",") if h.strip()]
    run_server(model=args.model, backend=args.backend, context=args.context, host=args.host, port=args.port,
               model_id=args.model_id, storage=args.storage, max_body=args.max_body, allowed_hosts=hosts,
               header_timeout=args.header_timeout, shutdown_grace=args.shutdown_grace)


def _size(text: str) -> int:
    """A number of bytes: 1048576, 512K, 1M or 1G."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    scale = units.get(text[-1:].upper(), 1)
    try:
        return int(text[:-1] if scale > 1 else text) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size in bytes (like 1048576, 512K or 1M): {text!r}") from None


def assets(args: argparse.Namespace) -> None:
    from .assets import fetch_gpt2_tokenizer, fetch_smollm2

    fetch_gpt2_tokenizer()
    fetch_smollm2()


def bench(args: argparse.Namespace) -> None:
    from .bench import main as bench_main

    bench_main(args.rest)


def main(argv: list[str] | None = None) -> None:
    from . import __version__

    ap = argparse.ArgumentParser(prog="llaf", description="LLM inference on a Futhark engine.")
    ap.add_argument("--version", action="version", version=f"llaf {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="continue a prompt, streaming the text")
    g.add_argument("prompt")
    g.add_argument("--max-new-tokens", "-n", type=int, default=128)
    _model_args(g)
    _sampling_args(g)
    g.set_defaults(run=generate)
    c = sub.add_parser("chat", help="talk with a chat model (its chat template); end with Ctrl-D")
    c.add_argument("--max-new-tokens", "-n", type=int, default=512)
    c.add_argument("--system", default=None, help="a system message")
    _model_args(c)
    _sampling_args(c)
    c.set_defaults(run=chat)
    s = sub.add_parser("serve", help="an OpenAI-compatible HTTP server with a web chat page at /")
    _model_args(s)
    s.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    s.add_argument("--port", "-p", type=int, default=8000, help="the port (default 8000)")
    s.add_argument("--model-id", default=None, help="the model's name in the API (default: the file's name)")
    from .server_limits import DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_BODY, DEFAULT_SHUTDOWN_GRACE

    s.add_argument("--allowed-hosts", default=None, metavar="H,...",
                   help="the names the Host header may give, comma-separated (*.example.com, * for any); "
                        "default: localhost names on a loopback address (against DNS rebinding), any elsewhere")
    s.add_argument("--max-body", type=_size, default=DEFAULT_MAX_BODY, metavar="BYTES",
                   help=f"the largest request body, e.g. 512K or 4M (default {DEFAULT_MAX_BODY >> 20}M)")
    s.add_argument("--header-timeout", type=float, default=DEFAULT_HEADER_TIMEOUT, metavar="S",
                   help=f"seconds a client has to send a request's headers (default {DEFAULT_HEADER_TIMEOUT:g})")
    s.add_argument("--shutdown-grace", type=float, default=DEFAULT_SHUTDOWN_GRACE, metavar="S",
                   help="on Ctrl-C or SIGTERM, seconds requests still generating get before they end with an "
                        f"error (default {DEFAULT_SHUTDOWN_GRACE:g})")
    s.set_defaults(run=serve)
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
    except (LlafError, FileNotFoundError, OutOfMemoryError) as e:
        sys.exit(f"llaf: {e}")
    except MemoryError as e:  # NumPy's or Python's, outside the engine (e.g. reading the weights)
        sys.exit(f"llaf: out of memory{': ' if str(e) else ''}{e}")
    except KeyboardInterrupt:
        print(file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
