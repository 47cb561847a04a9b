"""Comparing llaf with transformers: the oracle's logits and greedy ids, and
the tolerance llaf's logits must meet.

Tolerance: at every position, max |llaf − transformers| ≤ LOGIT_TOL × the
largest logit magnitude (at least 1).  Both run in float32; llaf's sums run
in another order, which accounts for differences of about 1e-6 relative.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

import llaf

LOGIT_TOL = 1e-4


def random_prompt(params: Any, n: int, seed: int = 0) -> np.ndarray:
    """`n` token ids drawn uniformly from the model's vocabulary."""
    return np.random.default_rng(seed).integers(0, params.vocab, n)


def hf_logits(model: torch.nn.Module, ids: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.tensor(np.asarray(ids))[None]).logits[0].numpy()


def hf_greedy(model: torch.nn.Module, ids: np.ndarray, cnt: int) -> np.ndarray:
    """`ids` and `cnt` tokens, each the argmax of transformers' logits (with
    its key/value cache; no stopping at end-of-text, no logits processors)."""
    out = [int(t) for t in ids]
    with torch.no_grad():
        step = model(torch.tensor([out]), use_cache=True)
        for _ in range(cnt):
            out.append(int(step.logits[0, -1].argmax()))
            step = model(torch.tensor([[out[-1]]]), past_key_values=step.past_key_values, use_cache=True)
    return np.array(out)


def assert_logits_close(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    scale = max(1.0, float(np.abs(want).max()))
    err = float(np.abs(got - want).max())
    assert err <= LOGIT_TOL * scale, f"max |llaf - transformers| = {err:.3g} (scale {scale:.3g})"


def assert_same_logits(params: Any, actual: np.ndarray, desired: np.ndarray) -> None:
    """Bit for bit on the C backends (the same sums in the same order whatever
    the path or batch); on OpenCL, where the compiler may contract a path's
    sums differently, within 1e-5 of the largest logit's magnitude and the
    same greedy token."""
    if params.engine.backend in ("c", "multicore"):
        np.testing.assert_array_equal(actual, desired)
    else:
        scale = max(1.0, float(np.abs(desired).max()))
        np.testing.assert_allclose(actual, desired, rtol=0, atol=1e-5 * scale)
        np.testing.assert_array_equal(np.argmax(actual, -1), np.argmax(desired, -1))


def assert_cached_path_equals_uncached(params: Any, ids: np.ndarray, prefilled: int) -> None:
    """The logits of `ids[:prefilled]`'s prefill and of a step for each
    later token equal those of one uncached forward pass over `ids`."""
    full = llaf.forward(params, ids)
    logits, cache = llaf.prefill(params, ids[:prefilled])
    steps = [logits] + [llaf.step(cache, int(t)) for t in ids[prefilled:]]
    assert cache.length == len(ids)
    assert_logits_close(np.stack(steps[:-1]), full[prefilled - 1:-1])
    assert_logits_close(steps[-1], full[-1])
