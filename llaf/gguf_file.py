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
import struct
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

SUPPORTED_TYPES = ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1")

PER_LAYER = {"attn_norm": "attn_norm", "wq": "attn_q", "wk": "attn_k", "wv": "attn_v", "wo": "attn_output",
             "mlp_norm": "ffn_norm", "w_gate": "ffn_gate", "w_up": "ffn_up", "w_down": "ffn_down"}


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

    def kind(self, name: str) -> str:
        """Tensor `name`'s type (F32, Q4_1, ...), if llaf reads it."""
        if name not in self.tensors:
            raise LlafError(f"{self.path.name}: GGUF file lacks tensor {name!r}")
        kind = str(self.tensors[name].tensor_type.name)
        if kind not in SUPPORTED_TYPES:
            supported = ", ".join(SUPPORTED_TYPES)
            raise LlafError(f"{self.path.name}: tensor {name!r} has type {kind}; llaf reads {supported}")
        return kind

    def tensor(self, name: str) -> np.ndarray:
        """Tensor `name` as float32, in numpy order ([rows][cols])."""
        from gguf import quants

        self.kind(name)
        t = self.tensors[name]
        shape = tuple(int(n) for n in reversed(t.shape))
        try:
            values = quants.dequantize(np.asarray(t.data), t.tensor_type)
            return np.ascontiguousarray(values.reshape(shape), dtype=np.float32)
        except (ValueError, TypeError) as e:
            raise LlafError(f"{self.path.name}: tensor {name!r} is damaged or truncated ({e})") from None

    def matrix(self, name: str, fmt: str, key: str) -> dict[str, np.ndarray]:
        """Tensor `name` in format `fmt` (llaf/storage.py) as llaf arrays named after `key`."""
        if fmt == "f32":
            return {key: self.tensor(name)}
        t = self.tensors[name]
        shape = tuple(int(n) for n in reversed(t.shape))
        if self.kind(name) not in storage_mod.EXACT[fmt]:
            raise LlafError(f"{self.path.name}: tensor {name!r} of type {self.kind(name)} "
                            f"cannot be stored as {fmt} exactly")
        try:
            return storage_mod.encode_gguf(self.kind(name), np.asarray(t.data), shape, fmt, key)
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
    for _ in range(n_fields):
        key = r.string("a metadata key")
        kind = r.read(_U32)
        if key in fields:
            raise _Damaged(f" is not a readable GGUF file: metadata field {key!r} appears twice")
        fields[key] = r.value(kind, key)
        if key == "general.alignment" and (kind != _UINT32 or fields[key] & (fields[key] - 1) or not fields[key]):
            raise _Damaged(" is not a readable GGUF file: general.alignment is not a power of two stored as u32")

    infos = []
    r.fit(n_tensors, 24)  # the smallest tensor info: empty name, no dimensions, type, offset
    for _ in range(n_tensors):
        name = r.string("a tensor name")
        n_dims = r.read(_U32)
        if n_dims > 4:  # GGML_MAX_DIMS
            raise _Damaged(f" is not a readable GGUF file: tensor {name!r} has {n_dims} dimensions (at most 4)")
        dims = tuple(int(d) for d in np.frombuffer(r.buf, "<u8", n_dims, r.take(8 * n_dims)))
        infos.append((name, dims, r.read(_U32), r.read(_U64)))
    alignment = int(fields.get("general.alignment", 32))
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
    return GGUFFile(path, fields, tensors, mapping)


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


def unpermute(w: np.ndarray, heads: int) -> np.ndarray:
    """Undo llama.cpp's interleaving of query/key rows: back to "rotate half"
    order, head by head."""
    rows = w.shape[0]
    return w.reshape(heads, rows // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def read(path: str | Path, storage: str | None = None) -> tuple[str, dict[str, Any], dict[str, np.ndarray], str]:
    """Architecture, hyper-parameters, llaf arrays and storage of a GGUF model:
    `storage`, or by default the smallest that holds its tensors exactly."""
    g = open_gguf(path)
    arch = g.field("general.architecture")
    if arch != "llama":
        raise LlafError(f"{g.path.name}: GGUF architecture {arch!r} is not supported (llaf reads llama)")
    heads = int(g.field("llama.attention.head_count"))
    kv_heads = int(g.field("llama.attention.head_count_kv", heads))
    layers = int(g.field("llama.block_count"))
    d = int(g.field("llama.embedding_length"))
    hd = int(g.field("llama.rope.dimension_count", d // heads))
    if hd != d // heads:
        raise LlafError(f"{g.path.name}: rope dimension {hd} differs from the head size {d // heads}")
    hparams = {"heads": heads, "kv_heads": kv_heads, "context": int(g.field("llama.context_length")),
               "eps": float(g.field("llama.attention.layer_norm_rms_epsilon"))}
    freq = llama.inv_freq(hd, float(g.field("llama.rope.freq_base", 10000.0)))
    if "rope_freqs.weight" in g.tensors:  # Llama 3.1's long-context scaling, as per-frequency divisors
        freq = (freq / g.tensor("rope_freqs.weight")).astype(np.float32)

    layer_types = {g.kind(f"blk.{i}.{PER_LAYER[key]}.weight")
                   for key, role in llama.MATRICES.items() if role == "layers" for i in range(layers)}
    head_names = ["token_embd.weight"] + (["output.weight"] if "output.weight" in g.tensors else [])
    storage = storage_mod.check_storage(storage) if storage else storage_mod.choose(
        layer_types, {g.kind(n) for n in head_names})
    layer_fmt, head_fmt = storage_mod.STORAGES[storage]

    def layer_arrays(key: str, i: int) -> dict[str, np.ndarray]:
        name = f"blk.{i}.{PER_LAYER[key]}.weight"
        parts = g.matrix(name, layer_fmt, key) if key in llama.MATRICES else {key: g.tensor(name)}
        if key in ("wq", "wk"):
            return {k: unpermute(v, heads if key == "wq" else kv_heads) for k, v in parts.items()}
        return parts

    arrays: dict[str, np.ndarray] = {}
    for key in PER_LAYER:
        per_layer = [layer_arrays(key, i) for i in range(layers)]
        arrays |= {part: np.stack([p[part] for p in per_layer]) for part in per_layer[0]}
    arrays |= g.matrix("token_embd.weight", head_fmt, "embed")
    arrays["final_norm"] = g.tensor("output_norm.weight")
    if "output.weight" in g.tensors:
        arrays |= g.matrix("output.weight", head_fmt, "lm_head")
    else:  # tied to the embedding: an empty head
        empty = storage_mod.FORMATS[head_fmt].shapes("lm_head", (0, d))
        arrays |= {k: np.zeros(shape, dtype) for k, (shape, dtype) in empty.items()}
    arrays["inv_freq"] = freq
    g.drop_pages()  # the arrays above are copies, or views (F32 norms) whose pages come back when read
    return arch, hparams, arrays, storage
