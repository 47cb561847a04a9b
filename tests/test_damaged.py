"""Damaged GGUF model files, and files that are not what llaf expects."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

import llaf
from llaf import LlafError
from llaf.weights import Weights, load

from .conftest import random_llama
from .gguf_models import write_gguf

CONFIG = dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, intermediate_size=128,
              vocab_size=256, max_position_embeddings=64, num_hidden_layers=2, tie_word_embeddings=False)


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return random_llama(11, **CONFIG)


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory, model: torch.nn.Module) -> Path:
    """A good Q4_1 file (its norms F32, as llama.cpp writes them)."""
    return write_gguf(model, tmp_path_factory.mktemp("good") / "good.gguf", "Q4_1")


@pytest.fixture(autouse=True)
def no_warnings() -> Iterator[None]:
    """A numpy RuntimeWarning beside the error message fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def same(a: Weights, b: Weights) -> None:
    assert (a.hparams, a.storage, sorted(a.arrays)) == (b.hparams, b.storage, sorted(b.arrays))
    for name in a.arrays:
        np.testing.assert_array_equal(a.arrays[name], b.arrays[name], err_msg=name)


def test_not_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.gguf"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero")):
        with pytest.raises(LlafError, match=f"^{path} is not a regular file$"):
            load(path)
        with pytest.raises(LlafError, match=f"^{path.name} is not a readable GGUF file: it is not a regular file$"):
            llaf.gguf_file.open_gguf(path)


def test_gguf_file_without_the_suffix(tmp_path: Path, good: Path) -> None:
    """A GGUF file is known by its magic bytes, whatever its name."""
    from llaf.tokenizer import GGUFTokenizer, for_model

    path = tmp_path / "model.bin"
    path.write_bytes(good.read_bytes())
    same(load(path), load(good))
    from .gguf_models import write_sentencepiece_gguf

    tok = write_sentencepiece_gguf(tmp_path / "sp.gguf").rename(tmp_path / "sp")
    assert isinstance(for_model(tok, "llama"), GGUFTokenizer)
