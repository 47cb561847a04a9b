"""GGUF files: every supported tensor type against transformers reading the
same file, and clear errors for files llaf cannot use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import llaf
from llaf import LlafError

from .conftest import random_llama
from .gguf_models import TYPES, write_gguf
from .parity import assert_logits_close, hf_greedy, hf_logits

CONFIG = dict(hidden_size=128, num_attention_heads=4, num_key_value_heads=2, intermediate_size=256,
              vocab_size=512, max_position_embeddings=96, num_hidden_layers=2, tie_word_embeddings=False)


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return random_llama(7, **CONFIG)


@pytest.fixture(scope="module")
def gguf_dir(tmp_path_factory: pytest.TempPathFactory, model: torch.nn.Module) -> Path:
    d = tmp_path_factory.mktemp("gguf")
    for qtype in TYPES:
        write_gguf(model, d / f"model-{qtype}.gguf", qtype)
    return d


def hf_from_gguf(path: Path) -> torch.nn.Module:
    from transformers import LlamaForCausalLM

    return LlamaForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()


@pytest.mark.parametrize("qtype", TYPES)
def test_gguf_matches_transformers_reading_the_same_file(backend: str, gguf_dir: Path, qtype: str) -> None:
    path = gguf_dir / f"model-{qtype}.gguf"
    params = llaf.init(str(path), backend=backend, progress=False)
    hf = hf_from_gguf(path)
    ids = np.random.default_rng(0).integers(0, 512, 24)
    assert_logits_close(llaf.forward(params, ids), hf_logits(hf, ids))
    np.testing.assert_array_equal(llaf.gen(ids[:5], params, 40), hf_greedy(hf, ids[:5], 40))


def test_f32_gguf_equals_the_original_model(gguf_dir: Path, model: torch.nn.Module) -> None:
    """The query/key row permutation of llama.cpp is undone exactly."""
    from llaf.weights import from_transformers, load

    direct, via_gguf = from_transformers(model, progress=False), load(gguf_dir / "model-F32.gguf")
    for name, value in direct.arrays.items():
        np.testing.assert_array_equal(via_gguf.arrays[name], value, err_msg=name)


STORAGES = [("F32", None, "f32"), ("F16", None, "f16"), ("Q8_0", None, "q8"), ("Q4_0", None, "q4"),
            ("Q4_1", None, "q4"), ("Q4_1", "Q8_0", "q4"), ("Q8_0", "Q4_1", "q8"), ("Q4_0", "F16", "f32")]


@pytest.mark.parametrize(("qtype", "head_qtype", "storage"), STORAGES)
def test_matrices_keep_their_file_form_exactly(tmp_path: Path, model: torch.nn.Module, qtype: str,
                                               head_qtype: str | None, storage: str) -> None:
    """The smallest storage that holds the file's tensors exactly is chosen,
    and its matrices decode to the very floats gguf-py's dequantization gives."""
    from llaf.weights import load

    path = write_gguf(model, tmp_path / "m.gguf", qtype, head_qtype)
    native, f32 = load(path), load(path, storage="f32")
    assert (native.storage, f32.storage) == (storage, "f32")
    for name in f32.arrays:
        np.testing.assert_array_equal(native.dense(name), f32.arrays[name], err_msg=name)


@pytest.mark.parametrize(("qtype", "head_qtype", "storage"), STORAGES[1:7])
def test_quantized_storage_computes_what_f32_computes(backend: str, tmp_path: Path, model: torch.nn.Module,
                                                     qtype: str, head_qtype: str | None, storage: str) -> None:
    path = write_gguf(model, tmp_path / "m.gguf", qtype, head_qtype)
    native = llaf.init(str(path), backend=backend, progress=False)
    f32 = llaf.init(str(path), backend=backend, progress=False, storage="f32")
    assert (native.storage, f32.storage) == (storage, "f32")
    ids = np.random.default_rng(1).integers(0, 512, 20)
    logits = llaf.forward(native, ids)
    np.testing.assert_allclose(logits, llaf.forward(f32, ids), rtol=0, atol=1e-5 * float(np.abs(logits).max()))
    np.testing.assert_array_equal(llaf.gen(ids[:4], native, 40), llaf.gen(ids[:4], f32, 40))


def test_storage_errors(gguf_dir: Path) -> None:
    with pytest.raises(LlafError, match=r"^unknown weight storage 'q5': choose one of f32, f16, q8, q4$"):
        llaf.init(str(gguf_dir / "model-F32.gguf"), storage="q5")
    message = r"^model-F32\.gguf: tensor 'blk\.0\.attn_q\.weight' of type F32 cannot be stored as q4 exactly$"
    with pytest.raises(LlafError, match=message):
        llaf.init(str(gguf_dir / "model-F32.gguf"), storage="q4")


def test_truncated_file(tmp_path: Path, gguf_dir: Path) -> None:
    data = (gguf_dir / "model-Q4_1.gguf").read_bytes()
    path = tmp_path / "cut.gguf"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(LlafError, match=r"^cut\.gguf (is truncated: tensor '[\w.]+' ends past the end of the file"
                                        r"|is not a readable GGUF file: .+)$"):
        llaf.init(str(path))


def test_not_a_gguf_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.gguf"
    path.write_bytes(b"not a model" * 100)
    with pytest.raises(LlafError, match=r"^junk\.gguf is not a readable GGUF file: "):
        llaf.init(str(path))


def test_unsupported_architecture(tmp_path: Path) -> None:
    import gguf

    w = gguf.GGUFWriter(str(tmp_path / "falcon.gguf"), "falcon")
    w.add_tensor("token_embd.weight", np.zeros((4, 8), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    message = r"^falcon\.gguf: GGUF architecture 'falcon' is not supported \(llaf reads llama\)$"
    with pytest.raises(LlafError, match=message):
        llaf.init(str(tmp_path / "falcon.gguf"))


def test_unsupported_tensor_type(tmp_path: Path, model: torch.nn.Module) -> None:
    path = write_gguf(model, tmp_path / "q5.gguf", "Q5_0")
    with pytest.raises(LlafError, match=r"^q5\.gguf: tensor 'blk\.0\.\w+\.weight' has type Q5_0; "
                                        r"llaf reads F32, F16, BF16, Q8_0, Q4_0, Q4_1$"):
        llaf.init(str(path))


def test_missing_tensor(tmp_path: Path, gguf_dir: Path) -> None:
    from gguf import GGUFReader, GGUFWriter

    src = GGUFReader(gguf_dir / "model-F32.gguf")
    w = GGUFWriter(str(tmp_path / "missing.gguf"), "llama")
    for key, field in src.fields.items():
        if key.startswith("llama."):
            value = field.contents()
            (w.add_uint32 if isinstance(value, int) else w.add_float32)(key, value)
    for t in src.tensors:
        if t.name != "blk.1.ffn_up.weight":
            w.add_tensor(t.name, np.asarray(t.data))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(LlafError, match=r"^missing\.gguf: GGUF file lacks tensor 'blk\.1\.ffn_up\.weight'$"):
        llaf.init(str(tmp_path / "missing.gguf"))
