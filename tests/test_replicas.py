"""`llaf serve --replicas 2` on Ray Serve: the same API as one process
(routes, streaming, error bodies, chat page), ``/health`` counting the
live replicas, and a replica killed under load: requests in flight end
(whole or with a clear error), none hangs, Ray brings the replica back and
later requests succeed.

One server for the module, on a local Ray that `llaf serve` starts on
loopback itself and stops when it is stopped; the module checks at the end
that none of its processes are left. Skipped without Ray Serve
(``pip install 'llaf[ray]'``).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from .conftest import FRANCE, LiveServer, start_server, stop_server

pytest.importorskip("ray.serve")
psutil = pytest.importorskip("psutil")

REPLICAS = 2
PARIS = "The capital of France is Paris."


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("replicas") / "serve.log", "--replicas", str(REPLICAS),
                        "--max-batch", "4")
    server = psutil.Process(live.process.pid)
    try:
        # /health answers once one replica runs; the others may still be loading.
        deadline = time.monotonic() + 300
        while health(live.url).get("replicas") != REPLICAS and time.monotonic() < deadline:
            time.sleep(0.5)
        yield live
    finally:
        # Everything it started (Ray's processes, the replicas) ends with it.
        family = server.children(recursive=True)
        live.process.terminate()  # Ray's shutdown takes longer than one process's: more time than stop_server's
        try:
            live.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            stop_server(live)
        _, alive = psutil.wait_procs(family, timeout=60)
        for p in alive:  # not left behind for the next tests, but a failure
            p.kill()
        assert not alive, f"processes left after llaf serve stopped: {[p.cmdline() for p in alive]}"


def health(url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/health", timeout=30).json())


def replica_processes(live: LiveServer) -> list[psutil.Process]:
    """The replicas' processes among the server's descendants (Ray names
    its actors' processes ``ray::ServeReplica:...``)."""
    out = []
    for p in psutil.Process(live.process.pid).children(recursive=True):
        try:
            if "ServeReplica" in " ".join(p.cmdline()) + p.name():
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def test_health_counts_the_live_replicas(replicated: LiveServer) -> None:
    h = health(replicated.url)
    assert h["status"] == "ok" and h["replicas"] == REPLICAS
    assert len(replica_processes(replicated)) == REPLICAS


def test_the_replicas_serve_the_same_api(replicated: LiveServer) -> None:
    with httpx.Client(base_url=replicated.url, timeout=300) as c:
        # Greedy gives the same text on whichever replica answers.
        for _ in range(4):
            out = c.post("/v1/chat/completions", json={"messages": FRANCE, "temperature": 0}).json()
            assert out["choices"][0]["message"]["content"] == PARIS
        with c.stream("POST", "/v1/chat/completions",
                      json={"messages": FRANCE, "temperature": 0, "stream": True}) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        assert "".join(ch["choices"][0]["delta"].get("content", "") for ch in chunks) == PARIS
        bad = c.post("/v1/completions", json={"prompt": "Hi", "temperature": -1})
        assert bad.status_code == 400
        assert bad.json() == {"error": {"message": "temperature must be >= 0, got -1.0",
                                        "type": "invalid_request_error", "param": "temperature", "code": None}}
        # another model's name is answered by the served one, which the response names
        other = c.post("/v1/completions", json={"prompt": "Hi", "model": "gpt-4", "max_tokens": 2})
        assert other.status_code == 200 and other.json()["model"].startswith("SmolLM2")
        page = c.get("/")
        assert page.status_code == 200 and "<html" in page.text.lower()
        assert c.get("/v1/models").json()["data"][0]["id"].startswith("SmolLM2")


def test_a_replica_killed_under_load_is_replaced_and_no_request_hangs(replicated: LiveServer) -> None:
    url = replicated.url
    victims = replica_processes(replicated)
    assert len(victims) == REPLICAS
    victim = victims[0]
    body = {"prompt": "Once upon a time", "max_tokens": 24, "temperature": 0}
    deadline = 120  # seconds a request may take at most; a hung one fails here

    def one(k: int) -> str:
        """A request's outcome: "ok", or the clear error it got."""
        try:
            with httpx.Client(base_url=url, timeout=deadline) as c:
                if k % 2:
                    r = c.post("/v1/completions", json=body)
                    if r.status_code == 200:
                        assert r.json()["choices"][0]["finish_reason"] == "length"
                        return "ok"
                    assert r.status_code >= 500, r.text
                    return f"error {r.status_code}"
                with c.stream("POST", "/v1/completions", json=body | {"stream": True}) as r:
                    if r.status_code != 200:
                        assert r.status_code >= 500
                        return f"error {r.status_code}"
                    events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
                if events and events[-1] == "[DONE]":
                    last = json.loads(events[-2])
                    if "error" in last:
                        return "error event"
                    assert last["choices"][0]["finish_reason"] == "length"
                    return "ok"
                return "stream cut"  # the connection ended without [DONE]: the client knows
        except httpx.TimeoutException:
            return "hung"
        except httpx.TransportError as e:  # connection reset: the client knows at once
            return f"transport {type(e).__name__}"

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(one, k) for k in range(24)]
        time.sleep(2)  # under way on both replicas
        victim.send_signal(signal.SIGKILL)
        outcomes = [f.result() for f in futures]
    assert "hung" not in outcomes, outcomes
    assert outcomes.count("ok") >= len(outcomes) // 2, outcomes
    # Ray's controller notices the death and starts a new replica.
    start = time.monotonic()
    while time.monotonic() < start + 180:
        try:
            if health(url)["replicas"] == REPLICAS and len(replica_processes(replicated)) == REPLICAS:
                break
        except httpx.HTTPError:
            pass
        time.sleep(1)
    assert health(url)["replicas"] == REPLICAS
    assert victim.pid not in [p.pid for p in replica_processes(replicated)]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(one, range(8))) == ["ok"] * 8
    assert replicated.alive()
