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

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import llama
from . import storage as storage_mod
from .errors import LlafError

SUPPORTED_TYPES = ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1")

PER_LAYER = {"attn_norm": "attn_norm", "wq": "attn_q", "wk": "attn_k", "wv": "attn_v", "wo": "attn_output",
             "mlp_norm": "ffn_norm", "w_gate": "ffn_gate", "w_up": "ffn_up", "w_down": "ffn_down"}


@dataclass(frozen=True)
class GGUFFile:
    """An opened GGUF file: its metadata fields and its tensors by name."""

    path: Path
    fields: dict[str, Any]
    tensors: dict[str, Any]

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


def open_gguf(path: str | Path) -> GGUFFile:
    """Open a GGUF file; a LlafError if it is not one, or is truncated."""
    from gguf import GGUFReader

    path = Path(path)
    try:
        reader = GGUFReader(path)
    except Exception as e:  # the reader raises several types on damaged files
        raise LlafError(f"{path.name} is not a readable GGUF file: {str(e).strip().splitlines()[0]}") from None
    fields: dict[str, Any] = {}
    for key, f in reader.fields.items():
        try:
            fields[key] = f.contents()
        except Exception:
            raise LlafError(f"{path.name}: GGUF metadata field {key!r} is damaged") from None
    size = path.stat().st_size
    for t in reader.tensors:
        if t.data_offset + t.n_bytes > size:
            raise LlafError(f"{path.name} is truncated: tensor {t.name!r} ends past the end of the file")
    return GGUFFile(path, fields, {t.name: t for t in reader.tensors})


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
    return arch, hparams, arrays, storage
