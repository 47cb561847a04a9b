"""Shared fixtures: random-weight transformers models (no download) and the
llaf engine on every backend under test.

The backends are those named in ``$LLAF_BACKENDS`` (``make test`` names every
CPU backend it builds), else every backend that is built.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from llaf.backend import BACKENDS, build_dir


def backends_under_test() -> list[str]:
    named = os.environ.get("LLAF_BACKENDS", "").split()
    if named:
        return named
    built = [b for b in BACKENDS if (build_dir(b) / ".built").exists()]
    return built or ["c"]


BACKENDS_UNDER_TEST = backends_under_test()


@pytest.fixture(scope="session", params=BACKENDS_UNDER_TEST)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def random_gpt2(seed: int, **config: object) -> torch.nn.Module:
    """A GPT-2 with random weights; a wide initialiser makes greedy choices
    clear-cut, so that float rounding cannot flip them."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(initializer_range=0.08, bos_token_id=0, eos_token_id=0, **config)
    return GPT2LMHeadModel(cfg).eval()


def random_llama(seed: int, **config: object) -> torch.nn.Module:
    """A Llama-family model with random weights (see `random_gpt2`)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(initializer_range=0.08, bos_token_id=0, eos_token_id=0, pad_token_id=0, **config)
    return LlamaForCausalLM(cfg).eval()


@pytest.fixture(scope="session")
def rng() -> Iterator[np.random.Generator]:
    yield np.random.default_rng(2024)
