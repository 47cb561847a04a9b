"""``llaf bench``: llaf against the engines users would pick instead, side by
side in one run, on the same weights.

Each engine runs in its own process (so that peak memory is its own) and
reports, over several repetitions: prefill tokens/s for a 16- and a 512-token
prompt, time to first token (16-token prompt), decode tokens/s (128 greedy
tokens after the 16-token prompt, one cached step at a time), the time to
load the model and peak resident memory.  For llaf also: `llaf.gen` (the
whole loop inside Futhark) at the model's full context, and the aggregate
decode speed of 8 sequences stepped together.  The peers: transformers
(PyTorch on the CPU, the same weights in float32) and llama.cpp on the same
GGUF file (llama-cpp-python; `make bench` installs it).  The machine's
memory bandwidth (a large copy) bounds decode speed: llaf's achieved GB/s is
the weight bytes it reads per token over the step time.

Results: a table on stdout, ``bench/results.json`` and ``bench/bench.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .checks import writable
from .errors import LlafError

PROMPTS = (16, 512)
DECODE = 128
BATCH = 8

# What `llaf bench --help` says: the module's docstring is written for the
# source (reStructuredText quotes, a cut-off first line), not for a terminal.
DESCRIPTION = ("Time llaf against transformers and llama.cpp on the same weights, each in its own process: "
               f"prefill speed (16- and 512-token prompts), time to first token, decode speed ({DECODE} greedy "
               "tokens), load time and peak memory. Prints a table and writes results.json and bench.png.")


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def memory_bandwidth(mib: int = 512, reps: int = 5) -> float:
    """GB/s of a large array copy (read + write counted)."""
    src = np.ones(mib << 18, np.float32)
    dst = np.empty_like(src)
    best = min(timed(lambda: np.copyto(dst, src)) for _ in range(reps))
    return 2 * src.nbytes / best / 1e9


def peak_rss_mb() -> float:
    """This process's peak resident memory.  Not getrusage's ru_maxrss: it
    survives exec, so a child started by a large parent reports the parent's."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def compiler(backend: str) -> str:
    """The C compiler and flags that built a llaf backend (make writes them)."""
    info = Path(__file__).resolve().parent.parent / "build" / backend / "compiler.txt"
    return " ".join(info.read_text().split("\n")).strip() if info.exists() else "unknown (not built by make)"


def prompt_ids(vocab: int, n: int) -> list[int]:
    return [int(t) for t in np.random.default_rng(n).integers(100, min(vocab, 20000), n)]


class Runner:
    """One engine: `prefill(ids)` returns a state, `step(state, tok)` the next one."""

    vocab: int
    weight_bytes: int = 0

    def prefill(self, ids: list[int]) -> Any:
        raise NotImplementedError

    def step(self, state: Any, tok: int) -> Any:
        raise NotImplementedError

    def extra(self, reps: int) -> dict[str, Any]:
        """Rows only this engine has, measured after the common ones."""
        return {}


class LlafRunner(Runner):
    def __init__(self, model: str, backend: str | None, storage: str | None) -> None:
        import llaf

        self.llaf = llaf
        self.model_path, self.backend, self.storage = model, backend, storage
        self.model = llaf.load(model, backend=backend, storage=storage)
        self.params = self.model.params
        self.vocab = self.params.vocab

    def prefill(self, ids: list[int]) -> Any:
        # a cache for the prompt and the decoded tokens, as llaf.load's generation makes
        return self.llaf.prefill(self.params, ids, capacity=len(ids) + DECODE + 1)

    def step(self, state: Any, tok: int) -> Any:
        return self.llaf.step(state[1], tok), state[1]

    def extra(self, reps: int) -> dict[str, Any]:
        # After peak memory is taken: the weights again, to count their bytes.
        w = self.llaf.weights.load(self.model_path, progress=False, storage=self.storage)
        out: dict[str, Any] = {"weight_bytes": sum(int(a.nbytes) for a in w.arrays.values())}
        del w
        # BATCH sequences of different lengths, stepped together: tokens/s over all.
        prompts = [prompt_ids(self.vocab, 16 + 3 * i) for i in range(BATCH)]
        batch = []
        for _ in range(reps):
            _, cache = self.llaf.prefill(self.params, prompts, capacity=16 + 3 * BATCH + DECODE + 1)
            t0 = time.perf_counter()
            for i in range(DECODE):
                self.llaf.step(cache, [100 + i] * BATCH)
            batch.append(BATCH * DECODE / (time.perf_counter() - t0))
        out["batch8_tok_s"] = batch
        # llaf.gen with the parameters at the model's full context (the cache
        # it makes is sized for prompt + new tokens, not for the context).
        full = self.llaf.init(self.model_path, backend=self.backend, progress=False, storage=self.storage)
        short = prompt_ids(self.vocab, PROMPTS[0])
        self.llaf.gen(short, full, 2)
        out["gen_tok_s"] = [(DECODE + 1) / timed(lambda: self.llaf.gen(short, full, DECODE + 1))
                            for _ in range(reps)]
        out["full_context"] = full.context
        return out


class TransformersRunner(Runner):
    def __init__(self, model: str) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        torch.set_num_threads(os.cpu_count() or 1)
        path = Path(model)
        kwargs: dict[str, Any] = {"gguf_file": path.name} if path.suffix == ".gguf" else {}
        where = str(path.parent) if path.suffix == ".gguf" else model
        self.model = AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32, **kwargs).eval()
        self.vocab = int(self.model.config.vocab_size)
        self.torch = torch

    def prefill(self, ids: list[int]) -> Any:
        with self.torch.no_grad():
            return self.model(self.torch.tensor([ids]), use_cache=True)

    def step(self, state: Any, tok: int) -> Any:
        with self.torch.no_grad():
            return self.model(self.torch.tensor([[tok]]), past_key_values=state.past_key_values, use_cache=True)


def without_weight_repacking() -> None:
    """Weight repacking ("extra buffer types", AMX on Sapphire Rapids)
    segfaults on some hosts: llama-cpp-python's models loaded after this
    call go without it, on llama.cpp's plain CPU path."""
    import llama_cpp.llama_cpp as api

    default = api.llama_model_default_params

    def params() -> Any:
        p = default()
        p.use_extra_bufts = False
        return p

    api.llama_model_default_params = params


class LlamaCppRunner(Runner):
    def __init__(self, model: str, extra_buffers: bool = True) -> None:
        from llama_cpp import Llama

        if not extra_buffers:
            without_weight_repacking()
        self.llm = Llama(model_path=model, n_ctx=1024, n_threads=os.cpu_count() or 1, verbose=False)
        self.vocab = int(self.llm.n_vocab())

    def prefill(self, ids: list[int]) -> Any:
        self.llm.reset()
        self.llm.eval(ids)

    def step(self, state: Any, tok: int) -> Any:
        self.llm.eval([tok])


def measure(runner: Runner, reps: int) -> dict[str, Any]:
    """Medians and spreads of prefill, first-token and decode speed."""
    out: dict[str, Any] = {}
    short = prompt_ids(runner.vocab, PROMPTS[0])
    runner.step(runner.prefill(short), 5)  # warm-up: first-call compilation and allocation
    for n in PROMPTS:
        ids = prompt_ids(runner.vocab, n)
        times = [timed(lambda ids=ids: runner.prefill(ids)) for _ in range(reps)]
        out[f"prefill{n}_tok_s"] = [n / t for t in times]
    out["ttft_s"] = [timed(lambda: runner.step(runner.prefill(short), 5)) for _ in range(reps)]
    decode = []
    for _ in range(reps):
        state = runner.prefill(short)
        t0 = time.perf_counter()
        for i in range(DECODE):
            state = runner.step(state, 100 + i)
        decode.append(DECODE / (time.perf_counter() - t0))
    out["decode_tok_s"] = decode
    out["peak_rss_mb"] = peak_rss_mb()
    out["weight_bytes"] = runner.weight_bytes
    out.update(runner.extra(reps))
    return out


# How a measuring process says that the input was at fault: its last line
# of stderr starts with this, and it exits with this status.
USER_ERROR = "llaf: "
USER_ERROR_EXIT = 1


def run_engine(engine: str, model: str, backend: str | None, storage: str | None, reps: int) -> dict[str, Any]:
    """Load and measure one engine in this process."""
    t0 = time.perf_counter()
    if engine == "llaf":
        runner: Runner = LlafRunner(model, backend, storage)
    elif engine == "transformers":
        runner = TransformersRunner(model)
    else:
        runner = LlamaCppRunner(model, extra_buffers=engine != "llama.cpp-plain")
    load_s = time.perf_counter() - t0
    out = measure(runner, reps)
    out["load_s"] = [load_s]
    if engine == "llaf":
        out["compiler"] = compiler(runner.params.engine.backend)
    return out


def in_subprocess(engine: str, model: str, backend: str | None, storage: str | None,
                  reps: int) -> dict[str, Any] | None:
    cmd = [sys.executable, "-m", "llaf.bench", "--engine", engine, "--model", model, "--reps", str(reps)]
    if backend:
        cmd += ["--backend", backend]
    if storage:
        cmd += ["--storage", storage]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        why = lines[-1] if lines else f"exit status {proc.returncode}"
        if engine == "llaf" and proc.returncode == USER_ERROR_EXIT and why.startswith(USER_ERROR):
            raise LlafError(why.removeprefix(USER_ERROR))  # the input's fault (e.g. a backend not built)
        print(f"llaf bench: {engine} failed: {why}", file=sys.stderr)
        return None
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def summary(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


METRICS = (("prefill16_tok_s", "prefill-16 tok/s"), ("prefill512_tok_s", "prefill-512 tok/s"),
           ("ttft_s", "first token s"), ("decode_tok_s", "decode tok/s"), ("load_s", "load s"))
LLAF_ONLY = (("gen_tok_s", "gen tok/s, full context"), ("batch8_tok_s", f"decode x{BATCH} tok/s, total"))


def report(results: dict[str, dict[str, Any]], bandwidth: float, out_dir: Path) -> None:
    engines = list(results)
    print(f"memory bandwidth (copy): {bandwidth:.1f} GB/s")
    print(f"{'':26}" + "".join(f"{e:>26}" for e in engines))
    for key, label in METRICS + LLAF_ONLY:
        cells = []
        for e in engines:
            if key not in results[e]:
                cells.append("-")
                continue
            med, lo, hi = summary(results[e][key])
            cells.append(f"{med:10.3g} [{lo:.3g}-{hi:.3g}]" if len(results[e][key]) > 1 else f"{med:10.3g}")
        print(f"{label:26}" + "".join(f"{c:>26}" for c in cells))
    print(f"{'peak memory MB':26}" + "".join(f"{results[e]['peak_rss_mb']:>26.0f}" for e in engines))
    peers = [e for e in engines if not e.startswith("llaf")]
    for name in engines:
        if not name.startswith("llaf"):
            continue
        llaf = results[name]
        print(f"{name}: built by {llaf.get('compiler', 'unknown')}")
        decode = summary(llaf["decode_tok_s"])[0]
        achieved = llaf["weight_bytes"] * decode / 1e9
        print(f"  reads {llaf['weight_bytes'] / 1e6:.0f} MB of weights per token: {achieved:.1f} GB/s "
              f"achieved, {achieved / bandwidth * 100:.0f}% of the copy bandwidth")
        if "gen_tok_s" in llaf:
            print(f"  gen at context {llaf['full_context']} / step loop: "
                  f"{summary(llaf['gen_tok_s'])[0] / decode:.2f}x; "
                  f"decode x{BATCH} / x1: {summary(llaf['batch8_tok_s'])[0] / decode:.2f}x")
        for peer in peers:
            ratios = [f"{label.split()[0]} {summary(llaf[k])[0] / summary(results[peer][k])[0]:.2f}x"
                      for k, label in METRICS if k not in ("ttft_s", "load_s")]
            ttft = summary(results[peer]["ttft_s"])[0] / summary(llaf["ttft_s"])[0]
            print(f"  {name} / {peer}: " + ", ".join(ratios) + f", first token {ttft:.2f}x as fast")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps({"bandwidth_gb_s": bandwidth, "engines": results}, indent=1))
    plot(results, out_dir / "bench.png")
    print(f"wrote {out_dir / 'results.json'} and {out_dir / 'bench.png'}")


def plot(results: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k, _ in METRICS if k not in ("ttft_s", "load_s")]
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2))
    for ax, key in zip(axes, keys, strict=True):
        names = list(results)
        meds = [summary(results[e][key])[0] for e in names]
        colors = ["tab:blue" if e.startswith("llaf") else "tab:orange" if e == "transformers" else "tab:green"
                  for e in names]
        ax.bar(range(len(names)), meds, color=colors)
        ax.set_xticks(range(len(names)), [e.replace(" ", "\n") for e in names], fontsize=7)
        ax.set_title(dict(METRICS)[key])
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="llaf bench", description=DESCRIPTION)
    ap.add_argument("--model", "-m", default=None, help="a GGUF file (default: SmolLM2-135M-Instruct)")
    ap.add_argument("--backend", "-b", default=None,
                    help="llaf backend(s), comma-separated (default: the default backend)")
    from .storage import CHOICES

    ap.add_argument("--storage", "-s", default=None,
                    help=f"llaf weight storage(s), comma-separated: {', '.join(CHOICES)} "
                         "(default: the file's own form)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of each measurement (default 3)")
    ap.add_argument("--out", default="bench", help="directory for results.json and bench.png (default bench)")
    ap.add_argument("--engine", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    from .assets import default_model_path

    model = args.model or str(default_model_path())
    if args.reps < 1:
        raise LlafError(f"--reps must be at least 1, got {args.reps}")
    if args.engine:
        try:
            print(json.dumps(run_engine(args.engine, model, args.backend, args.storage, args.reps)))
        except LlafError as e:  # one line the parent recognises as the input's fault
            print(f"{USER_ERROR}{e}", file=sys.stderr)
            sys.exit(USER_ERROR_EXIT)
        return
    from .backend import check_built, default_backend, resolve_backend
    from .storage import check_storage
    from .weights import load

    # the input checked before any engine runs (transformers alone takes a minute)
    storages = [check_storage(s) for s in args.storage.split(",")] if args.storage else []
    writable(Path(args.out))  # before minutes of timing whose results go there
    own = load(model, progress=False).storage  # the model read once: a bad file is the input's fault
    storages = storages or [own]
    backends = [resolve_backend(b) for b in args.backend.split(",")] if args.backend else [default_backend()]
    for b in backends:
        check_built(b)
    runs: list[tuple[str, str, str | None, str | None]] = [
        (f"llaf {b} {s}", "llaf", b, s) for s in storages for b in backends]
    runs.append(("transformers", "transformers", None, None))
    try:
        import llama_cpp  # noqa: F401

        runs.append(("llama.cpp", "llama.cpp", None, None))
    except ImportError:
        print("llaf bench: llama-cpp-python is not installed (`make bench` installs it); "
              "comparing with transformers only", file=sys.stderr)
    bandwidth = memory_bandwidth()
    results = {}
    for name, engine, b, s in runs:
        r = in_subprocess(engine, model, b, s, args.reps)
        if r is None and engine == "llama.cpp":
            print("llaf bench: retrying llama.cpp without weight repacking", file=sys.stderr)
            r = in_subprocess("llama.cpp-plain", model, b, s, args.reps)
            name = "llama.cpp (no repack)" if r is not None else name
        if r is not None:
            results[name] = r
    if not any(name.startswith("llaf") for name in results):
        raise RuntimeError("every llaf run failed (its error is above)")
    report(results, bandwidth, Path(args.out))


if __name__ == "__main__":
    main()
