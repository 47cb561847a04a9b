"""How a model's weight matrices are stored in the engine (src/matrix.fut).

A *format* stores one matrix; a *storage* picks the format of a Llama
model's per-layer projections and the one of its embedding and head:

    storage   layers   embedding/head   from
    f32       f32      f32              transformers models, F32/BF16 GGUF
    f16       f16      f16              F16 GGUF
    q8        q8       q8               Q8_0, Q5_0, Q5_1 GGUF (also mixed with Q4_0/Q4_1)
    q4        q4       q8               Q4_0/Q4_1 GGUF (SmolLM2's embedding is Q8_0)

Every format holds exactly the values the file means: a GGUF block is
re-laid-out, never re-quantized.  A matrix `name` in a non-f32 format is
several arrays in `Weights.arrays`: ``name`` itself for f16 (IEEE half bits
as uint16), ``name.q``, ``name.scale``, ``name.offset`` for the block formats
(codes, one scale and one offset per block of 32 values, both IEEE half
bits as uint16, as in the file's blocks).  These arrays
keep the file's row order; `Format.panels` lays them out for the engine
(src/matrix.fut: panels of `PANEL` rows, each column of a panel contiguous)
when they are handed to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .errors import LlafError

BLOCK = 32
PANEL = 32  # rows per panel: `P` in src/matrix.fut


@dataclass(frozen=True)
class Format:
    """One matrix format: its arrays, as (suffix, dtype, trailing shape per block row)."""

    name: str
    blocked: bool
    code_bytes: int  # code bytes per block of 32 values (block formats)
    dtype: type = np.float32

    def parts(self, name: str) -> list[str]:
        return [f"{name}.q", f"{name}.scale", f"{name}.offset"] if self.blocked else [name]

    def shapes(self, name: str, shape: tuple[int, ...]) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """The arrays storing a matrix of `shape` (its last axis the columns)."""
        if not self.blocked:
            return {name: (shape, np.dtype(self.dtype))}
        blocks = (*shape[:-1], shape[-1] // BLOCK)
        return {f"{name}.q": ((*blocks, self.code_bytes), np.dtype(np.uint8)),
                f"{name}.scale": (blocks, np.dtype(np.uint16)),
                f"{name}.offset": (blocks, np.dtype(np.uint16))}

    def panels(self, arrays: Mapping[str, np.ndarray], name: str) -> list[np.ndarray]:
        """Matrix `name`'s arrays in the engine's panel layout, in the order of
        its `parts`: rows padded to whole panels (and f32/f16 columns to
        whole blocks) with zeros; a panel's values for one column contiguous."""
        if not self.blocked:
            w = arrays[name]
            *lead, m, n = w.shape
            w = _pad(_pad(w, -1, -n % BLOCK), -2, -m % PANEL)
            w = w.reshape(*lead, w.shape[-2] // PANEL, PANEL, w.shape[-1] // BLOCK, BLOCK)
            return [np.ascontiguousarray(np.moveaxis(w, -3, -1))]  # [..][T][kb][32][P]
        q, scale, offset = (arrays[part] for part in self.parts(name))
        extra = -scale.shape[-2] % PANEL
        q, scale, offset = _pad(q, -3, extra), _pad(scale, -2, extra), _pad(offset, -2, extra)
        *lead, rows, kb, codes = q.shape
        q = np.ascontiguousarray(np.moveaxis(q.reshape(*lead, rows // PANEL, PANEL, kb, codes), -3, -1))
        scale, offset = (np.ascontiguousarray(np.moveaxis(a.reshape(*lead, rows // PANEL, PANEL, kb), -2, -1))
                         for a in (scale, offset))  # [..][T][kb][P]; q: [..][T][kb][codes][P]
        return [q, scale, offset]

    def logical_shape(self, arrays: Mapping[str, np.ndarray], name: str) -> tuple[int, ...]:
        """The `[rows][columns]` shape the stored arrays of `name` mean."""
        if not self.blocked:
            return tuple(arrays[name].shape)
        *rows, blocks = arrays[f"{name}.scale"].shape
        return (*rows, blocks * BLOCK)


FORMATS = {
    "f32": Format("f32", False, 0, np.float32),
    "f16": Format("f16", False, 0, np.uint16),
    "q8": Format("q8", True, 32),
    "q4": Format("q4", True, 16),
}

# storage -> (format of the per-layer matrices, format of the embedding and head)
STORAGES = {"f32": ("f32", "f32"), "f16": ("f16", "f16"), "q8": ("q8", "q8"), "q4": ("q4", "q8")}

# The GGUF tensor types each format holds exactly.
EXACT = {"f32": {"F32", "F16", "BF16", "Q8_0", "Q5_0", "Q5_1", "Q4_0", "Q4_1"}, "f16": {"F16"},
         "q8": {"Q8_0", "Q5_0", "Q5_1", "Q4_0", "Q4_1"}, "q4": {"Q4_0", "Q4_1"}}


def entry_prefix(architecture: str, storage: str) -> str:
    """The prefix of a model's entry points in src/llm.fut (`llama_q4_run`):
    GPT-2 has one storage, so its entry points name none (`gpt2_run`)."""
    return architecture if architecture == "gpt2" else f"{architecture}_{storage}"


def check_storage(storage: str) -> str:
    if storage not in STORAGES:
        raise LlafError(f"unknown weight storage {storage!r}: choose one of {', '.join(STORAGES)}")
    return storage


def choose(layer_types: set[str], head_types: set[str]) -> str:
    """The smallest storage holding these GGUF tensor types exactly."""
    for storage in ("q4", "q8", "f16"):
        layers, head = STORAGES[storage]
        if layer_types <= EXACT[layers] and head_types <= EXACT[head]:
            return storage
    return "f32"


def _pad(a: np.ndarray, axis: int, extra: int) -> np.ndarray:
    """`a` with `extra` zeros appended along `axis`."""
    if extra == 0:
        return a
    widths = [(0, 0)] * a.ndim
    widths[axis] = (0, extra)
    return np.pad(a, widths)


def _half_bits(raw: np.ndarray) -> np.ndarray:
    """Little-endian float16 fields of a byte array, as their uint16 bits."""
    return np.ascontiguousarray(raw).view("<u2").astype(np.uint16)[..., 0]


def _scaled_half(bits: np.ndarray, factor: int, name: str) -> np.ndarray:
    """The half bits of `factor` times the halves `bits`, which must be exact:
    a power-of-two multiple of a half is one unless it overflows."""
    scaled = np.float32(factor) * bits.view(np.float16).astype(np.float32)
    half = scaled.astype(np.float16)
    with np.errstate(invalid="ignore"):
        exact = (half.astype(np.float32) == scaled) | np.isnan(scaled)
    if not exact.all():
        raise LlafError(f"tensor {name!r} has a block scale too large to store its offset as a half; "
                        f"load it with storage='f32'")
    return half.view(np.uint16)


def encode_gguf(kind: str, raw: np.ndarray, shape: tuple[int, ...], fmt: str, name: str) -> dict[str, np.ndarray]:
    """The arrays of format `fmt` for a GGUF tensor of type `kind`, whose
    bytes are `raw`, meaning a float matrix of `shape`.  Exact, or an error."""
    if kind not in EXACT[fmt]:
        raise LlafError(f"tensor {name!r} of type {kind} cannot be stored as {fmt} exactly")
    if fmt == "f16":
        return {name: np.ascontiguousarray(raw).view("<u2").reshape(shape).astype(np.uint16)}
    rows = shape[:-1]
    blocks = (*rows, shape[-1] // BLOCK)
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    size = GGML_QUANT_SIZES[GGMLQuantizationType[kind]][1]  # bytes a block
    b = np.ascontiguousarray(raw).view(np.uint8).reshape(-1, size)
    scale = _half_bits(b[:, 0:2])
    if kind == "Q8_0":  # value = d · q, q a signed byte: code q + 128, offset -128 d
        codes = (b[:, 2:].view(np.int8).astype(np.int16) + 128).astype(np.uint8)
        offset = _scaled_half(scale, -128, name)
    elif kind in ("Q5_0", "Q5_1"):  # value = d · q - 16 d (Q5_0) or d · q + m (Q5_1), q of 5 bits
        start = 2 if kind == "Q5_0" else 4  # then 32 fifth bits (bit j: value j's), then nibbles as Q4's
        fifth = b[:, start:start + 4].copy().view("<u4")
        packed = b[:, start + 4:]
        codes = (np.concatenate([packed & 15, packed >> 4], axis=1)
                 | (((fifth >> np.arange(32, dtype=np.uint32)) & 1) << 4).astype(np.uint8))
        offset = _scaled_half(scale, -16, name) if kind == "Q5_0" else _half_bits(b[:, 2:4])
    else:  # value = d · nibble - 8 d (Q4_0) or d · nibble + m (Q4_1)
        packed = b[:, 2:] if kind == "Q4_0" else b[:, 4:]
        offset = _scaled_half(scale, -8, name) if kind == "Q4_0" else _half_bits(b[:, 2:4])
        codes = packed if fmt == "q4" else np.concatenate([packed & 15, packed >> 4], axis=1)
    return {f"{name}.q": codes.reshape(*blocks, codes.shape[-1]),
            f"{name}.scale": scale.reshape(blocks), f"{name}.offset": offset.reshape(blocks)}


def decode(arrays: Mapping[str, np.ndarray], name: str, fmt: str) -> np.ndarray:
    """Matrix `name` as float32 (for tests and conversions; the engine never does this)."""
    f = FORMATS[fmt]
    if fmt == "f32":
        return arrays[name]
    if fmt == "f16":
        return arrays[name].view(np.float16).astype(np.float32)
    q, scale, offset = arrays[f"{name}.q"], arrays[f"{name}.scale"], arrays[f"{name}.offset"]
    codes = np.concatenate([q & 15, q >> 4], axis=-1) if fmt == "q4" else q
    scale, offset = (a.view(np.float16).astype(np.float32) for a in (scale, offset))
    values = scale[..., None] * codes.astype(np.float32) + offset[..., None]
    return values.reshape(f.logical_shape(arrays, name)).astype(np.float32)


def finite(arrays: Mapping[str, np.ndarray], name: str, fmt: str) -> bool:
    """Whether matrix `name` in format `fmt` holds only finite values, seen
    without decoding it: half bits (an f16 matrix, a block format's scales
    and offsets) when no exponent is all ones; a block format's values are
    then finite too (its codes are small integers, and scales from float16
    fields times them cannot overflow)."""
    if fmt == "f32":
        a = arrays[name]
        # min and max propagate NaN: two passes, without an array of flags as large as the matrix
        return a.size == 0 or bool(np.isfinite(a.min()) and np.isfinite(a.max()))
    parts = [arrays[name]] if fmt == "f16" else [arrays[f"{name}.scale"], arrays[f"{name}.offset"]]
    return not any(((bits & 0x7C00) == 0x7C00).any() for bits in parts)
