"""A model with its tokenizer: text in, text out, streamed token by token.

    model = llaf.load()                         # the default model, SmolLM2-135M-Instruct
    for piece in model.stream("Once upon a time"):
        print(piece, end="", flush=True)
    model.chat([{"role": "user", "content": "What is the capital of France?"}])

Generation runs one prefill of the prompt, then one cached step per token,
and stops at the model's end-of-turn token or after `max_new_tokens`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import weights as weights_mod
from .assets import default_model_path
from .errors import LlafError
from .model import Params, init, prefill, step
from .tokenizer import Message, Tokenizer, for_model

DEFAULT_CONTEXT = 2048


@dataclass
class Model:
    """Weights in the engine plus the tokenizer that goes with them."""

    name: str
    params: Params
    tokenizer: Tokenizer

    def stream_ids(self, ids: Sequence[int], max_new_tokens: int) -> Iterator[int]:
        """Greedy next tokens, one at a time, until end of turn or the limit."""
        if max_new_tokens < 0:
            raise LlafError(f"max_new_tokens must not be negative, got {max_new_tokens}")
        if len(ids) + max_new_tokens > self.params.context:
            raise LlafError(f"{len(ids)} prompt tokens + {max_new_tokens} new tokens exceed "
                            f"the context length {self.params.context}")
        if max_new_tokens == 0:
            return
        logits, cache = prefill(self.params, ids)
        for i in range(max_new_tokens):
            tok = int(np.argmax(logits))
            if tok in self.tokenizer.eos_ids:
                return
            yield tok
            if i + 1 < max_new_tokens:
                logits = step(cache, tok)

    def stream_text(self, ids: Sequence[int], max_new_tokens: int) -> Iterator[str]:
        """The continuation of `ids` as text pieces; a piece never ends inside
        a multi-byte character."""
        new: list[int] = []
        shown = ""
        for tok in self.stream_ids(ids, max_new_tokens):
            new.append(tok)
            text = self.tokenizer.decode(new)
            if not text.endswith("\ufffd") and len(text) > len(shown):
                yield text[len(shown):]
                shown = text
        text = self.tokenizer.decode(new)
        if len(text) > len(shown):
            yield text[len(shown):]

    def stream(self, prompt: str, max_new_tokens: int = 128) -> Iterator[str]:
        return self.stream_text(self.tokenizer.encode(prompt), max_new_tokens)

    def generate(self, prompt: str, max_new_tokens: int = 128) -> str:
        return "".join(self.stream(prompt, max_new_tokens))

    def stream_chat(self, messages: Sequence[Message], max_new_tokens: int = 256) -> Iterator[str]:
        return self.stream_text(self.tokenizer.chat(messages), max_new_tokens)

    def chat(self, messages: Sequence[Message], max_new_tokens: int = 256) -> str:
        return "".join(self.stream_chat(messages, max_new_tokens))


def with_context(w: weights_mod.Weights, context: int | None) -> weights_mod.Weights:
    """`w` limited to a context of `context` tokens (never more than the model's)."""
    if context is None or context >= w.context:
        return w
    if context <= 0:
        raise LlafError(f"the context length must be positive, got {context}")
    if w.architecture == "gpt2":
        return replace(w, arrays=w.arrays | {"wpe": w.arrays["wpe"][:context]})
    return replace(w, hparams=w.hparams | {"context": context})


def load(model: str | Path | None = None, backend: str | None = None,
         context: int | None = DEFAULT_CONTEXT, progress: bool = False, storage: str | None = None) -> Model:
    """Load a model and its tokenizer: a GGUF file, a Hugging Face directory,
    a llaf weight file or hub name for GPT-2; by default SmolLM2-135M-Instruct.
    `context` caps the context length (memory and time of the key/value cache);
    `storage` picks how the weights are kept (llaf/storage.py; by default a
    GGUF file's own quantized form)."""
    source: Any = default_model_path() if model is None else model
    w = with_context(weights_mod.load(source, progress=progress, storage=storage), context)
    tokenizer = for_model(source, w.architecture)
    return Model(Path(str(source)).name, init(w, backend=backend, progress=progress), tokenizer)
