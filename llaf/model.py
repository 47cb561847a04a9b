"""The Python face of the Futhark engine: `init`, `gen` and the cached path.

    params = llaf.init(source)            # weights into the engine, once
    ids = llaf.gen(prompt_ids, params, 20)

`init` hands the weights to ``<architecture>_init`` in ``src/llm.fut`` and
keeps the opaque record it returns; the other calls pass that record back.
Every check of the caller's input happens here, before Futhark runs, so bad
input gets one clear `LlafError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import weights as weights_mod
from .backend import Engine
from .errors import LlafError


@dataclass
class Params:
    """A model loaded into the engine: its opaque Futhark record and sizes."""

    engine: Engine
    architecture: str
    handle: Any
    vocab: int
    context: int
    hparams: dict[str, Any] = field(default_factory=dict)
    storage: str = "f32"

    def entry(self, name: str, *args: Any) -> Any:
        prefix = self.architecture if self.architecture == "gpt2" else f"{self.architecture}_{self.storage}"
        return self.engine.call(f"{prefix}_{name}", *args)

    def __repr__(self) -> str:
        return (f"Params({self.architecture}, vocab={self.vocab}, context={self.context}, "
                f"storage={self.storage}, backend={self.engine.backend})")


@dataclass
class Cache:
    """The key/value cache of one sequence: the first `length` positions are filled."""

    params: Params
    handle: Any
    length: int


def init(source: Any, backend: str | None = None, progress: bool = True, storage: str | None = None) -> Params:
    """Load weights into the engine.

    `source`: a transformers model object, a local Hugging Face directory, a
    hub name (e.g. ``"gpt2"``; needs the network or the Hugging Face cache
    the first time, then llaf's own cache), a GGUF file, or a llaf weight file.
    `storage`: how the weight matrices are kept (llaf/storage.py): by
    default a GGUF file's own form (e.g. 4-bit blocks), f32 otherwise.
    `backend`: pyopencl, c, multicore, opencl or cuda (default
    ``$LLAF_BACKEND`` or pyopencl), as built by `make BACKEND=...`.
    """
    w = weights_mod.load(source, progress=progress, storage=storage)
    engine = Engine(backend)
    handle = engine.call(f"{w.entry}_init", *w.init_args())
    return Params(engine, w.architecture, handle, w.vocab, w.context, dict(w.hparams), w.storage)


def _ids(ids: Any, params: Params) -> np.ndarray:
    """`ids` as a checked 1-D int64 array."""
    try:
        a = np.asarray(ids)
    except Exception:
        raise LlafError("token ids must be a sequence of integers") from None
    if a.ndim != 1:
        raise LlafError(f"token ids must be one-dimensional, got shape {a.shape}")
    if a.size == 0:
        raise LlafError("the prompt is empty: give at least one token id")
    if not np.issubdtype(a.dtype, np.integer):
        raise LlafError(f"token ids must be integers, got {a.dtype}")
    bad = (a < 0) | (a >= params.vocab)
    if bad.any():
        i = int(np.argmax(bad))
        raise LlafError(f"token id {int(a[i])} at position {i} is outside the vocabulary [0, {params.vocab})")
    if a.size > params.context:
        raise LlafError(f"the prompt has {a.size} tokens, more than the context length {params.context}")
    return a.astype(np.int64)


def _count(cnt: Any) -> int:
    if isinstance(cnt, bool) or not isinstance(cnt, (int, np.integer)):
        raise LlafError(f"the token count must be an integer, got {cnt!r}")
    if cnt < 0:
        raise LlafError(f"the token count must not be negative, got {cnt}")
    return int(cnt)


def gen(ids: Any, params: Params, cnt: int) -> np.ndarray:
    """`ids` followed by `cnt` greedily generated tokens (numpy int64).

    The whole loop runs inside Futhark: one prefill of the prompt, then one
    key/value-cached step per token.  Prompt plus new tokens must fit in the
    model's context.
    """
    a = _ids(ids, params)
    cnt = _count(cnt)
    if a.size + cnt > params.context:
        raise LlafError(f"{a.size} prompt tokens + {cnt} new tokens exceed the context length {params.context}")
    if cnt == 0:
        return a
    out = params.entry("gen", a, params.handle, np.int64(cnt))
    return params.engine.array(out).astype(np.int64)


def forward(params: Params, ids: Any) -> np.ndarray:
    """Next-token logits at every position of `ids` (``[n][vocab]`` float32),
    computed in one pass without a cache."""
    return params.engine.array(params.entry("forward", params.handle, _ids(ids, params)))


def prefill(params: Params, ids: Any) -> tuple[np.ndarray, Cache]:
    """The logits after the last of `ids`, and a cache holding all of them."""
    a = _ids(ids, params)
    logits, handle = params.entry("prefill", params.handle, a)
    return params.engine.array(logits), Cache(params, handle, int(a.size))


def step(cache: Cache, token: int) -> np.ndarray:
    """Feed one token at the next position; the cache is updated in place
    (the engine consumes the old one) and the next logits are returned."""
    params = cache.params
    (tok,) = _ids([token], params)
    if cache.length >= params.context:
        raise LlafError(f"the sequence already fills the context length {params.context}")
    logits, cache.handle = params.entry("step", params.handle, cache.handle, np.int64(tok), np.int64(cache.length))
    cache.length += 1
    return params.engine.array(logits)
