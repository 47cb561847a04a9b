"""`llaf serve`'s options beyond OpenAI's: a chat request's `truncate`
(the oldest turns dropped, as `Model.chat(..., truncate=True)`), and
`--threads`."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from llaf.generation import fit_chat
from llaf.tokenizer import from_gguf

from .conftest import SERVER_CONTEXT, LiveServer
from .test_cli import llaf


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=300) as c:
        yield c


# Six turns of about 100 tokens each: more than the server's 512-token context.
TURNS = [m for i in range(6) for m in ({"role": "user", "content": f"Question {i}: " + "tell me about the sea. " * 18},
                                       {"role": "assistant", "content": "Blue."})]
LONG = [{"role": "system", "content": "Answer in one word."}, *TURNS[:-1]]


def test_truncate_drops_the_oldest_turns(http: httpx.Client) -> None:
    from llaf.assets import default_model_path

    body = {"messages": LONG, "max_tokens": 8, "temperature": 0}
    refused = http.post("/v1/chat/completions", json=body)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "context_length_exceeded"
    out = http.post("/v1/chat/completions", json=body | {"truncate": True})
    assert out.status_code == 200, out.text
    # What Model.chat(..., truncate=True) would send: the same prompt.
    ids, dropped, _ = fit_chat(from_gguf(default_model_path()), LONG, 8, SERVER_CONTEXT)
    assert dropped == 6 and out.json()["usage"]["prompt_tokens"] == len(ids)
    last_alone = [LONG[0], {"role": "user", "content": "sea " * 600}]
    too_long = http.post("/v1/chat/completions", json={"messages": last_alone, "truncate": True})
    assert too_long.status_code == 400
    assert too_long.json()["error"]["code"] == "context_length_exceeded"
    assert too_long.json()["error"]["message"].startswith("the last message needs ")


def test_serve_takes_threads_for_the_multicore_backend() -> None:
    # Refused before the model loads.
    for flags, message in [(["--backend", "c", "--threads", "2"],
                            "llaf: a thread count is for the multicore backend; the c backend takes none\n"),
                           (["--backend", "multicore", "--threads", "0"],
                            "llaf: the thread count must be a positive integer, got 0\n")]:
        out = llaf("serve", "--port", "0", *flags)
        assert (out.returncode, out.stderr) == (1, message)
