"""GGUF files: every supported tensor type against transformers reading the
same file, and clear errors for files llaf cannot use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import llaf
from llaf import LlafError
from llaf.storage import EXACT, FORMATS

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
            ("Q4_1", None, "q4"), ("Q4_1", "Q8_0", "q4"), ("Q8_0", "Q4_1", "q8"), ("Q4_0", "F16", "mixed"),
            # Q5_0 and Q5_1 blocks are kept as q8 blocks (a byte code a value), the head of q4 storage too
            ("Q5_0", None, "q8"), ("Q5_1", "Q5_0", "q8"), ("Q4_1", "Q5_1", "q4")]


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


@pytest.mark.parametrize(("qtype", "head_qtype", "storage"), [*STORAGES[1:7], STORAGES[9]])
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


# K-quants: super-blocks of 256 values, so rows of 256 or 512
K_CONFIG = CONFIG | dict(hidden_size=256, intermediate_size=512)
# as llama.cpp's Q4_K_M and Q5_K_M mix them: some layers' attn_v and ffn_down Q6_K
K_MIXED = {"blk.0.attn_v.weight": "Q6_K", "blk.1.ffn_down.weight": "Q6_K", "blk.1.attn_q.weight": "Q8_0",
           "blk.0.ffn_up.weight": "Q5_0", "blk.1.ffn_gate.weight": "Q5_1"}
# Files llama.cpp's quantizer made (tests/make_k_quant_files.py), in tests/data
LLAMA_CPP_FILES = ("Q4_K_M", "Q5_K_M", "Q3_K_M", "Q2_K")
K_FILES = [("Q4_K", None, None), ("Q5_K", "Q6_K", None), ("Q6_K", "Q8_0", None), ("Q4_K", "Q6_K", K_MIXED),
           ("Q4_1", "Q5_K", None)]


@pytest.fixture(scope="module")
def k_model() -> torch.nn.Module:
    return random_llama(8, **K_CONFIG)


# The format each GGUF type keeps in the mixed storage: the smallest holding
# it exactly of those decoded as fast as byte codes, or of all (compact)
KEPT = {"Q8_0": "q8", "Q5_0": "q8", "Q5_1": "q8", "Q4_0": "q4", "Q4_1": "q4", "Q4_K": "q4k", "F16": "f16",
        "F32": "f32"}
COMPACT = KEPT | {"Q5_0": "q5", "Q5_1": "q5", "Q5_K": "q5k", "Q6_K": "q6k", "Q3_K": "q6k"}


def tensor_formats(path: Path, layers: int, kept: dict[str, str] = KEPT) -> dict[str, tuple[str, ...]]:
    """Each llaf matrix's formats as the file's tensor types ask (`kept`, the
    other types k8), read with gguf-py."""
    import gguf

    from llaf.gguf_file import tensor_name
    from llaf.llama import MATRICES

    kinds = {t.name: t.tensor_type.name for t in gguf.GGUFReader(str(path)).tensors}
    out = {}
    for key, role in MATRICES.items():
        names = [tensor_name(key, i) for i in range(layers)] if role == "layers" else [tensor_name(key)]
        out[key] = tuple(kept.get(kinds[n], "k8") if n in kinds else "f32" for n in names)
    return out


@pytest.mark.parametrize(("qtype", "head_qtype", "types"),
                         [*K_FILES, *((name, None, None) for name in ("Q4_K_M", "Q3_K_M", "Q2_K"))])
def test_k_quants_keep_their_values_exactly(tmp_path: Path, k_model: torch.nn.Module, qtype: str,
                                            head_qtype: str | None, types: dict[str, str] | None) -> None:
    """Files with K-quant tensors, mixed with other block types within one
    role as llama.cpp mixes them, keep each tensor in its own form (mixed
    storage): Q4_K as q4k, the other K-quants as k8, 32-value blocks as q8
    or q4; asked for compact, Q5_K as q5k, Q6_K and Q3_K as q6k, Q5_x as q5; each matrix
    decoding to the very floats of gguf-py's dequantization."""
    from llaf.weights import load

    path = (k_quant_file(tmp_path, k_model, qtype) if qtype in LLAMA_CPP_FILES
            else write_gguf(k_model, tmp_path / "m.gguf", qtype, head_qtype, types=types))
    f32 = load(path, storage="f32")
    for storage, kept in ((None, KEPT), ("compact", COMPACT)):
        native = load(path, storage=storage)
        assert (native.storage, f32.storage) == ("mixed", "f32")
        for name, formats in tensor_formats(path, K_CONFIG["num_hidden_layers"], kept).items():
            assert native.format(name).which == formats, (storage, name)
        for name in f32.arrays:
            np.testing.assert_array_equal(native.dense(name), f32.arrays[name], err_msg=f"{storage} {name}")


# Where each block type keeps its half-precision fields (the rest: codes and sub-scales)
HALVES = {"Q8_0": [0], "Q4_0": [0], "Q5_0": [0], "Q4_1": [0, 2], "Q5_1": [0, 2], "Q4_K": [0, 2], "Q5_K": [0, 2],
          "Q6_K": [208], "Q3_K": [108], "Q2_K": [80, 82]}


@pytest.mark.parametrize(("kind", "fmt"), [(kind, fmt) for kind in HALVES for fmt in FORMATS
                                           if fmt not in ("f32", "f16") and kind in EXACT[fmt]])
def test_formats_hold_every_code_and_scale_of_each_block_type(kind: str, fmt: str) -> None:
    """Random blocks (every code and sub-scale occurs), their halves finite:
    each block format holding a type decodes each value to the bits of
    gguf-py's dequantization (q8, q5 and q4 decode with an offset, -128 d,
    -16 d or -8 d for Q8_0, Q5_0 and Q4_0: their zeros are +0 where gguf-py
    multiplies a negative d by a zero code)."""
    import gguf

    from llaf import storage

    qtype = gguf.GGMLQuantizationType[kind]
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    rng = np.random.default_rng(3)
    raw = rng.integers(0, 256, (64, 4 * size), dtype=np.uint8)  # 64 rows of 4 blocks
    for at in HALVES[kind]:
        halves = rng.uniform(-2, 2, (64, 4)).astype(np.float16)
        halves[0, 0] = np.float16(6e-8)  # a subnormal half
        raw.reshape(64, 4, size)[..., at:at + 2] = halves.view(np.uint8).reshape(64, 4, 2)
    arrays = storage.encode_gguf(kind, raw, (64, 4 * block), fmt, "w")
    expected = gguf.quants.dequantize(raw, qtype).reshape(64, 4 * block)
    if fmt in ("q8", "q5", "q4") and kind in ("Q8_0", "Q5_0", "Q4_0"):
        expected = expected + np.float32(0)
    np.testing.assert_array_equal(storage.decode(arrays, "w", fmt).view(np.uint32), expected.view(np.uint32))


def k_quant_file(tmp_path: Path, k_model: torch.nn.Module, which: str) -> Path:
    """A file made by llama.cpp's quantizer (tests/make_k_quant_files.py), or
    written here with a mix of types within roles (K_MIXED), or Q4_1 layers
    with a Q6_K head (as llama.cpp's Q4_0/Q4_1 files of wide models are)."""
    if which == "mixed":
        return write_gguf(k_model, tmp_path / "m.gguf", "Q4_K", "Q6_K", types=K_MIXED)
    if which == "q4-head-k":
        return write_gguf(k_model, tmp_path / "m.gguf", "Q4_1", "Q6_K")
    return Path(__file__).parent / "data" / f"llama-{which}.gguf"


@pytest.mark.parametrize(("which", "storage"), [*((w, None) for w in (*LLAMA_CPP_FILES, "mixed", "q4-head-k")),
                                                 ("Q5_K_M", "compact"), ("Q3_K_M", "compact"),
                                                 ("mixed", "compact")])
def test_k_quant_gguf_matches_transformers_reading_the_same_file(backend: str, tmp_path: Path,
                                                                k_model: torch.nn.Module, which: str,
                                                                storage: str | None) -> None:
    """Files of K-quants (the compact ones: Q5_K as q5k, Q6_K and Q3_K as q6k, and the
    mixed file's Q5_0 and Q5_1 tensors as q5) against transformers."""
    path = k_quant_file(tmp_path, k_model, which)
    params = llaf.init(str(path), backend=backend, progress=False, storage=storage)
    assert params.storage == "mixed"
    hf = hf_from_gguf(path)
    ids = np.random.default_rng(2).integers(0, 512, 24)
    assert_logits_close(llaf.forward(params, ids), hf_logits(hf, ids))
    np.testing.assert_array_equal(llaf.gen(ids[:5], params, 40), hf_greedy(hf, ids[:5], 40))


@pytest.mark.parametrize(("qtype", "head_qtype"), [("Q4_1", "Q8_0"), ("Q8_0", None), ("F16", None), ("F32", None)])
def test_mixed_storage_computes_what_the_uniform_one_computes(backend: str, tmp_path: Path,
                                                              model: torch.nn.Module, qtype: str,
                                                              head_qtype: str | None) -> None:
    """A file of one type per role, each matrix in its own form (the mixed
    storage's pools and places): the very logits and tokens of the storage
    of those formats (the products are the same code); and so once saved
    as a llaf weight file and read back."""
    from llaf.weights import load, save

    path = write_gguf(model, tmp_path / "m.gguf", qtype, head_qtype)
    uniform = llaf.init(str(path), backend=backend, progress=False)
    mixed = llaf.init(str(path), backend=backend, progress=False, storage="mixed")
    assert (uniform.storage, mixed.storage) == ({"Q4_1": "q4", "Q8_0": "q8", "F16": "f16", "F32": "f32"}[qtype],
                                                "mixed")
    saved = llaf.init(str(save(load(path, storage="mixed"), tmp_path / "m.safetensors")), backend=backend,
                      progress=False)
    ids = np.random.default_rng(4).integers(0, 512, 20)
    expected = llaf.forward(uniform, ids)
    for params in (mixed, saved):
        np.testing.assert_array_equal(llaf.forward(params, ids), expected)
        np.testing.assert_array_equal(llaf.gen(ids[:4], params, 24), llaf.gen(ids[:4], uniform, 24))


def test_damaged_mixed_weight_files_are_refused(tmp_path: Path, model: torch.nn.Module) -> None:
    """A llaf weight file of the mixed storage whose formats do not match its
    stacks, or name no format, is refused with the tensor's name."""
    from dataclasses import replace

    from llaf.weights import Weights, load

    w = load(write_gguf(model, tmp_path / "m.gguf", "Q4_1", "Q8_0"), storage="mixed")
    assert w.format("wq").which == ("q4", "q4") and w.format("embed").which == ("q8",)

    def damaged(which: list[int]) -> Weights:
        return replace(w, arrays=w.arrays | {"wq.which": np.array(which, np.uint8)})

    n = len(FORMATS)  # one past the last format's code
    with pytest.raises(LlafError, match=rf"^tensor 'wq\.which' names format {n}: there are {n}$"):
        damaged([3, n]).check()
    with pytest.raises(LlafError, match=r"^llama weights lack tensor 'wq\.q8\.q'$"):
        damaged([3, 2]).check()
    with pytest.raises(LlafError, match=r"^tensor 'wq\.which' has shape \(1,\), expected \(2,\)$"):
        damaged([3]).check()


def test_bf16_gguf_is_the_model_rounded_to_bfloat16(tmp_path: Path, model: torch.nn.Module) -> None:
    """BF16 tensors are widened exactly: each value is torch's bfloat16
    rounding of the model's (the norms stay F32, as llama.cpp keeps them)."""
    from llaf.llama import MATRICES
    from llaf.weights import from_transformers, load

    direct, bf16 = from_transformers(model, progress=False), load(write_gguf(model, tmp_path / "m.gguf", "BF16"))
    assert bf16.storage == "f32"
    for name, value in direct.arrays.items():
        matrix = name in MATRICES
        rounded = torch.from_numpy(value).bfloat16().float().numpy() if matrix else value
        assert not matrix or not np.array_equal(rounded, value), name  # the rounding shows
        np.testing.assert_array_equal(bf16.arrays[name], rounded, err_msg=name)


def llama_cpp_rope_factors(head_dim: int, theta: float, scaling: dict[str, float]) -> np.ndarray:
    """rope_freqs.weight as llama.cpp's converter writes it for Llama 3's rope
    scaling (convert_hf_to_gguf.py, LlamaModel): a divisor per frequency."""
    freqs = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))
    old, factor = scaling["original_max_position_embeddings"], scaling["factor"]
    low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
    factors = []
    for freq in freqs:
        wavelen = 2 * np.pi / freq
        if wavelen < old / high:
            factors.append(1.0)
        elif wavelen > old / low:
            factors.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(factors, np.float32)


def rope_scaled_llama(seed: int, **config: object) -> tuple[torch.nn.Module, np.ndarray]:
    """A random-weight Llama (CONFIG, updated by `config`) with Llama 3.1's
    rope scaling, and the rope_freqs.weight that llama.cpp's converter writes
    for it."""
    scaling = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 32}
    model = random_llama(seed, **CONFIG | config | {"rope_scaling": {"rope_type": "llama3", **scaling},
                                                    "rope_theta": 500000.0})
    factors = llama_cpp_rope_factors(CONFIG["hidden_size"] // CONFIG["num_attention_heads"], 500000.0, scaling)
    assert len(set(factors.tolist())) > 2  # unscaled, scaled and smoothed frequencies
    return model, factors


def test_rope_freqs_gguf_computes_what_transformers_computes_with_rope_scaling(backend: str, tmp_path: Path) -> None:
    """Llama 3.1's rope scaling arrives in a GGUF file as rope_freqs.weight:
    llaf's logits equal transformers' on the model with that scaling, and
    differ from them when the tensor is left out."""
    hf, factors = rope_scaled_llama(3)
    ids = np.random.default_rng(2).integers(0, 512, 60)
    expected = hf_logits(hf, ids)
    scaled = llaf.init(str(write_gguf(hf, tmp_path / "scaled.gguf", extra={"rope_freqs.weight": factors})),
                       backend=backend, progress=False)
    assert_logits_close(llaf.forward(scaled, ids), expected)
    plain = llaf.init(str(write_gguf(hf, tmp_path / "plain.gguf")), backend=backend, progress=False)
    with pytest.raises(AssertionError):
        assert_logits_close(llaf.forward(plain, ids), expected)


def test_storage_errors(gguf_dir: Path) -> None:
    unknown = r"^unknown weight storage 'q5': choose one of f32, f16, q8, q4, mixed, compact$"
    with pytest.raises(LlafError, match=unknown):
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
    message = (r"^falcon\.gguf: GGUF architecture 'falcon' is not supported "
               r"\(llaf reads llama, qwen2, qwen3, phi3, gemma\)$")
    with pytest.raises(LlafError, match=message):
        llaf.init(str(tmp_path / "falcon.gguf"))


def test_unsupported_tensor_type(tmp_path: Path, model: torch.nn.Module) -> None:
    path = write_gguf(model, tmp_path / "iq4.gguf", "IQ4_NL", "Q8_0")
    with pytest.raises(LlafError, match=r"^iq4\.gguf: tensor 'blk\.0\.\w+\.weight' has type IQ4_NL; "
                                        r"llaf reads F32, F16, BF16, Q8_0, Q6_K, Q5_0, Q5_1, Q5_K, Q4_0, Q4_1, "
                                        r"Q4_K, Q3_K, Q2_K$"):
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


# llaf's GGUF reader (llaf/gguf_file.py) against gguf-py's GGUFReader.

def write_every_kind(path: Path) -> Path:
    """A GGUF file with a metadata value of every type, an alignment of 64
    and tensors of many types and ranks."""
    import gguf
    from gguf import GGML_QUANT_SIZES
    from gguf import GGMLQuantizationType as Q

    rng = np.random.default_rng(3)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_custom_alignment(64)
    for kind in ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64"):
        getattr(w, f"add_{kind}")(f"test.{kind}", 7 if kind.startswith("u") else -7)
    w.add_float32("test.float32", 0.1)
    w.add_float64("test.float64", 0.1)
    w.add_bool("test.bool", True)
    w.add_string("test.string", "héllo, 世界 🤖")
    w.add_string("test.empty_string", "")
    w.add_array("test.ints", [1, -2, 3])
    w.add_array("test.floats", [0.5, -1.25])
    w.add_array("test.bools", [True, False, True])
    w.add_array("test.strings", ["a", "", "ünï", "x y"])
    w.add_array("test.empty", [])
    w.add_tensor("f32.1d", rng.standard_normal(5).astype(np.float32))
    w.add_tensor("f32.4d", rng.standard_normal((2, 3, 4, 5)).astype(np.float32))
    w.add_tensor("f16", rng.standard_normal((3, 7)).astype(np.float16))
    w.add_tensor("f64", rng.standard_normal((2, 3)))
    for dtype in (np.int8, np.int16, np.int32, np.int64):
        w.add_tensor(f"{np.dtype(dtype).name}", rng.integers(-100, 100, (3, 4)).astype(dtype))
    for q in (Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1):
        w.add_tensor(q.name, gguf.quants.quantize(rng.standard_normal((3, 64)).astype(np.float32), q), raw_dtype=q)
    for q in (Q.Q4_K, Q.Q6_K, Q.IQ4_XS):  # blocks of 256: raw bytes do
        w.add_tensor(q.name, rng.integers(0, 256, (2, 2 * GGML_QUANT_SIZES[q][1]), dtype=np.uint8), raw_dtype=q)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def assert_reads_as_gguf_reader(path: Path) -> None:
    from gguf import GGUFReader

    from llaf.gguf_file import open_gguf

    ours, theirs = open_gguf(path), GGUFReader(path)
    assert list(ours.fields) == list(theirs.fields)
    for key, field in theirs.fields.items():
        value = field.contents()
        assert ours.fields[key] == value, key
        assert type(ours.fields[key]) is type(value), key
        if isinstance(value, list):
            assert [type(v) for v in ours.fields[key]] == [type(v) for v in value], key
    assert list(ours.tensors) == [t.name for t in theirs.tensors]
    for t in theirs.tensors:
        o = ours.tensors[t.name]
        assert (o.tensor_type, list(o.shape), o.n_elements, o.n_bytes, o.data_offset) == (
            t.tensor_type, t.shape.tolist(), t.n_elements, t.n_bytes, t.data_offset), t.name
        assert (o.data.dtype, o.data.shape) == (t.data.dtype, t.data.shape), t.name
        assert o.data.tobytes() == t.data.tobytes(), t.name


def test_reader_reads_as_gguf_reader(tmp_path: Path, gguf_dir: Path) -> None:
    from llaf.assets import default_model_path

    from .gguf_models import write_llama3_gguf, write_sentencepiece_gguf

    paths = [default_model_path(), write_every_kind(tmp_path / "every.gguf"),
             write_sentencepiece_gguf(tmp_path / "sp.gguf"), write_llama3_gguf(tmp_path / "l3.gguf"),
             *sorted(gguf_dir.glob("*.gguf"))]
    for path in paths:
        assert_reads_as_gguf_reader(path)


def test_file_is_parsed_once_while_unchanged(tmp_path: Path) -> None:
    """`llaf.load` reads the weights and the tokenizer from one parse; a
    changed file is parsed again."""
    from llaf import gguf_file, weights
    from llaf.assets import default_model_path
    from llaf.tokenizer import for_model

    gguf_file._parse.cache_clear()
    weights.load(default_model_path())
    for_model(default_model_path(), "llama")
    assert gguf_file._parse.cache_info().misses == 1
    path = write_every_kind(tmp_path / "a.gguf")
    assert "test.extra" not in gguf_file.open_gguf(path).fields
    import gguf

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_string("test.extra", "x")
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()
    assert "test.extra" in gguf_file.open_gguf(path).fields


def damaged_versions(data: bytes, end: int, step: int) -> list[tuple[str, bytes]]:
    """`data` cut short, and with 8 bytes of 0xff (a huge count or length)
    written over it, at every `step`-th byte of its first `end` bytes."""
    return ([(f"cut{i}", data[:i]) for i in range(0, end, step)]
            + [(f"ff{i}", data[:i] + b"\xff" * 8 + data[i + 8:]) for i in range(0, end, step)])


@pytest.mark.parametrize("which", ["model", "tokenizer"])
def test_damaged_files_give_one_line_errors(tmp_path: Path, gguf_dir: Path, which: str) -> None:
    """Cut short or with a huge count anywhere in its metadata, a file gives a
    one-line LlafError naming it (or still parses, where the bytes happen to
    make sense), never an exception from struct or numpy, a hang or a huge
    allocation; a file cut in its tensors says so."""
    from llaf.gguf_file import open_gguf

    from .gguf_models import write_sentencepiece_gguf

    src = gguf_dir / "model-Q4_1.gguf" if which == "model" else write_sentencepiece_gguf(tmp_path / "sp.gguf")
    data = src.read_bytes()
    g = open_gguf(src)
    end = min((t.data_offset for t in g.tensors.values()), default=len(data))
    errors = 0
    for name, damaged in damaged_versions(data, end, 1 if which == "model" else 7):
        path = tmp_path / f"{name}.gguf"  # a new name each: a rewritten file could keep its mtime
        path.write_bytes(damaged)
        try:
            open_gguf(path)
        except LlafError as e:
            assert str(e).startswith(path.name) and "\n" not in str(e), str(e)
            errors += 1
        path.unlink()
    assert errors > len(range(0, end, 1 if which == "model" else 7))  # every cut, and most overwrites
    if which == "model":
        cut = tmp_path / "cut.gguf"
        cut.write_bytes(data[:-1])
        with pytest.raises(LlafError, match=r"^cut\.gguf is truncated: tensor '[\w.]+' ends past the end of the file$"):
            open_gguf(cut)


def test_corrupt_lengths_and_text(tmp_path: Path) -> None:
    from llaf.gguf_file import open_gguf

    from .gguf_models import write_sentencepiece_gguf

    data = write_sentencepiece_gguf(tmp_path / "sp.gguf").read_bytes()
    at = data.index(b"tokenizer.ggml.tokens") + len("tokenizer.ggml.tokens") + 8  # value type, item type: the count
    tensors = write_every_kind(tmp_path / "every.gguf").read_bytes()
    dims = tensors.index(b"f32.1d") + len("f32.1d")  # the tensor's dimension count
    bad = " is not a readable GGUF file: "
    cases = {
        "count.gguf": (data[:at] + (1 << 62).to_bytes(8, "little") + data[at + 8:],
                       bad + "a count of 4611686018427387904 items runs past the end of the file"),
        "length.gguf": (data[:at + 8] + (1 << 63).to_bytes(8, "little") + data[at + 16:],
                        bad + r"it ends inside its metadata \(truncated\)"),
        "utf8.gguf": (data.replace(b"<unk>", b"<\xffnk>"),
                      r": GGUF metadata field 'tokenizer\.ggml\.tokens' is damaged"),
        "magic.gguf": (b"GGUX" + data[4:], bad + "it does not start with the GGUF magic"),
        "version.gguf": (data[:4] + (7).to_bytes(4, "little") + data[8:],
                         bad + "it is GGUF version 7; llaf reads little-endian versions 2 and 3"),
        "empty.gguf": (b"", bad + ".+"),
        "dims.gguf": (tensors[:dims] + (5).to_bytes(4, "little") + tensors[dims + 4:],
                      bad + r"tensor 'f32\.1d' has 5 dimensions \(at most 4\)"),
    }
    for name, (damaged, message) in cases.items():
        (tmp_path / name).write_bytes(damaged)
        with pytest.raises(LlafError, match="^" + name.replace(".", r"\.") + message + "$"):
            open_gguf(tmp_path / name)


@pytest.mark.parametrize("name", ["llama-Q4_K_M", "qwen2", "qwen3", "phi3", "gemma"])
def test_arrays_written_back_as_the_file_tensors(tmp_path: Path, name: str) -> None:
    """What full fine-tuning writes (`gguf_file.llama_tensors`, `rewrite`)
    undoes what reading did: a file's arrays decoded to f32 and written back
    give every tensor of the file, value for value as gguf-py decodes it
    (llama's query and key rows in llama.cpp's order, Phi-3's projections
    fused again), and its metadata unchanged."""
    import gguf

    from llaf import gguf_file
    from llaf.weights import load

    src = Path(__file__).parent / "data" / f"{name}.gguf"
    w = load(src, progress=False, storage="f32")
    out = gguf_file.rewrite(src, tmp_path / "out.gguf", gguf_file.llama_tensors(src, w.arrays, w.hparams))
    before, after = gguf.GGUFReader(str(src)), gguf.GGUFReader(str(out))
    assert [t.name for t in after.tensors] == [t.name for t in before.tensors]
    for old, new in zip(before.tensors, after.tensors, strict=True):
        want = gguf.quants.dequantize(old.data, old.tensor_type)
        np.testing.assert_array_equal(new.data.reshape(want.shape), want, err_msg=old.name)
    assert {k: f.contents() for k, f in after.fields.items()} == {k: f.contents() for k, f in before.fields.items()}
    assert not list(tmp_path.glob("*.tmp"))
