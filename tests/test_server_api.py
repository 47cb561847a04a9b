"""The OpenAI fields and llama.cpp endpoints of `llaf serve` (tests/conftest.py's
SmolLM2 server, multicore backend) as clients use them: logprobs and n through the
openai package, penalties and min_p, token-id prompts, /tokenize,
/detokenize, /props, /metrics and /v1/embeddings. What the server sends is
checked against the same model run in this process (the same engine gives
the same logits bit for bit, so the same tokens, log probabilities and
embeddings exactly)."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

import llaf

from .conftest import FRANCE, MODEL_ID, PROMPT, SERVER_BACKEND, SERVER_CONTEXT


@pytest.fixture(scope="module")
def local() -> llaf.Model:
    """The server's model, in this process."""
    return llaf.load(backend=SERVER_BACKEND, context=SERVER_CONTEXT)


def test_chat_logprobs_are_the_models(client: openai.OpenAI, local: llaf.Model) -> None:
    out = client.chat.completions.create(model=MODEL_ID, messages=FRANCE, temperature=0, max_tokens=4,
                                         logprobs=True, top_logprobs=2)
    choice = out.choices[0]
    assert choice.message.content == "The capital of France"
    assert choice.logprobs is not None and choice.logprobs.content is not None
    content = choice.logprobs.content
    stream = local.stream_chat(list(FRANCE), 4, logprobs=2)  # type: ignore[arg-type]
    assert stream.text() == "The capital of France"
    assert [c.token for c in content] == ["The", " capital", " of", " France"]
    assert [c.logprob for c in content] == [e.logprob for e in stream.logprobs]
    assert [[(t.token, t.logprob) for t in c.top_logprobs] for c in content] == \
        [[(local.tokenizer.decode([t]), lp) for t, lp in e.top] for e in stream.logprobs]
    assert content[1].bytes == list(b" capital")
    # Streamed, the same log probabilities arrive with the pieces.
    chunks = list(client.chat.completions.create(model=MODEL_ID, messages=FRANCE, temperature=0, max_tokens=4,
                                                 logprobs=True, top_logprobs=2, stream=True))
    streamed = [c for ch in chunks if ch.choices and ch.choices[0].logprobs
                for c in ch.choices[0].logprobs.content or []]
    assert [(c.token, c.logprob) for c in streamed] == [(c.token, c.logprob) for c in content]


def test_completion_logprobs_are_the_models(client: openai.OpenAI, local: llaf.Model) -> None:
    out = client.completions.create(model=MODEL_ID, prompt=PROMPT, max_tokens=3, temperature=0, logprobs=2)
    lp = out.choices[0].logprobs
    assert out.choices[0].text == " Paris.\n" and lp is not None
    stream = local.stream(PROMPT, 3, logprobs=2)
    stream.text()
    assert lp.tokens == [" Paris", ".", "\n"]
    assert lp.text_offset == [0, 6, 7]
    assert lp.token_logprobs == [e.logprob for e in stream.logprobs]
    assert lp.top_logprobs == [{local.tokenizer.decode([t]): v for t, v in e.top} for e in stream.logprobs]


def test_n_choices_each_reproducible_with_a_seed(client: openai.OpenAI) -> None:
    def texts(n: int, stream: bool = False) -> list[str]:
        options: dict[str, Any] = dict(model=MODEL_ID, messages=FRANCE, max_tokens=6, temperature=1.0, seed=5, n=n)
        if not stream:
            out = client.chat.completions.create(**options)
            assert [c.index for c in out.choices] == list(range(n))
            assert out.usage is not None and out.usage.prompt_tokens == 37  # the prompt counts once
            return [c.message.content or "" for c in out.choices]
        got = [""] * n
        for chunk in client.chat.completions.create(**options, stream=True):
            for c in chunk.choices:
                got[c.index] += c.delta.content or ""
        return got

    three = texts(3)
    assert len(set(three)) == 3  # each choice draws its own
    assert texts(3, stream=True) == three  # the same seed, the same choices, streamed or not
    assert texts(1) == three[:1]  # choice 0 is what n=1 gets


def test_penalties_and_min_p_reach_the_sampler(http: httpx.Client, local: llaf.Model) -> None:
    prompt = "1, 2, 3,"

    def text(**options: Any) -> str:
        r = http.post("/v1/completions", json={"prompt": prompt, "max_tokens": 8, **options})
        assert r.status_code == 200, r.text
        return str(r.json()["choices"][0]["text"])

    # The penalties of the generated ", " tokens turn the count into words.
    assert text(temperature=0) == " 4, 5, 6"
    penalized = text(temperature=0, frequency_penalty=1.5, presence_penalty=0.5)
    assert penalized == local.generate(prompt, 8, frequency_penalty=1.5, presence_penalty=0.5) == " 4, 5, and so"
    assert text(temperature=1.0, min_p=0.2, seed=3) == local.generate(prompt, 8, temperature=1.0, min_p=0.2, seed=3)


def test_prompts_of_token_ids(client: openai.OpenAI, local: llaf.Model) -> None:
    ids = local.tokenizer.encode(PROMPT)
    out = client.completions.create(model=MODEL_ID, prompt=ids, max_tokens=3, temperature=0)
    assert [c.text for c in out.choices] == [" Paris.\n"]
    out = client.completions.create(model=MODEL_ID, prompt=[ids, local.tokenizer.encode("1, 2, 3,")], max_tokens=3,
                                    temperature=0)
    assert [c.text for c in out.choices] == [" Paris.\n", " 4,"]


def test_tokenize_and_detokenize(http: httpx.Client, local: llaf.Model) -> None:
    ids = local.tokenizer.encode("Hello world, café")
    assert http.post("/tokenize", json={"content": "Hello world, café"}).json() == {"tokens": ids}
    pieces = http.post("/tokenize", json={"content": "Hello world", "with_pieces": True}).json()["tokens"]
    assert pieces == [{"id": 19556, "piece": "Hello"}, {"id": 905, "piece": " world"}]
    assert http.post("/detokenize", json={"tokens": ids}).json() == {"content": "Hello world, café"}


def test_props(http: httpx.Client) -> None:
    assert http.get("/props").json() == {
        "model": MODEL_ID, "model_path": f"{MODEL_ID}.gguf", "architecture": "llama", "context_length": SERVER_CONTEXT,
        "vocab_size": 49152, "storage": "q4", "backend": SERVER_BACKEND, "total_slots": 8}


def metrics(http: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def test_metrics_count_requests_tokens_and_time_to_first_token(http: httpx.Client) -> None:
    before = metrics(http)
    r = http.post("/v1/completions", json={"prompt": PROMPT, "max_tokens": 5, "temperature": 0})
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 5
    assert http.post("/v1/completions", json={"prompt": PROMPT, "tools": []}).status_code == 400
    after = metrics(http)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("llaf_requests_total", route="/v1/completions", status="200") == 1
    assert delta("llaf_requests_total", route="/v1/completions", status="400") == 1
    assert delta("llaf_prompt_tokens_total") == 5
    assert delta("llaf_completion_tokens_total") == 5
    assert delta("llaf_time_to_first_token_seconds_count") == 1
    assert after[("llaf_sequences_waiting", ())] == 0 and after[("llaf_requests_pending", ())] == 0


def test_embeddings_with_the_openai_client(client: openai.OpenAI, http: httpx.Client, local: llaf.Model) -> None:
    texts = ["The cat sat on the mat.", "Paris is the capital of France."]
    out = client.embeddings.create(model=MODEL_ID, input=texts)  # the client asks for base64 and decodes it
    want = local.embed(texts)
    assert [d.index for d in out.data] == [0, 1]
    np.testing.assert_array_equal(np.array([d.embedding for d in out.data], np.float32), want)
    assert out.usage.prompt_tokens == sum(len(local.tokenizer.encode(t)) for t in texts)
    body = http.post("/v1/embeddings", json={"input": texts[1], "encoding_format": "float"}).json()
    assert body["object"] == "list" and body["model"] == MODEL_ID
    np.testing.assert_array_equal(np.array(body["data"][0]["embedding"], np.float32), want[1])
    ids = local.tokenizer.encode(texts[0])
    b64 = http.post("/v1/embeddings", json={"input": ids, "encoding_format": "base64"}).json()["data"][0]
    np.testing.assert_array_equal(np.frombuffer(base64.b64decode(b64["embedding"]), "<f4"), want[0])
