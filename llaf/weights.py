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
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import gguf_file, gpt2, llama
from .assets import asset_dir
from .errors import LlafError

ARCHITECTURES = {m.ARCHITECTURE: m for m in (gpt2, llama)}


@dataclass(frozen=True)
class Weights:
    """A model's weights in llaf's layout, ready for ``<architecture>_init``."""

    architecture: str
    hparams: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def module(self) -> Any:
        """The architecture's module (llaf/gpt2.py, llaf/llama.py)."""
        return ARCHITECTURES[self.architecture]

    @property
    def vocab(self) -> int:
        return int(self.module.vocab(self.arrays))

    @property
    def context(self) -> int:
        return int(self.module.context(self.arrays, self.hparams))

    def init_args(self) -> list[Any]:
        """The arguments of ``<architecture>_init`` in src/llm.fut."""
        scalars = [kind(self.hparams[name]) for name, kind in self.module.SCALARS]
        return scalars + [self.arrays[name] for name in self.module.ARRAYS]

    def check(self) -> None:
        """A LlafError naming the first missing, mistyped or misshapen array."""
        if self.architecture not in ARCHITECTURES:
            raise LlafError(f"unknown architecture {self.architecture!r}: llaf runs {', '.join(ARCHITECTURES)}")
        for name, _ in self.module.SCALARS:
            if name not in self.hparams:
                raise LlafError(f"{self.architecture} weights lack hyper-parameter {name!r}")
        for name in self.module.ARRAYS:
            if name not in self.arrays:
                raise LlafError(f"{self.architecture} weights lack tensor {name!r}")
            if self.arrays[name].dtype != np.float32:
                raise LlafError(f"tensor {name!r} has dtype {self.arrays[name].dtype}, expected float32")
        for name, shape in self.module.expected_shapes(self.arrays, self.hparams).items():
            if self.arrays[name].shape != shape:
                raise LlafError(f"tensor {name!r} has shape {self.arrays[name].shape}, expected {shape}")


def save(weights: Weights, path: str | Path) -> Path:
    """Write `weights` as a llaf weight file."""
    from safetensors.numpy import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": "llaf", "architecture": weights.architecture, "hparams": json.dumps(weights.hparams)}
    tmp = path.with_name(path.name + ".tmp")
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
            hparams = json.loads(meta.get("hparams", "{}"))
    except LlafError:
        raise
    except Exception as e:  # safetensors raises several types for damaged files
        raise LlafError(f"cannot read weight file {path}: {str(e).strip().splitlines()[0]}") from None
    weights = Weights(arch, hparams, arrays)
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


def load(source: Any, progress: bool = True) -> Weights:
    """Weights from anything `llaf.init` accepts."""
    if isinstance(source, Weights):
        source.check()
        return source
    if hasattr(source, "state_dict") and hasattr(source, "config"):
        return from_transformers(source, progress)
    if not isinstance(source, (str, Path)):
        raise LlafError(f"cannot load weights from a {type(source).__name__}")
    path = Path(source).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        arch, hparams, arrays = gguf_file.read(path)
        weights = Weights(arch, hparams, arrays)
        weights.check()
        return weights
    if path.is_file():
        return load_file(path)
    if path.is_dir():
        if not (path / "config.json").exists():
            raise LlafError(f"{path} is not a Hugging Face model directory (no config.json)")
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
