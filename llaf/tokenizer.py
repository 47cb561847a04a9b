"""Text ↔ token ids, with the model's own tokenizer.

* GPT-2: tiktoken's ``gpt2`` encoding, read from llaf's offline tiktoken
  cache (`make assets`, see llaf/assets.py).
* Llama-family models: the tokenizer transformers builds from the GGUF
  metadata (vocabulary, merges, special tokens, pre-tokenizer, chat
  template) or from a Hugging Face directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .assets import use_tiktoken_cache
from .errors import LlafError
from .weights import quiet_transformers

Message = dict[str, str]


class Tokenizer:
    """What llaf needs of a tokenizer."""

    name: str = "tokenizer"
    eos_ids: frozenset[int] = frozenset()

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: Sequence[int]) -> str:
        raise NotImplementedError

    def chat(self, messages: Sequence[Message]) -> list[int]:
        """The ids of a conversation in the model's chat template, ready for
        the assistant's reply."""
        raise LlafError(f"{self.name} has no chat template")


class TiktokenTokenizer(Tokenizer):
    """GPT-2's byte-pair encoding through tiktoken."""

    def __init__(self) -> None:
        import tiktoken

        use_tiktoken_cache()
        self.encoding = tiktoken.get_encoding("gpt2")
        self.name = "GPT-2's tokenizer"
        self.eos_ids = frozenset({self.encoding.eot_token})

    def encode(self, text: str) -> list[int]:
        return self.encoding.encode(text, allowed_special="all")

    def decode(self, ids: Sequence[int]) -> str:
        return self.encoding.decode([int(t) for t in ids])


class HFTokenizer(Tokenizer):
    """A transformers tokenizer (built from a GGUF file or a directory)."""

    def __init__(self, tokenizer: Any, name: str) -> None:
        self.tokenizer = tokenizer
        self.name = name
        eos = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
        # Chat models end a turn with their end-of-turn token (ChatML's <|im_end|>).
        for token in ("<|im_end|>", "<|eot_id|>", "<|end|>"):
            tid = tokenizer.convert_tokens_to_ids(token)
            if isinstance(tid, int) and tid != tokenizer.unk_token_id:
                eos.add(tid)
        self.eos_ids = frozenset(eos)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode([int(t) for t in ids]))

    def chat(self, messages: Sequence[Message]) -> list[int]:
        if not self.tokenizer.chat_template:
            raise LlafError(f"{self.name} has no chat template")
        out = self.tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=True)
        return list(out["input_ids"] if hasattr(out, "keys") else out)


def from_gguf(path: str | Path) -> HFTokenizer:
    """The tokenizer stored in a GGUF file's metadata."""
    from transformers import AutoTokenizer

    path = Path(path)
    try:
        with quiet_transformers():
            tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    except Exception as e:
        raise LlafError(f"{path.name}: cannot build its tokenizer ({str(e).strip().splitlines()[0]})") from None
    return HFTokenizer(tok, f"{path.name}'s tokenizer")


def from_directory(path: str | Path) -> HFTokenizer:
    """The tokenizer of a Hugging Face model directory."""
    from transformers import AutoTokenizer

    try:
        with quiet_transformers():
            tok = AutoTokenizer.from_pretrained(str(path))
    except Exception as e:
        raise LlafError(f"{path}: cannot load its tokenizer ({str(e).strip().splitlines()[0]})") from None
    return HFTokenizer(tok, f"{Path(path).name}'s tokenizer")


def for_model(source: str | Path, architecture: str) -> Tokenizer:
    """The tokenizer that goes with a model `source` (as given to llaf.load)."""
    path = Path(source)
    if path.suffix == ".gguf":
        return from_gguf(path)
    if path.is_dir():
        return from_directory(path)
    if architecture == "gpt2":
        return TiktokenTokenizer()
    raise LlafError(f"no tokenizer known for {source}: load the model from a GGUF file or a directory")


def gpt2_tokenizer() -> Any:
    """tiktoken's GPT-2 encoding, from llaf's offline cache."""
    return TiktokenTokenizer().encoding
