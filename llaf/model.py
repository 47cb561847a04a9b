"""The Python face of the Futhark engine: `init`, `gen` and the cached path.

    params = llaf.init(source)            # weights into the engine, once
    ids = llaf.gen(prompt_ids, params, 20)
    outs = llaf.gen([ids_a, ids_b], params, 20)   # a batch: one pass per step for all

    logits, cache = llaf.prefill(params, ids)      # then llaf.step(cache, token)
    logits, cache = llaf.prefill(params, [ids_a, ids_b])   # then llaf.step(cache, [tok_a, tok_b])

`init` hands the weights to ``<architecture>_init`` in ``src/llm.fut`` and
keeps the opaque record it returns; the other calls pass that record back.
A `Cache` holds the keys and values of several sequences ("slots"), each up
to its capacity; every pass (`Cache.run`) feeds tokens to any of them at
once, so sequences can join and leave between passes.  Every check of the
caller's input happens here, before Futhark runs, so bad input gets one
clear `LlafError`.
"""

from __future__ import annotations

import ctypes
import resource
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import checks
from . import storage as storage_mod
from . import weights as weights_mod
from .backend import Engine, check_threads, resolve_backend
from .errors import EngineError, LlafError


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
    kv_width: int = 0  # keys the cache holds per position, all layers
    logits_checked: bool = False  # whether a pass has given finite logits (`checked_logits`)

    def entry(self, name: str, *args: Any) -> Any:
        return self.engine.call(f"{storage_mod.entry_prefix(self.architecture, self.storage)}_{name}", *args)

    def __repr__(self) -> str:
        return (f"Params({self.architecture}, vocab={self.vocab}, context={self.context}, "
                f"storage={self.storage}, backend={self.engine.backend})")

    def __copy__(self) -> Params:
        return replace(self)  # the weights in the engine are shared: no call changes them

    def __reduce_ex__(self, protocol: Any) -> Any:  # deepcopy and pickle
        raise LlafError("llaf.Params cannot be pickled or deep-copied: its weights live in the engine of "
                        "this process; load them again with llaf.init (or llaf.load) where they are needed")


def _params(params: Any) -> Params:
    return checks.instance("params", params, Params, "a llaf.Params (from llaf.init)")


def init(source: Any, backend: str | None = None, progress: bool = True, storage: str | None = None,
         threads: int | None = None, each_array: Callable[[int, int], object] | None = None) -> Params:
    """Load weights into the engine.

    `source`: a transformers model object, a local Hugging Face directory, a
    hub name (e.g. ``"gpt2"``; needs the network or the Hugging Face cache
    the first time, then llaf's own cache), a GGUF file, or a llaf weight file.
    `storage`: how the weight matrices are kept (llaf/storage.py): by
    default a GGUF file's own form (e.g. 4-bit blocks), f32 otherwise.
    `backend`: pyopencl, c, multicore, opencl or cuda (default
    ``$LLAF_BACKEND`` or the first built of llaf/backend.py's PREFERENCE).
    `threads`: the multicore backend's worker threads (default: one per core).
    `each_array(done, total)` is called as each array reaches the engine (a progress bar).
    """
    backend = resolve_backend(backend)  # a wrong name is refused before minutes of loading
    check_threads(threads, backend)
    w = weights_mod.load(source, progress=progress, storage=storage)
    return into_engine(w, backend, threads, each_array, release=w is not source)  # a caller's Weights stay whole


def into_engine(w: weights_mod.Weights, backend: str, threads: int | None = None,
                each_array: Callable[[int, int], object] | None = None, release: bool = False) -> Params:
    """Weights `w` handed to a new engine of `backend` (checked by the
    caller), as `init` and `llaf.load` do.  With `release`, each of `w`'s
    arrays is dropped from it once the engine has it (`w` is spent), so that
    a load holds no second copy of the weights."""
    engine = Engine(backend, threads)
    total, vocab, context, kv_width = w.array_count, w.vocab, w.context, w.kv_width  # (off the arrays released below)
    args, done = [], 0
    for a in w.init_args(release=release):
        if isinstance(a, np.ndarray):
            a = engine.put(a)
            done += 1
            if each_array is not None:
                each_array(done, total)
        args.append(a)
    handle = engine.call(f"{w.entry}_init", *args)
    params = Params(engine, w.architecture, handle, vocab, context, dict(w.hparams), w.storage, kv_width)
    del args  # the engine's handles of the arrays given: its params hold what they need
    _release_freed_memory()
    return params


def _release_freed_memory() -> None:
    """Give the system back the memory a load freed.  glibc's malloc keeps
    freed blocks in its heap, and after each large array freed it takes
    arrays of up to that size (up to 32 MB) from the heap too: after a load,
    the process held the weights' intermediate copies as well, twice the
    weights of a K-quant file (docs/PERFORMANCE.md).  Other C libraries
    have no `malloc_trim`, and nothing to do here."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


def prompt_ids(ids: Any, params: Params, what: str = "the prompt") -> np.ndarray:
    """`ids` as a checked 1-D int64 array."""
    a = checks.token_ids(what, ids, params.vocab)
    if a.size == 0:
        raise LlafError(f"{what} is empty: give at least one token id")
    if a.size > params.context:
        raise LlafError(f"{what} has {a.size} tokens, more than the context length {params.context}")
    return a.astype(np.int64)


def check_fits(prompt_tokens: int, new_tokens: int, params: Params) -> None:
    """A LlafError when a prompt and the tokens to generate after it exceed the context."""
    if prompt_tokens + new_tokens > params.context:
        raise LlafError(f"{prompt_tokens} prompt tokens + {new_tokens} new tokens exceed "
                        f"the context length {params.context}")


def _available_memory() -> int | None:
    """Bytes this process may still allocate, as far as the kernel says: the
    memory available (MemAvailable), or less under an address-space limit."""
    try:
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        status = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return None
    available = [int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemAvailable:")]
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    if limit != resource.RLIM_INFINITY:
        used = [int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:")]
        available.append(limit - (used[0] if used else 0))
    return max(0, min(available)) if available else None


def cache_bytes(params: Params, slots: int, capacity: int) -> int:
    """The bytes of a key/value cache of `slots` sequences of `capacity` positions."""
    return 2 * 4 * slots * -(-capacity // storage_mod.PANEL) * storage_mod.PANEL * params.kv_width


def check_cache_fits(params: Params, slots: int, capacity: int, hint: str = "") -> None:
    """A LlafError, before the engine allocates, when a key/value cache of
    `slots` sequences of `capacity` positions would not fit in memory (the
    engine's allocator cannot report failure: it would crash)."""
    size = cache_bytes(params, slots, capacity)
    available = _available_memory()
    if available is not None and size > available:
        raise LlafError(f"a key/value cache of {slots} sequence{'s' * (slots != 1)} x {capacity} positions "
                        f"needs {size / 2**30:.1f} GiB, more than the {available / 2**30:.1f} GiB of memory "
                        f"available{' ' + hint if hint else ''}")


def _is_batch(ids: Any) -> bool:
    """Whether `ids` is a list of prompts rather than one prompt."""
    return isinstance(ids, (list, tuple)) and len(ids) > 0 and isinstance(ids[0], (list, tuple, np.ndarray))


def _prompts(ids: Any, params: Params) -> list[np.ndarray]:
    """One prompt or a list of prompts, checked, as a list."""
    if not _is_batch(ids):
        return [prompt_ids(ids, params)]
    return [prompt_ids(p, params, f"prompt {i}") for i, p in enumerate(ids)]


class Cache:
    """The keys and values of `slots` sequences, up to `capacity` tokens each.

    `run` feeds tokens to any slots in one pass: a new prompt to a slot
    just `reset`, or the next token of each running sequence; a slot's
    `lengths` entry counts the tokens it holds.  The cache grows (up to the
    model's context) when a slot would pass its capacity.

    A slot keeps the ids of the tokens it holds, so that a new sequence
    sharing a beginning with the one before it (a conversation's next turn,
    the same system prompt) can keep that part (`shared`, `rewind`) and be
    fed only the rest: a token's keys and values depend on the tokens before
    it alone, and are the same bit for bit whichever pass computed them.

    Its attributes are read-only (the lengths must match what the engine
    holds), and it cannot be copied or pickled: each pass consumes the
    engine's cache and makes a new one, so a copy would be left with a
    consumed one."""

    def __init__(self, params: Params, slots: int = 1, capacity: int | None = None) -> None:
        params = _params(params)
        slots = checks.integer("slots", slots)
        capacity = params.context if capacity is None else checks.integer("capacity", capacity)
        capacity = min(capacity, params.context) if capacity > 0 else capacity
        if slots < 1:
            raise LlafError(f"a cache needs at least one slot, got {slots}")
        if not 0 < capacity <= params.context:
            raise LlafError(f"the cache capacity must be in [1, {params.context}], got {capacity}")
        check_cache_fits(params, slots, capacity)
        self._params = params
        self._capacity = capacity
        self._tokens: list[list[int]] = [[] for _ in range(slots)]  # the ids each slot holds
        self._handle = params.entry("cache", params.handle, np.int64(slots), np.int64(capacity))

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_"):
            raise LlafError(f"a Cache's {name} cannot be set: the cache keeps its own state "
                            "(reset a slot with cache.reset)")
        object.__setattr__(self, name, value)

    def __reduce_ex__(self, protocol: Any) -> Any:  # copy.copy, copy.deepcopy and pickle all come here
        raise LlafError("a llaf.Cache cannot be copied or pickled: every pass consumes the engine's cache, so a "
                        "copy would compute from a consumed one; for a second sequence run llaf.prefill again "
                        "or use a Cache of several slots")

    @property
    def params(self) -> Params:
        return self._params

    @property
    def capacity(self) -> int:
        """Positions each slot has room for now (it grows when needed)."""
        return self._capacity

    @property
    def lengths(self) -> tuple[int, ...]:
        """The tokens each slot holds."""
        return tuple(len(t) for t in self._tokens)

    @property
    def slots(self) -> int:
        return len(self._tokens)

    @property
    def length(self) -> int:
        """The length of a one-sequence cache's sequence."""
        if self.slots != 1:
            raise LlafError(f"this cache holds {self.slots} sequences: read cache.lengths")
        return len(self._tokens[0])

    def reset(self, slot: int) -> None:
        """Empty `slot` for a new sequence."""
        self._tokens[self._slot(slot)].clear()

    def shared(self, slot: int, ids: Sequence[int] | np.ndarray) -> int:
        """How many of the first tokens of `ids` are those `slot` holds
        first: what a sequence of `ids` could keep of it (`rewind`)."""
        held = self._tokens[self._slot(slot)]
        n = 0
        for a, b in zip(held, ids, strict=False):
            if a != b:
                break
            n += 1
        return n

    def keeps(self, slot: int, ids: Sequence[int] | np.ndarray) -> int:
        """How many of the first tokens of `ids` a new sequence of `ids` keeps
        in `slot`: those it `shared`, all but the last at most (a pass must
        feed it, for the logits after it)."""
        return min(self.shared(slot, ids), len(ids) - 1)

    def rewind(self, slot: int, length: int) -> None:
        """Keep the first `length` tokens of `slot` and forget the rest: the
        next tokens fed to it go at position `length` onwards."""
        held = self._tokens[self._slot(slot)]
        length = checks.integer("length", length)
        if not 0 <= length <= len(held):
            raise LlafError(f"slot {slot} holds {len(held)} tokens: it cannot be rewound to {length}")
        del held[length:]

    def run(self, feeds: Mapping[int, Sequence[int] | np.ndarray]) -> np.ndarray:
        """Feed tokens to slots (``{slot: ids}``) in one pass; the logits after
        each slot's last fed token, in the order of `feeds` (``[len(feeds)][vocab]``)."""
        checks.instance("feeds", feeds, Mapping, "a dict {slot: token ids}")
        if self._handle is None:
            raise LlafError("this cache was lost when a pass over it failed: make a new one")
        if not feeds:
            raise LlafError("nothing to run: give at least one slot's tokens")
        ids, slots, pos, outs = [], [], [], []
        for slot, toks in feeds.items():
            start = len(self._tokens[self._slot(slot)])
            a = prompt_ids(toks, self._params, f"the tokens for slot {slot}")
            if start + a.size > self._params.context:
                if start == self._params.context:
                    raise LlafError(f"the sequence already fills the context length {self._params.context}")
                raise LlafError(f"{start} cached tokens + {a.size} new tokens exceed "
                                f"the context length {self._params.context}")
            ids.append(a)
            slots.append(np.full(a.size, slot, np.int64))
            pos.append(np.arange(start, start + a.size, dtype=np.int64))
            outs.append(sum(x.size for x in ids) - 1)
        self._fit(max(len(self._tokens[s]) + len(t) for s, t in zip(feeds, ids, strict=True)))
        logits = self._pass(np.concatenate(ids), np.concatenate(slots), np.concatenate(pos),
                            np.array(outs, np.int64))
        for slot, a in zip(feeds, ids, strict=True):
            self._tokens[slot] += a.tolist()
        return logits

    def _pass(self, ids: np.ndarray, slots: np.ndarray, pos: np.ndarray, outs: np.ndarray) -> np.ndarray:
        """One engine pass: tokens `ids` at positions `pos` of `slots`; the logits after the tokens `outs`."""
        try:
            logits, self._handle = self._params.entry("run", self._params.handle, self._handle, ids, slots, pos, outs)
        except (LlafError, EngineError, MemoryError):
            # The pass consumes the cache (`*cache` in src/llm.fut): after a
            # failure, out of memory say, its contents are undefined.
            self._handle = None
            raise
        return checked_logits(self._params, self._params.engine.array(logits))

    def _slot(self, slot: Any) -> int:
        if isinstance(slot, bool) or not isinstance(slot, (int, np.integer)) or not 0 <= slot < self.slots:
            raise LlafError(f"no slot {slot!r} in a cache of {self.slots} slots")
        return int(slot)

    def _fit(self, length: int) -> None:
        """Grow the cache, doubling its capacity up to the context, to hold `length` tokens a slot."""
        if length <= self._capacity:
            return
        capacity = self._capacity
        while capacity < length:
            capacity = min(2 * capacity, self._params.context)
        check_cache_fits(self._params, self.slots, capacity)
        self._handle = self._params.engine.call("cache_grow", self._handle, np.int64(capacity))
        self._capacity = capacity


def gen(ids: Any, params: Params, cnt: int) -> Any:
    """`ids` followed by `cnt` greedily generated tokens (numpy int64); for
    a list of prompts, the list of such arrays.

    The whole loop runs inside Futhark: one pass over the prompt(s), then one
    key/value-cached pass per token for all sequences at once.  Prompt plus
    new tokens must fit in the model's context.
    """
    params = _params(params)
    prompts = _prompts(ids, params)
    cnt = checks.count("the token count", cnt)
    for p in prompts:
        check_fits(p.size, cnt, params)
    if cnt > 0:
        check_cache_fits(params, len(prompts), max(p.size for p in prompts) + cnt)
    if cnt == 0:
        outs = prompts
    else:
        lens = np.array([p.size for p in prompts], np.int64)
        new = params.engine.array(params.entry("gen", params.handle, np.concatenate(prompts), lens, np.int64(cnt)))
        outs = [np.concatenate([p, n.astype(np.int64)]) for p, n in zip(prompts, new, strict=True)]
    return outs if _is_batch(ids) else outs[0]


def forward(params: Params, ids: Any) -> np.ndarray:
    """Next-token logits at every position of `ids` (``[n][vocab]`` float32),
    computed in one pass."""
    a = prompt_ids(ids, _params(params))
    positions = np.arange(a.size, dtype=np.int64)
    return Cache(params, 1, a.size)._pass(a, np.zeros(a.size, np.int64), positions, positions)


def hidden(params: Params, ids: Any) -> Any:
    """The final hidden states (after the model's final norm) at every
    position of `ids` (``[n][d]`` float32), computed in one pass; for a list
    of prompts, a list of such arrays, all in one pass."""
    params = _params(params)
    prompts = _prompts(ids, params)
    check_cache_fits(params, len(prompts), max(p.size for p in prompts))
    lens = np.array([p.size for p in prompts], np.int64)
    h = params.engine.array(params.entry("hidden", params.handle, np.concatenate(prompts), lens))
    states = np.split(h, np.cumsum(lens)[:-1])
    return states if _is_batch(ids) else states[0]


def embed(params: Params, ids: Any, normalize: bool = True) -> np.ndarray:
    """Embeddings: the mean of the final hidden states over each prompt's
    tokens (``[d]``, or ``[B][d]`` for a list of prompts; float32), scaled
    to unit length with `normalize` (so that a dot product is the cosine)."""
    normalize = checks.instance("normalize", normalize, bool, "True or False")
    states = hidden(params, ids)
    one = not _is_batch(ids)
    vecs = np.stack([s.astype(np.float64).mean(axis=0) for s in ([states] if one else states)])
    if normalize:
        vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-30)
    vecs = vecs.astype(np.float32)
    return vecs[0] if one else vecs


def checked_logits(params: Params, logits: np.ndarray) -> np.ndarray:
    """`logits`, if the model's first pass gave finite ones.  The weights
    were checked finite when read, but finite weights can still overflow
    (huge norms), and then every later output would be garbage; one check
    of the first pass's logits is cheap, later passes are not checked."""
    if not params.logits_checked:
        if not np.isfinite(logits).all():
            raise LlafError(f"the model's first pass gave logits that are not finite (NaN or infinity): its "
                            f"weights are out of range, or the {params.engine.backend} engine failed")
        params.logits_checked = True
    return logits


def prefill(params: Params, ids: Any, capacity: int | None = None) -> tuple[np.ndarray, Cache]:
    """The logits after the last of `ids`, and a cache holding all of them;
    for a list of prompts, the logits after each (``[B][vocab]``) and a cache
    with one slot per prompt, in one pass.  `capacity`: the tokens a slot is
    made for (default: the longest prompt; the cache grows when needed)."""
    prompts = _prompts(ids, _params(params))
    cache = Cache(params, len(prompts), max(p.size for p in prompts) if capacity is None else capacity)
    logits = cache.run(dict(enumerate(prompts)))
    return (logits if _is_batch(ids) else logits[0]), cache


def step(cache: Cache, token: Any) -> np.ndarray:
    """Feed the next token of each sequence; the cache is updated in place
    (the engine consumes the old one) and the next logits are returned: one
    token and ``[vocab]`` logits for a one-sequence cache, else a list of
    `cache.slots` tokens and ``[slots][vocab]``."""
    checks.instance("cache", cache, Cache, "a llaf.Cache (from llaf.prefill)")
    if isinstance(token, (int, np.integer)) and not isinstance(token, bool):
        if cache.slots != 1:
            raise LlafError(f"this cache holds {cache.slots} sequences: give one token for each")
        return cache.run({0: [token]})[0]
    if isinstance(token, (str, bytes)) or not isinstance(token, (Sequence, np.ndarray)) or np.ndim(token) == 0:
        raise checks.ArgumentError("token", "token must be a token id (an integer), or a list of one per sequence "
                                   f"of the cache, got {checks.shown(token)}")
    if len(token) != cache.slots:
        raise LlafError(f"{len(token)} tokens for a cache of {cache.slots} sequences: give one for each")
    return cache.run({slot: [t] for slot, t in enumerate(token)})
