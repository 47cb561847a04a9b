"""Weights: where they come from, and llaf's own weight file.

`load(source)` turns anything `llaf.init` accepts into a `Weights`: a
transformers model object, a GGUF file, a local Hugging Face directory, a hub name (used
through transformers, so it works when online or already in the Hugging Face
cache), or a llaf weight file.  Conversions from transformers are cached as
llaf weight files under ``.cache/weights`` (see `llaf.assets.asset_dir`).

A llaf weight file is a safetensors file whose metadata says
``{"format": "llaf", "architecture": ..., <hyper-parameters>}`` and whose
tensors are the arguments of ``<architecture>_init`` in ``src/llm.fut``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import gguf_file, gpt2, llama
from . import storage as storage_mod
from .assets import asset_dir
from .errors import LlafError

ARCHITECTURES = {m.ARCHITECTURE: m for m in (gpt2, llama)}


@dataclass(frozen=True)
class Weights:
    """A model's weights in llaf's layout, ready for ``<entry>_init``.

    `storage` says how the weight matrices are stored (llaf/storage.py):
    ``f32``, or for Llama models from GGUF files ``f16``, ``q8``, ``q4`` or
    ``mixed``, where a matrix is kept in its file's own (quantized) form."""

    architecture: str
    hparams: dict[str, Any]
    arrays: dict[str, np.ndarray]
    storage: str = "f32"

    @property
    def module(self) -> Any:
        """The architecture's module (llaf/gpt2.py, llaf/llama.py)."""
        return ARCHITECTURES[self.architecture]

    @property
    def entry(self) -> str:
        """The prefix of this model's entry points in src/llm.fut."""
        return storage_mod.entry_prefix(self.architecture, self.storage)

    def format(self, name: str) -> storage_mod.Format | storage_mod.Mixed:
        """The format array or matrix `name` is stored in (in the mixed
        storage, the formats of each of its matrices)."""
        role = self.module.MATRICES.get(name)
        if role is None:
            return storage_mod.FORMATS["f32"]
        if self.storage == storage_mod.MIXED:
            return storage_mod.Mixed.of(self.arrays, name, role == "layers")
        layers, head = storage_mod.STORAGES[self.storage]
        return storage_mod.FORMATS[layers if role == "layers" else head]

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Every array's shape, a matrix's as the `[rows][columns]` it means."""
        return {name: self.format(name).logical_shape(self.arrays, name) for name in self.module.ARRAYS}

    @property
    def vocab(self) -> int:
        return int(self.module.vocab(self.shapes))

    @property
    def context(self) -> int:
        return int(self.module.context(self.shapes, self.hparams))

    @property
    def kv_width(self) -> int:
        """Keys the key/value cache holds per position (values: as many)."""
        return int(self.module.kv_width(self.shapes, self.hparams))

    def init_args(self, release: bool = False) -> Iterator[Any]:
        """The arguments of ``<entry>_init`` in src/llm.fut: the scalars, then
        every array, a weight matrix as its panels (llaf/storage.py), or in
        the mixed storage as its formats and places in the pools, which
        follow.  One matrix's panels (one pool) are made at a time, so that
        the caller can hand each array to the engine and free it before the
        next is made; with `release`, each of these weights' arrays is
        dropped from them once given (loading then holds no second copy)."""
        values = self.hparams | self.module.sizes(self.shapes, self.hparams)
        yield from (kind(values[name]) for name, kind in self.module.SCALARS)
        if self.storage == storage_mod.MIXED:  # each stack's formats and places, the pools last
            matrices = {name: storage_mod.Mixed.of(self.arrays, name, role == "layers")
                        for name, role in self.module.MATRICES.items()}
            places = storage_mod.places(self.arrays, matrices)
            for name in self.module.ARRAYS:
                yield from places[name] if name in places else (self.arrays[name],)
            yield from storage_mod.pools(self.arrays, matrices, release)
            return
        for name in self.module.ARRAYS:
            fmt = self.format(name)
            if name in self.module.MATRICES and isinstance(fmt, storage_mod.Format):
                parts = fmt.parts(name)
                yield from fmt.panels(self.arrays, name)
            else:
                parts = [name]
                yield self.arrays[name]
            for part in parts if release else ():
                del self.arrays[part]

    @property
    def array_count(self) -> int:
        """How many arrays `init_args` gives."""
        if self.storage == storage_mod.MIXED:  # `which` and `at` a matrix stack, the pools' arrays
            pools = sum(len(f.parts("m")) for f in storage_mod.FORMATS.values())
            return len(self.module.ARRAYS) + len(self.module.MATRICES) + pools
        return sum(len(self.format(name).parts(name)) for name in self.module.ARRAYS)

    def dense(self, name: str) -> np.ndarray:
        """Array `name` as float32 values, whatever its storage."""
        fmt = self.format(name)
        if isinstance(fmt, storage_mod.Mixed):
            return fmt.decode(self.arrays, name)
        return storage_mod.decode(self.arrays, name, fmt.name)

    def check(self) -> None:
        """A LlafError naming the first missing, mistyped or misshapen array."""
        if self.architecture not in ARCHITECTURES:
            raise LlafError(f"unknown architecture {self.architecture!r}: llaf runs {', '.join(ARCHITECTURES)}")
        if self.storage not in self.module.STORAGES:
            raise LlafError(f"{self.architecture} weights cannot be stored as {self.storage!r}: "
                            f"choose one of {', '.join(self.module.STORAGES)}")
        for name in self.module.HPARAMS:
            if name not in self.hparams:
                raise LlafError(f"{self.architecture} weights lack hyper-parameter {name!r}")
        for name in self.module.ARRAYS:
            for part in self.format(name).parts(name):
                if part not in self.arrays:
                    raise LlafError(f"{self.architecture} weights lack tensor {part!r}")
        for name, shape in self.module.expected_shapes(self.shapes, self.hparams).items():
            fmt = self.format(name)
            if fmt.blocked and shape[-1] % storage_mod.BLOCK:
                raise LlafError(f"tensor {name!r} has {shape[-1]} columns, not a multiple of "
                                f"{storage_mod.BLOCK}, and cannot be stored as {fmt.name}")
            for part, (part_shape, dtype) in fmt.shapes(name, shape).items():
                a = self.arrays[part]
                if a.dtype != dtype:
                    raise LlafError(f"tensor {part!r} has dtype {a.dtype}, expected {dtype}")
                if a.shape != part_shape:
                    raise LlafError(f"tensor {part!r} has shape {a.shape}, expected {part_shape}")


def save(weights: Weights, path: str | Path) -> Path:
    """Write `weights` as a llaf weight file."""
    from safetensors.numpy import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": "llaf", "architecture": weights.architecture, "hparams": json.dumps(weights.hparams),
            "storage": weights.storage}
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # two processes may write one file
    save_file({k: np.ascontiguousarray(v) for k, v in weights.arrays.items()}, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def load_file(path: str | Path) -> Weights:
    """Read a llaf weight file; a LlafError if it is not one or is damaged."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            if meta.get("format") != "llaf":
                raise LlafError(f"{path} is not a llaf weight file (no format=llaf in its metadata)")
            arch = meta.get("architecture", "")
            if arch not in ARCHITECTURES:
                raise LlafError(f"{path}: unknown architecture {arch!r}")
            arrays = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 (safe_open is not a Mapping)
            hparams = ARCHITECTURES[arch].with_defaults(json.loads(meta.get("hparams", "{}")), arrays)
            storage = meta.get("storage", "f32")
    except LlafError:
        raise
    except Exception as e:  # safetensors raises several types for damaged files
        raise LlafError(f"cannot read weight file {path}: {str(e).strip().splitlines()[0]}") from None
    weights = Weights(arch, hparams, arrays, storage)
    weights.check()
    return weights


def from_transformers(model: Any, progress: bool = True) -> Weights:
    """Convert a transformers causal-LM object (its config picks the architecture)."""
    kind = getattr(getattr(model, "config", None), "model_type", None)
    for module in ARCHITECTURES.values():
        if kind in module.HF_TYPES:
            hparams, arrays = module.from_transformers(model, progress)
            weights = Weights(module.ARCHITECTURE, hparams, arrays)
            weights.check()
            return weights
    supported = ", ".join(t for m in ARCHITECTURES.values() for t in m.HF_TYPES)
    raise LlafError(f"unsupported architecture {kind!r}: llaf runs {supported}")


def _cache_path(key: str) -> Path:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("_")[-60:]
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    return asset_dir() / "weights" / f"{name}-{digest}.safetensors"


def _directory_key(path: Path) -> str:
    """A cache key that changes when the directory's weights change."""
    stamps = [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted(path.iterdir()) if p.is_file()]
    return f"{path.resolve()}|{'|'.join(stamps)}"


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers at all (a quick TCP connect), so
    that an offline machine fails at once instead of after transformers'
    retries."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname or "", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """transformers' warnings off for a while: llaf reports failures itself, in one line."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def _from_pretrained(name: str) -> Any:
    from transformers import AutoModelForCausalLM

    # Offline, transformers still finds what the Hugging Face cache holds.
    offline = Path(name).is_dir() or not _hub_reachable()
    try:
        with quiet_transformers():
            return AutoModelForCausalLM.from_pretrained(name, dtype="float32", local_files_only=offline)
    except OSError as e:
        raise LlafError(
            f"no weights for {name!r}: not in llaf's cache and transformers could not load it "
            f"({str(e).strip().splitlines()[0][:120]}). Get them when online with "
            f"`python -c \"import llaf; llaf.init('{name}')\"`, or pass a local Hugging Face directory, "
            "a llaf weight file or a transformers model"
        ) from None


def as_f32(weights: Weights) -> Weights:
    """`weights` with every matrix decoded to float32 (exact)."""
    if weights.storage == "f32":
        return weights
    arrays = {name: weights.dense(name) for name in weights.module.ARRAYS}
    return Weights(weights.architecture, weights.hparams, arrays, "f32")


def _gguf_files(where: Path, name: str | None = None) -> list[Path]:
    """The GGUF files in directory `where`; with `name`, those it names: the
    file name, or the name without its quantization (``SmolLM2-135M-Instruct``
    for ``SmolLM2-135M-Instruct.Q4_1.gguf``), in any case."""
    files = sorted(where.glob("*.gguf")) if where.is_dir() else []
    if name is None:
        return files
    key = name.casefold()
    return [f for f in files if key in (f.name.casefold(), f.stem.casefold()) or
            f.name.casefold().startswith(key + ".")]


def resolve(source: Any) -> Any:
    """Where the model `source` names is: a directory without config.json
    that holds one GGUF file means that file, and a bare name that is no
    file means the GGUF file of that name among llaf's models (.cache/models,
    where the default model is), so ``SmolLM2-135M-Instruct`` is the default
    model. Anything else is returned as it is."""
    if not isinstance(source, (str, Path)):
        return source
    path = Path(source).expanduser()
    if path.is_dir() and not (path / "config.json").exists():
        files = _gguf_files(path)
        if len(files) > 1:
            raise LlafError(f"{path} holds {len(files)} GGUF files ({', '.join(f.name for f in files)}): "
                            "name one of them")
        return files[0] if files else source
    if not path.exists() and isinstance(source, str) and "/" not in source:
        files = _gguf_files(asset_dir() / "models", source)
        if len(files) > 1:
            raise LlafError(f"{source!r} names {len(files)} models ({', '.join(f.name for f in files)}): "
                            "give the whole file name")
        if files:
            return files[0]
    return source


def load(source: Any, progress: bool = True, storage: str | None = None) -> Weights:
    """Weights from anything `llaf.init` accepts (see `resolve` for names and
    directories).  `storage` (llaf/storage.py): by default a GGUF file's
    matrices keep their file's form and other sources are f32; ``"f32"``
    decodes quantized matrices to float32; ``"compact"`` keeps a GGUF file's
    every matrix in the smallest format holding it (mixed storage)."""
    if storage is not None:
        storage_mod.check_storage(storage)
    source = resolve(source)
    path = Path(source).expanduser() if isinstance(source, (str, Path)) else None
    if path is not None and path.exists() and not (path.is_file() or path.is_dir()):
        raise LlafError(f"{source} is not a regular file")  # a FIFO or device: not "no such file"
    if path is not None and path.is_file() and gguf_file.is_gguf(path):
        arch, hparams, arrays, chosen = gguf_file.read(path, storage)
        weights = Weights(arch, hparams, arrays, chosen)
        weights.check()
        return weights
    weights = _load(source, progress)
    if storage is None or storage == weights.storage:
        return weights
    if storage == "f32":
        return as_f32(weights)
    raise LlafError(f"weights stored as {weights.storage} cannot be converted to {storage} exactly; "
                    "quantized storages come from GGUF files")


def _load(source: Any, progress: bool) -> Weights:
    if isinstance(source, Weights):
        source.check()
        return source
    if hasattr(source, "state_dict") and hasattr(source, "config"):
        return from_transformers(source, progress)
    if not isinstance(source, (str, Path)):
        raise LlafError(f"cannot load weights from a {type(source).__name__}")
    path = Path(source).expanduser()
    if path.is_file():
        return load_file(path)
    if path.is_dir():
        if not (path / "config.json").exists():
            raise LlafError(f"{path} holds no GGUF file and is not a Hugging Face model directory (no config.json)")
        cached = _cache_path(_directory_key(path))
    elif str(source).startswith((".", "/", "~")) or str(source).endswith((".safetensors", ".gguf")):
        raise LlafError(f"no such file or directory: {source}")
    else:
        cached = _cache_path(str(source))
    if cached.exists():
        return load_file(cached)
    weights = from_transformers(_from_pretrained(str(path if path.is_dir() else source)), progress)
    save(weights, cached)
    return weights
