"""The ``llaf`` command.

    llaf generate "Once upon a time" [--model M] [--max-new-tokens N] [--backend B] [--threads N] [sampling]
    llaf generate -f FILE ...        # the prompt from a file (- for stdin)
    llaf chat [--model M] [--backend B] [--system TEXT] [sampling]   # /help at the prompt
    llaf --version
    llaf serve [--model M] [--host H] [--port P] [--max-batch N] [--allowed-hosts H,...] [--max-body N]
                                     # OpenAI-compatible HTTP server (continuous batching), chat page
    llaf assets                      # fetch the tokenizer files and the default model
    llaf bench [--model M] [--backend B]   # llaf against transformers (and llama.cpp)
    llaf bench-serve [--clients 1,4,16,32]   # the server under concurrent clients, beside llama-cpp-python's
    llaf finetune --data FILE.jsonl --out ADAPTER [--model M] [--lora-rank R] [--steps N] [--lr X]
                  [--batch B] [--seq-len L]   # LoRA adapters (peft's layout), the loss curve beside them
    llaf finetune --full --data FILE.jsonl --out FILE.gguf [--model M.gguf] ...   # every weight trained
    llaf merge --adapter ADAPTER --out FILE.gguf [--model M]   # adapters merged into a GGUF file
    (generate, chat and serve take --adapter ADAPTER: the adapters merged into the weights)

Sampling flags: --temperature T (0, the default, is greedy), --top-k K,
--top-p P, --repetition-penalty R, --seed S, --stop TEXT (repeatable),
--json-schema FILE or --json (the output is JSON: llaf/constraints.py).
Errors in what the user gave print one line, ``llaf: <problem>``, and exit 1;
a failure of llaf's own (a bug) prints ``llaf: internal error: <cause>`` and
exits 70, so that it is not mistaken for a problem with the input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import LlafError, OutOfMemoryError, internal_error

if TYPE_CHECKING:
    from .generation import Model, TextStream
    from .sampling import SamplingParams


def _model_args(p: argparse.ArgumentParser) -> None:
    from .generation import DEFAULT_CONTEXT
    from .storage import CHOICES

    p.add_argument("--model", "-m", default=None,
                   help="a GGUF file or a directory holding one, a model's name (SmolLM2-135M-Instruct, the default), "
                        "a Hugging Face directory or gpt2")
    p.add_argument("--backend", "-b", default=None, help="pyopencl, c, multicore, opencl or cuda")
    p.add_argument("--context", type=int, default=DEFAULT_CONTEXT,
                   help=f"context length cap (default {DEFAULT_CONTEXT}, or the model's if smaller)")
    p.add_argument("--storage", default=None, choices=list(CHOICES),
                   help="how the engine keeps the weights (default: a GGUF file's own form, else f32; "
                        "compact: a GGUF file's every tensor in its smallest exact format)")
    p.add_argument("--adapter", default=None, metavar="ADAPTER",
                   help="LoRA adapters to merge into the weights (a directory from `llaf finetune` or peft)")


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=None,
                   help="worker threads of the multicore backend (default: one per core)")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no progress bar or status line on a terminal's stderr")


def _sampling_args(p: argparse.ArgumentParser) -> None:
    s = p.add_argument_group("sampling (the defaults are greedy decoding)")
    s.add_argument("--temperature", "-t", type=float, default=0.0, help="0 is greedy (default 0)")
    s.add_argument("--top-k", type=int, default=0, help="draw from the k most likely tokens only (0: all)")
    s.add_argument("--top-p", type=float, default=1.0, help="draw from the most likely tokens up to this probability")
    s.add_argument("--repetition-penalty", type=float, default=1.0, help="above 1 discourages repeats (default 1)")
    s.add_argument("--seed", type=int, default=None, help="the same seed gives the same text")
    s.add_argument("--stop", action="append", default=[], metavar="TEXT",
                   help="end the text before this string (repeatable)")
    j = s.add_mutually_exclusive_group()
    j.add_argument("--json-schema", default=None, metavar="FILE",
                   help="the output is JSON valid against the JSON schema in FILE")
    j.add_argument("--json", action="store_true", help="the output is a JSON object")


def _sampling(args: argparse.Namespace) -> SamplingParams:
    from .sampling import SamplingParams

    return SamplingParams(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                          repetition_penalty=args.repetition_penalty, seed=args.seed, stop=tuple(args.stop),
                          json_schema=_json_schema(args))


def _json_schema(args: argparse.Namespace) -> dict[str, Any] | None:
    """The JSON schema of --json-schema FILE ({"type": "object"} for --json), or None."""
    import json

    from .constraints import ANY_OBJECT, check_schema

    if args.json:
        return ANY_OBJECT
    if args.json_schema is None:
        return None
    try:
        schema = json.loads(Path(args.json_schema).read_text(encoding="utf-8"))
    except OSError as e:
        raise LlafError(f"cannot read the JSON schema {args.json_schema}: {e.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LlafError(f"{args.json_schema} is not JSON: {e}") from None
    return check_schema(f"the JSON schema in {args.json_schema}", schema)


def _print_stream(pieces: Iterable[str], shown: list[str]) -> str:
    """Print `pieces` as they come, each also appended to `shown` (what was
    printed when a Ctrl-C stops the stream)."""
    for piece in pieces:
        shown.append(piece)
        print(piece, end="", flush=True)
    print(flush=True)
    return "".join(shown)


def _load(args: argparse.Namespace) -> Model:
    """The model the flags name; on a terminal, a progress bar while it loads
    (past a second) and then one status line on stderr."""
    from .generation import load

    status = not args.quiet and sys.stderr.isatty()
    model = load(args.model, backend=args.backend, context=args.context, storage=args.storage,
                 threads=args.threads, progress=status, adapter=args.adapter)
    if status:
        params = model.params
        threads = f", {args.threads} thread{'s' * (args.threads != 1)}" if args.threads else ""
        print(f"llaf: {model.name}, storage {params.storage}, backend {params.engine.backend}{threads}, "
              f"context {params.context}", file=sys.stderr, flush=True)
    return model


def _prompt(args: argparse.Namespace) -> str:
    """The prompt: the argument, or the file -f names (- or a prompt of - is stdin)."""
    from .tokenizer import check_text

    if args.file is not None and args.prompt is not None:
        raise LlafError("give the prompt as an argument or with -f FILE, not both")
    if args.file is None and args.prompt is None:
        raise LlafError("no prompt: give one as an argument, or -f FILE (- for stdin)")
    if args.file is None and args.prompt != "-":
        # Bytes in argv that are not UTF-8 reach Python as lone surrogates, which
        # no tokenizer takes: say so before loading the model.
        check_text(args.prompt, "the prompt", from_bytes=True)
        return str(args.prompt)
    where = args.file or "-"
    try:
        data = sys.stdin.buffer.read() if where == "-" else Path(where).read_bytes()
    except OSError as e:
        raise LlafError(f"cannot read the prompt from {where}: {e.strerror}") from None
    name = "standard input" if where == "-" else where
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise LlafError(f"{name} is not valid UTF-8 (the byte 0x{data[e.start]:02x} at byte {e.start})") from None
    # A file ends with a newline (an editor's, echo's); the text is what comes before it.
    return text.removesuffix("\n").removesuffix("\r")


def generate(args: argparse.Namespace) -> None:
    prompt = _prompt(args)
    sampling = _sampling(args)
    model = _load(args)
    stream = model.stream(prompt, args.max_new_tokens, sampling=sampling)
    print(prompt, end="", flush=True)
    _print_stream(stream, [])


CHAT_HELP = """\
/clear          forget the conversation (the system message stays)
/system TEXT    set the system message (/system alone removes it)
/help           this list
/quit           quit (also Ctrl-D, or Ctrl-C at the prompt)
Ctrl-C during a reply stops it; the arrow keys edit the line and recall earlier ones."""


class _Chat:
    """A conversation at the terminal: the system message, the turns since,
    and the commands that change them."""

    def __init__(self, system: str | None) -> None:
        self.system = system
        self.turns: list[dict[str, str]] = []
        self.warned = False

    def messages(self) -> list[dict[str, str]]:
        return ([{"role": "system", "content": self.system}] if self.system else []) + self.turns

    def command(self, line: str) -> bool:
        """Run the command `line` (it starts with /); False for /quit."""
        from .tokenizer import check_text

        name, _, text = line.partition(" ")
        if name == "/quit":
            return False
        if name == "/help":
            say(CHAT_HELP)
        elif name == "/clear":
            self.turns.clear()
            say("(conversation cleared)")
        elif name == "/system":
            try:
                check_text(text, "the system message", from_bytes=True)
            except LlafError as e:
                say(f"llaf: {e}")
                return True
            self.system = text.strip() or None
            say("(system message set)" if self.system else "(system message removed)")
        else:
            say(f"llaf: unknown command {name}: /help lists the commands (start a line with a space to "
                "send a / to the model)")
        return True


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def chat(args: argparse.Namespace) -> None:
    from .tokenizer import check_text

    if args.system:
        check_text(args.system, "the system message", from_bytes=True)
    sampling = _sampling(args)
    model = _load(args)
    conversation = _Chat(args.system)
    interactive = sys.stdin.isatty()
    if interactive:
        import readline  # noqa: F401  # input() then edits lines and keeps their history
        import signal

        # Ctrl-C stops a reply (and quits at the prompt) even when llaf was
        # started by a shell that ignores SIGINT, as its background jobs do:
        # Python then keeps it ignored, and Ctrl-C did nothing
        signal.signal(signal.SIGINT, signal.default_int_handler)

        say(f"Chatting with {model.name}. /help lists the commands; Ctrl-C stops a reply; "
            "Ctrl-D or /quit quits.")
    while True:
        try:
            line = input("> " if interactive else "")
        except (EOFError, KeyboardInterrupt):  # Ctrl-D, or Ctrl-C at the prompt: quit
            if interactive:
                print(flush=True)  # the prompt's line ends
            return
        except UnicodeDecodeError as e:  # stdin decoded strictly (a UTF-8 locale)
            raise LlafError(f"the input is not valid UTF-8 (byte 0x{e.object[e.start]:02x})") from None
        if not line.strip():
            continue
        if line.startswith("/"):
            if not conversation.command(line):
                return
            continue
        try:
            check_text(line, "the input line", from_bytes=True)  # stdin decoded with surrogateescape
        except LlafError as e:  # one bad byte (a paste, say) does not end the conversation
            say(f"llaf: {e}; the line was not sent")
            continue
        conversation.turns.append({"role": "user", "content": line})
        shown: list[str] = []
        stream: TextStream | None = None
        try:
            try:
                # The oldest turns make way when the conversation outgrows the
                # context; what the user typed stays in the line history.
                stream = model.stream_chat(conversation.messages(), args.max_new_tokens, truncate=True,
                                           sampling=sampling)
            except LlafError as e:  # this message alone fills the context: the chat goes on without it
                conversation.turns.pop()
                say(f"llaf: {e}")
                continue
            if stream.dropped_messages:
                del conversation.turns[:stream.dropped_messages]
                if not conversation.warned:
                    conversation.warned = True
                    say(f"llaf: the conversation outgrew the context ({model.params.context} tokens with "
                        f"{args.max_new_tokens} for a reply): its oldest turns are left out from now on"
                        f"{' (the system message stays)' if conversation.system else ''}")
            reply = _print_stream(stream, shown)
        except KeyboardInterrupt:
            if not interactive:
                raise
            # Ctrl-C stops this reply: the model keeps what was shown, and the chat goes on.
            if stream is not None:
                stream.close()
            print(flush=True)
            reply = "".join(shown)
        conversation.turns.append({"role": "assistant", "content": reply})


def serve(args: argparse.Namespace) -> None:
    from .server.serve import serve as run_server

    hosts = None if args.allowed_hosts is None else [h.strip() for h in args.allowed_hosts.split(",") if h.strip()]
    run_server(model=args.model, backend=args.backend, context=args.context, host=args.host, port=args.port,
               model_id=args.model_id, storage=args.storage, max_body=args.max_body, allowed_hosts=hosts,
               header_timeout=args.header_timeout, shutdown_grace=args.shutdown_grace,
               max_batch=args.max_batch, strict_model=args.strict_model, threads=args.threads,
               replicas=args.replicas, ray_address=args.ray_address, adapter=args.adapter)


def web(args: argparse.Namespace) -> None:
    from .web import serve as serve_web

    serve_web(model=args.model, host=args.host, port=args.port)


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


def bench_serve(args: argparse.Namespace) -> None:
    from .serve_bench import main as bench_serve_main

    bench_serve_main(args.rest)


def finetune(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from .finetune import AdamW
    from .finetune import finetune as run
    from .lora import LoraConfig, targets_of

    given = [flag for flag, value in (("--lora-rank", args.lora_rank), ("--lora-alpha", args.lora_alpha),
                                      ("--targets", args.targets)) if value is not None]
    if args.full and given:
        raise LlafError(f"--full trains every weight, not LoRA adapters: drop {', '.join(given)}")
    chosen = {"rank": args.lora_rank, "alpha": args.lora_alpha,
              "targets": None if args.targets is None else targets_of(args.targets)}
    lora = None if args.full else replace(LoraConfig(), **{k: v for k, v in chosen.items() if v is not None})
    optimizer = AdamW(lr=args.lr, weight_decay=args.weight_decay, max_norm=args.max_norm,
                      warmup=args.warmup, steps=args.steps)
    result = run(args.model, args.data, args.out, lora=lora, optimizer=optimizer, batch=args.batch,
                 seq_len=args.seq_len, backend=args.backend, threads=args.threads, seed=args.seed,
                 progress=not args.quiet and sys.stderr.isatty(), full=args.full, workers=args.workers)
    made = f"the model in {args.out}" if args.full else f"adapters in {args.out}"
    print(f"llaf: {len(result.losses)} steps in {result.seconds:.1f} s ({result.tokens_per_second:.0f} tokens/s), "
          f"loss {result.losses[0]:.3f} -> {result.losses[-1]:.3f}; {made}", file=sys.stderr)


def merge(args: argparse.Namespace) -> None:
    from .generation import model_source
    from .lora import Adapters, merge_gguf

    source = model_source(args.model)
    if not str(source).endswith(".gguf"):
        raise LlafError(f"llaf merge writes a GGUF file from a GGUF file; {source} is not one")
    merge_gguf(source, Adapters.load(args.adapter), args.out)
    print(f"llaf: {args.out}: {Path(str(source)).name} with the adapters of {args.adapter} merged", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    from . import __version__

    ap = argparse.ArgumentParser(prog="llaf", description="LLM inference on a Futhark engine.")
    ap.add_argument("--version", action="version", version=f"llaf {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="continue a prompt, streaming the text")
    g.add_argument("prompt", nargs="?", default=None, help="the text to continue (- reads it from stdin)")
    g.add_argument("--file", "-f", default=None, metavar="FILE",
                   help="read the prompt from FILE (- for stdin), without its final newline")
    g.add_argument("--max-new-tokens", "-n", type=int, default=128)
    _model_args(g)
    _run_args(g)
    _sampling_args(g)
    g.set_defaults(run=generate)
    c = sub.add_parser("chat", help="talk with a chat model (its chat template); end with Ctrl-D",
                       description="Talk with a chat model. Commands:\n" + CHAT_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--max-new-tokens", "-n", type=int, default=512)
    c.add_argument("--system", default=None, help="a system message")
    _model_args(c)
    _run_args(c)
    _sampling_args(c)
    c.set_defaults(run=chat)
    s = sub.add_parser("serve", help="an OpenAI-compatible HTTP server with a web chat page at /")
    _model_args(s)
    s.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    s.add_argument("--port", "-p", type=int, default=8000, help="the port (default 8000)")
    s.add_argument("--model-id", default=None, help="the model's name in the API (default: the file's name)")
    s.add_argument("--threads", type=int, default=None,
                   help="worker threads of the multicore backend (default: one per core)")
    from .server.limits import DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_BATCH, DEFAULT_MAX_BODY, DEFAULT_SHUTDOWN_GRACE

    s.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH, metavar="N",
                   help=f"the most sequences decoded together (default {DEFAULT_MAX_BATCH}); later requests wait "
                        "in arrival order. Key/value memory is at most N x --context positions, checked at start")

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
    s.add_argument("--strict-model", action="store_true",
                   help="refuse (404) a request naming another model; by default the served model answers it "
                        "and the response's model field says which")
    s.add_argument("--replicas", type=int, default=None, metavar="N",
                   help="serve N engine replicas through Ray Serve (pip install 'llaf[ray]'), each with its own "
                        "model and batch; on a local Ray unless --ray-address is given")
    s.add_argument("--ray-address", default=None, metavar="ADDRESS",
                   help="deploy the replicas on the Ray cluster at ADDRESS (host:port of its head, or auto)")
    s.set_defaults(run=serve)
    w = sub.add_parser("web", help="serve the browser app (make web): the model runs in the browser's tab")
    w.add_argument("--model", "-m", default=None, help="a GGUF file or its name among llaf's models (default SmolLM2)")
    w.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    w.add_argument("--port", "-p", type=int, default=8000, help="the port (default 8000)")
    w.set_defaults(run=web)
    a = sub.add_parser("assets", help="fetch GPT-2's tokenizer files and the default model")
    a.set_defaults(run=assets)
    b = sub.add_parser("bench", help="time llaf, transformers and llama.cpp on the same weights",
                       add_help=False)
    b.set_defaults(run=bench)
    bs = sub.add_parser("bench-serve", help="the server under 1-32 streaming clients, beside llama-cpp-python's server",
                        add_help=False)
    bs.set_defaults(run=bench_serve)
    f = sub.add_parser("finetune", help="train LoRA adapters (or, --full, every weight) on a JSONL file of "
                                        "texts or chats")
    f.add_argument("--model", "-m", default=None,
                   help="a GGUF file (Q4_0/Q4_1 stays 4-bit, other types are decoded to f32), "
                        "a Hugging Face directory or a model's name "
                        "(default SmolLM2-135M-Instruct)")
    f.add_argument("--data", required=True, metavar="FILE.jsonl",
                   help='one record a line: {"text": ...}, or {"messages": [...]} (learnt: the assistant\'s turns)')
    f.add_argument("--out", required=True, metavar="ADAPTER",
                   help="the directory to save the adapters in (--full: the GGUF file to write)")
    f.add_argument("--full", action="store_true",
                   help="train every weight in f32 (not adapters) and write the model as a GGUF file; "
                        "the model must be a GGUF file")
    from .lora import LoraConfig

    lora = LoraConfig()  # its defaults
    f.add_argument("--lora-rank", type=int, default=None, metavar="R", help=f"the adapters' rank (default {lora.rank})")
    f.add_argument("--lora-alpha", type=float, default=None, metavar="A",
                   help=f"the update is scaled by A / R (default {lora.alpha:g})")
    f.add_argument("--targets", default=None,
                   help=f"the projections adapted, comma-separated, or all (default {','.join(lora.targets)})")
    f.add_argument("--steps", type=int, default=100, metavar="N")
    f.add_argument("--lr", type=float, default=2e-4, metavar="X", help="the peak learning rate (default 2e-4)")
    f.add_argument("--warmup", type=int, default=0, metavar="N", help="steps of linear warm-up")
    f.add_argument("--weight-decay", type=float, default=0.0)
    f.add_argument("--max-norm", type=float, default=1.0, help="clip the gradient to this norm (0: never)")
    f.add_argument("--batch", type=int, default=8, metavar="B", help="sequences a step")
    f.add_argument("--seq-len", type=int, default=256, metavar="L", help="tokens a sequence at most")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--backend", "-b", default=None, help="c (the one fine-tuning is built for; the default)")
    f.add_argument("--workers", type=int, default=None, metavar="N",
                   help="engines sharing each batch, each with its own copy of the model (default: one a core, "
                        "at most 2; 1 takes less memory)")
    _run_args(f)
    f.set_defaults(run=finetune)
    mg = sub.add_parser("merge", help="a GGUF file with LoRA adapters merged in (llama.cpp loads it too)")
    mg.add_argument("--model", "-m", default=None, help="the base GGUF file (default SmolLM2-135M-Instruct)")
    mg.add_argument("--adapter", required=True, metavar="ADAPTER", help="the adapters' directory")
    mg.add_argument("--out", required=True, metavar="FILE.gguf")
    mg.set_defaults(run=merge)
    args, rest = ap.parse_known_args(argv)
    if args.command not in ("bench", "bench-serve") and rest:
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
    except Exception as e:  # EngineError, or any other bug: not the user's input
        print(f"llaf: {internal_error(e)}", file=sys.stderr)
        sys.exit(INTERNAL_ERROR_EXIT)


# The exit status of an internal error (BSD's EX_SOFTWARE), apart from bad input's 1.
INTERNAL_ERROR_EXIT = 70


if __name__ == "__main__":
    main()
