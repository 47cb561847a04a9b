"""Continuous batching in `llaf serve`: requests join the batch between
passes and leave it when they end or their client hangs up, at most
--max-batch at once, the rest waiting in arrival order; each request's
output is the one it gets alone, greedy or sampled with its own seed.

A server with --max-batch 3 (tests/conftest.py's SmolLM2, multicore backend, 512
positions) runs every test here. "Running" means: a stream has sent its
first token and has hundreds still to come (400 tokens take many seconds),
so it holds its slot until the test hangs up.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

import llaf
from llaf.model import Cache
from llaf.server.app import create_app

from .conftest import FRANCE, PROMPT, SERVER_BACKEND, SERVER_CONTEXT, LiveServer, serving

MAX_BATCH = 3
LONG = {"prompt": "Once upon a time", "max_tokens": 400, "temperature": 0, "stream": True}

# Greedy and sampled, plain and chat, stop strings, several prompts in one
# request, ending by end of turn, stop string or length at different steps.
REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("/v1/completions", {"prompt": PROMPT, "max_tokens": 12, "temperature": 0}),
    ("/v1/completions", {"prompt": "Once upon a time", "max_tokens": 30, "temperature": 0}),
    ("/v1/chat/completions", {"messages": FRANCE, "temperature": 0}),
    ("/v1/completions", {"prompt": "Once upon a time", "max_tokens": 20, "temperature": 0.9, "top_p": 0.9,
                         "seed": 5}),
    ("/v1/completions", {"prompt": "1, 2, 3,", "max_tokens": 16, "temperature": 1.2, "top_k": 40,
                         "repetition_penalty": 1.3, "seed": 7}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "Write a poem about the sea."}],
                              "max_tokens": 25, "temperature": 0.7, "seed": 11}),
    ("/v1/completions", {"prompt": [PROMPT, "1, 2, 3,"], "max_tokens": 6, "temperature": 0}),
    ("/v1/completions", {"prompt": PROMPT, "max_tokens": 20, "temperature": 0,
                         "stop": ["."]}),
]


@pytest.fixture(scope="module")
def batched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serving(tmp_path_factory.mktemp("batched") / "serve.log", "--max-batch", str(MAX_BATCH)) as live:
        yield live


def health(c: httpx.Client) -> dict[str, Any]:
    return dict(c.get("/health").json())


def ask(c: httpx.Client, path: str, body: dict[str, Any], stream: bool) -> list[tuple[int, str, str | None]]:
    """A request's choices as (index, text, finish reason), and its token
    counts as a last entry; streamed or not, the same."""
    chat = path.endswith("chat/completions")
    if not stream:
        r = c.post(path, json=body)
        assert r.status_code == 200, r.text
        out = r.json()
        choices = [(ch["index"], ch["message"]["content"] if chat else ch["text"], ch["finish_reason"])
                   for ch in out["choices"]]
        usage = out["usage"]
    else:
        with c.stream("POST", path, json=body | {"stream": True, "stream_options": {"include_usage": True}}) as r:
            assert r.status_code == 200
            events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        texts: dict[int, str] = {}
        reasons: dict[int, str | None] = {}
        for chunk in chunks[:-1]:
            for ch in chunk["choices"]:
                text = ch["delta"].get("content", "") if chat else ch["text"]
                texts[ch["index"]] = texts.get(ch["index"], "") + text
                reasons[ch["index"]] = ch["finish_reason"] or reasons.get(ch["index"])
        choices = [(i, texts[i], reasons[i]) for i in sorted(texts)]
        usage = chunks[-1]["usage"]
    return [*choices, (-1, f"{usage['prompt_tokens']}+{usage['completion_tokens']}", None)]


def test_each_request_gets_in_a_batch_what_it_gets_alone(batched: LiveServer) -> None:
    with httpx.Client(base_url=batched.url, timeout=300) as c:
        alone = [ask(c, path, body, stream=False) for path, body in REQUESTS]
        # All at once, beside a long stream that keeps one slot busy: they
        # join and leave the batch at different steps, and wait for a slot.
        with c.stream("POST", "/v1/completions", json=LONG) as long:
            assert next(line for line in long.iter_lines() if line).startswith("data: {")
            def one(i: int) -> list[tuple[int, str, str | None]]:
                with httpx.Client(base_url=batched.url, timeout=300) as own:
                    return ask(own, *REQUESTS[i], stream=i % 2 == 1)

            with ThreadPoolExecutor(len(REQUESTS)) as pool:
                together = list(pool.map(one, range(len(REQUESTS))))
        assert together == alone
        assert health(c)["largest_batch"] == MAX_BATCH


def test_max_batch_caps_the_batch_and_the_rest_wait_in_arrival_order(batched: LiveServer) -> None:
    with httpx.Client(base_url=batched.url, timeout=60) as c, ExitStack() as stack:
        before = health(c)

        def start() -> tuple[ExitStack, Iterator[str]]:
            own = ExitStack()
            r = own.enter_context(c.stream("POST", "/v1/completions", json=LONG))
            assert r.status_code == 200
            stack.push(own)
            return own, r.iter_lines()

        def first_token(lines: Iterator[str]) -> None:
            assert next(line for line in lines if line).startswith("data: {")

        streams = [start() for _ in range(MAX_BATCH)]
        for _, lines in streams:
            first_token(lines)
        h = health(c)
        assert (h["running"], h["waiting"], h["max_batch"]) == (MAX_BATCH, 0, MAX_BATCH)
        # The batch is full: the next ones wait (their responses have begun:
        # they are queued), in order of arrival.
        d, e, f = start(), start(), start()
        assert (health(c)["running"], health(c)["waiting"]) == (MAX_BATCH, 3)
        # A waiting client that hangs up leaves the line.
        f[0].close()
        while health(c)["waiting"] != 2:
            time.sleep(0.05)
        # Hanging up frees a slot for the first in line, and only for it.
        streams[0][0].close()
        first_token(d[1])
        assert (health(c)["running"], health(c)["waiting"]) == (MAX_BATCH, 1)
        streams[1][0].close()
        first_token(e[1])
        assert (health(c)["running"], health(c)["waiting"]) == (MAX_BATCH, 0)
        stack.close()
        while (h := health(c))["pending"]:
            time.sleep(0.05)
        assert (h["running"], h["waiting"]) == (0, 0)
        assert h["cancelled"] == before["cancelled"] + 6
        assert h["largest_batch"] == MAX_BATCH
        # The freed slots serve the next requests.
        assert ask(c, *REQUESTS[2], stream=True)[0][1] == "The capital of France is Paris."
    assert batched.alive()


class BrokenOnce(Cache):
    """A cache whose first pass fails, as an engine failure would."""

    failed = False

    def run(self, feeds: Any) -> Any:
        if not BrokenOnce.failed:
            BrokenOnce.failed = True
            raise RuntimeError("the engine broke")
        return super().run(feeds)


def test_an_engine_failure_is_a_500_and_the_server_keeps_serving() -> None:
    from fastapi.testclient import TestClient

    model = llaf.load(backend=SERVER_BACKEND, context=SERVER_CONTEXT)
    app = create_app(model, max_batch=2)
    scheduler = app.state.server.scheduler
    scheduler.new_cache = lambda slots: BrokenOnce(model.params, slots, 64)
    # A request's end counted slowly, as on a busy machine: /health right
    # after each response must not show it still pending (it once did when
    # the response was sent before the count).
    job_over = scheduler._job_over
    scheduler._job_over = lambda job: (time.sleep(0.3), job_over(job))
    body = {"prompt": PROMPT, "max_tokens": 5, "temperature": 0}
    with TestClient(app) as c:
        r = c.post("/v1/completions", json=body)
        assert (r.status_code, r.json()) == (500, {"error": {"message": "generation failed: the engine broke",
                                                             "type": "server_error", "param": None, "code": None}})
        assert c.get("/health").json()["pending"] == 0
        r = c.post("/v1/completions", json=body)
        assert r.status_code == 200 and r.json()["choices"][0]["text"] == " Paris.\n\nThe"
        health = c.get("/health").json()
        assert (health["pending"], health["served"]) == (0, 1)


def test_a_bug_in_a_request_is_a_500_that_says_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only bad input is a 400: a failure of llaf's own while serving a request
    (here its tokenizer) is a 500 server_error naming the cause."""
    from fastapi.testclient import TestClient

    model = llaf.load(backend=SERVER_BACKEND, context=SERVER_CONTEXT)

    def broken(text: str) -> list[int]:
        raise RuntimeError("the tokenizer broke")

    monkeypatch.setattr(model.tokenizer, "encode", broken)
    body = {"prompt": PROMPT, "max_tokens": 5, "temperature": 0}
    with TestClient(create_app(model, max_batch=2), raise_server_exceptions=False) as c:
        r = c.post("/v1/completions", json=body)
        assert (r.status_code, r.json()) == (500, {"error": {
            "message": "internal error: RuntimeError: the tokenizer broke (a bug of llaf's, not a problem with the "
                       "input)", "type": "server_error", "param": None, "code": None}})
        assert c.get("/health").status_code == 200


def test_a_conversation_keeps_what_its_slot_computed() -> None:
    """A chat's next turn keeps the keys and values its slot computed for
    the turn before (usage's `cached_tokens`); a new chat sharing only the
    system prompt with that slot takes the empty one, leaving the
    conversation for its next turn. The reply is the one a server that
    computes the whole prompt gives."""
    from fastapi.testclient import TestClient

    model = llaf.load(backend=SERVER_BACKEND, context=SERVER_CONTEXT)

    def chat(c: TestClient, messages: list[dict[str, str]]) -> tuple[str, dict[str, Any]]:
        r = c.post("/v1/chat/completions", json={"messages": messages, "temperature": 0, "max_tokens": 60})
        assert r.status_code == 200, r.text
        return r.json()["choices"][0]["message"]["content"], r.json()["usage"]

    poem = [{"role": "user", "content": "Write a poem about the sea."}]
    with TestClient(create_app(model, max_batch=2)) as c:
        reply, usage = chat(c, poem)
        assert usage["prompt_tokens_details"] == {"cached_tokens": 0} and usage["completion_tokens"] == 60
        _, usage = chat(c, [{"role": "user", "content": "Name three colours."}])
        assert usage["prompt_tokens_details"] == {"cached_tokens": 0}
        turn = [*poem, {"role": "assistant", "content": reply}, {"role": "user", "content": "Now a shorter one."}]
        again, usage = chat(c, turn)
        # What the poem's slot holds: its prompt and the 59 tokens fed back
        # (the 60th was the last: never fed).
        first, ids = model.tokenizer.chat(poem), model.tokenizer.chat(turn)
        held = [int(t) for t in llaf.gen(first, model.params, 59)]
        shared = next((i for i, (a, b) in enumerate(zip(held, ids, strict=False)) if a != b), len(held))
        assert usage["prompt_tokens_details"]["cached_tokens"] == shared > len(first)
        assert usage["prompt_tokens"] == len(ids)
        assert "llaf_cached_tokens_total " + str(float(usage["prompt_tokens_details"]["cached_tokens"])) \
            in c.get("/metrics").text
    with TestClient(create_app(model, max_batch=2)) as fresh:
        assert chat(fresh, turn) == (again, usage | {"prompt_tokens_details": {"cached_tokens": 0}})


class Recording(Cache):
    """A cache that records how many tokens each pass fed to each slot."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._fed: list[dict[int, int]] = []

    def run(self, feeds: Any) -> Any:
        self._fed.append({slot: len(ids) for slot, ids in feeds.items()})
        return super().run(feeds)


def test_a_long_prompt_is_fed_in_parts_beside_the_running_sequences() -> None:
    """A pass takes at most PROMPT_TOKENS_A_PASS prompt tokens, the prompts
    in arrival order, beside the running sequences' next tokens; the output
    is what each prompt gets alone."""
    from fastapi.testclient import TestClient

    from llaf.server.scheduler import PROMPT_TOKENS_A_PASS

    assert PROMPT_TOKENS_A_PASS == 128
    model = llaf.load(backend=SERVER_BACKEND, context=SERVER_CONTEXT)
    app = create_app(model, max_batch=2)
    scheduler = app.state.server.scheduler
    caches: list[Recording] = []
    scheduler.new_cache = lambda slots: caches.append(Recording(model.params, slots, 64)) or caches[-1]
    a, b = ([(7 * i + k) % 5000 + 100 for i in range(150)] for k in (0, 1))
    with TestClient(app) as c:
        r = c.post("/v1/completions", json={"prompt": [a, b], "max_tokens": 2, "temperature": 0})
        assert r.status_code == 200, r.text
        texts = [ch["text"] for ch in sorted(r.json()["choices"], key=lambda ch: ch["index"])]
    assert caches[0]._fed == [{0: 128}, {0: 22, 1: 106}, {0: 1, 1: 44}, {1: 1}]
    assert texts == [model.tokenizer.decode(llaf.gen(p, model.params, 2)[150:].tolist()) for p in (a, b)]
