"""GPT-2 in llaf against Hugging Face transformers, on random weights:
logits within tests/parity.py's tolerance, greedy ids identical."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import llaf
from llaf import EngineError, LlafError

from .conftest import random_gpt2
from .parity import assert_cached_path_equals_uncached, assert_logits_close, hf_greedy, hf_logits, random_prompt

NEW_TOKENS = 64

SHAPES: dict[str, dict[str, Any]] = {
    # An odd small shape: 3 heads of 32, MLP 200, vocabulary 1000, context 64.
    "small": dict(n_embd=96, n_head=3, n_inner=200, vocab_size=1000, n_positions=96, n_layer=2),
    # GPT-2 124M's shape.
    "124M": dict(n_embd=768, n_head=12, n_layer=12, vocab_size=50257, n_positions=1024),
}
_models: dict[str, torch.nn.Module] = {}
_params: dict[tuple[str, str], llaf.Params] = {}


def hf_model(shape: str) -> torch.nn.Module:
    if shape not in _models:
        _models[shape] = random_gpt2(len(shape), **SHAPES[shape])
    return _models[shape]


def params_for(backend: str, shape: str) -> llaf.Params:
    if (backend, shape) not in _params:
        _params[backend, shape] = llaf.init(hf_model(shape), backend=backend, progress=False)
    return _params[backend, shape]


@pytest.fixture(scope="module", params=list(SHAPES))
def shape(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def params(backend: str, shape: str) -> llaf.Params:
    return params_for(backend, shape)


@pytest.fixture
def small(backend: str) -> llaf.Params:
    return params_for(backend, "small")


def test_logits_match_transformers_at_every_position(params: llaf.Params, shape: str) -> None:
    ids = random_prompt(params, 33)
    assert_logits_close(llaf.forward(params, ids), hf_logits(hf_model(shape), ids))


def test_greedy_ids_identical(params: llaf.Params, shape: str) -> None:
    ids = random_prompt(params, 7, seed=1)
    got = llaf.gen(ids, params, NEW_TOKENS)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, hf_greedy(hf_model(shape), ids, NEW_TOKENS))


def test_cached_path_equals_uncached(params: llaf.Params) -> None:
    assert_cached_path_equals_uncached(params, random_prompt(params, 24, seed=2), 10)


def test_gen_equals_greedy_loop_over_uncached_forward(small: llaf.Params) -> None:
    ids = list(random_prompt(small, 5, seed=3))
    want = list(ids)
    for _ in range(12):
        want.append(int(np.argmax(llaf.forward(small, want)[-1])))
    np.testing.assert_array_equal(llaf.gen(ids, small, 12), want)


def test_zero_new_tokens_returns_the_prompt(small: llaf.Params) -> None:
    ids = random_prompt(small, 5)
    out = llaf.gen(ids, small, 0)
    np.testing.assert_array_equal(out, ids)
    assert out.dtype == np.int64


def test_one_token_prompt(small: llaf.Params) -> None:
    ids = np.array([17])
    np.testing.assert_array_equal(llaf.gen(ids, small, 20), hf_greedy(hf_model("small"), ids, 20))
    assert_logits_close(llaf.forward(small, ids), hf_logits(hf_model("small"), ids))


def test_prompt_reaching_the_context_limit(small: llaf.Params) -> None:
    ids = random_prompt(small, small.context, seed=4)
    assert_logits_close(llaf.forward(small, ids), hf_logits(hf_model("small"), ids))
    np.testing.assert_array_equal(llaf.gen(ids[:-8], small, 8), hf_greedy(hf_model("small"), ids[:-8], 8))
    np.testing.assert_array_equal(llaf.gen(ids, small, 0), ids)
    with pytest.raises(LlafError, match=r"^96 prompt tokens \+ 1 new tokens exceed the context length 96$"):
        llaf.gen(ids, small, 1)
    _, cache = llaf.prefill(small, ids)
    with pytest.raises(LlafError, match=r"^the sequence already fills the context length 96$"):
        llaf.step(cache, 1)


def test_prompt_longer_than_the_context(small: llaf.Params) -> None:
    with pytest.raises(LlafError, match=r"^the prompt has 97 tokens, more than the context length 96$"):
        llaf.gen(random_prompt(small, 97), small, 1)


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        ([5, 1000, 3], r"^token id 1000 at position 1 is outside the vocabulary \[0, 1000\)$"),
        ([-1], r"^token id -1 at position 0 is outside the vocabulary \[0, 1000\)$"),
        ([], r"^the prompt is empty: give at least one token id$"),
        (np.array([[1, 2]]), r"^token ids must be one-dimensional, got shape \(1, 2\)$"),
        ([[1, 2], []], r"^prompt 1 is empty: give at least one token id$"),
        ([1.5], r"^token ids must be integers, got float64$"),
    ],
)
def test_bad_prompts_are_clear_errors(small: llaf.Params, ids: Any, message: str) -> None:
    with pytest.raises(LlafError, match=message):
        llaf.gen(ids, small, 3)


def test_bad_counts_are_clear_errors(small: llaf.Params) -> None:
    with pytest.raises(LlafError, match=r"^the token count must not be negative, got -1$"):
        llaf.gen([1, 2], small, -1)
    with pytest.raises(LlafError, match=r"^the token count must be an integer, got 2.0$"):
        llaf.gen([1, 2], small, 2.0)  # type: ignore[arg-type]


def test_engine_itself_rejects_out_of_range_input(small: llaf.Params) -> None:
    """Behind the Python checks, Futhark's own assertions stop a bad call
    before any out-of-bounds access."""
    ids, lens = np.array([1, 2], np.int64), np.array([2], np.int64)
    with pytest.raises(EngineError, match=r"^gpt2_gen failed: "):
        small.entry("gen", small.handle, np.array([1, 5000], np.int64), lens, np.int64(3))
    with pytest.raises(EngineError, match=r"^gpt2_gen failed: "):
        small.entry("gen", small.handle, ids, lens, np.int64(small.context))
    with pytest.raises(EngineError, match=r"^gpt2_gen failed: "):
        small.entry("gen", small.handle, ids, np.array([1], np.int64), np.int64(3))
    # another slot, a position past the cache (rounded up to a panel of 32), a token id, a negative position
    for ids, slots, pos in (([1], [1], [0]), ([1], [0], [32]), ([1000], [0], [0]), ([1], [0], [-1])):
        cache = small.entry("cache", small.handle, np.int64(1), np.int64(4))  # a failed call consumes it
        with pytest.raises(EngineError, match=r"^gpt2_run failed: "):
            small.entry("run", small.handle, cache, *(np.array(a, np.int64) for a in (ids, slots, pos)),
                        np.array([0], np.int64))
