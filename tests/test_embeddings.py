"""Embeddings (`llaf.embed`, `Model.embed`): the mean over a prompt's tokens
of the model's final hidden states, after its final norm, against
transformers' on random weights (GPT-2 and Llama), within 1e-4 of the
largest state's magnitude (as tests/parity.py's logits); a batch gives
each prompt what it gets alone."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import llaf
from llaf import LlafError

from .conftest import random_llama

HIDDEN_TOL = 1e-4
LLAMA = dict(hidden_size=96, num_attention_heads=6, num_key_value_heads=2, intermediate_size=160, vocab_size=500,
             max_position_embeddings=64, num_hidden_layers=2, tie_word_embeddings=True)


def hf_mean_state(body: torch.nn.Module, ids: list[int]) -> np.ndarray:
    """transformers' last_hidden_state (after the final norm), mean over the tokens."""
    with torch.no_grad():
        h = body(torch.tensor([ids])).last_hidden_state[0].double()
    return h.mean(0).numpy()


def check(got: np.ndarray, want: np.ndarray) -> None:
    np.testing.assert_allclose(got, want, rtol=0, atol=HIDDEN_TOL * max(1.0, float(np.abs(want).max())))


def test_gpt2_embeddings_are_mean_final_hidden_states(tiny_gpt2_model: Any, tiny_gpt2: torch.nn.Module) -> None:
    params = tiny_gpt2_model.params
    prompts = [[464, 3290, 318, 257, 922], [15496, 11, 616], [50256]]
    raw = llaf.embed(params, prompts, normalize=False)
    assert raw.shape == (3, 64) and raw.dtype == np.float32
    for got, ids in zip(raw, prompts, strict=True):
        check(got, hf_mean_state(tiny_gpt2.transformer, ids))
    unit = llaf.embed(params, prompts)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(unit, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-6)
    alone = llaf.embed(params, prompts[1])
    np.testing.assert_allclose(alone, unit[1], rtol=0, atol=1e-6)


def test_llama_embeddings_are_mean_final_hidden_states(backend: str) -> None:
    hf = random_llama(3, **LLAMA)
    params = llaf.init(hf, backend=backend, progress=False)
    prompts = [list(range(7, 40, 3)), [1, 499, 2]]
    states = llaf.hidden(params, prompts)
    assert [s.shape for s in states] == [(11, 96), (3, 96)]
    for got, ids in zip(llaf.embed(params, prompts, normalize=False), prompts, strict=True):
        check(got, hf_mean_state(hf.model, ids))


def test_model_embed_takes_texts(tiny_gpt2_model: Any) -> None:
    model: llaf.Model = tiny_gpt2_model
    texts = ["The cat sat on the mat.", "Futhark is a functional array language.", "Hi"]
    vecs = model.embed(texts, batch=2)
    assert vecs.shape == (3, 64)
    np.testing.assert_allclose(vecs, llaf.embed(model.params, [model.tokenizer.encode(t) for t in texts]),
                               rtol=0, atol=1e-6)
    np.testing.assert_allclose(model.embed("Hi"), vecs[2], rtol=0, atol=1e-6)
    with pytest.raises(LlafError, match=r"^texts is empty: give at least one text$"):
        model.embed([])
    with pytest.raises(LlafError, match=r"^texts\[1\] has no tokens: an embedding needs at least one$"):
        model.embed(["a", ""])
