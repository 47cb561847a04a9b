"""Token log probabilities (llaf/logprobs.py) in OpenAI's two response shapes:
chat's ``{"content": [{"token", "logprob", "bytes", "top_logprobs"}]}`` and
legacy completions' ``{"tokens", "token_logprobs", "top_logprobs", "text_offset"}``.

A token's text is its id decoded alone; a token that holds part of a
multi-byte character decodes to U+FFFD, and then its ``bytes`` is null
(llaf's tokenizers do not give a token's raw bytes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..logprobs import TokenLogprob
from ..tokenizer import Tokenizer

MAX_COMPLETION_LOGPROBS = 5  # alternatives per token in /v1/completions, as OpenAI's


def token_text(tokenizer: Tokenizer, token: int) -> str:
    return tokenizer.decode([token])


def _bytes(text: str) -> list[int] | None:
    return None if "\ufffd" in text else list(text.encode())


def chat_logprobs(tokenizer: Tokenizer, entries: Sequence[TokenLogprob]) -> dict[str, Any]:
    def one(token: int, logprob: float) -> dict[str, Any]:
        text = token_text(tokenizer, token)
        return {"token": text, "logprob": logprob, "bytes": _bytes(text)}

    return {"content": [one(e.token, e.logprob) | {"top_logprobs": [one(t, lp) for t, lp in e.top]}
                        for e in entries], "refusal": None}


class CompletionLogprobs:
    """One choice's log probabilities in the completions shape, piece by
    piece: `text_offset` runs on across the pieces of a stream."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.offset = 0

    def __call__(self, entries: Sequence[TokenLogprob]) -> dict[str, Any]:
        tokens, offsets = [], []
        for e in entries:
            text = token_text(self.tokenizer, e.token)
            tokens.append(text)
            offsets.append(self.offset)
            self.offset += len(text)
        return {"tokens": tokens, "token_logprobs": [e.logprob for e in entries],
                "top_logprobs": [{token_text(self.tokenizer, t): lp for t, lp in e.top} for e in entries],
                "text_offset": offsets}
