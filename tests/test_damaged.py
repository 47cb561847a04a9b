"""Damaged GGUF model files: every kind of damage is refused in one
LlafError line naming the field or tensor when the file is read (weights
that overflow: at the first pass); never a traceback, a numpy warning or a
model that runs and computes garbage."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import llaf
from llaf import LlafError
from llaf.weights import Weights, load

from .conftest import random_llama
from .gguf_models import write_gguf

ROOT = Path(__file__).resolve().parent.parent
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


def rewrite(src: Path, dst: Path, changes: dict[str, tuple[Any, Any] | None],
            extra: dict[str, np.ndarray] | None = None) -> Path:
    """`src` written again with metadata `changes`: key -> (GGUFValueType,
    value), or None to drop it; and `extra` F32 tensors."""
    from gguf import GGUFReader, GGUFWriter

    from llaf.gguf_file import copy_fields

    r = GGUFReader(src)
    w = GGUFWriter(str(dst), "llama")
    copy_fields(w, r, leave_out=changes)
    for key, change in changes.items():
        if change is not None:
            w.add_key_value(key, change[1], change[0])
    for t in r.tensors:
        raw = None if t.tensor_type.name == "F32" else t.tensor_type
        w.add_tensor(t.name, np.asarray(t.data), raw_dtype=raw)
    for name, value in (extra or {}).items():
        w.add_tensor(name, value)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return dst


def part_offsets(field: Any) -> list[int]:
    """Where each part of a GGUFReader field starts in the file."""
    offsets, at = [], int(field.offset)
    for part in field.parts:
        offsets.append(at)
        at += int(part.nbytes)
    return offsets


def tensor_info(path: Path, name: str) -> dict[str, int]:
    """Where tensor `name`'s info fields and data lie in the file."""
    from gguf import GGUFReader

    t = next(t for t in GGUFReader(path).tensors if t.name == name)
    at = part_offsets(t.field)
    return {"dims": at[3], "type": at[4], "offset": at[5], "data": int(t.data_offset)}


def patched(src: Path, dst: Path, at: int, new: bytes) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[:at] + new + data[at + len(new):])
    return dst


def refused(path: Path, message: str, storage: str | None = None) -> None:
    with pytest.raises(LlafError) as e:
        load(path, storage=storage)
    assert "\n" not in str(e.value)
    assert str(e.value).startswith(f"{path.name}: "), str(e.value)
    assert message in str(e.value), str(e.value)


def f32(value: float) -> tuple[Any, float]:
    from gguf import GGUFValueType

    return GGUFValueType.FLOAT32, value


def u32(value: int) -> tuple[Any, int]:
    from gguf import GGUFValueType

    return GGUFValueType.UINT32, value


METADATA = {  # name: (changes, what the message says)
    "layers0": ({"llama.block_count": u32(0)}, "GGUF field 'llama.block_count' is 0; it must be at least 1"),
    "heads0": ({"llama.attention.head_count": u32(0)},
               "GGUF field 'llama.attention.head_count' is 0; it must be at least 1"),
    "kv0": ({"llama.attention.head_count_kv": u32(0)},
            "GGUF field 'llama.attention.head_count_kv' is 0; it must be at least 1"),
    "layers_float": ({"llama.block_count": f32(2.0)},
                     "GGUF field 'llama.block_count' must be an integer, not the float 2.0"),
    "fewer_layers": ({"llama.block_count": u32(1)},
                     "tensor 'blk.1.attn_norm.weight' is not used: GGUF field 'llama.block_count' is 1"),
    "more_layers": ({"llama.block_count": u32(3)}, "GGUF file lacks tensor 'blk.2.attn_q.weight'"),
    "many_layers": ({"llama.block_count": u32(1 << 31)},
                    "GGUF field 'llama.block_count' is 2147483648, but the file holds only 21 tensors"),
    "eps_nan": ({"llama.attention.layer_norm_rms_epsilon": f32(float("nan"))},
                "GGUF field 'llama.attention.layer_norm_rms_epsilon' is nan; it must be positive and finite"),
    "eps_negative": ({"llama.attention.layer_norm_rms_epsilon": f32(-1e-5)},
                     "GGUF field 'llama.attention.layer_norm_rms_epsilon' is -1e-05; it must be positive and finite"),
    "theta0": ({"llama.rope.freq_base": f32(0.0)},
               "GGUF field 'llama.rope.freq_base' is 0.0; it must be finite and above 1"),
    "theta_inf": ({"llama.rope.freq_base": f32(float("inf"))},
                  "GGUF field 'llama.rope.freq_base' is inf; it must be finite and above 1"),
    "theta_small": ({"llama.rope.freq_base": f32(0.5)},
                    "GGUF field 'llama.rope.freq_base' is 0.5; it must be finite and above 1"),
    "theta_huge": ({"llama.rope.freq_base": (12, 1e300)},
                   "GGUF field 'llama.rope.freq_base' is 1e+300; it must be finite and above 1"),
    "eps_tiny": ({"llama.attention.layer_norm_rms_epsilon": (12, 1e-60)},
                 "GGUF field 'llama.attention.layer_norm_rms_epsilon' is 1e-60; it must be positive and finite"),
    "context_huge": ({"llama.context_length": u32(1 << 30)},
                     "GGUF field 'llama.context_length' is 1073741824; it must be at most 16777216"),
    "context0": ({"llama.context_length": u32(0)}, "GGUF field 'llama.context_length' is 0; it must be at least 1"),
    "heads3": ({"llama.attention.head_count": u32(3)},
               "GGUF field 'llama.attention.head_count' is 3, which does not divide the embedding width 64"),
    "kv3": ({"llama.attention.head_count_kv": u32(3)},
            "GGUF field 'llama.attention.head_count_kv' is 3, which does not divide llama.attention.head_count 4"),
    "odd_head": ({"llama.attention.head_count": u32(64), "llama.attention.head_count_kv": u32(64),
                  "llama.rope.dimension_count": u32(1)},
                 "GGUF field 'llama.rope.dimension_count' is 1: rotary embedding needs an even number of features, "
                 "at most the head size 1"),
    "width": ({"llama.embedding_length": u32(32)},
              "GGUF field 'llama.embedding_length' is 32, but tensor 'token_embd.weight' has rows of 64"),
    "ff": ({"llama.feed_forward_length": u32(100)},
           "GGUF field 'llama.feed_forward_length' is 100, but tensor 'blk.0.ffn_gate.weight' has 128 rows"),
    "vocab": ({"llama.vocab_size": u32(100)},
              "GGUF field 'llama.vocab_size' is 100, but tensor 'token_embd.weight' has 256 rows"),
    "heads_text": ({"llama.attention.head_count": (8, "4")},
                   "GGUF field 'llama.attention.head_count' must be an integer, not the string '4'"),
    "heads_bool": ({"llama.attention.head_count": (7, True)},
                   "GGUF field 'llama.attention.head_count' must be an integer, not the bool True"),
    "heads_missing": ({"llama.attention.head_count": None}, "GGUF metadata lacks field 'llama.attention.head_count'"),
}


@pytest.mark.parametrize("case", METADATA)
def test_damaged_metadata(tmp_path: Path, good: Path, case: str) -> None:
    changes, message = METADATA[case]
    from gguf import GGUFValueType

    typed = {k: None if v is None else (GGUFValueType(v[0]), v[1]) for k, v in changes.items()}
    refused(rewrite(good, tmp_path / f"{case}.gguf", typed), message)


def test_rewritten_file_loads_as_the_original(tmp_path: Path, good: Path) -> None:
    """The `rewrite` above changes nothing by itself."""
    same(load(rewrite(good, tmp_path / "same.gguf", {})), load(good))


def test_rope_frequency_divisors(tmp_path: Path, good: Path) -> None:
    """Llama 3.1's rope_freqs.weight divides the frequencies: none may be zero or not finite."""
    ones = load(rewrite(good, tmp_path / "ones.gguf", {}, {"rope_freqs.weight": np.ones(8, np.float32)}))
    same(ones, load(good))
    zero = np.array([1, 1, 0, 1, 1, 1, 1, 1], np.float32)
    refused(rewrite(good, tmp_path / "zero.gguf", {}, {"rope_freqs.weight": zero}),
            "tensor 'rope_freqs.weight' holds zeros or values that are not finite")
    refused(rewrite(good, tmp_path / "short.gguf", {}, {"rope_freqs.weight": np.ones(7, np.float32)}),
            "tensor 'rope_freqs.weight' has shape (7,), expected (8,)")
    refused(rewrite(good, tmp_path / "other.gguf", {}, {"blk.0.attn_rot_embd": np.ones(8, np.float32)}),
            "tensor 'blk.0.attn_rot_embd' is not one of a llama model's")


def same(a: Weights, b: Weights) -> None:
    assert (a.hparams, a.storage, sorted(a.arrays)) == (b.hparams, b.storage, sorted(b.arrays))
    for name in a.arrays:
        np.testing.assert_array_equal(a.arrays[name], b.arrays[name], err_msg=name)


def test_tensor_type_rewritten(tmp_path: Path, good: Path) -> None:
    """F32 claimed for Q4_1 data: four times the bytes the file holds for it."""
    at = tensor_info(good, "blk.0.ffn_up.weight")["type"]
    path = patched(good, tmp_path / "type.gguf", at, (0).to_bytes(4, "little"))
    refused(path, "tensor 'blk.0.ffn_up.weight' of type F32 and shape (128, 64) takes 32768 bytes, "
                  "but its data is 5120 bytes long")
    path = patched(good, tmp_path / "q4_0.gguf", at, (2).to_bytes(4, "little"))  # Q4_0: 18 bytes a block, not 20
    refused(path, "tensor 'blk.0.ffn_up.weight' of type Q4_0 and shape (128, 64) takes 4608 bytes, "
                  "but its data is 5120 bytes long")


def test_last_tensor_must_fill_the_file(tmp_path: Path, good: Path) -> None:
    from gguf import GGUFReader

    last = max(GGUFReader(good).tensors, key=lambda t: int(t.data_offset))
    path = tmp_path / "extra.gguf"
    path.write_bytes(good.read_bytes() + bytes(64))
    refused(path, f"tensor {last.name!r} of type")


def test_tensor_dimension_zero(tmp_path: Path, good: Path) -> None:
    info = tensor_info(good, "blk.1.attn_norm.weight")
    refused(patched(good, tmp_path / "dim0.gguf", info["dims"], bytes(8)),
            "tensor 'blk.1.attn_norm.weight' of type F32 and shape (0,) takes 0 bytes")


def test_tensor_shape_that_fits_its_bytes_but_not_the_model(tmp_path: Path, good: Path) -> None:
    info = tensor_info(good, "blk.0.ffn_up.weight")  # [64][128] as [32][256]: the same bytes
    dims = (32).to_bytes(8, "little") + (256).to_bytes(8, "little")
    refused(patched(good, tmp_path / "shape.gguf", info["dims"], dims),
            "tensor 'blk.0.ffn_up.weight' has shape (256, 32), expected (128, 64)")


@pytest.mark.parametrize("storage", [None, "f32"])
@pytest.mark.parametrize(("tensor", "value"), [("blk.1.ffn_norm.weight", np.float32(np.nan).tobytes()),
                                               ("output_norm.weight", np.float32(-np.inf).tobytes()),
                                               ("blk.0.attn_v.weight", np.float16(np.nan).tobytes()),
                                               ("token_embd.weight", bytes(2) + np.float16(np.inf).tobytes())],
                         ids=["nan-norm", "inf-final-norm", "nan-scale", "inf-offset"])
def test_non_finite_weights(tmp_path: Path, good: Path, tensor: str, value: bytes, storage: str | None) -> None:
    """A NaN or infinity in a norm, or in a block's scale or offset (the only
    floats of a Q4_1 block), whatever the storage asked for."""
    at = tensor_info(good, tensor)["data"] + 20 * 3  # the fourth value or block
    refused(patched(good, tmp_path / "nan.gguf", at, value),
            f"tensor {tensor!r} holds values that are not finite (NaN or infinity)", storage)


def test_non_finite_f32_and_f16_matrices(tmp_path: Path, model: torch.nn.Module) -> None:
    for qtype, value in (("F32", np.float32(np.inf).tobytes()), ("F16", np.float16(np.nan).tobytes())):
        good = write_gguf(model, tmp_path / f"{qtype}.gguf", qtype)
        at = tensor_info(good, "blk.1.ffn_down.weight")["data"] + 100
        refused(patched(good, tmp_path / f"nan-{qtype}.gguf", at, value),
                "tensor 'blk.1.ffn_down.weight' holds values that are not finite")


def test_first_pass_logits_must_be_finite(tmp_path: Path, model: torch.nn.Module, backend: str) -> None:
    """Finite weights that overflow (a final norm near float32's largest):
    the first pass's logits are refused, on every path that returns logits."""
    good = write_gguf(model, tmp_path / "f32.gguf", "F32")
    at = tensor_info(good, "output_norm.weight")["data"]
    path = patched(good, tmp_path / "huge.gguf", at, np.full(64, 3e38, np.float32).tobytes())
    message = r"^the model's first pass gave logits that are not finite \(NaN or infinity\): its weights are out of"
    for run in (lambda p: llaf.forward(p, [1, 2, 3]), lambda p: llaf.prefill(p, [1, 2, 3]),
                lambda p: llaf.prefill(p, [[1, 2], [3]])):
        params = llaf.init(str(path), backend=backend, progress=False)
        with pytest.raises(LlafError, match=message):
            run(params)
    params = llaf.init(str(good), backend=backend, progress=False)
    llaf.forward(params, [1, 2, 3])
    assert params.logits_checked


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


def test_cli_prints_one_line(tmp_path: Path, good: Path) -> None:
    """No traceback and no numpy warning beside the message."""
    path = rewrite(good, tmp_path / "theta.gguf", {"llama.rope.freq_base": f32(0.0)})
    out = subprocess.run([sys.executable, "-m", "llaf.cli", "generate", "hi", "--model", str(path), "--backend", "c"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 1
    assert out.stderr == ("llaf: theta.gguf: GGUF field 'llama.rope.freq_base' is 0.0; "
                          "it must be finite and above 1\n")


# The fuzz test: a few hundred seeded mutations and truncations of the
# header, metadata and tensor infos of a good file.  Each must load as the
# good file does (the bytes hit meant nothing to llaf, or the same) or be
# refused in one LlafError line naming the file; never another exception,
# a warning, or weights that differ from the good file's.

def fuzz_cases(path: Path, count: int, seed: int) -> Iterator[tuple[str, bytes]]:
    from gguf import GGUFReader

    r = GGUFReader(path)
    data = path.read_bytes()
    # Every number of the header, the metadata and the tensor infos: (offset, size, kind)
    parts: list[tuple[int, int, str]] = []
    for field in [*r.fields.values(), *(t.field for t in r.tensors)]:
        for at, part in zip(part_offsets(field), field.parts, strict=True):
            kind = "float" if part.dtype.kind == "f" else "bytes" if part.dtype == np.uint8 else "int"
            parts.append((at, int(part.nbytes), kind))
    end = int(min(t.data_offset for t in r.tensors))
    rng = np.random.default_rng(seed)
    for i in range(count):
        how = rng.integers(0, 4)
        if how == 0:  # cut short
            cut = int(rng.integers(0, end))
            yield f"cut{i}", data[:cut]
            continue
        if how == 1:  # a random byte
            at = int(rng.integers(0, end))
            yield f"byte{i}", data[:at] + bytes([int(rng.integers(0, 256))]) + data[at + 1:]
            continue
        at, size, kind = parts[int(rng.integers(0, len(parts)))]
        if kind == "bytes":  # a name or string: one character changed
            at += int(rng.integers(0, max(size, 1)))
            new = bytes([int(rng.integers(32, 127))])
        elif kind == "float":
            value = rng.choice([np.nan, np.inf, -np.inf, 0.0, -1.0, 1e-30, 1e30, 3.5])
            new = np.array([value], np.dtype(f"<f{size}")).tobytes()
        else:
            old = int.from_bytes(data[at:at + size], "little")
            value = int(rng.choice([0, 1, 2, old - 1, old + 1, old * 2, old // 2, (1 << (8 * size)) - 1,
                                    1 << (8 * size - 1), int(rng.integers(0, 1 << 31))]))
            new = (value % (1 << (8 * size))).to_bytes(size, "little")
        yield f"part{i}", data[:at] + new + data[at + len(new):]


def test_fuzz(tmp_path: Path, good: Path) -> None:
    expected = load(good)
    outcomes = {"refused": 0, "loaded": 0}
    for name, damaged in fuzz_cases(good, 600, seed=13):
        path = tmp_path / f"{name}.gguf"  # a new name each: a rewritten file could keep its mtime
        path.write_bytes(damaged)
        try:
            w = load(path)
        except LlafError as e:
            assert str(e).startswith(path.name) and "\n" not in str(e), (name, str(e))
            outcomes["refused"] += 1
        else:
            outcomes["loaded"] += 1
            # What the bytes may still change: the hyper-parameters, within their bounds.
            assert w.hparams["context"] >= 1 and np.isfinite(w.hparams["eps"]) and w.hparams["eps"] > 0, name
            assert np.isfinite(w.arrays["inv_freq"]).all(), name
            same(Weights(w.architecture, expected.hparams, w.arrays | {"inv_freq": expected.arrays["inv_freq"]},
                         w.storage), expected)
        path.unlink()
    assert outcomes["refused"] > 200 and outcomes["loaded"] > 10, outcomes
