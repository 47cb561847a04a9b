"""Several sequences at once: `gen` on a list of prompts, batched `prefill`
and `step`, and a `Cache` whose slots sequences join and leave between
passes.  A sequence's tokens are the ones it gets alone; on the C backends
its logits are too, bit for bit (src/matrix.fut: a token's sums do not
depend on its batch).  PoCL compiles the batched and the one-token kernels
to different instruction sequences (rounding differs in the last bits), so
on pyopencl the logits agree within 1e-5 of the largest logit."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import llaf
from llaf import LlafError

from .conftest import random_gpt2, random_llama
from .parity import assert_same_logits, hf_greedy

MODELS = {
    "llama": lambda: random_llama(11, hidden_size=144, num_attention_heads=9, num_key_value_heads=3,
                                  intermediate_size=384, vocab_size=2000, max_position_embeddings=160,
                                  num_hidden_layers=2, tie_word_embeddings=True),
    "gpt2": lambda: random_gpt2(12, n_embd=96, n_head=3, n_inner=200, vocab_size=1000, n_positions=160, n_layer=2),
}
_models: dict[str, torch.nn.Module] = {}
_params: dict[tuple[str, str], llaf.Params] = {}


def hf_model(name: str) -> torch.nn.Module:
    if name not in _models:
        _models[name] = MODELS[name]()
    return _models[name]


@pytest.fixture(params=list(MODELS))
def params(request: pytest.FixtureRequest, backend: str) -> llaf.Params:
    key = (backend, str(request.param))
    if key not in _params:
        _params[key] = llaf.init(hf_model(key[1]), backend=backend, progress=False)
    return _params[key]


def prompts(params: llaf.Params, lengths: list[int]) -> list[np.ndarray]:
    rng = np.random.default_rng(sum(lengths))
    return [rng.integers(0, params.vocab, n) for n in lengths]


def test_batched_gen_gives_each_prompt_its_own_tokens(params: llaf.Params) -> None:
    batch = prompts(params, [7, 1, 40, 13, 2, 33, 5, 20])  # more than a group of 4, one token, long
    outs = llaf.gen(batch, params, 24)
    assert isinstance(outs, list) and len(outs) == len(batch)
    for ids, out in zip(batch, outs, strict=True):
        np.testing.assert_array_equal(out, llaf.gen(ids, params, 24))
    model = hf_model(params.architecture if params.architecture == "gpt2" else "llama")
    np.testing.assert_array_equal(outs[2], hf_greedy(model, batch[2], 24))


def test_batched_prefill_and_steps_equal_each_sequence_alone(params: llaf.Params) -> None:
    batch = prompts(params, [9, 30, 3])
    logits, cache = llaf.prefill(params, batch)
    assert logits.shape == (3, params.vocab) and cache.slots == 3
    alone = [llaf.prefill(params, ids) for ids in batch]
    for _ in range(12):
        assert_same_logits(params, logits, np.stack([lg for lg, _ in alone]))
        toks = [int(np.argmax(lg)) for lg in logits]
        logits = llaf.step(cache, toks)
        alone = [(llaf.step(c, t), c) for (_, c), t in zip(alone, toks, strict=True)]
    assert cache.lengths == (21, 42, 15)


def test_sequences_join_and_leave_between_passes(params: llaf.Params) -> None:
    """Continuous batching: slot 1 starts while slot 0 decodes, slot 0 is
    then reused for a new prompt; every pass's logits are those alone."""
    a, b, c = prompts(params, [6, 11, 4])
    cache = llaf.Cache(params, slots=2, capacity=8)  # grows as the sequences do
    first = cache.run({0: a})
    ref_a = llaf.prefill(params, a)[1]
    lg = cache.run({0: [int(np.argmax(first[0]))], 1: b})
    assert_same_logits(params, lg[0], llaf.step(ref_a, int(np.argmax(first[0]))))
    assert_same_logits(params, lg[1], llaf.prefill(params, b)[0])
    cache.reset(0)
    lg = cache.run({1: [5], 0: c})  # logits in the order of the feeds: slot 1's, then slot 0's
    assert_same_logits(params, lg[0], llaf.forward(params, np.append(b, 5))[-1])
    assert_same_logits(params, lg[1], llaf.prefill(params, c)[0])
    assert cache.lengths == (4, 12) and cache.capacity >= 12


def test_a_slot_keeps_the_beginning_it_shares_with_the_next_sequence(params: llaf.Params) -> None:
    """A sequence that begins as the slot's last one did keeps those tokens
    (`shared`, `rewind`) and is fed the rest: its logits are those of its
    whole prompt computed afresh, bit for bit on the C backends."""
    a, b, c = prompts(params, [9, 7, 5])
    cache = llaf.Cache(params, slots=2, capacity=8)
    first = cache.run({0: np.concatenate([a, b])})
    cache.run({0: [int(np.argmax(first[0]))], 1: c})
    new = np.concatenate([a, c])
    assert cache.shared(0, new) == 9 and cache.shared(1, new) == 0 and cache.shared(0, a[:4]) == 4
    cache.rewind(0, 9)
    assert cache.lengths == (9, 5)
    lg = cache.run({0: c, 1: [3]})
    assert_same_logits(params, lg[0], llaf.prefill(params, new)[0])
    assert_same_logits(params, lg[1], llaf.forward(params, np.append(c, 3))[-1])
    assert cache.lengths == (14, 6) and cache.shared(0, new) == 14
    assert cache.keeps(0, new) == 13 and cache.keeps(0, a) == 8  # (the last of them is fed again)
    with pytest.raises(LlafError, match=r"^slot 1 holds 6 tokens: it cannot be rewound to 7$"):
        cache.rewind(1, 7)
    with pytest.raises(LlafError, match=r"^slot 1 holds 6 tokens: it cannot be rewound to -1$"):
        cache.rewind(1, -1)
    with pytest.raises(LlafError, match=r"^length must be an integer, got 2.0$"):
        cache.rewind(1, 2.0)  # type: ignore[arg-type]
    with pytest.raises(LlafError, match=r"^no slot 2 in a cache of 2 slots$"):
        cache.rewind(2, 0)
    cache.rewind(1, 0)
    assert cache.lengths == (14, 0) and cache.shared(1, c) == 0


def test_cache_errors(params: llaf.Params) -> None:
    cache = llaf.Cache(params, slots=2, capacity=4)
    with pytest.raises(LlafError, match=r"^no slot 2 in a cache of 2 slots$"):
        cache.run({2: [1]})
    with pytest.raises(LlafError, match=r"^nothing to run: give at least one slot's tokens$"):
        cache.run({})
    with pytest.raises(LlafError, match=r"^the tokens for slot 0 is empty: give at least one token id$"):
        cache.run({0: []})
    with pytest.raises(LlafError, match=r"^this cache holds 2 sequences: give one token for each$"):
        llaf.step(cache, 3)
    with pytest.raises(LlafError, match=r"^3 tokens for a cache of 2 sequences: give one for each$"):
        llaf.step(cache, [1, 2, 3])
    with pytest.raises(LlafError, match=rf"^the cache capacity must be in \[1, {params.context}\], got 0$"):
        llaf.Cache(params, slots=1, capacity=0)
    with pytest.raises(LlafError, match=r"^a cache needs at least one slot, got 0$"):
        llaf.Cache(params, slots=0)
    with pytest.raises(LlafError, match=rf"^prompt 1 has {params.context + 1} tokens, more than the context"):
        llaf.gen([[1, 2], [1] * (params.context + 1)], params, 1)


def test_a_cache_larger_than_memory_is_refused_before_the_engine_allocates(
        params: llaf.Params, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's allocator cannot report a failure (it would crash), so a
    cache that cannot fit in the memory available is a LlafError first."""
    import llaf.model

    per_sequence = 2 * 4 * 160 * params.kv_width  # 160 positions: whole panels of 32
    monkeypatch.setattr(llaf.model, "_available_memory", lambda: 10 * per_sequence)
    pattern = r"^a key/value cache of 11 sequences x 160 positions needs [\d.]+ GiB, more than the [\d.]+ GiB"
    with pytest.raises(LlafError, match=pattern):
        llaf.Cache(params, 11, 160)
    with pytest.raises(LlafError, match=pattern.replace("160 positions", "151 positions")):
        llaf.gen([[1] * 7] * 11, params, 144)
    _, cache = llaf.prefill(params, [[1] * 7] * 11, capacity=64)  # 11 x 64 positions fit
    with pytest.raises(LlafError, match=pattern):
        cache.run({0: [2] * 130})  # growing to 160 positions would not
    assert llaf.Cache(params, 10, 160).slots == 10  # a cache that fits is made


def test_the_memory_available_is_the_address_space_limit_when_there_is_one() -> None:
    """`prlimit --as`: the limit, less what the process has mapped, bounds the caches."""
    code = ("import resource; from llaf.model import _available_memory; "
            "free = _available_memory(); "
            "resource.setrlimit(resource.RLIMIT_AS, (1 << 40, resource.RLIM_INFINITY)); "
            "capped = _available_memory(); "
            "print(0 < capped < 1 << 40 and 0 < free)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout.strip()) == (0, "True"), proc.stderr
