"""Log probabilities of generated tokens, as OpenAI's ``logprobs`` reports them.

A token's log probability is read off the model's own distribution: the
log-softmax (in float64) of the engine's float32 logits of the pass that
chose it, before the repetition, presence and frequency penalties, the
temperature, top-k, min-p and top-p, which shape the draw and not the
model's distribution (as OpenAI and vLLM report them). So a sampled token
may have a low log probability, and greedy decoding's token is always the
top one.

    stream = model.stream("The capital of France is", 8, logprobs=3)
    text = stream.text()
    for t in stream.logprobs:       # one TokenLogprob per generated token
        print(t.token, t.logprob, t.top)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_TOP_LOGPROBS = 20  # alternatives a token may list: OpenAI's limit for chat


@dataclass(frozen=True)
class TokenLogprob:
    """A generated token (`token`, an id), its log probability, and the
    `top` most likely tokens at its step as (id, log probability), most
    likely first (ties: the lower id first)."""

    token: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()


def log_softmax(logits: np.ndarray) -> np.ndarray:
    x = np.asarray(logits, dtype=np.float64).reshape(-1)
    x = x - np.max(x)
    return x - np.log(np.exp(x).sum())


def token_logprob(logits: np.ndarray, token: int, top: int = 0) -> TokenLogprob:
    """`token`'s log probability under `logits`, with the `top` likeliest tokens."""
    lp = log_softmax(logits)
    best: tuple[tuple[int, float], ...] = ()
    if top > 0:
        ids = np.argpartition(-lp, top - 1)[:top] if top < lp.size else np.arange(lp.size)
        ids = ids[np.lexsort((ids, -lp[ids]))]
        best = tuple((int(i), float(lp[i])) for i in ids)
    return TokenLogprob(int(token), float(lp[token]), best)
