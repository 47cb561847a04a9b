"""The Llama family in llaf against transformers, on random weights:
logits within tests/parity.py's tolerance, greedy ids identical."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import llaf
from llaf import EngineError

from .conftest import random_llama
from .parity import assert_cached_path_equals_uncached, assert_logits_close, hf_greedy, hf_logits, random_prompt

SHAPES: dict[str, dict[str, Any]] = {
    # Grouped-query attention, 9 query heads sharing 3 key/value heads (as
    # SmolLM2), tied output head.
    "gqa": dict(hidden_size=144, num_attention_heads=9, num_key_value_heads=3, intermediate_size=384,
                vocab_size=2000, max_position_embeddings=128, num_hidden_layers=3, tie_word_embeddings=True),
    # An odd shape: 5 heads of 16 sharing one key/value head, MLP 150, vocabulary
    # 777, untied head, Llama 3's rope scaling.
    "odd": dict(hidden_size=80, num_attention_heads=5, num_key_value_heads=1, intermediate_size=150,
                vocab_size=777, max_position_embeddings=100, num_hidden_layers=2, tie_word_embeddings=False,
                rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                              "high_freq_factor": 4.0, "original_max_position_embeddings": 32},
                rope_theta=500000.0),
}
_models: dict[str, torch.nn.Module] = {}
_params: dict[tuple[str, str], llaf.Params] = {}


def hf_model(shape: str) -> torch.nn.Module:
    if shape not in _models:
        _models[shape] = random_llama(len(shape), **SHAPES[shape])
    return _models[shape]


@pytest.fixture(scope="module", params=list(SHAPES))
def shape(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def params(backend: str, shape: str) -> llaf.Params:
    if (backend, shape) not in _params:
        _params[backend, shape] = llaf.init(hf_model(shape), backend=backend, progress=False)
    return _params[backend, shape]


def test_logits_match_transformers_at_every_position(params: llaf.Params, shape: str) -> None:
    ids = random_prompt(params, 40)
    assert_logits_close(llaf.forward(params, ids), hf_logits(hf_model(shape), ids))


def test_greedy_ids_identical(params: llaf.Params, shape: str) -> None:
    ids = random_prompt(params, 6, seed=1)
    np.testing.assert_array_equal(llaf.gen(ids, params, 64), hf_greedy(hf_model(shape), ids, 64))


def test_cached_path_equals_uncached(params: llaf.Params) -> None:
    assert_cached_path_equals_uncached(params, random_prompt(params, 30, seed=2), 12)


def test_prompt_reaching_the_context_limit(params: llaf.Params, shape: str) -> None:
    ids = random_prompt(params, params.context, seed=3)
    assert_logits_close(llaf.forward(params, ids), hf_logits(hf_model(shape), ids))
    with pytest.raises(llaf.LlafError, match=rf"^{params.context} prompt tokens \+ 1 new tokens exceed"):
        llaf.gen(ids, params, 1)


def test_engine_itself_rejects_out_of_range_input(params: llaf.Params, shape: str) -> None:
    """Behind the Python checks, the Llama entry points' own assertions stop a
    bad call before any out-of-bounds access: an EngineError naming the entry
    (a bug of llaf's if it ever reaches them, not the user's)."""
    from llaf.weights import from_transformers

    p, V, C = f"llama_{params.storage}", params.vocab, params.context
    ids, lens = np.array([1, 2], np.int64), np.array([2], np.int64)
    for bad in ((np.array([1, V], np.int64), lens, np.int64(3)),  # a token outside the vocabulary
                (ids, lens, np.int64(C - 1)),                     # past the context
                (ids, np.array([1], np.int64), np.int64(3)),      # lengths that do not add up
                (ids, lens, np.int64(-1))):                       # a negative count
        with pytest.raises(EngineError, match=rf"^{p}_gen failed: "):
            params.entry("gen", params.handle, *bad)
    # another slot, a position past the cache (rounded up to a panel of 32), a token id, a negative position
    for ids_, slots, pos in (([1], [1], [0]), ([1], [0], [32]), ([V], [0], [0]), ([1], [0], [-1])):
        cache = params.entry("cache", params.handle, np.int64(1), np.int64(4))  # a failed call consumes it
        with pytest.raises(EngineError, match=rf"^{p}_run failed: "):
            params.entry("run", params.handle, cache, *(np.array(a, np.int64) for a in (ids_, slots, pos)),
                         np.array([0], np.int64))
    cache = params.entry("cache", params.handle, np.int64(1), np.int64(4))
    with pytest.raises(EngineError, match=rf"^{p}_run failed: "):  # an output index past the tokens
        params.entry("run", params.handle, cache, *(np.array([1], np.int64) for _ in range(3)), np.array([1]))
    for slots, capacity in ((0, 4), (1, 0), (1, C + 1)):
        with pytest.raises(EngineError, match=rf"^{p}_cache failed: "):
            params.entry("cache", params.handle, np.int64(slots), np.int64(capacity))
    # init with twice the heads: more query rows than the query projection holds
    args = list(from_transformers(hf_model(shape), progress=False).init_args())
    assert args[0] == SHAPES[shape]["num_attention_heads"]
    args[0] = np.int64(args[0] * 2)
    with pytest.raises(EngineError, match=rf"^{p}_init failed: "):
        params.engine.call(f"{p}_init", *(params.engine.put(a) if isinstance(a, np.ndarray) else a for a in args))
    assert llaf.gen([1, 2], params, 2).shape == (4,)  # and the model still works


def test_mistral_without_sliding_window(backend: str) -> None:
    from transformers import MistralConfig, MistralForCausalLM

    torch.manual_seed(11)
    cfg = MistralConfig(hidden_size=96, num_attention_heads=6, num_key_value_heads=2, intermediate_size=200,
                        vocab_size=600, max_position_embeddings=80, num_hidden_layers=2, sliding_window=None,
                        initializer_range=0.08, pad_token_id=0)
    model = MistralForCausalLM(cfg).eval()
    params = llaf.init(model, backend=backend, progress=False)
    ids = random_prompt(params, 12, seed=5)
    assert_logits_close(llaf.forward(params, ids), hf_logits(model, ids))
    np.testing.assert_array_equal(llaf.gen(ids, params, 40), hf_greedy(model, ids, 40))


def test_hugging_face_directory_is_converted_once(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LLAF_CACHE", str(tmp_path / "cache"))
    model = hf_model("odd")
    model.save_pretrained(tmp_path / "odd")
    params = llaf.init(tmp_path / "odd", progress=False)
    assert len(list((tmp_path / "cache" / "weights").glob("*.safetensors"))) == 1
    ids = random_prompt(params, 9, seed=6)
    assert_logits_close(llaf.forward(params, ids), hf_logits(model, ids))
    again = llaf.init(tmp_path / "odd", progress=False)  # from llaf's cache this time
    np.testing.assert_array_equal(llaf.gen(ids, again, 20), hf_greedy(model, ids, 20))
