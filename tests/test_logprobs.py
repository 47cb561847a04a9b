"""Token log probabilities (llaf/logprobs.py) against transformers on a
random GPT-2: each generated token's log probability and its top
alternatives are the log-softmax of the model's own logits at that step,
whatever the sampling options (temperature, top-k) that chose it.

Tolerance: llaf's logits are within tests/parity.py's LOGIT_TOL × the
largest logit magnitude of transformers'; a log-softmax moves by at most
twice a logit's error, so log probabilities are checked to 2 × LOGIT_TOL × it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import llaf
from llaf import LlafError, SamplingParams

from .parity import LOGIT_TOL, hf_logits

PROMPT = "Hello, my dog is cute and"


def check_against_transformers(model: llaf.Model, hf: torch.nn.Module, prompt: list[int],
                               stream: llaf.generation.TokenStream, tokens: list[int], top: int) -> None:
    assert len(stream.logprobs) == len(tokens) > 0
    logits = hf_logits(hf, np.array(prompt + tokens))
    for i, (tok, got) in enumerate(zip(tokens, stream.logprobs, strict=True)):
        row = torch.log_softmax(torch.tensor(logits[len(prompt) - 1 + i], dtype=torch.float64), -1).numpy()
        tol = 2 * LOGIT_TOL * max(1.0, float(np.abs(logits[len(prompt) - 1 + i]).max()))
        assert got.token == tok
        assert abs(got.logprob - row[tok]) <= tol, (i, got.logprob, row[tok])
        want_top = np.argsort(-row, kind="stable")[:top]
        assert [t for t, _ in got.top] == want_top.tolist()
        np.testing.assert_allclose([lp for _, lp in got.top], row[want_top], rtol=0, atol=tol)


def test_greedy_tokens_log_probabilities_are_the_models(tiny_gpt2_model: Any, tiny_gpt2: torch.nn.Module) -> None:
    model: llaf.Model = tiny_gpt2_model
    prompt = model.tokenizer.encode(PROMPT)
    stream = model.stream_ids(prompt, 6, logprobs=3)
    tokens = list(stream)
    check_against_transformers(model, tiny_gpt2, prompt, stream, tokens, 3)
    assert all(e.top[0][0] == e.token for e in stream.logprobs)  # greedy: the likeliest


def test_sampled_tokens_log_probabilities_are_before_temperature(tiny_gpt2_model: Any,
                                                                   tiny_gpt2: torch.nn.Module) -> None:
    model: llaf.Model = tiny_gpt2_model
    prompt = model.tokenizer.encode(PROMPT)
    stream = model.stream_ids(prompt, 6, SamplingParams(temperature=3.0, top_k=20, seed=4), logprobs=2)
    tokens = list(stream)
    check_against_transformers(model, tiny_gpt2, prompt, stream, tokens, 2)
    assert any(e.top[0][0] != e.token for e in stream.logprobs)  # a hot draw, not always the likeliest


def test_text_streams_gather_log_probabilities_only_when_asked(tiny_gpt2_model: Any) -> None:
    model: llaf.Model = tiny_gpt2_model
    stream = model.stream(PROMPT, 4, logprobs=0)
    text = stream.text()
    assert "".join(model.tokenizer.decode([e.token]) for e in stream.logprobs) == text
    assert all(e.top == () and e.logprob <= 0 for e in stream.logprobs)
    plain = model.stream(PROMPT, 4)
    assert plain.text() == text and plain.logprobs == []
    with pytest.raises(LlafError, match=r"^logprobs must be in \[0, 20\], got 21$"):
        model.stream(PROMPT, 4, logprobs=21)
