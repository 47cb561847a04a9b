"""``llaf bench-serve``: the HTTP server under concurrent streaming clients,
beside llama-cpp-python's OpenAI server on the same GGUF, in one run.

Each server runs in its own process on a loopback port and is measured
alone, one after the other. At each level of concurrency (1, 4, 16 and 32
clients by default) every client sends its requests one after another:
streamed completions (server-sent events) of fixed prompts, greedy, at most
``--max-tokens`` tokens. From each stream: the time to its first token (from
sending the request to the first text), and its time per output token
(first to last text, over the tokens after the first). A level's aggregate
throughput is all its tokens over the time from its first request to its
last answer.

With ``--rounds N`` every level is measured N times, the levels taking
turns (1, 16, 1, 16, ...), and each level reports its median round (the
lower of the middle two when N is even, so that every figure is one round's
own); a ratio between levels is the median of the rounds' own ratios, each
from levels measured a minute apart. A host's speed can drift by a fifth
within minutes (docs/PERFORMANCE.md, "Serving"), more than a ratio of two
single runs minutes apart can tell from the server's own.

llama-cpp-python's server decodes one request at a time (a lock around its
one model); by default a new request interrupts the stream under way
(``interrupt_requests``), which would cut the streams short, so it runs with
``--interrupt_requests False``: requests queue and each runs to its end.
It has no option to decode several requests together. Where llama.cpp's
weight repacking crashes it (as `llaf bench` finds on some hosts), it is
started again without (`bench.without_weight_repacking`), and the results say so.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

LEVELS = (1, 4, 16, 32)
MAX_TOKENS = 64
ROUNDS = 1  # times each level is measured, the levels taking turns (--rounds)
REQUESTS = 1  # per client at each level: a short default run (about 3 minutes here); --requests for more
# Passes of more than 16 tokens take the engine's prompt path (weights decoded
# to f32, then a GEMM): 32 sequences a pass gave 57 tok/s where 16 gave 146.
MAX_BATCH = 16
CONTEXT = 512  # both servers: room for a prompt and --max-tokens
PEER = "llama-cpp-python"
# Story openings: every client asks the same few, so both servers get the same work.
PROMPTS = ("Once upon a time, in a small village by the sea,", "The old lighthouse keeper had a secret:",
           "In the year 2150, the first city on Mars", "The recipe for the perfect apple pie begins with",
           "Deep in the forest, the children found a door that", "The history of the printing press starts")
DESCRIPTION = ("Drive `llaf serve` and llama-cpp-python's OpenAI server (same GGUF, same run) on loopback with "
               "concurrent streaming clients; report aggregate tokens/s, time to first token (p50/p95) and "
               "time per output token at each level; write serve-bench.json and serve-bench.png.")


@dataclass
class Sample:
    """One streamed request: when it was sent, its first and last text came, its tokens."""

    sent: float
    first: float
    last: float
    tokens: int


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), interpolated between the closest ranks."""
    xs = sorted(values)
    at = (len(xs) - 1) * q / 100
    lo = int(at)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (at - lo)


def summarize(samples: list[Sample], seconds: float) -> dict[str, Any]:
    ttft = [s.first - s.sent for s in samples]
    tpot = [(s.last - s.first) / (s.tokens - 1) for s in samples if s.tokens > 1]
    tokens = sum(s.tokens for s in samples)
    return {"requests": len(samples), "tokens": tokens, "seconds": seconds, "tok_s": tokens / seconds,
            "ttft_p50_s": percentile(ttft, 50), "ttft_p95_s": percentile(ttft, 95),
            "tpot_p50_s": percentile(tpot, 50) if tpot else None, "tpot_p95_s": percentile(tpot, 95) if tpot else None}


async def stream_one(client: Any, prompt: str, options: dict[str, Any]) -> Sample:
    """One streamed completion; its tokens are the usage the server reports,
    else (llama-cpp-python reports none in streams) its chunks with text,
    one token each."""
    body = {"prompt": prompt, **options, "stream": True, "stream_options": {"include_usage": True}}
    sent = time.perf_counter()
    first = last = 0.0
    chunks = 0
    usage: int | None = None
    async with client.stream("POST", "/v1/completions", json=body) as r:
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {(await r.aread()).decode(errors='replace')[:200]}")
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if "error" in event:
                raise RuntimeError(f"error event: {event['error']}")
            if event.get("usage"):
                usage = int(event["usage"]["completion_tokens"])
            if any(c.get("text") for c in event.get("choices", [])):
                last = time.perf_counter()
                first = first or last
                chunks += 1
    if not chunks:
        raise RuntimeError(f"no text came for {prompt!r}")
    return Sample(sent, first, last, usage if usage is not None else chunks)


async def run_level(url: str, clients: int, requests: int, options: dict[str, Any]) -> dict[str, Any]:
    import httpx

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:

        async def one_client(number: int) -> list[Sample]:
            return [await stream_one(client, PROMPTS[(number + i) % len(PROMPTS)], options)
                    for i in range(requests)]

        start = time.perf_counter()
        per_client = await asyncio.gather(*(one_client(n) for n in range(clients)))
        seconds = time.perf_counter() - start
    return summarize([s for samples in per_client for s in samples], seconds)


class Launched:
    """A server in a child process, its output in a temporary file."""

    def __init__(self, name: str, command: list[str], port: int, ready_path: str) -> None:
        self.name = name
        self.command = command
        self.url = f"http://127.0.0.1:{port}"
        self.log = tempfile.NamedTemporaryFile(prefix="llaf-bench-serve-", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        self.ready_path = ready_path

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def wait_ready(self, timeout: float = 600) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.output()[-2000:]}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} was not ready in {timeout:.0f} s:\n{self.output()[-2000:]}")

    def stop(self, keep_log: bool = False) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        if not keep_log:
            Path(self.log.name).unlink(missing_ok=True)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def llaf_command(model: str, port: int, backend: str, threads: int, max_batch: int) -> list[str]:
    # Only the multicore backend takes a thread count (c runs on one thread).
    return [sys.executable, "-m", "llaf.cli", "serve", "--model", model, "--backend", backend,
            *(["--threads", str(threads)] if backend == "multicore" else []),
            "--max-batch", str(max_batch), "--context", str(CONTEXT), "--port", str(port)]


PLAIN = "--peer-without-repacking"  # argv[1] of this module: run llama-cpp-python's server so


def peer_command(model: str, port: int, threads: int, repacking: bool = True) -> list[str]:
    start = ["-m", "llama_cpp.server"] if repacking else ["-m", "llaf.serve_bench", PLAIN]
    return [sys.executable, *start, "--model", model, "--host", "127.0.0.1", "--port", str(port),
            "--n_threads", str(threads), "--n_threads_batch", str(threads), "--n_ctx", str(CONTEXT),
            "--interrupt_requests", "False"]


def run_peer_without_repacking(argv: list[str]) -> None:
    from llama_cpp.server.__main__ import main as peer_main

    from .bench import without_weight_repacking

    without_weight_repacking()
    sys.argv = ["llama_cpp.server", *argv]
    peer_main()


def measure(server: Launched, levels: Sequence[int], requests: int, options: dict[str, Any],
            rounds: int = ROUNDS) -> dict[str, list[dict[str, Any]]]:
    """Every level against `server` `rounds` times, the levels taking turns,
    each request with `options` (max_tokens, temperature), after one request
    to warm it up: each level's results, round by round."""
    server.wait_ready()
    asyncio.run(run_level(server.url, 1, 1, options))
    out: dict[str, list[dict[str, Any]]] = {str(clients): [] for clients in levels}
    for r in range(rounds):
        for clients in levels:
            result = asyncio.run(run_level(server.url, clients, requests, options))
            out[str(clients)].append(result)
            which = f" (round {r + 1} of {rounds})" if rounds > 1 else ""
            print(f"  {server.name}, {clients:>2} client{'s' * (clients != 1)}: {result['tok_s']:7.1f} tok/s, "
                  f"first token p50 {result['ttft_p50_s']:.3f} s{which}", file=sys.stderr, flush=True)
    return out


def median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """A level's round of median throughput (the lower middle one of an even
    count), with every round's throughput beside its own figures."""
    middle = statistics.median_low(r["tok_s"] for r in rounds)
    chosen = next(r for r in rounds if r["tok_s"] == middle)
    return chosen | {"rounds_tok_s": [r["tok_s"] for r in rounds]}


def ratio(over: list[dict[str, Any]], under: list[dict[str, Any]]) -> float:
    """The median (the lower middle one) of the rounds' throughput ratios, round by round."""
    return statistics.median_low(a["tok_s"] / b["tok_s"] for a, b in zip(over, under, strict=True))


class ServerFailed(Exception):
    def __init__(self, message: str, crashed: bool) -> None:
        super().__init__(message)
        self.crashed = crashed


@dataclass
class Settings:
    model: str
    backend: str
    threads: int
    max_batch: int
    levels: list[int]
    requests: int
    rounds: int
    max_tokens: int
    temperature: float

    def request(self) -> dict[str, Any]:
        """What each request asks besides its prompt."""
        return {"max_tokens": self.max_tokens, "temperature": self.temperature}


def attempt(name: str, command: list[str], settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """Start a server, measure it at every level (`measure`) and stop it;
    ServerFailed (its output kept) when it fails or dies."""
    import httpx

    port = int(command[command.index("--port") + 1])
    server = Launched(name, command, port, "/health" if name == "llaf" else "/v1/models")
    try:
        result = measure(server, settings.levels, settings.requests, settings.request(), settings.rounds)
    except (RuntimeError, httpx.HTTPError) as e:
        with contextlib.suppress(subprocess.TimeoutExpired):  # a crash closes the connections a moment before
            server.process.wait(timeout=5)  # the process is gone
        crashed = server.process.poll() is not None
        server.stop(keep_log=True)
        raise ServerFailed(f"{name} {'crashed' if crashed else 'failed'} ({e}); its output is in {server.log.name}",
                           crashed) from None
    server.stop()
    return result


def report(settings: Settings, measured: dict[str, dict[str, list[dict[str, Any]]]], commands: dict[str, list[str]],
           bandwidth: float, out_dir: Path, argv: Sequence[str]) -> dict[str, Any]:
    """Print the table (each level's median round) and the ratios; write
    serve-bench.json and serve-bench.png."""
    rounds = f", {settings.rounds} rounds (medians)" if settings.rounds > 1 else ""
    print(f"llaf bench-serve: {Path(settings.model).name}, {settings.max_tokens} tokens a request "
          f"at temperature {settings.temperature:g}, {settings.requests} request{'s' * (settings.requests != 1)} "
          f"a client{rounds}; copy bandwidth {bandwidth:.1f} GB/s")
    print(f"{'server':18}{'clients':>8}{'tok/s':>9}{'TTFT p50':>10}{'TTFT p95':>10}{'TPOT p50':>10}{'TPOT p95':>10}")
    servers = {name: {clients: median_round(results) for clients, results in levels.items()}
               for name, levels in measured.items()}
    for name, levels in servers.items():
        for clients, r in levels.items():
            tpot = [f"{r[k] * 1000:8.1f}ms" if r[k] is not None else f"{'-':>10}" for k in ("tpot_p50_s", "tpot_p95_s")]
            print(f"{name:18}{clients:>8}{r['tok_s']:9.1f}{r['ttft_p50_s']:9.3f}s{r['ttft_p95_s']:9.3f}s"
                  f"{tpot[0]}{tpot[1]}")
    ratios: dict[str, float] = {}
    llaf = measured.get("llaf", {})
    top = str(max(settings.levels))
    if "1" in llaf:
        for clients in llaf:
            ratios[f"llaf_{clients}_over_1"] = ratio(llaf[clients], llaf["1"])
    # (the two servers run one after the other, their rounds minutes apart:
    # their median rounds compared)
    for clients in llaf:
        if clients in servers.get(PEER, {}):
            ratios[f"llaf_over_peer_at_{clients}"] = servers["llaf"][clients]["tok_s"] / servers[PEER][clients]["tok_s"]
    for key, value in ratios.items():
        print(f"{key}: {value:.2f}x")
    result = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "command": " ".join(["llaf bench-serve", *argv]),
              "settings": asdict(settings) | {"context": CONTEXT, "cpu_count": os.cpu_count()},
              "bandwidth_gb_s": bandwidth, "servers": servers, "server_commands": commands, "ratios": ratios}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "serve-bench.json").write_text(json.dumps(result, indent=1) + "\n")
    plot(servers, out_dir / "serve-bench.png", top)
    print(f"wrote {out_dir / 'serve-bench.json'} and {out_dir / 'serve-bench.png'}")
    return result


def plot(servers: dict[str, dict[str, Any]], path: Path, top: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (("tok_s", "aggregate tokens/s"), ("ttft_p50_s", "time to first token, p50 (s)"),
              ("tpot_p50_s", "time per output token, p50 (s)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4))
    for ax, (key, title) in zip(axes, panels, strict=True):
        for name, levels in servers.items():
            xs = [int(c) for c in levels if levels[c][key] is not None]
            ax.plot(xs, [levels[str(c)][key] for c in xs], marker="o", label=name,
                    color="tab:blue" if name == "llaf" else "tab:green")
        ax.set_xscale("log", base=2)
        ax.set_xticks([int(c) for c in next(iter(servers.values()))], [str(c) for c in next(iter(servers.values()))])
        ax.set_xlabel("concurrent clients")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    from .bench import memory_bandwidth

    ap = argparse.ArgumentParser(prog="llaf bench-serve", description=DESCRIPTION)
    ap.add_argument("--model", "-m", default=None, help="a GGUF file (default: SmolLM2-135M-Instruct)")
    ap.add_argument("--backend", "-b", default="multicore", help="llaf's backend (default multicore)")
    ap.add_argument("--threads", type=int, default=2, help="threads of each server (default 2)")
    ap.add_argument("--max-batch", type=int, default=MAX_BATCH,
                    help=f"llaf serve --max-batch (default {MAX_BATCH}; more clients wait in line)")
    ap.add_argument("--clients", default=",".join(map(str, LEVELS)),
                    help=f"levels of concurrency, comma-separated (default {','.join(map(str, LEVELS))})")
    ap.add_argument("--requests", type=int, default=REQUESTS,
                    help=f"streamed requests each client sends at each level (default {REQUESTS})")
    ap.add_argument("--rounds", type=int, default=ROUNDS,
                    help=f"times each level is measured, the levels taking turns; medians reported (default {ROUNDS})")
    ap.add_argument("--max-tokens", type=int, default=MAX_TOKENS, help=f"tokens a request (default {MAX_TOKENS})")
    ap.add_argument("--temperature", type=float, default=0.0,
                    help="each request's sampling temperature (default 0: greedy; a sampled request may end early)")
    ap.add_argument("--peer", choices=[PEER, "none"], default=PEER,
                    help=f"the server to compare with (default {PEER}; none: llaf alone)")
    ap.add_argument("--out", default="bench", help="directory for serve-bench.json and .png (default bench)")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == [PLAIN]:
        run_peer_without_repacking(argv[1:])
        return
    args = ap.parse_args(argv)
    try:
        levels = [int(c) for c in args.clients.split(",")]
    except ValueError:
        ap.error(f"--clients takes numbers separated by commas, got {args.clients!r}")
    if min(levels) < 1 or min(args.requests, args.rounds, args.max_tokens, args.threads, args.max_batch) < 1:
        ap.error("--clients, --requests, --rounds, --max-tokens, --threads and --max-batch must be at least 1")
    if not 0 <= args.temperature < float("inf"):
        ap.error(f"--temperature must be a number >= 0, got {args.temperature}")
    from .assets import default_model_path
    from .backend import check_built, resolve_backend
    from .weights import load

    # the backend and the model checked here: a server that fails to start
    # on them would be reported as crashed, with its output in a log
    model = str(args.model or default_model_path())
    check_built(resolve_backend(args.backend))
    load(model, progress=False)
    settings = Settings(model=model, backend=args.backend, threads=args.threads,
                        max_batch=args.max_batch, levels=levels, requests=args.requests, rounds=args.rounds,
                        max_tokens=args.max_tokens, temperature=args.temperature)
    runs = {"llaf": llaf_command(settings.model, free_port(), settings.backend, settings.threads,
                                 settings.max_batch)}
    if args.peer == PEER:
        try:
            import llama_cpp.server  # noqa: F401
        except ImportError:
            sys.exit("llaf bench-serve: llama-cpp-python's server is not installed "
                     "(pip install 'llama-cpp-python[server]'), or give --peer none")
        runs[PEER] = peer_command(settings.model, free_port(), settings.threads)
    bandwidth = memory_bandwidth()
    servers: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for name, command in list(runs.items()):
        try:
            servers[name] = attempt(name, command, settings)
        except ServerFailed as e:
            if name != PEER or not e.crashed:
                sys.exit(f"llaf bench-serve: {e}")
            print(f"llaf bench-serve: {e}; again without weight repacking", file=sys.stderr)
            runs[PEER] = command = peer_command(settings.model, free_port(), settings.threads, repacking=False)
            try:
                servers[name] = attempt(name, command, settings)
            except ServerFailed as e2:
                sys.exit(f"llaf bench-serve: {e2}")
    commands = {name: [Path(c).name if c == sys.executable else c for c in command]
                for name, command in runs.items()}
    report(settings, servers, commands, bandwidth, Path(args.out), argv)


if __name__ == "__main__":
    main()
