"""Shared fixtures: random-weight transformers models (no download) and the
llaf engine on every backend under test.

The backends are those named in ``$LLAF_BACKENDS`` (``make test`` names every
CPU backend it builds), else every backend that is built.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest
import torch
from openai.types.chat import ChatCompletionMessageParam

from llaf.backend import BACKENDS, build_dir

ROOT = Path(__file__).resolve().parent.parent


def backends_under_test() -> list[str]:
    named = os.environ.get("LLAF_BACKENDS", "").split()
    if named:
        return named
    built = [b for b in BACKENDS if (build_dir(b) / ".built").exists()]
    return built or ["c"]


BACKENDS_UNDER_TEST = backends_under_test()


@pytest.fixture(scope="session", params=BACKENDS_UNDER_TEST)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# `make test` runs the pyopencl tests in a pytest of their own beside the
# others (PoCL compiles each kernel on its first use, on one thread):
# $LLAF_TEST_SHARD says which of the two this one runs.
SHARDS = ("opencl", "rest")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    shard = os.environ.get("LLAF_TEST_SHARD")
    if not shard:
        return
    if shard not in SHARDS:
        raise pytest.UsageError(f"LLAF_TEST_SHARD={shard!r}: choose one of {', '.join(SHARDS)}")

    def on_opencl(item: pytest.Item) -> bool:
        callspec = getattr(item, "callspec", None)
        return callspec is not None and callspec.params.get("backend") == "pyopencl"

    keep = [item for item in items if on_opencl(item) == (shard == "opencl")]
    config.hook.pytest_deselected(items=[item for item in items if item not in keep])
    items[:] = keep


def random_gpt2(seed: int, **config: object) -> torch.nn.Module:
    """A GPT-2 with random weights; a wide initialiser makes greedy choices
    clear-cut, so that float rounding cannot flip them."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(initializer_range=0.08, bos_token_id=0, eos_token_id=0, **config)
    return GPT2LMHeadModel(cfg).eval()


def random_llama(seed: int, **config: object) -> torch.nn.Module:
    """A Llama-family model with random weights (see `random_gpt2`)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(initializer_range=0.08, bos_token_id=0, eos_token_id=0, pad_token_id=0, **config)
    return LlamaForCausalLM(cfg).eval()


# A random GPT-2 with GPT-2's vocabulary, small enough to load in a moment:
# a whole llaf.Model (tiktoken's tokenizer), for what needs text and the
# transformers model to check against.
TINY_GPT2 = dict(n_embd=64, n_head=2, n_inner=128, n_layer=2, n_positions=128)
_tiny_gpt2: dict[str, object] = {}


@pytest.fixture(scope="session")
def tiny_gpt2() -> torch.nn.Module:
    return random_gpt2(5, **TINY_GPT2)


@pytest.fixture(scope="session")
def tiny_gpt2_model(backend: str, tiny_gpt2: torch.nn.Module) -> object:
    """`tiny_gpt2` in llaf on `backend`, as a llaf.Model with GPT-2's tokenizer."""
    import llaf
    from llaf.tokenizer import TiktokenTokenizer

    if backend not in _tiny_gpt2:
        _tiny_gpt2[backend] = llaf.Model("tiny-gpt2", llaf.init(tiny_gpt2, backend=backend, progress=False),
                                         TiktokenTokenizer())
    return _tiny_gpt2[backend]


@pytest.fixture(scope="session")
def rng() -> Iterator[np.random.Generator]:
    yield np.random.default_rng(2024)


# The HTTP server's tests run on one backend only: the server code is the
# same on every backend, and its model takes a while to load.  The fastest
# (multicore) when it is under test: the load tests' 640 requests took 200 s
# on the c backend.
SERVER_BACKEND = next((b for b in ("multicore", "c") if b in BACKENDS_UNDER_TEST), BACKENDS_UNDER_TEST[0])
SERVER_CONTEXT = 512


@dataclass
class LiveServer:
    """`llaf serve` running in a child process on a loopback port."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path
    first_health: tuple[int, Any] | None = None  # the first answer of /health: (status, body)

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SERVER_MAX_BODY = 131072  # small, so that a test can pass it quickly
SERVER_HEADER_TIMEOUT = 3.0


def start_server(log: Path, *options: str) -> LiveServer:
    """`llaf serve` on SmolLM2 on a free loopback port, once it answers /health."""
    import httpx

    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "llaf.cli", "serve", "--backend", SERVER_BACKEND, "--context",
             str(SERVER_CONTEXT), "--host", "127.0.0.1", "--port", str(port), *options],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    live = LiveServer(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 300
    try:
        while True:
            if not live.alive():
                pytest.fail(f"llaf serve exited with {process.returncode}:\n{live.output()}")
            try:
                r = httpx.get(f"{live.url}/health", timeout=2)
                if live.first_health is None:
                    # (Ray Serve's proxy answers in plain text until llaf's app is deployed.)
                    is_json = r.headers.get("content-type", "").startswith("application/json")
                    live.first_health = (r.status_code, r.json() if is_json else r.text)
                if r.status_code == 200:
                    return live
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llaf serve did not answer /health in 300 s:\n{live.output()}")
            # Often: the model takes a second or more to load, and a test sees
            # that /health said so meanwhile.
            time.sleep(0.05)
    except BaseException:
        stop_server(live)
        raise


@contextmanager
def serving(log: Path, *options: str) -> Iterator[LiveServer]:
    """`start_server`, stopped when the block ends."""
    live = start_server(log, *options)
    try:
        yield live
    finally:
        stop_server(live)


def stop_server(live: LiveServer) -> None:
    live.process.terminate()
    try:
        live.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        live.process.kill()
        live.process.wait()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The default model (SmolLM2) behind `llaf serve`, shared by the server
    and web page tests; stopped with SIGTERM at the end."""
    with serving(tmp_path_factory.mktemp("server") / "serve.log", "--max-body", str(SERVER_MAX_BODY),
                 "--header-timeout", str(SERVER_HEADER_TIMEOUT)) as live:
        yield live


# What the server tests ask the default model, and their clients of it.
MODEL_ID = "SmolLM2-135M-Instruct.Q4_1"
FRANCE: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is the capital of France?"}]
PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def client(server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as c:
        yield c
