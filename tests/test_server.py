"""`llaf serve` against real clients: the official openai package (plain and
streaming), raw HTTP for bad requests and a client that hangs up mid-stream,
and a load test of 16 concurrent clients. The server runs SmolLM2 greedy
(temperature 0) with a 512-token context (tests/conftest.py)."""

from __future__ import annotations

import json
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest

import llaf
from llaf.server.app import create_app
from llaf.server.guards import HostCheck, default_allowed_hosts

from .conftest import (
    FRANCE,
    MODEL_ID,
    PROMPT,
    SERVER_BACKEND,
    SERVER_CONTEXT,
    SERVER_HEADER_TIMEOUT,
    SERVER_MAX_BODY,
    LiveServer,
    start_server,
    stop_server,
)


def test_health_and_models(http: httpx.Client, client: openai.OpenAI) -> None:
    health = http.get("/health").json()
    assert health["status"] == "ok" and health["model"] == MODEL_ID
    head = http.head("/health")
    assert head.status_code == 200 and head.content == b""
    models = client.models.list().data
    assert [m.id for m in models] == [MODEL_ID]
    assert models[0].owned_by == "llaf"
    assert client.models.retrieve(MODEL_ID).id == MODEL_ID


def test_health_said_loading_before_the_model_was_ready(server: LiveServer) -> None:
    """The port opens before the model loads: the first answer was a 503."""
    assert server.first_health == (503, {"status": "loading", "model": MODEL_ID})


def test_a_request_naming_another_model_is_answered_by_the_served_one(client: openai.OpenAI) -> None:
    out = client.chat.completions.create(model="gpt-4", messages=FRANCE, temperature=0)
    assert out.model == MODEL_ID
    assert out.choices[0].message.content == "The capital of France is Paris."


def test_while_the_model_loads_every_route_answers_503() -> None:
    from fastapi.testclient import TestClient

    with TestClient(create_app(None, MODEL_ID)) as c:
        r = c.get("/health")
        assert (r.status_code, r.json()) == (503, {"status": "loading", "model": MODEL_ID})
        for method, path, body in [("GET", "/v1/models", None), ("GET", f"/v1/models/{MODEL_ID}", None),
                                   ("POST", "/v1/completions", {"prompt": "Hi", "model": "gpt-4"}),
                                   ("POST", "/v1/chat/completions", {"messages": FRANCE})]:
            r = c.request(method, path, json=body)
            assert (r.status_code, r.json()) == (503, {"error": {
                "message": "the model is still loading; /health says when it is ready", "type": "server_error",
                "param": None, "code": "model_loading"}}), path


def test_strict_model_refuses_another_model_name() -> None:
    from fastapi.testclient import TestClient

    model = llaf.load(backend=SERVER_BACKEND, context=SERVER_CONTEXT)
    body = {"prompt": PROMPT, "max_tokens": 2, "temperature": 0}
    with TestClient(create_app(model, strict_model=True)) as c:
        r = c.post("/v1/completions", json=body | {"model": "gpt-4"})
        assert (r.status_code, r.json()) == error(404, f"the model 'gpt-4' does not exist; this server has "
                                                       f"'{MODEL_ID}'", "model", "model_not_found")
        r = c.post("/v1/completions", json=body | {"model": MODEL_ID})
        assert r.status_code == 200 and r.json()["choices"][0]["text"] == " Paris."


def test_completion_with_the_openai_client(client: openai.OpenAI) -> None:
    out = client.completions.create(model=MODEL_ID, prompt=PROMPT, max_tokens=5, temperature=0)
    assert out.object == "text_completion" and out.model == MODEL_ID
    assert [c.text for c in out.choices] == [" Paris.\n\nThe"]
    assert out.choices[0].finish_reason == "length"
    assert out.usage is not None
    assert (out.usage.prompt_tokens, out.usage.completion_tokens, out.usage.total_tokens) == (5, 5, 10)


def test_streamed_completion_with_the_openai_client(client: openai.OpenAI) -> None:
    chunks = list(client.completions.create(model=MODEL_ID, prompt=PROMPT, max_tokens=5, temperature=0,
                                            stream=True))
    pieces = [c.choices[0].text for c in chunks if c.choices[0].text]
    assert pieces == [" Paris", ".", "\n", "\n", "The"]
    assert [c.choices[0].finish_reason for c in chunks][-1] == "length"
    assert all(c.object == "text_completion" for c in chunks)
    assert len({c.id for c in chunks}) == 1


def test_chat_with_the_openai_client(client: openai.OpenAI) -> None:
    out = client.chat.completions.create(model=MODEL_ID, messages=FRANCE, temperature=0)
    assert out.object == "chat.completion"
    assert out.choices[0].message.role == "assistant"
    assert out.choices[0].message.content == "The capital of France is Paris."
    assert out.choices[0].finish_reason == "stop"
    assert out.usage is not None
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (37, 7)


def test_streamed_chat_with_the_openai_client(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model=MODEL_ID, messages=FRANCE, temperature=0, stream=True,
                                                 stream_options={"include_usage": True}))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert pieces == ["The", " capital", " of", " France", " is", " Paris", "."]
    assert chunks[-2].choices[0].finish_reason == "stop"
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None and usage.completion_tokens == 7


def test_sampling_options_reach_the_sampler(client: openai.OpenAI) -> None:
    def text(**options: Any) -> str:
        out = client.completions.create(model=MODEL_ID, prompt="Once upon a time", max_tokens=12, **options)
        return out.choices[0].text

    assert text(temperature=1.0, seed=1) == text(temperature=1.0, seed=1)
    assert text(temperature=1.0, seed=1) != text(temperature=1.0, seed=2)
    assert text(temperature=0.8, seed=3, extra_body={"top_k": 1}) == text(temperature=0)
    stopped = client.completions.create(model=MODEL_ID, prompt=PROMPT, max_tokens=8, temperature=0, stop=["."])
    assert stopped.choices[0].text == " Paris" and stopped.choices[0].finish_reason == "stop"


def test_several_prompts_give_one_choice_each(http: httpx.Client) -> None:
    out = http.post("/v1/completions", json={"prompt": [PROMPT, "1, 2, 3,"], "max_tokens": 3,
                                             "temperature": 0}).json()
    assert [(c["index"], c["text"]) for c in out["choices"]] == [(0, " Paris.\n"), (1, " 4,")]
    assert out["usage"]["completion_tokens"] == 6


def error(status: int, message: str, param: str | None = None, code: str | None = None) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


LONG = "x " * 600  # 601 tokens
SURROGATE = "a lone surrogate \\ud800 at character 0"


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/v1/completions", '{"prompt": }', error(400, "the request body is not valid JSON (Expecting value)")),
        ("/v1/completions", "{", error(400, "the request body is not valid JSON (Expecting property name enclosed in "
                                         "double quotes)")),
        ("/v1/completions", "", error(400, "the request body must be a JSON object")),
        ("/v1/chat/completions", "[1, 2]", error(400, "the request body must be a JSON object")),
        ("/v1/completions", {"max_tokens": 4}, error(400, "prompt: a required field is missing", "prompt")),
        # (a part of a message's content, the union's member name left out)
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": [{"type": "text"}]}]},
         error(400, "messages[0].content[0].text: a required field is missing", "messages[0].content[0].text")),
        ("/v1/completions", {"prompt": 5}, error(400, "prompt: Input should be a valid string", "prompt")),
        ("/v1/completions", {"prompt": "Hi", "max_tokens": "4"},
         error(400, "max_tokens: Input should be a valid integer", "max_tokens")),
        ("/v1/chat/completions", {"messages": [{"role": "robot", "content": "Hi"}]},
         error(400, "messages[0].role: Input should be 'system', 'developer', 'user' or 'assistant'",
               "messages[0].role")),
        ("/v1/chat/completions", {"messages": []}, error(400, "messages must not be empty", "messages")),
        ("/v1/completions", {"prompt": "Hi", "max_tokens": -5}, error(400, "max_tokens must be at least 1, got -5",
                                                                       "max_tokens")),
        ("/v1/chat/completions", {"messages": FRANCE, "max_completion_tokens": 0},
         error(400, "max_completion_tokens must be at least 1, got 0", "max_completion_tokens")),
        ("/v1/completions", {"prompt": PROMPT, "max_tokens": 10**12},
         error(400, f"the prompt has 5 tokens and max_tokens is {10**12}: together more than the context length "
                    f"{SERVER_CONTEXT}", "max_tokens", "context_length_exceeded")),
        ("/v1/chat/completions", {"messages": FRANCE, "max_completion_tokens": 500},
         error(400, f"the messages have 37 tokens and max_completion_tokens is 500: together more than the "
                    f"context length {SERVER_CONTEXT}", "max_completion_tokens", "context_length_exceeded")),
        ("/v1/completions", {"prompt": LONG},
         error(400, f"the prompt has 601 tokens, but the context length is {SERVER_CONTEXT}: no room for the reply",
               "prompt", "context_length_exceeded")),
        ("/v1/completions", {"prompt": "Hi", "temperature": -1}, error(400, "temperature must be >= 0, got -1.0",
                                                                        "temperature")),
        ("/v1/completions", {"prompt": "Hi", "top_p": 1.5}, error(400, "top_p must be in (0, 1], got 1.5", "top_p")),
        ("/v1/chat/completions", {"messages": FRANCE, "top_k": -1}, error(400, "top_k must be >= 0, got -1", "top_k")),
        ("/v1/completions", {"prompt": "Hi", "repetition_penalty": 0},
         error(400, "repetition_penalty must be > 0, got 0.0", "repetition_penalty")),
        ("/v1/completions", {"prompt": "Hi", "stop": ["a", "b", "c", "d", "e"]},
         error(400, "stop may hold at most 4 strings, got 5", "stop")),
        ("/v1/completions", {"prompt": "Hi", "n": 17}, error(400, "n must be in [1, 16], got 17", "n")),
        # A field llaf does not implement is named, never silently ignored (a null is a field left unset).
        ("/v1/chat/completions", {"messages": FRANCE, "tools": [], "logit_bias": None},
         error(400, "tools: llaf does not support this field", "tools")),
        ("/v1/completions", {"prompt": "Hi", "logit_bias": {"50": 10}},
         error(400, "logit_bias: llaf does not support this field", "logit_bias")),
        ("/v1/completions", {"prompt": "Hi", "echo": True},
         error(400, "echo: llaf does not support this field", "echo")),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi", "name": "ann"}]},
         error(400, "messages[0].name: llaf does not support this field", "messages[0].name")),
        ("/v1/embeddings", {"input": "Hi", "dimensions": 8},
         error(400, "dimensions: llaf does not support this field", "dimensions")),
        ("/v1/completions", {"prompt": "Hi", "logprobs": 6},
         error(400, "logprobs must be in [0, 5], got 6", "logprobs")),
        ("/v1/chat/completions", {"messages": FRANCE, "top_logprobs": 2},
         error(400, "top_logprobs needs logprobs: true", "top_logprobs")),
        ("/v1/chat/completions", {"messages": FRANCE, "logprobs": True, "top_logprobs": 21},
         error(400, "top_logprobs must be in [0, 20], got 21", "top_logprobs")),
        ("/v1/completions", {"prompt": "Hi", "presence_penalty": 2.5},
         error(400, "presence_penalty must be in [-2, 2], got 2.5", "presence_penalty")),
        ("/v1/completions", {"prompt": "Hi", "min_p": -0.1}, error(400, "min_p must be in [0, 1], got -0.1", "min_p")),
        ("/v1/completions", {"prompt": [1, 49152]},
         error(400, "prompt: token id 49152 is not in the vocabulary (0 to 49151)", "prompt")),
        ("/v1/completions", {"prompt": [[1], [2, 50000]]},
         error(400, "prompt[1]: token id 50000 is not in the vocabulary (0 to 49151)", "prompt[1]")),
        ("/v1/completions", {"prompt": [[1], []]}, error(400, "the prompt is empty", "prompt")),
        ("/v1/embeddings", {"input": []}, error(400, "input must not be an empty list", "input")),
        ("/v1/embeddings", {"input": [[5, 60000]]},
         error(400, "input[0]: token id 60000 is not in the vocabulary (0 to 49151)", "input[0]")),
        ("/v1/embeddings", {"input": ""}, error(400, "the input is empty", "input")),
        ("/detokenize", {"tokens": [1, 99999]},
         error(400, "tokens: token id 99999 is not in the vocabulary (0 to 49151)", "tokens")),
        ("/v1/completions", {"prompt": ""}, error(400, "the prompt is empty", "prompt")),
        # JSON's escapes can spell a lone surrogate, which no tokenizer takes.
        ("/v1/completions", '{"prompt": "\\ud800"}',
         error(400, f"prompt: the text is not valid Unicode ({SURROGATE})", "prompt")),
        ("/v1/completions", '{"prompt": ["Hi", "x\\udfff"]}',
         error(400, "prompt[1]: the text is not valid Unicode (a lone surrogate \\udfff at character 1)",
               "prompt[1]")),
        ("/v1/chat/completions", '{"messages": [{"role": "user", "content": "\\ud800"}]}',
         error(400, f"messages[0].content: the text is not valid Unicode ({SURROGATE})", "messages[0].content")),
        ("/v1/chat/completions", '{"messages": [{"role": "user", "content": [{"type": "text", "text": "\\ud800"}]}]}',
         error(400, f"messages[0].content[0].text: the text is not valid Unicode ({SURROGATE})",
               "messages[0].content[0].text")),
        ("/v1/completions", '{"prompt": "Hi", "model": "\\ud800"}',
         error(400, f"model: the text is not valid Unicode ({SURROGATE})", "model")),
        ("/v1/completions", b'{"prompt": "\xff\xfe"}',
         error(400, "the request body is not valid UTF-8 (byte 0xff at offset 12)")),
        # Far too long for the context by its size alone: refused untokenized
        # (SmolLM2's longest token is 162 bytes).
        ("/v1/completions", {"prompt": ["Hi", "x" * 90000]},
         error(400, f"the prompt has at least 556 tokens (90000 bytes), but the context length is {SERVER_CONTEXT}: "
                    f"no room for the reply", "prompt", "context_length_exceeded")),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x" * 45000}] * 2},
         error(400, f"the messages have at least 556 tokens (90000 bytes), but the context length is "
                    f"{SERVER_CONTEXT}: no room for the reply", "messages", "context_length_exceeded")),
        ("/v1/completions", {"prompt": "x" * SERVER_MAX_BODY},
         error(413, f"the request body is larger than {SERVER_MAX_BODY} bytes (llaf serve --max-body)")),
        ("/v1/engines", {}, error(404, "no route POST /v1/engines", code="not_found")),
    ],
)
def test_bad_requests_get_openai_errors(http: httpx.Client, path: str, body: Any,
                                        expected: tuple[int, dict[str, Any]]) -> None:
    content = body if isinstance(body, (str, bytes)) else json.dumps(body)
    r = http.post(path, content=content, headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json()) == expected


def test_the_openai_client_raises_on_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as e:
        client.models.retrieve("gpt-4")
    assert e.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError, match=re.escape("temperature must be >= 0, got -0.5")):
        client.completions.create(model=MODEL_ID, prompt="Hi", temperature=-0.5, stream=True)


def test_a_client_that_hangs_up_mid_stream_ends_its_generation(http: httpx.Client, server: LiveServer) -> None:
    before = http.get("/health").json()["cancelled"]
    # 400 tokens would take many seconds: hang up after the first chunk.
    with http.stream("POST", "/v1/completions", json={"prompt": "Once upon a time", "max_tokens": 400,
                                                      "temperature": 0, "stream": True}) as r:
        assert r.status_code == 200
        first = next(line for line in r.iter_lines() if line)
        assert first.startswith("data: {")
    deadline = time.monotonic() + 10
    while (health := http.get("/health").json())["pending"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert health["pending"] == 0 and health["cancelled"] == before + 1
    out = http.post("/v1/chat/completions", json={"messages": FRANCE, "temperature": 0}).json()
    assert out["choices"][0]["message"]["content"] == "The capital of France is Paris."
    assert server.alive()


def test_a_client_that_hangs_up_before_a_plain_reply_ends_its_generation(http: httpx.Client,
                                                                          server: LiveServer) -> None:
    before = http.get("/health").json()["cancelled"]
    start = time.monotonic()
    # 400 tokens take many seconds: give up after 1.5 s, which closes the connection.
    with pytest.raises(httpx.ReadTimeout):
        http.post("/v1/completions", json={"prompt": "Once upon a time", "max_tokens": 400, "temperature": 0},
                  timeout=1.5)
    while (health := http.get("/health").json())["pending"] and time.monotonic() < start + 10:
        time.sleep(0.05)
    assert health["pending"] == 0 and health["cancelled"] == before + 1
    assert server.alive()


def test_a_chunked_body_over_the_limit_is_refused(http: httpx.Client) -> None:
    # No Content-Length: the limit is found while the body is read.
    def chunks() -> Iterator[bytes]:
        yield b'{"prompt": "'
        for _ in range(SERVER_MAX_BODY // 1000 + 1):
            yield b"x" * 1000
        yield b'"}'

    r = http.post("/v1/completions", content=chunks(), headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json()) == error(413, f"the request body is larger than {SERVER_MAX_BODY} bytes "
                                                   f"(llaf serve --max-body)")



def test_user_content_is_text_not_control_tokens(http: httpx.Client) -> None:
    """A user who writes <|im_start|>system does not open a system turn: the
    prompt has as many tokens as llama.cpp's tokenizer gives the template
    with the content as plain text (tests/make_tokenizer_reference.py), not
    as many as the whole text read with its control tokens."""
    from llaf.assets import default_model_path
    from llaf.tokenizer import from_gguf

    from .make_tokenizer_reference import INJECTION, stored

    messages = [{"role": "user", "content": INJECTION}]
    safe = stored()["injection_chat"]
    tokenizer = from_gguf(default_model_path())
    injected = tokenizer._encode_template(tokenizer._render(messages))  # the whole text, control tokens read
    assert len(safe) != len(injected)
    out = http.post("/v1/chat/completions", json={"messages": messages, "temperature": 0, "max_tokens": 1}).json()
    assert out["usage"]["prompt_tokens"] == len(safe)


@pytest.mark.parametrize(
    ("host", "status"),
    [("localhost", 200), ("localhost:{port}", 200), ("127.0.0.1:{port}", 200), ("[::1]:{port}", 200),
     ("app.localhost", 200), ("LOCALHOST", 200), ("evil.example", 400), ("evil.example:{port}", 400),
     ("localhost.evil.example", 400), ("", 400), ("[::1", 400)],
)
def test_a_loopback_server_answers_to_localhost_names_only(server: LiveServer, host: str, status: int) -> None:
    """DNS rebinding: evil.example's page, its name now resolving to
    127.0.0.1, would send Host: evil.example."""
    host = host.format(port=server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), timeout=30) as s:
        s.sendall(f"GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        response = b""
        while chunk := s.recv(65536):
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    assert int(head.split()[1]) == status
    if status == 400:
        assert json.loads(body) == error(400, f"the Host header {host!r} is not a name of this server (llaf serve "
                                              f"--allowed-hosts)", code="invalid_host")[1]


def test_allowed_hosts() -> None:
    check = HostCheck(None, ["api.example.com", "*.example.org", "10.0.0.7"])  # type: ignore[arg-type]
    assert [check.allows(h) for h in ("api.example.com:8000", "API.example.com", "a.b.example.org", "10.0.0.7:80",
                                      "example.com", "example.org", "localhost", None, "")] == [True] * 4 + [False] * 5
    assert HostCheck(None, ["*"]).allows("anything.example")  # type: ignore[arg-type]
    assert default_allowed_hosts("127.0.0.1", loopback=True) == ["localhost", "*.localhost", "127.0.0.1", "::1",
                                                                  "127.0.0.1"]
    assert default_allowed_hosts("0.0.0.0", loopback=False) is None


def test_a_client_that_sends_half_its_headers_is_cut_off(server: LiveServer) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        start = time.monotonic()
        s.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n")  # and never the blank line
        assert s.recv(1000) == b""  # closed
        assert SERVER_HEADER_TIMEOUT - 0.5 < time.monotonic() - start < SERVER_HEADER_TIMEOUT + 10
    # On a kept-alive connection, the next request's headers have the same deadline.
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        response = b""
        while not response.endswith(b"}"):
            response += s.recv(65536)
        assert response.startswith(b"HTTP/1.1 200 ")
        start = time.monotonic()
        s.sendall(b"GET /health HTTP/1.1\r\n")
        assert s.recv(1000) == b""
        assert SERVER_HEADER_TIMEOUT - 0.5 < time.monotonic() - start < SERVER_HEADER_TIMEOUT + 10
    assert server.alive()


def test_shutdown_ends_requests_with_an_error_and_no_traceback(tmp_path: Any) -> None:
    """Ctrl-C while one request streams and another waits: after the grace
    period (by default half a second) the stream gets an error event and
    [DONE], the waiting request a 503, within a second; the log has no
    traceback."""
    live = start_server(tmp_path / "serve.log")
    try:
        body = {"prompt": "Once upon a time", "max_tokens": 400, "temperature": 0}
        waiting: list[httpx.Response] = []
        with httpx.Client(base_url=live.url, timeout=60) as c, \
                c.stream("POST", "/v1/completions", json=body | {"stream": True}) as r:
            lines = r.iter_lines()
            assert next(line for line in lines if line).startswith("data: {")
            thread = threading.Thread(target=lambda: waiting.append(c.post("/v1/completions", json=body)))
            thread.start()
            while c.get("/health").json()["pending"] < 2:
                time.sleep(0.05)
            live.process.send_signal(signal.SIGINT)
            signalled = time.monotonic()
            events = [line[6:] for line in lines if line.startswith("data: ")]
            thread.join()
            ended = time.monotonic() - signalled
        assert ended < 1.0, f"the requests ended {ended:.2f} s after Ctrl-C"
        assert events[-2:] == ['{"error": {"message": "the server is shutting down", "type": "server_error", '
                               '"param": null, "code": null}}', "[DONE]"]
        assert waiting[0].status_code == 503
        assert waiting[0].json() == {"error": {"message": "the server is shutting down", "type": "server_error",
                                               "param": None, "code": None}}
        live.process.wait(timeout=30)  # it stops on its own
        assert "Traceback" not in live.output() and "CancelledError" not in live.output()
    finally:
        if live.alive():
            stop_server(live)


CLIENTS, REQUESTS = 16, 10


def test_load_16_clients_times_10_requests(server: LiveServer) -> None:
    """Every request answered, and answered right (greedy: the same text every
    time), half of the clients streaming; the server alive after."""

    def client(number: int) -> list[str]:
        texts = []
        with httpx.Client(base_url=server.url, timeout=300) as c:
            for _ in range(REQUESTS):
                body = {"prompt": PROMPT, "max_tokens": 4, "temperature": 0, "stream": number % 2 == 1}
                if body["stream"]:
                    with c.stream("POST", "/v1/completions", json=body) as r:
                        assert r.status_code == 200
                        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
                    assert events[-1] == "[DONE]"
                    texts.append("".join(json.loads(e)["choices"][0]["text"] for e in events[:-1]))
                else:
                    r = c.post("/v1/completions", json=body)
                    assert r.status_code == 200, r.text
                    texts.append(r.json()["choices"][0]["text"])
        return texts

    start = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(client, range(CLIENTS)))
    seconds = time.monotonic() - start
    texts = [t for r in results for t in r]
    assert len(texts) == CLIENTS * REQUESTS
    assert set(texts) == {" Paris.\n\n"}
    print(f"load test: {CLIENTS} clients x {REQUESTS} requests in {seconds:.1f} s "
          f"({CLIENTS * REQUESTS / seconds:.1f} requests/s)")
    assert server.alive()
    assert httpx.get(f"{server.url}/health").json()["pending"] == 0
