"""GGUF model files (llama.cpp's format), read through the `gguf` package.

A GGUF file holds metadata (architecture, hyper-parameters, tokenizer) and
tensors, each F32, F16 or block-quantized.  `read` maps llama.cpp's names
and layout onto src/llama.fut's, undoing the row permutation llama.cpp's
converter applies to the query and key projections.  The weight matrices
keep their file's form where a storage of llaf/storage.py holds it exactly
(a Q4_1 file runs from its 4-bit blocks); ``storage="f32"`` dequantizes
everything to float32 instead.
"""

from __future__ import annotations

import functools
import math
import mmap
import os
import re
import struct
from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, Any

import numpy as np

from . import llama
from . import storage as storage_mod
from .errors import LlafError

if TYPE_CHECKING:
    from gguf import GGMLQuantizationType

SUPPORTED_TYPES = ("F32", "F16", "BF16", "Q8_0", "Q6_K", "Q5_0", "Q5_1", "Q5_K", "Q4_0", "Q4_1", "Q4_K", "Q3_K",
                   "Q2_K")

# llaf's llama arrays and the GGUF tensors holding them, as gguf's
# MODEL_TENSOR members: their names are gguf's TENSOR_NAMES (`tensor_name`).
# TENSORS are those of a llama file (and the browser's); VARIATIONS those
# some of the Llama family's descendants add (src/llama.fut); FUSED hold
# several of llaf's matrices, one after the other by rows (Phi-3).
TENSORS = {"embed": "TOKEN_EMBD", "attn_norm": "ATTN_NORM", "wq": "ATTN_Q", "wk": "ATTN_K", "wv": "ATTN_V",
           "wo": "ATTN_OUT", "mlp_norm": "FFN_NORM", "w_gate": "FFN_GATE", "w_up": "FFN_UP", "w_down": "FFN_DOWN",
           "final_norm": "OUTPUT_NORM", "lm_head": "OUTPUT", "inv_freq": "ROPE_FREQS"}
VARIATIONS = {"bq": "ATTN_Q.bias", "bk": "ATTN_K.bias", "bv": "ATTN_V.bias", "q_norm": "ATTN_Q_NORM",
              "k_norm": "ATTN_K_NORM"}
FUSED = {"wqkv": ("ATTN_QKV", ("wq", "wk", "wv")), "w_gate_up": ("FFN_UP", ("w_gate", "w_up"))}


@dataclass(frozen=True)
class Layout:
    """How llama.cpp's converter writes a model of the Llama family."""

    permuted: bool = False         # query/key rows interleaved per head (its "normal" rope; llama only)
    fused: bool = False            # attn_qkv and a gate-and-up ffn_up instead of the separate matrices
    activation: str = "silu"       # the MLP's gate (llaf/llama.py ACTIVATIONS)
    scaled: bool = False           # the embedding multiplied by √d (its norms' 1 + w already written as w)


# The GGUF architectures llaf reads (`general.architecture`), all run by src/llama.fut.
LAYOUTS = {"llama": Layout(permuted=True), "qwen2": Layout(), "qwen3": Layout(), "phi3": Layout(fused=True),
           "gemma": Layout(activation="gelu_pytorch_tanh", scaled=True)}


@functools.cache
def templates() -> dict[str, str]:
    """Each llaf array's GGUF tensor name, `{bid}` standing for the layer (gguf is imported when needed)."""
    from gguf import MODEL_TENSOR, TENSOR_NAMES

    def name(member: str) -> str:
        tensor, _, suffix = member.partition(".")
        return f"{TENSOR_NAMES[MODEL_TENSOR[tensor]]}.{suffix or 'weight'}"

    return {key: name(m) for key, m in (TENSORS | VARIATIONS | {k: m for k, (m, _) in FUSED.items()}).items()}


def per_layer(key: str) -> bool:
    """Whether llaf array `key` is one GGUF tensor a layer."""
    return "{bid}" in templates()[key]


def tensor_name(key: str, layer: int = 0) -> str:
    """The GGUF tensor holding llaf array `key` (of layer `layer`, for a per-layer one)."""
    return templates()[key].format(bid=layer)


def field_name(key: str, arch: str = "llama") -> str:
    """A metadata field's name from gguf's `Keys` (`key` as "LLM.BLOCK_COUNT")."""
    from gguf import Keys

    group, member = key.split(".")
    return str(getattr(getattr(Keys, group), member)).format(arch=arch)


@dataclass(frozen=True)
class GGUFFile:
    """An opened GGUF file: its metadata fields and its tensors by name."""

    path: Path
    fields: dict[str, Any]
    tensors: dict[str, Tensor]
    mapping: mmap.mmap | None = None  # the file's memory map, which the tensors view

    def drop_pages(self) -> None:
        """Let the OS take the file's pages out of this process's memory: once
        the weights are converted nothing reads them (and if something does,
        they are read from the file again)."""
        if self.mapping is not None and hasattr(mmap, "MADV_DONTNEED"):
            self.mapping.madvise(mmap.MADV_DONTNEED)

    def field(self, key: str, default: Any = None) -> Any:
        if key in self.fields:
            return self.fields[key]
        if default is None:
            raise LlafError(f"{self.path.name}: GGUF metadata lacks field {key!r}")
        return default

    def integer(self, key: str, default: int | None = None, most: int | None = None) -> int:
        """Field `key`, which must be a whole number from 1 to `most`."""
        value = self.field(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise LlafError(f"{self.path.name}: GGUF field {key!r} must be an integer, not {_described(value)}")
        if value < 1:
            raise LlafError(f"{self.path.name}: GGUF field {key!r} is {value}; it must be at least 1")
        if most is not None and value > most:
            raise LlafError(f"{self.path.name}: GGUF field {key!r} is {value}; it must be at most {most}")
        return value

    def positive(self, key: str, default: float | None = None, above: float = 0.0) -> float:
        """Field `key`, which must be a number above `above` and finite as a
        float32 (the engine's type)."""
        value = self.field(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise LlafError(f"{self.path.name}: GGUF field {key!r} must be a number, not {_described(value)}")
        with np.errstate(all="ignore"):
            single = float(np.float32(value))
        if not above < single < math.inf:
            should = "positive and finite" if above == 0 else f"finite and above {above:g}"
            raise LlafError(f"{self.path.name}: GGUF field {key!r} is {_shown(value)}; it must be {should}")
        return float(value)

    def agrees(self, key: str, value: int, why: str, required: bool = False) -> None:
        """Field `key`, if there (it must be if `required`), must be the integer `value` (`why`)."""
        if (key in self.fields or required) and self.integer(key) != value:
            raise LlafError(f"{self.path.name}: GGUF field {key!r} is {self.fields[key]}, but {why}")

    def shape(self, name: str, rank: int | None = None) -> tuple[int, ...]:
        """Tensor `name`'s shape in numpy order, if llaf reads its type (and it has `rank` axes)."""
        self.kind(name)
        shape = tuple(int(n) for n in reversed(self.tensors[name].shape))
        if rank is not None and len(shape) != rank:
            raise LlafError(f"{self.path.name}: tensor {name!r} has shape {shape}, "
                            f"expected {rank} dimension{'s' * (rank != 1)}")
        return shape

    def kind(self, name: str) -> str:
        """Tensor `name`'s type (F32, Q4_1, ...), if llaf reads it."""
        if name not in self.tensors:
            raise LlafError(f"{self.path.name}: GGUF file lacks tensor {name!r}")
        kind = str(self.tensors[name].tensor_type.name)
        if kind not in SUPPORTED_TYPES:
            supported = ", ".join(SUPPORTED_TYPES)
            raise LlafError(f"{self.path.name}: tensor {name!r} has type {kind}; llaf reads {supported}")
        return kind

    def tensor(self, name: str, rows: slice = slice(None)) -> np.ndarray:
        """Tensor `name` (its rows `rows`) as float32, in numpy order ([rows][cols])."""
        from gguf import quants

        self.kind(name)
        t = self.tensors[name]
        data = np.asarray(t.data)[rows] if t.data.ndim > 1 else np.asarray(t.data)
        shape = (*data.shape[:-1], int(t.shape[0]))
        try:
            values = quants.dequantize(data, t.tensor_type)
            return np.ascontiguousarray(values.reshape(shape), dtype=np.float32)
        except (ValueError, TypeError) as e:
            raise LlafError(f"{self.path.name}: tensor {name!r} is damaged or truncated ({e})") from None

    def matrix(self, name: str, fmt: str, key: str, rows: slice = slice(None)) -> dict[str, np.ndarray]:
        """Tensor `name` (its rows `rows`) in format `fmt` (llaf/storage.py) as
        llaf arrays named after `key`."""
        if fmt == "f32":
            return {key: self.tensor(name, rows)}
        t = self.tensors[name]
        if self.kind(name) not in storage_mod.EXACT[fmt]:
            raise LlafError(f"{self.path.name}: tensor {name!r} of type {self.kind(name)} "
                            f"cannot be stored as {fmt} exactly")
        data = np.asarray(t.data)[rows]
        try:
            return storage_mod.encode_gguf(self.kind(name), data, (data.shape[0], int(t.shape[0])), fmt, key)
        except ValueError as e:
            raise LlafError(f"{self.path.name}: tensor {name!r} is damaged or truncated ({e})") from None


def is_gguf(path: Path) -> bool:
    """Whether `path` is to be read as a GGUF file: named so, or a regular
    file starting with GGUF's magic bytes, whatever its name."""
    if path.suffix == ".gguf":
        return True
    try:
        if not path.is_file():
            return False
        with open(path, "rb") as f:
            return f.read(4) == _MAGIC.to_bytes(4, "little")
    except OSError:
        return False


def open_gguf(path: str | Path) -> GGUFFile:
    """Open a GGUF file; a LlafError if it is not one, or is truncated.  A
    file is parsed once while it is unchanged (same size and modification
    time): `llaf.load` reads its weights and its tokenizer from one parse."""
    path = Path(path)
    try:
        resolved = path.resolve()
        stat = resolved.stat()
        if not S_ISREG(stat.st_mode):  # a FIFO or a device: no size to check counts against
            raise _Damaged(" is not a readable GGUF file: it is not a regular file")
        g = _parse(resolved, stat.st_size, stat.st_mtime_ns)
    except _Damaged as e:
        raise LlafError(f"{path.name}{e}") from None
    except (OSError, ValueError) as e:  # unreadable, or empty (mmap refuses empty files)
        raise LlafError(f"{path.name} is not a readable GGUF file: {str(e).strip().splitlines()[0]}") from None
    return g if g.path == path else replace(g, path=path)


class _Damaged(Exception):
    """A damaged file; its message follows the file's name."""


@functools.lru_cache(maxsize=4)
def _parse(path: Path, size: int, mtime_ns: int) -> GGUFFile:
    """Parse header, metadata and tensor table with struct and numpy reads
    from a read-only memory map; the tensors are views into that map.  Every
    count and length is checked against the bytes left, so that a corrupt
    one gives an error rather than a huge allocation or a long loop."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    with open(path, "rb") as f:
        mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    data = np.frombuffer(mapping, dtype=np.uint8)
    r = _Reader(memoryview(data))
    if r.read(_U32) != _MAGIC:
        raise _Damaged(" is not a readable GGUF file: it does not start with the GGUF magic")
    version = r.read(_U32)
    if version not in (2, 3):
        what = "a big-endian GGUF file" if version & 0xFFFF == 0 else f"GGUF version {version}"
        raise _Damaged(f" is not a readable GGUF file: it is {what}; llaf reads little-endian versions 2 and 3")
    n_tensors, n_fields = r.read(_U64), r.read(_U64)
    fields: dict[str, Any] = {"GGUF.version": version, "GGUF.tensor_count": n_tensors, "GGUF.kv_count": n_fields}
    r.fit(n_fields, 13)  # the smallest field: empty key, type, a one-byte value
    alignment_key = field_name("General.ALIGNMENT")
    for _ in range(n_fields):
        key = r.string("a metadata key")
        kind = r.read(_U32)
        if key in fields:
            raise _Damaged(f" is not a readable GGUF file: metadata field {key!r} appears twice")
        fields[key] = r.value(kind, key)
        if key == alignment_key and (kind != _UINT32 or fields[key] & (fields[key] - 1) or not fields[key]):
            raise _Damaged(f" is not a readable GGUF file: {key} is not a power of two stored as u32")

    infos = []
    r.fit(n_tensors, 24)  # the smallest tensor info: empty name, no dimensions, type, offset
    for _ in range(n_tensors):
        name = r.string("a tensor name")
        n_dims = r.read(_U32)
        if n_dims > 4:  # GGML_MAX_DIMS
            raise _Damaged(f" is not a readable GGUF file: tensor {name!r} has {n_dims} dimensions (at most 4)")
        dims = tuple(int(d) for d in np.frombuffer(r.buf, "<u8", n_dims, r.take(8 * n_dims)))
        infos.append((name, dims, r.read(_U32), r.read(_U64)))
    alignment = int(fields.get(alignment_key, 32))
    data_start = -(-r.pos // alignment) * alignment

    tensors: dict[str, Tensor] = {}
    for name, dims, kind, offset in infos:
        try:
            tensor_type = GGMLQuantizationType(kind)
        except ValueError:
            raise _Damaged(f" is not a readable GGUF file: tensor {name!r} has unknown type {kind}") from None
        if name in tensors:
            raise _Damaged(f" is not a readable GGUF file: tensor {name!r} appears twice")
        block, block_bytes = GGML_QUANT_SIZES[tensor_type]
        # As gguf.GGUFReader gives them: plain types as numbers, blocks (and
        # BF16) as bytes, in numpy order.
        shape, dtype = dims[::-1], _PLAIN.get(tensor_type.name)
        if dtype is None:
            if not dims or dims[0] % block:
                raise _Damaged(f" is not a readable GGUF file: tensor {name!r} of type {tensor_type.name} "
                               f"has rows of {dims[0] if dims else 0} values, not whole blocks of {block}")
            shape, dtype = (*shape[:-1], shape[-1] // block * block_bytes), np.uint8
        n_elements = math.prod(dims)
        n_bytes = n_elements // block * block_bytes
        start = data_start + offset
        if start + n_bytes > size:
            raise _Damaged(f" is truncated: tensor {name!r} ends past the end of the file")
        view = data[start:start + n_bytes].view(dtype).reshape(shape)
        tensors[name] = Tensor(name, tensor_type, dims, n_elements, n_bytes, start, view)
    _check_layout(tensors, alignment, size)
    return GGUFFile(path, fields, tensors, mapping)


def _check_layout(tensors: dict[str, Tensor], alignment: int, size: int) -> None:
    """Each tensor's data must fill the space up to the next tensor (or the
    end of the file) but for the alignment padding, as GGUF writers lay it
    out (llama.cpp refuses other layouts too): a rewritten type or shape
    that changes the tensor's size then cannot go unnoticed and make the
    tensor read its neighbour's bytes."""
    by_offset = sorted(tensors.values(), key=lambda t: t.data_offset)
    for i, t in enumerate(by_offset):
        after = by_offset[i + 1] if i + 1 < len(by_offset) else None
        end = size if after is None else after.data_offset
        if not 0 <= end - (t.data_offset + t.n_bytes) < alignment:
            shape = tuple(reversed(t.shape))
            raise _Damaged(f": tensor {t.name!r} of type {t.tensor_type.name} and shape {shape} takes {t.n_bytes} "
                           f"bytes, but its data is {end - t.data_offset} bytes long (up to "
                           + ("the end of the file)" if after is None else f"tensor {after.name!r})"))


@dataclass(frozen=True)
class Tensor:
    """One tensor of a GGUF file: its shape in GGUF order (fastest-moving
    axis first) and its bytes, a read-only view of the file in numpy order."""

    name: str
    tensor_type: GGMLQuantizationType
    shape: tuple[int, ...]
    n_elements: int
    n_bytes: int
    data_offset: int
    data: np.ndarray


_TRUNCATED = " is not a readable GGUF file: it ends inside its metadata (truncated)"
_MAGIC = 0x46554747  # b"GGUF" read as a little-endian u32
_U32, _U64 = struct.Struct("<I"), struct.Struct("<Q")
_UINT32, _STRING, _ARRAY = 4, 8, 9  # gguf.GGUFValueType
# GGUFValueType -> struct/numpy type code of the numbers
_NUMBERS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_SCALARS = {kind: struct.Struct("<" + code) for kind, code in _NUMBERS.items()}
_PLAIN = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I8": np.int8, "I16": np.int16,
          "I32": np.int32, "I64": np.int64}


class _Reader:
    """Little-endian reads from a byte buffer at a moving position."""

    def __init__(self, buf: memoryview) -> None:
        self.buf, self.pos, self.size = buf, 0, len(buf)

    def take(self, n: int) -> int:
        """The position of the next `n` bytes, which are then passed."""
        start = self.pos
        if n > self.size - start:
            raise _Damaged(_TRUNCATED)
        self.pos += n
        return start

    def fit(self, count: int, least: int) -> None:
        """`count` items of at least `least` bytes each must fit in the rest of the file."""
        if count * least > self.size - self.pos:
            raise _Damaged(f" is not a readable GGUF file: a count of {count} items runs past the end of the file")

    def read(self, s: struct.Struct) -> Any:
        return s.unpack_from(self.buf, self.take(s.size))[0]

    def string(self, what: str) -> str:
        start = self.take(self.read(_U64))
        try:
            return str(self.buf[start:self.pos], "utf-8")
        except UnicodeDecodeError:
            raise _Damaged(f" is not a readable GGUF file: {what} is not UTF-8") from None

    def value(self, kind: int, key: str, depth: int = 0) -> Any:
        """A metadata value of GGUFValueType `kind`: a number, bool, string or list."""
        if kind in _SCALARS:
            return self.read(_SCALARS[kind])
        if kind == _STRING:
            start = self.take(self.read(_U64))
            return _utf8(self.buf[start:self.pos], key)
        if kind != _ARRAY:
            raise _Damaged(f" is not a readable GGUF file: metadata field {key!r} has unknown type {kind}")
        if depth > 8:  # only a corrupt file nests arrays this deep
            raise _Damaged(f" is not a readable GGUF file: metadata field {key!r} nests arrays too deep")
        item, count = self.read(_U32), self.read(_U64)
        if item in _NUMBERS:  # one numpy read
            dtype = np.dtype("<" + _NUMBERS[item])
            self.fit(count, dtype.itemsize)
            return np.frombuffer(self.buf, dtype, count, self.take(count * dtype.itemsize)).tolist()
        self.fit(count, 8 if item == _STRING else 12)
        if item != _STRING:
            return [self.value(item, key, depth + 1) for _ in range(count)]
        # A vocabulary or merge table: ~50k strings, walked by their lengths
        # in one loop (a method call per string would triple the time).
        buf, pos, size, unpack, out = self.buf, self.pos, self.size, _U64.unpack_from, []
        try:
            for _ in range(count):
                n = unpack(buf, pos)[0]
                pos += 8
                if n > size - pos:
                    break
                out.append(str(buf[pos:pos + n], "utf-8"))
                pos += n
            else:
                self.pos = pos
                return out
        except struct.error:  # the length itself is cut off
            pass
        except UnicodeDecodeError:
            raise _Damaged(f": GGUF metadata field {key!r} is damaged") from None
        raise _Damaged(_TRUNCATED)


def _utf8(b: memoryview, key: str) -> str:
    try:
        return str(b, "utf-8")
    except UnicodeDecodeError:
        raise _Damaged(f": GGUF metadata field {key!r} is damaged") from None


def _shown(value: float) -> str:
    """A field's number as written: a float32 one as its shortest form."""
    if isinstance(value, float):
        with np.errstate(all="ignore"):
            single = np.float32(value)
        return str(single) if float(single) == value else repr(value)
    return repr(value)


def _described(value: Any) -> str:
    if isinstance(value, list):
        return f"a list of {len(value)} values"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return f"the {type(value).__name__} {_shown(value)}"


def permute(w: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's converter's order of query/key rows: "rotate half" order
    to pairs interleaved, head by head (what `unpermute` undoes)."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w: np.ndarray, heads: int) -> np.ndarray:
    """Undo llama.cpp's interleaving of query/key rows: back to "rotate half"
    order, head by head."""
    rows = w.shape[0]
    return w.reshape(heads, rows // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


# The longest context llaf takes from a file's metadata: beyond any model's
# (the longest are near 10M tokens), so that a larger one is damage; the key/
# value cache's size is checked against the memory before it is made.
MAX_CONTEXT = 1 << 24

def _tensor_names(key: str, layers: int) -> list[str]:
    """The GGUF tensors holding llaf array `key`: one a layer for the per-layer arrays."""
    return [tensor_name(key, i) for i in range(layers)] if per_layer(key) else [tensor_name(key)]


@dataclass(frozen=True)
class _Model:
    """A checked file's architecture, hyper-parameters and sizes."""

    layout: Layout
    hparams: dict[str, Any]
    layers: int
    theta: float
    rotated: int                   # features of a head the rotation turns
    sizes: dict[str, int]          # qd, kvd, ff: the rows of the fused matrices' parts


def _check(g: GGUFFile, arch: str) -> _Model:
    """The hyper-parameters, the layer count, rope θ and the head size of a
    file of the Llama family, checked against each other and against its
    tensors, every one of which must be a tensor of the model of the shape
    they imply: a LlafError naming the field or tensor otherwise."""
    file, layout = g.path.name, LAYOUTS[arch]

    def f(key: str) -> str:
        return field_name(key, arch)

    layers = g.integer(f("LLM.BLOCK_COUNT"))
    if layers > len(g.tensors):  # before anything loops over the layers
        raise LlafError(f"{file}: GGUF field {f('LLM.BLOCK_COUNT')!r} is {layers}, "
                        f"but the file holds only {len(g.tensors)} tensors")
    heads = g.integer(f("Attention.HEAD_COUNT"))
    kv_heads = g.integer(f("Attention.HEAD_COUNT_KV"), heads)
    context = g.integer(f("LLM.CONTEXT_LENGTH"), most=MAX_CONTEXT)
    eps = g.positive(f("Attention.LAYERNORM_RMS_EPS"))
    # θ ≤ 1 would not make the rotary frequencies fall along a head; no model has one
    theta = g.positive(f("Rope.FREQ_BASE"), 10000.0, above=1.0)
    # the MLP's width from its gate (Phi-3's is fused with the up projection: from the down projection)
    embed, mlp = tensor_name("embed"), tensor_name("w_down" if layout.fused else "w_gate")
    vocab, d = g.shape(embed, 2)
    ff = g.shape(mlp, 2)[1 if layout.fused else 0]
    g.agrees(f("LLM.EMBEDDING_LENGTH"), d, f"tensor {embed!r} has rows of {d}", required=True)
    g.agrees(f("LLM.FEED_FORWARD_LENGTH"), ff, f"tensor {mlp!r} has {ff} {'columns' if layout.fused else 'rows'}")
    g.agrees(f("LLM.VOCAB_SIZE"), vocab, f"tensor {embed!r} has {vocab} rows")
    if f("Attention.KEY_LENGTH") in g.fields:  # heads of their own size (Qwen3, Gemma)
        hd = g.integer(f("Attention.KEY_LENGTH"))
        g.agrees(f("Attention.VALUE_LENGTH"), hd, f"keys have {hd} features (llaf's values have as many)")
    elif d % heads:
        raise LlafError(f"{file}: GGUF field {f('Attention.HEAD_COUNT')!r} is {heads}, "
                        f"which does not divide the embedding width {d}")
    else:
        hd = d // heads
    if heads % kv_heads:
        raise LlafError(f"{file}: GGUF field {f('Attention.HEAD_COUNT_KV')!r} is {kv_heads}, "
                        f"which does not divide {f('Attention.HEAD_COUNT')} {heads}")
    if f("Rope.DIMENSION_COUNT") not in g.fields and hd % 2:
        raise LlafError(f"{file}: heads of {hd} value{'s' * (hd != 1)} (GGUF field {f('Attention.HEAD_COUNT')!r} "
                        f"is {heads}): rotary embedding needs an even head size")
    rotated = g.integer(f("Rope.DIMENSION_COUNT"), hd)
    if rotated % 2 or rotated > hd:
        raise LlafError(f"{file}: GGUF field {f('Rope.DIMENSION_COUNT')!r} is {rotated}: rotary embedding needs "
                        f"an even number of features, at most the head size {hd}")
    window = g.fields.get(f("Attention.SLIDING_WINDOW"), 0)  # 0: none (Phi-4 writes it so)
    if isinstance(window, bool) or not isinstance(window, int) or window < 0:
        raise LlafError(f"{file}: GGUF field {f('Attention.SLIDING_WINDOW')!r} is {_shown(window)}; "
                        "it must be a whole number, 0 for none")
    qd, kvd = heads * hd, kv_heads * hd

    tied = tensor_name("lm_head") not in g.tensors
    shapes = {"w_gate": (layers, ff, d), "embed": (vocab, d), "lm_head": (0 if tied else vocab, d),
              "wq": (layers, qd, d), "inv_freq": (rotated // 2,)}
    present = {k: int(tensor_name(k, 0) in g.tensors) for k in VARIATIONS}
    shapes |= {k: (layers, n) for k, n in present.items()}
    expected = llama.expected_shapes(shapes, {"heads": heads, "kv_heads": kv_heads})
    expected |= {"wqkv": (layers, qd + 2 * kvd, d), "w_gate_up": (layers, 2 * ff, d)}
    fused = {part for _, parts in FUSED.values() for part in parts}
    used = set()
    for key, shape in expected.items():
        if ((key == "lm_head" and tied) or (key == "inv_freq" and tensor_name("inv_freq") not in g.tensors)
                or (key in VARIATIONS and not present[key]) or (key in FUSED and not layout.fused)
                or (layout.fused and key in fused)):
            continue
        for name in _tensor_names(key, layers):
            want = shape[1:] if per_layer(key) else shape
            if g.shape(name, len(want)) != want:
                raise LlafError(f"{file}: tensor {name!r} has shape {g.shape(name)}, expected {want}")
            used.add(name)
    for name in g.tensors:
        if name not in used:
            block = re.fullmatch(r"blk\.(\d+)\..*", name)
            if block and int(block[1]) >= layers:
                raise LlafError(f"{file}: tensor {name!r} is not used: GGUF field {f('LLM.BLOCK_COUNT')!r} "
                                f"is {layers}")
            raise LlafError(f"{file}: tensor {name!r} is not one of a {arch} model's")
    hparams = {"heads": heads, "kv_heads": kv_heads, "context": context, "eps": eps, "window": window,
               "activation": llama.ACTIVATIONS[layout.activation],
               "embedding_scale": float(np.float32(math.sqrt(d))) if layout.scaled else 1.0}
    return _Model(layout, hparams, layers, theta, rotated, {"wq": qd, "wk": kvd, "wv": kvd, "w_gate": ff, "w_up": ff})


def read(path: str | Path, storage: str | None = None) -> tuple[str, dict[str, Any], dict[str, np.ndarray], str]:
    """Architecture, hyper-parameters, llaf arrays and storage of a GGUF model:
    `storage`, or by default the smallest that holds its tensors exactly."""
    g = open_gguf(path)
    arch = g.field(field_name("General.ARCHITECTURE"))
    if arch not in LAYOUTS:
        raise LlafError(f"{g.path.name}: GGUF architecture {arch!r} is not supported "
                        f"(llaf reads {', '.join(LAYOUTS)})")
    m = _check(g, arch)
    # Damaged values (an infinite scale, a zero divisor) would make numpy
    # warn on stderr beside llaf's one-line message: its checks below say it.
    with np.errstate(all="ignore"):
        freq = llama.inv_freq(m.rotated, m.theta)  # finite and positive for the θ `_check` accepts
        rope_freqs = tensor_name("inv_freq")
        if rope_freqs in g.tensors:  # Llama 3.1's long-context scaling, as per-frequency divisors
            freq = (freq / g.tensor(rope_freqs)).astype(np.float32)
            if not np.isfinite(freq).all():
                raise LlafError(f"{g.path.name}: tensor {rope_freqs!r} holds zeros or values that are not "
                                "finite: the rotary frequencies it gives are not finite")
        arrays, storage = _arrays(g, m, storage)
    arrays["inv_freq"] = freq
    hparams = llama.with_defaults(m.hparams, arrays)
    g.drop_pages()  # the arrays above are copies, or views (F32 norms) whose pages come back when read
    return "llama", hparams, arrays, storage


def _sources(m: _Model, key: str, layer: int) -> tuple[str, slice]:
    """The tensor of layer `layer` holding llaf matrix `key`, and its rows there."""
    for fused, (_, parts) in FUSED.items():
        if m.layout.fused and key in parts:
            start = sum(m.sizes[p] for p in parts[:parts.index(key)])
            return tensor_name(fused, layer), slice(start, start + m.sizes[key])
    return tensor_name(key, layer), slice(None)


def _arrays(g: GGUFFile, m: _Model, storage: str | None) -> tuple[dict[str, np.ndarray], str]:
    """The llaf arrays of a checked file (but inv_freq), in `storage` or the
    smallest that holds them exactly; every value finite."""
    layers, d = m.layers, g.shape(tensor_name("w_down"), 2)[0]
    layer_types = {g.kind(_sources(m, key, i)[0])
                   for key, role in llama.MATRICES.items() if role == "layers" for i in range(layers)}
    head_names = [n for n in (tensor_name("embed"), tensor_name("lm_head")) if n in g.tensors]
    storage = storage_mod.check_storage(storage) if storage else storage_mod.choose(
        layer_types, {g.kind(n) for n in head_names})
    compact = storage == storage_mod.COMPACT
    storage = storage_mod.MIXED if compact else storage
    mixed = storage == storage_mod.MIXED
    layer_fmt, head_fmt = storage_mod.STORAGES.get(storage, (storage, storage))

    def fmt(key: str, name: str, stored: str) -> str:
        """The format of tensor `name` holding llaf array `key`: a matrix's
        as the storage says (`stored`), or in mixed storage its own."""
        if key not in llama.MATRICES:
            return "f32"
        return storage_mod.kept(g.kind(name), compact) if mixed else stored

    def finite(name: str, fmt: str, key: str, parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not storage_mod.finite(parts, key, fmt):
            raise LlafError(f"{g.path.name}: tensor {name!r} holds values that are not finite (NaN or infinity)")
        return parts

    def layer_arrays(key: str, i: int) -> tuple[str, dict[str, np.ndarray]]:
        name, rows = _sources(m, key, i)
        f = fmt(key, name, layer_fmt)
        parts = finite(name, f, key, g.matrix(name, f, key, rows))
        if key in ("wq", "wk") and m.layout.permuted:
            heads = m.hparams["heads"] if key == "wq" else m.hparams["kv_heads"]
            return f, {k: unpermute(v, heads) for k, v in parts.items()}
        return f, parts

    arrays: dict[str, np.ndarray] = {}
    for key in filter(per_layer, TENSORS | VARIATIONS):
        if key in VARIATIONS and tensor_name(key, 0) not in g.tensors:
            continue
        stack = [layer_arrays(key, i) for i in range(layers)]
        if mixed and key in llama.MATRICES:
            arrays |= storage_mod.Mixed.stack(key, stack)
        else:
            arrays |= {part: np.stack([p[part] for _, p in stack]) for part in stack[0][1]}
        del stack
        g.drop_pages()  # the file's pages read for this stack: not the process's memory from here on
    for key in ("embed", "final_norm", "lm_head"):
        name = tensor_name(key)
        if name in g.tensors:
            f = fmt(key, name, head_fmt)
            parts = finite(name, f, key, g.matrix(name, f, key))
            arrays |= storage_mod.Mixed.stack(key, [(f, parts)]) if mixed and key != "final_norm" \
                else parts
    if tensor_name("lm_head") not in g.tensors:  # tied to the embedding: an empty head
        f = "f32" if mixed else head_fmt
        shapes = storage_mod.FORMATS[f].shapes("lm_head", (0, d))
        empty = {k: np.zeros(shape, dtype) for k, (shape, dtype) in shapes.items()}
        arrays |= storage_mod.Mixed.stack("lm_head", [(f, empty)]) if mixed else empty
    return arrays, storage


def copy_field(writer: Any, field: Any) -> None:
    """gguf-py's reader's `field` added to its `writer` as it was (its type,
    and an array's element type)."""
    import gguf

    kind = field.types[0]
    writer.add_key_value(field.name, field.contents(), kind,
                         sub_type=field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None)


def copy_fields(writer: Any, reader: Any, leave_out: Collection[str] = ()) -> None:
    """Every metadata field of gguf-py's `reader` added to its `writer` as it
    was (`copy_field`), but those the writer writes itself (the header's
    counts, the architecture) and those named in `leave_out`."""
    import gguf

    for f in reader.fields.values():
        if f.name != gguf.Keys.General.ARCHITECTURE and not f.name.startswith("GGUF.") and f.name not in leave_out:
            copy_field(writer, f)


def not_the_source(source: str | Path, out: str | Path) -> None:
    """Refuse to write over the file a model is read from: its weights would
    be lost (and adapters merged twice into the result of a second run)."""
    if Path(out).resolve() == Path(source).resolve():
        raise LlafError(f"{out} is the model file being read: write to another file")


def rewrite(source: str | Path, out: str | Path, replaced: dict[str, np.ndarray]) -> Path:
    """A copy of the GGUF file `source` at `out`, written through gguf's
    writer, with the tensors `replaced` (by name) as F32: every other tensor
    and all metadata (tokenizer, chat template) as they were, so that
    llama.cpp loads it as it loads the source.  Written beside `out` and
    renamed: a failure leaves no half-written file."""
    import gguf

    source, out = Path(source), Path(out)
    not_the_source(source, out)
    arch = open_gguf(source).field(field_name("General.ARCHITECTURE"))
    reader = gguf.GGUFReader(str(source))
    missing = set(replaced) - {t.name for t in reader.tensors}
    if missing:
        raise LlafError(f"{source.name}: no tensor {sorted(missing)[0]!r} to replace")
    values = {name: np.ascontiguousarray(v, np.float32) for name, v in replaced.items()}
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    writer = gguf.GGUFWriter(str(tmp), arch, endianess=reader.endianess)
    try:
        copy_fields(writer, reader)
        for tensor in reader.tensors:
            if tensor.name in values:
                v = values[tensor.name]
                writer.add_tensor_info(tensor.name, v.shape, v.dtype, v.nbytes, gguf.GGMLQuantizationType.F32)
            else:
                writer.add_tensor_info(tensor.name, tensor.data.shape, tensor.data.dtype, tensor.data.nbytes,
                                       tensor.tensor_type)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for tensor in reader.tensors:
            writer.write_tensor_data(values.get(tensor.name, tensor.data), tensor_endianess=reader.endianess)
        writer.close()
        tmp.replace(out)
    except OSError as e:  # the place or the disk, not the data
        raise LlafError(f"cannot write {out}: {e.strerror}") from None
    finally:
        writer.close()  # again after a failure: its file closed before it is removed
        tmp.unlink(missing_ok=True)
    return out


def llama_tensors(source: str | Path, arrays: dict[str, np.ndarray], hparams: dict[str, Any]
                  ) -> dict[str, np.ndarray]:
    """The f32 llaf `arrays` of a model read from the GGUF file `source`,
    as the tensors of that file: what `read` does undone (query and key rows
    back in llama.cpp's order, fused projections joined again).  An empty
    head (tied to the embedding) and the rotary frequencies are left out."""
    g = open_gguf(source)
    layout = LAYOUTS[g.field(field_name("General.ARCHITECTURE"))]
    heads = {"wq": int(hparams["heads"]), "wk": int(hparams["kv_heads"])}
    parts: dict[tuple[str, int], np.ndarray] = {}
    for key in TENSORS | VARIATIONS:
        a = arrays.get(key)
        if key == "inv_freq" or a is None or a.size == 0:
            continue
        for i in range(a.shape[0]) if per_layer(key) else [0]:
            v = a[i] if per_layer(key) else a
            parts[key, i] = permute(v, heads[key]) if layout.permuted and key in heads else v
    if layout.fused:
        for fused, (_, names) in FUSED.items():
            for i in {i for (key, i) in parts if key == names[0]}:
                parts[fused, i] = np.concatenate([parts.pop((p, i)) for p in names])
    return {tensor_name(key, i): v for (key, i), v in parts.items()}
