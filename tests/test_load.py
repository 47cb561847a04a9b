"""`llaf serve` under load and faults, one process (no Ray): 32 concurrent
clients × 20 requests lose nothing, get no 5xx and leave the server's memory
where it was; 20 clients that hang up mid-stream free their sequences at
once. The server runs SmolLM2 greedy on the multicore backend (tests/conftest.py)
with tiny requests, so that the load is in the requests' number, not length.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import SERVER_CONTEXT, LiveServer, serving

CLIENTS, REQUESTS = 32, 20
MAX_BATCH = 8
HANG_UPS = 20


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serving(tmp_path_factory.mktemp("load") / "serve.log", "--max-batch", str(MAX_BATCH)) as live:
        yield live


def rss(pid: int) -> int:
    """A process's resident memory in bytes (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def request(c: httpx.Client, k: int) -> str:
    """Request number `k`: plain or chat, streamed or not, a token or two;
    the text it got, after checking that the response is whole."""
    chat, stream = k % 2 == 1, k % 4 >= 2
    path = "/v1/chat/completions" if chat else "/v1/completions"
    body: dict[str, Any] = {"max_tokens": 2, "temperature": 0, "stream": stream}
    body |= {"messages": [{"role": "user", "content": f"Say {k}"}]} if chat else {"prompt": f"{k} +"}
    if not stream:
        r = c.post(path, json=body)
        assert r.status_code == 200, r.text
        choice = r.json()["choices"][0]
        assert choice["finish_reason"] in ("stop", "length")
        return str(choice["message"]["content"] if chat else choice["text"])
    with c.stream("POST", path, json=body) as r:
        assert r.status_code == 200, r.read()
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]", events
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length"), chunks
    return "".join(ch["choices"][0]["delta"].get("content", "") if chat else ch["choices"][0]["text"]
                   for ch in chunks)


def test_32_clients_times_20_requests_lose_nothing_and_keep_memory(loaded: LiveServer) -> None:
    with httpx.Client(base_url=loaded.url, timeout=300) as c:
        # Warm up: a full batch once, so that the cache has its first size
        # and the allocator its pools; "before" is the server at rest then.
        with ThreadPoolExecutor(MAX_BATCH) as pool:
            alone = list(pool.map(lambda k: request(c, k), range(MAX_BATCH)))
        start = c.get("/health").json()
        before = rss(loaded.process.pid)

        def client(i: int) -> list[str]:
            with httpx.Client(base_url=loaded.url, timeout=300) as own:
                return [request(own, i * REQUESTS + j) for j in range(REQUESTS)]

        with ThreadPoolExecutor(CLIENTS) as pool:
            texts = [t for ts in pool.map(client, range(CLIENTS)) for t in ts]
        assert len(texts) == CLIENTS * REQUESTS
        # Greedy: the same request gets the same text under load as alone.
        assert texts[:MAX_BATCH] == alone
        after = rss(loaded.process.pid)
        health = c.get("/health").json()
    assert health["status"] == "ok" and health["replicas"] == 1
    assert health["served"] == start["served"] + CLIENTS * REQUESTS
    assert health["pending"] == health["running"] == health["waiting"] == 0
    assert health["largest_batch"] == MAX_BATCH
    assert abs(after - before) <= 0.1 * before, f"RSS {before >> 20} MiB before, {after >> 20} MiB after"
    assert loaded.alive()


def test_20_clients_that_hang_up_mid_stream_free_their_sequences(loaded: LiveServer) -> None:
    # Each would run to the context's end (hundreds of tokens, minutes for
    # 20 on this engine): hanging up must end them, those in line too.
    body = {"prompt": "Once upon a time", "max_tokens": SERVER_CONTEXT - 16, "temperature": 0, "stream": True}
    with httpx.Client(base_url=loaded.url, timeout=300) as c:
        start = c.get("/health").json()
        readers = []  # kept: a line iterator dropped closes its connection
        with ExitStack() as streams:
            for i in range(HANG_UPS):
                own = streams.enter_context(httpx.Client(base_url=loaded.url, timeout=300))
                r = streams.enter_context(own.stream("POST", "/v1/completions", json=body))
                assert r.status_code == 200
                if i < MAX_BATCH:  # mid-stream: a token has come
                    readers.append(r.iter_lines())
                    assert next(line for line in readers[-1] if line).startswith("data: {")
            health = c.get("/health").json()
            assert (health["running"], health["waiting"]) == (MAX_BATCH, HANG_UPS - MAX_BATCH)
        # All 20 connections have closed.
        hung_up = time.monotonic()
        while (health := c.get("/health").json())["pending"] and time.monotonic() < hung_up + 20:
            time.sleep(0.05)
        assert health["pending"] == health["running"] == health["waiting"] == 0, health
        assert health["cancelled"] == start["cancelled"] + HANG_UPS
        assert health["served"] == start["served"]
        # The slots are free: a new request is served at once.
        assert c.post("/v1/completions", json={"prompt": "Hi", "max_tokens": 2, "temperature": 0}).status_code == 200
    assert loaded.alive()
