"""Weight sources and llaf's weight file: round trips and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import llaf
from llaf import LlafError
from llaf.backend import Engine
from llaf.weights import Weights, from_transformers, load, save

from .conftest import random_gpt2

SMALL = dict(n_embd=64, n_head=4, n_inner=96, vocab_size=300, n_positions=48, n_layer=2)


@pytest.fixture(scope="module")
def small() -> Weights:
    return from_transformers(random_gpt2(3, **SMALL), progress=False)


def test_weight_file_round_trip(tmp_path: Path, small: Weights, backend: str) -> None:
    path = save(small, tmp_path / "small.safetensors")
    again = load(path)
    assert again.architecture == "gpt2" and again.hparams == small.hparams
    for name, value in small.arrays.items():
        np.testing.assert_array_equal(again.arrays[name], value)
    ids = [1, 2, 3]
    names = set(small.arrays)
    np.testing.assert_array_equal(llaf.gen(ids, llaf.init(path, backend=backend), 10),
                                  llaf.gen(ids, llaf.init(small, backend=backend), 10))
    assert set(small.arrays) == names  # a load drops only the arrays it made itself


def test_truncated_weight_file(tmp_path: Path, small: Weights) -> None:
    path = save(small, tmp_path / "w.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1000])
    with pytest.raises(LlafError, match=r"^cannot read weight file .*w\.safetensors: "):
        load(path)


def test_foreign_safetensors_file(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    save_file({"x": np.zeros(3, np.float32)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(LlafError, match=r"other\.safetensors is not a llaf weight file \(no format=llaf"):
        load(tmp_path / "other.safetensors")


def test_wrong_shape(small: Weights) -> None:
    bad = Weights("gpt2", small.hparams, small.arrays | {"wq": small.arrays["wq"][:, :, :-1]})
    with pytest.raises(LlafError, match=r"^tensor 'wq' has shape \(2, 64, 63\), expected \(2, 64, 64\)$"):
        llaf.init(bad)


def test_missing_tensor(small: Weights) -> None:
    arrays = dict(small.arrays)
    del arrays["bproj"]
    with pytest.raises(LlafError, match=r"^gpt2 weights lack tensor 'bproj'$"):
        llaf.init(Weights("gpt2", small.hparams, arrays))


def test_unknown_architecture() -> None:
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    model = GPTNeoXForCausalLM(GPTNeoXConfig(hidden_size=32, num_attention_heads=2, num_hidden_layers=1,
                                             intermediate_size=64, vocab_size=100))
    with pytest.raises(LlafError, match=r"^unsupported architecture 'gpt_neox': "
                                        r"llaf runs gpt2, llama, mistral, qwen2, qwen3, phi3, gemma$"):
        llaf.init(model)


def test_missing_path() -> None:
    with pytest.raises(LlafError, match=r"^no such file or directory: ./nowhere\.gguf$"):
        llaf.init("./nowhere.gguf")


def test_unknown_backend() -> None:
    with pytest.raises(LlafError, match=r"^unknown backend 'fortran': choose one of pyopencl, c, multicore"):
        Engine("fortran")
