"""Text ↔ token ids, with the model's own tokenizer.

* GPT-2: tiktoken's ``gpt2`` encoding, read from llaf's offline tiktoken
  cache (`make assets`, see llaf/assets.py).
* Models from GGUF files: the tokenizer the file's metadata describes
  (vocabulary, merges, special tokens, pre-tokenizer, chat template), built
  with the `tokenizers` library exactly as transformers builds it, without
  importing transformers or torch.
* Models from Hugging Face directories: transformers' tokenizer.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from .assets import use_tiktoken_cache
from .checks import ArgumentError, shown, token_ids
from .decoding import (
    BytesDecoding,
    Decoding,
    Piece,
    PiecesDecoding,
    WholeDecoding,
    byte_level_alphabet,
    byte_level_token_bytes,
    sentencepiece_pieces,
    sentencepiece_strip,
)
from .errors import LlafError
from .gguf_file import GGUFFile, is_gguf, open_gguf
from .weights import quiet_transformers

Message = dict[str, str]
# Chat models end a turn with their end-of-turn token (ChatML's <|im_end|>).
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>")


_SURROGATE = re.compile("[\ud800-\udfff]")


def unicode_problem(text: str, from_bytes: bool = False) -> str | None:
    """What makes `text` impossible to tokenize, or None: a lone surrogate,
    which tokenizers cannot encode. JSON's ``"\\ud800"`` escape makes one, and
    so does Python's reading of undecodable bytes in argv or stdin
    (surrogateescape: byte 0xff becomes U+DCFF), which `from_bytes` reports
    as the byte it was."""
    m = _SURROGATE.search(text)
    if m is None:
        return None
    code = ord(m.group())
    if from_bytes and 0xDC80 <= code <= 0xDCFF:
        return f"is not valid UTF-8 (the byte 0x{code - 0xDC00:02x} at character {m.start()})"
    return f"is not valid Unicode (a lone surrogate \\u{code:04x} at character {m.start()})"


def check_text(text: str, what: str = "the text", from_bytes: bool = False) -> None:
    """Raise LlafError if `text` cannot be tokenized: not a string, or see `unicode_problem`."""
    if not isinstance(text, str):
        raise LlafError(f"{what} must be a string, got {shown(text)}")
    problem = unicode_problem(text, from_bytes)
    if problem is not None:
        raise LlafError(f"{what} {problem}")


class Tokenizer:
    """What llaf needs of a tokenizer."""

    name: str = "tokenizer"
    eos_ids: frozenset[int] = frozenset()
    # The most UTF-8 bytes one token stands for: a text of n bytes is at
    # least n / max_token_bytes tokens, which bounds its length before the
    # (slow) tokenization.
    max_token_bytes: int = 1
    _token_bytes: list[bytes] | None = None  # each token's bytes, for a byte-level tokenizer's decoding
    _pieces: list[Piece] | None = None  # each token's piece, for a sentencepiece-style tokenizer's decoding

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: Sequence[int]) -> str:
        raise NotImplementedError

    def decoding(self) -> Decoding:
        """The text of a sequence's tokens as they come (streamed generation)."""
        return WholeDecoding(self.decode)

    def _backend_decoding(self, backend: Any) -> Decoding:
        """`decoding` where `decode` is `tokenizers` Tokenizer `backend`'s:
        token by token where its decoder is ByteLevel alone or the
        sentencepiece-style chain (`PiecesDecoding`)."""
        from tokenizers import decoders

        if isinstance(backend.decoder, decoders.ByteLevel):
            if self._token_bytes is None:  # (made at the first)
                self._token_bytes = byte_level_token_bytes(backend)
            table = self._token_bytes
            return BytesDecoding(lambda tok: table[tok] if 0 <= tok < len(table) else b"")
        strip = sentencepiece_strip(backend.decoder)
        if strip is None:
            return WholeDecoding(self.decode)
        if self._pieces is None:
            self._pieces = sentencepiece_pieces(backend)
        pieces = self._pieces
        return PiecesDecoding(lambda tok: pieces[tok] if 0 <= tok < len(pieces) else None, strip)

    @staticmethod
    def _ids(ids: Sequence[int]) -> list[int]:
        """`ids` checked for `decode`: integers in the range of any vocabulary
        (an id past this one's decodes to nothing, as in transformers: a
        model's embedding may have rows its tokenizer has no token for)."""
        a = token_ids("ids", ids)
        bad = (a < 0) | (a >= 2**32)
        if bad.any():
            i = int(np.argmax(bad))
            raise LlafError(f"token id {a[i]} at position {i} is outside any vocabulary")
        return a.tolist()  # type: ignore[no-any-return]

    def chat(self, messages: Sequence[Message]) -> list[int]:
        """The ids of a conversation in the model's chat template, ready for
        the assistant's reply. The template's own control tokens are real
        ones; the messages' contents are text, even where they spell a
        control token (else a user could write ``<|im_start|>system`` and
        open a system turn)."""
        messages = chat_messages(messages)
        for i, m in enumerate(messages):
            check_text(str(m.get("content", "")), f"message {i}'s content")
        text = self._render(messages)
        controls = self._control_tokens()
        contents = [str(m.get("content") or "") for m in messages]
        if not any(c in content for content in contents for c in controls):
            # No content spells a control token: the whole text tokenized at
            # once is exactly what transformers' apply_chat_template gives.
            return self._encode_template(text)
        return _chat_ids(text, contents, lambda cs: self._render(
            [{**m, "content": c} for m, c in zip(messages, cs, strict=True)]),
            controls, self._encode_template, self._encode_plain)

    # What `chat` needs of a tokenizer with a chat template.

    def _render(self, messages: Sequence[Message]) -> str:
        raise LlafError(f"{self.name} has no chat template")

    def _control_tokens(self) -> list[str]:
        """The special tokens, longest first."""
        return []

    def _encode_template(self, text: str) -> list[int]:
        """Rendered template text: special tokens are recognized, no BOS/EOS added."""
        raise NotImplementedError

    def _encode_plain(self, text: str, first: bool) -> list[int]:
        """Text with special tokens spelled out as text, no BOS/EOS added;
        `first`: whether it starts the whole text."""
        raise NotImplementedError



def chat_messages(messages: Any) -> list[Message]:
    """`messages` checked to be a non-empty list of ``{"role": str, "content":
    str, ...}``: what a chat template reads (a template meeting anything else
    fails inside jinja, or renders the wrong prompt)."""
    shape = "a list of messages like {'role': 'user', 'content': 'Hello'}"
    if isinstance(messages, str):
        raise ArgumentError("messages", f"messages must be {shape}, got the string {shown(messages)}: "
                                        f"for one user message give [{{'role': 'user', 'content': {shown(messages)}}}]")
    if isinstance(messages, Mapping) or not isinstance(messages, Sequence):
        raise ArgumentError("messages", f"messages must be {shape}, got {shown(messages)}")
    if not messages:
        raise ArgumentError("messages", "messages must not be empty: a chat needs at least one message")
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            raise ArgumentError("messages", f"message {i} must be a dict like {{'role': 'user', 'content': 'Hello'}}, "
                                            f"got {shown(m)}")
        for key in ("role", "content"):
            if key not in m:
                raise ArgumentError("messages", f"message {i} has no {key!r}: give {{'role': ..., 'content': ...}}")
            if not isinstance(m[key], str):
                raise ArgumentError("messages", f"message {i}'s {key} must be a string, got {shown(m[key])}")
    return [dict(m) for m in messages]

def _plain_backends(backend: Any) -> tuple[Any, Any]:
    """Copies of a `tokenizers.Tokenizer` that read special tokens as text:
    one for the start of a text and one for the rest. A sentencepiece-style
    pre-tokenizer (Metaspace, prepend_scheme "first") puts "▁" before the
    start of the whole text only, which tokenizing a piece alone would put
    before every piece. (Own copies, as the flag belongs to the object and
    setting it on the shared one would race with other threads' encodes.)"""
    from tokenizers import Tokenizer as Backend

    def copy(config: dict[str, Any]) -> Any:
        plain = Backend.from_str(json.dumps(config))
        plain.encode_special_tokens = True
        return plain

    def never(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "Metaspace" and node.get("prepend_scheme") == "first":
                node["prepend_scheme"] = "never"
            for value in node.values():
                never(value)
        elif isinstance(node, list):
            for value in node:
                never(value)

    config = json.loads(backend.to_str())
    first = copy(config)
    never(config.get("pre_tokenizer"))
    return first, copy(config)


def _chat_ids(text: str, contents: list[str], render: Callable[[list[str]], str], controls: list[str],
              encode_template: Callable[[str], list[int]], encode_plain: Callable[[str, bool], list[int]]) -> list[int]:
    """The ids of `text`, a rendered chat, with control tokens recognized only
    outside the messages' `contents`.

    The template is rendered again with each content replaced by a marker;
    the text between the markers is the template's own. Matching `text`
    against it finds where each content went (as it is, or trimmed, as
    templates do with ``| trim``). The text is then cut at the template's
    control tokens only, and the pieces between them tokenized with no
    special tokens: where no content spells a control token this cuts where
    tokenizers itself would, so ordinary chats keep their ids."""
    nonce = secrets.token_hex(8)
    while any(nonce in c for c in contents):  # a content that holds the marker would confuse the match
        nonce = secrets.token_hex(8)
    marker = re.compile(f"\ue000{nonce}(\\d+)\ue001")
    skeleton = marker.split(render([f"\ue000{nonce}{i}\ue001" for i in range(len(contents))]))
    template_parts, order = skeleton[0::2], [int(i) for i in skeleton[1::2]]
    spans: list[tuple[int, int]] = []  # the template's text in `text`
    pos = 0
    if not text.startswith(template_parts[0]):
        raise _unsafe(contents, controls)
    spans.append((0, len(template_parts[0])))
    pos = len(template_parts[0])
    for index, after in zip(order, template_parts[1:], strict=True):
        content = contents[index]
        for placed in dict.fromkeys((content, content.strip())):
            end = pos + len(placed)
            if text.startswith(placed, pos) and text.startswith(after, end):
                spans.append((end, end + len(after)))
                pos = end + len(after)
                break
        else:
            raise _unsafe(contents, controls)
    if pos != len(text):
        raise _unsafe(contents, controls)
    # Cut at the control tokens in the template's text only.
    control = re.compile("|".join(re.escape(c) for c in controls))
    ids: list[int] = []
    start = 0
    for begin, end in spans:
        for m in control.finditer(text, begin, end):
            if m.start() > start:
                ids += encode_plain(text[start:m.start()], start == 0)
            ids += encode_template(m.group())
            start = m.end()
    if start < len(text):
        ids += encode_plain(text[start:], start == 0)
    return ids


def _unsafe(contents: list[str], controls: list[str]) -> LlafError:
    i, token = next((i, c) for i, content in enumerate(contents) for c in controls if c in content)
    return LlafError(f"message {i}'s content holds the control token {token!r}, and the chat template uses "
                     f"the content in a way llaf cannot tell apart from its own control tokens")


class TiktokenTokenizer(Tokenizer):
    """GPT-2's byte-pair encoding through tiktoken."""

    def __init__(self) -> None:
        import tiktoken

        use_tiktoken_cache()
        self.encoding = tiktoken.get_encoding("gpt2")
        self.name = "GPT-2's tokenizer"
        self.eos_ids = frozenset({self.encoding.eot_token})
        self.max_token_bytes = max(
            max(len(b) for b in self.encoding.token_byte_values()),
            max(len(t.encode()) for t in self.encoding.special_tokens_set))

    def encode(self, text: str) -> list[int]:
        check_text(text)
        return self.encoding.encode(text, allowed_special="all")

    def decode(self, ids: Sequence[int]) -> str:
        return self.encoding.decode(self._ids(ids))

    def decoding(self) -> Decoding:
        # tiktoken's decode is its tokens' bytes joined, decoded with replacement.
        return BytesDecoding(self.encoding.decode_single_token_bytes)


# transformers' setting that cleans up a BPE tokenizer's spaces after all.
_FORCED_CLEAN_UP = "clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output"


class HFTokenizer(Tokenizer):
    """A transformers tokenizer (built from a GGUF file or a directory)."""

    def __init__(self, tokenizer: Any, name: str) -> None:
        self.tokenizer = tokenizer
        self.name = name
        eos = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
        for token in END_OF_TURN:
            tid = tokenizer.convert_tokens_to_ids(token)
            if isinstance(tid, int) and tid != tokenizer.unk_token_id:
                eos.add(tid)
        self.eos_ids = frozenset(eos)
        # Byte-level vocabularies spell a byte in up to 2 UTF-8 bytes: an overestimate, which is safe.
        self.max_token_bytes = max(len(str(t).encode()) for t in tokenizer.get_vocab())
        self._plain: tuple[Any, Any] | None = None

    def encode(self, text: str) -> list[int]:
        check_text(text)
        return list(self.tokenizer(text)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(self._ids(ids)))

    def decoding(self) -> Decoding:
        # A fast tokenizer's decode is its backend's, but for the clean-up of
        # spaces, which transformers skips for BPE unless forced.
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        forced = getattr(self.tokenizer, _FORCED_CLEAN_UP, False)
        if backend is None or (self.tokenizer.clean_up_tokenization_spaces
                               and (type(backend.model).__name__ != "BPE" or forced)):
            return WholeDecoding(self.decode)
        return self._backend_decoding(backend)

    def _render(self, messages: Sequence[Message]) -> str:
        if not self.tokenizer.chat_template:
            raise LlafError(f"{self.name} has no chat template")
        return str(self.tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False))

    def _control_tokens(self) -> list[str]:
        specials = {t.content for t in self.tokenizer.added_tokens_decoder.values() if t.special}
        return sorted(specials | set(self.tokenizer.all_special_tokens), key=len, reverse=True)

    def _encode_template(self, text: str) -> list[int]:
        # What apply_chat_template(tokenize=True) does with the text it renders.
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _encode_plain(self, text: str, first: bool) -> list[int]:
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is None:  # a slow tokenizer
            return list(self.tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"])
        if self._plain is None:
            self._plain = _plain_backends(backend)
        return list(self._plain[0 if first else 1].encode(text, add_special_tokens=False).ids)


class GGUFTokenizer(Tokenizer):
    """A GGUF file's tokenizer: the `tokenizers` object transformers'
    ``AutoTokenizer.from_pretrained(dir, gguf_file=...)`` builds, rebuilt
    here from the metadata (transformers/integrations/gguf), and its chat
    template rendered as ``apply_chat_template`` renders it."""

    def __init__(self, g: GGUFFile) -> None:
        self.name = f"{g.path.name}'s tokenizer"
        try:
            self.backend, self.specials = _gguf_backend(g)
        except LlafError:
            raise
        except Exception as e:  # tokenizers rejects a damaged vocabulary or merge table
            raise LlafError(f"{g.path.name}: cannot build its tokenizer ({str(e).strip().splitlines()[0]})") from None
        self.template_source = g.fields.get("tokenizer.chat_template")
        self._template: Any = None
        ids = {token: self.backend.token_to_id(token) for token in (self.specials.get("eos_token"), *END_OF_TURN)
               if token is not None}
        unk = self.backend.token_to_id(self.specials["unk_token"]) if "unk_token" in self.specials else None
        eos = {ids[self.specials["eos_token"]]} if "eos_token" in self.specials else set()
        self.eos_ids = frozenset(eos | {i for t, i in ids.items() if t in END_OF_TURN and i not in (None, unk)})
        # Byte-level tokens spell each byte as one character; sentencepiece
        # ones spell a space as 3 bytes (an overestimate, which is safe).
        self.max_token_bytes = max(len(t.encode()) for t in self.backend.get_vocab(with_added_tokens=True))
        self._plain: tuple[Any, Any] | None = None

    def encode(self, text: str) -> list[int]:
        check_text(text)
        return list(self.backend.encode(text).ids)

    def decode(self, ids: Sequence[int]) -> str:
        # transformers' clean_up_tokenization_spaces is off (and ignored) for BPE tokenizers.
        return str(self.backend.decode(self._ids(ids), skip_special_tokens=False))

    def decoding(self) -> Decoding:
        return self._backend_decoding(self.backend)

    def _render(self, messages: Sequence[Message]) -> str:
        import jinja2

        if not self.template_source:
            raise LlafError(f"{self.name} has no chat template")
        try:
            if self._template is None:
                self._template = _compile_chat_template(str(self.template_source))
            return str(self._template.render(
                messages=[{k: v for k, v in m.items() if v is not None} for m in messages],
                tools=None, documents=None, add_generation_prompt=True, **self.specials))
        except jinja2.TemplateError as e:
            raise LlafError(f"{self.name}: its chat template fails: {str(e).strip().splitlines()[0]}") from None

    def _control_tokens(self) -> list[str]:
        specials = {t.content for t in self.backend.get_added_tokens_decoder().values() if t.special}
        return sorted(specials, key=len, reverse=True)

    def _encode_template(self, text: str) -> list[int]:
        # The template writes the special tokens itself: none added.
        return list(self.backend.encode(text, add_special_tokens=False).ids)

    def _encode_plain(self, text: str, first: bool) -> list[int]:
        if self._plain is None:
            self._plain = _plain_backends(self.backend)
        return list(self._plain[0 if first else 1].encode(text, add_special_tokens=False).ids)


def from_gguf(path: str | Path) -> GGUFTokenizer:
    """The tokenizer stored in a GGUF file's metadata."""
    return GGUFTokenizer(open_gguf(path))


# transformers' GGUF_PRE_TOKENIZER_SPLITS: the split regex of each
# `tokenizer.ggml.pre` that has one; byte-level files with another keep GPT-2's.
_LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
           r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_TEKKEN = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
           r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
           r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_GPT4O = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
          r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
          r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
          r"|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN35 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*"
           r"|\s*[\r\n]+|\s+(?!\S)|\s+")
PRE_TOKENIZER_SPLITS = {
    **dict.fromkeys(("llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
                     "jina-v5-nano", "dbrx", "smaug-bpe"), _LLAMA3),
    "tekken": _TEKKEN,
    **dict.fromkeys(("qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez"), _QWEN2),
    "qwen35": _QWEN35,
    **dict.fromkeys(("gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"), _GPT4O),
}
_CONTROL, _USER_DEFINED = 3, 4  # llama.cpp's token types


def _gguf_backend(g: GGUFFile) -> tuple[Any, dict[str, str]]:
    """The `tokenizers.Tokenizer` of a GGUF file and its named special tokens
    (bos_token, eos_token, unk_token, pad_token: those the file names), as
    transformers builds them: its GPT2Tokenizer ("gpt2": byte-level BPE) or
    LlamaTokenizer ("llama": sentencepiece-style BPE) over the file's
    vocabulary, then the tokens the file marks special, its pre-tokenizer
    split and its BOS/EOS flags."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import BPE

    model, arch = g.fields.get("tokenizer.ggml.model"), g.fields.get("general.architecture")
    tokens: list[str] = g.field("tokenizer.ggml.tokens")
    if model == "gpt2":
        spelling = {b: c for c, b in byte_level_alphabet().items()}
        alphabet = set(spelling.values())
        vocab = {t: i for i, t in enumerate(tokens)}
        if not set("".join(tokens)) <= alphabet:  # rare: respell the tokens not spelled in the byte alphabet
            vocab = {t if set(t) <= alphabet else "".join(spelling[b] for b in t.encode()): i
                     for i, t in enumerate(tokens)}
        tok = Tokenizer(BPE(vocab=vocab, merges=_merges(g, tokens), dropout=None, continuing_subword_prefix="",
                            end_of_word_suffix="", fuse_unk=False))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        class_specials = ["<|endoftext|>"]  # GPT2Tokenizer's default bos, eos and unk
    elif model == "llama":
        alphabet = None
        vocab = {t: i for i, t in enumerate(tokens)}
        tok = Tokenizer(BPE(vocab=vocab, merges=_merges(g, tokens), fuse_unk=True, byte_fallback=True, dropout=None))
        # sentencepiece's "dummy prefix" (a space before the text, taken off
        # again when decoding), unless the file says otherwise (Gemma's).
        # transformers gives Phi-3's vocabulary the prefix before each
        # stretch of text between added tokens, even one starting with a
        # space (as sentencepiece does); Llama's before the first, unless
        # it starts with one.
        prefix = bool(g.fields.get("tokenizer.ggml.add_space_prefix", True))
        if arch == "phi3" and prefix:
            tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
        else:
            tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", split=False,
                                                         prepend_scheme="first" if prefix else "never")
        tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                         *([decoders.Strip(content=" ", left=1)] if prefix else [])])
        class_specials = ["<s>", "</s>", "<unk>"]  # LlamaTokenizer's default bos, eos, unk
    else:
        raise LlafError(f"{g.path.name}: llaf cannot build its tokenizer: tokenizer model {model!r} "
                        f"of architecture {arch!r} (llaf builds gpt2 and llama)")
    tok.add_special_tokens([AddedToken(t, special=True) for t in class_specials])

    # Control tokens (<|im_start|>, ...) whole and special; user-defined ones whole.
    kinds = g.fields.get("tokenizer.ggml.token_type") or ()
    control = [AddedToken(t, normalized=False, special=True) for t, k in zip(tokens, kinds, strict=False)
               if k == _CONTROL and (alphabet is None or set(t) <= alphabet)]
    if control:
        tok.add_special_tokens(control)
    user = [t for t, k in zip(tokens, kinds, strict=False) if k == _USER_DEFINED]
    if user:  # those the vocabulary spells as they are
        known = tok.get_vocab(with_added_tokens=True)
        tok.add_tokens([AddedToken(t, normalized=False, special=False) for t in user if t in known])
    split = PRE_TOKENIZER_SPLITS.get(g.fields.get("tokenizer.ggml.pre", ""))
    if split is not None:
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(split), behavior="isolated"),
                                                     pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])

    specials: dict[str, str] = {}
    for name, key in (("bos_token", "bos_token_id"), ("eos_token", "eos_token_id"),
                      ("unk_token", "unknown_token_id"), ("pad_token", "padding_token_id")):
        tid = g.fields.get(f"tokenizer.ggml.{key}")
        if tid is not None:
            if not 0 <= tid < len(tokens):
                raise LlafError(f"{g.path.name}: tokenizer.ggml.{key} {tid} is not a token id")
            specials[name] = tokens[tid]
    added = {t.content for t in tok.get_added_tokens_decoder().values()}
    tok.add_special_tokens([AddedToken(t, special=True) for t in dict.fromkeys(specials.values()) if t not in added])

    # llama.cpp adds BOS to a sentencepiece vocabulary whose file does not say otherwise.
    bos, eos = specials.get("bos_token"), specials.get("eos_token")
    add_bos = bool(g.fields.get("tokenizer.ggml.add_bos_token", model == "llama")) and bos is not None
    add_eos = bool(g.fields.get("tokenizer.ggml.add_eos_token", False)) and eos is not None
    single = f"{f'{bos}:0 ' if add_bos else ''}$A:0{f' {eos}:0' if add_eos else ''}"
    pair = f"{single}{f' {bos}:1' if add_bos else ''} $B:1{f' {eos}:1' if add_eos else ''}"
    ends = [(t, tok.token_to_id(t)) for t, on in ((bos, add_bos), (eos, add_eos)) if on]
    tok.post_processor = processors.TemplateProcessing(single=single, pair=pair, special_tokens=ends)
    return tok, specials


def _merges(g: GGUFFile, tokens: list[str]) -> list[tuple[str, ...]]:
    """The file's merges, or (sentencepiece files have none) the ones its
    vocabulary and scores imply, as transformers' `generate_merges` orders them."""
    if "tokenizer.ggml.merges" in g.fields:
        return [tuple(m.split(" ")) for m in g.fields["tokenizer.ggml.merges"]]
    vocab = {t: i for i, t in enumerate(tokens)}
    scores = dict(zip(tokens, g.field("tokenizer.ggml.scores"), strict=False))
    merges = []
    for token, score in scores.items():
        pairs = [(token[:i], token[i:], score) for i in range(1, len(token))
                 if token[:i] in vocab and token[i:] in vocab]
        merges += sorted(pairs, key=lambda m: (vocab[m[0]], vocab[m[1]]))
    merges.sort(key=lambda m: (m[2], len(m[0]), len(m[1])), reverse=True)
    return [(left, right) for left, right, _ in merges]


def _compile_chat_template(source: str) -> Any:
    """A chat template in the jinja environment transformers renders templates in."""
    from jinja2 import TemplateError
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    def tojson(x: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None,
               sort_keys: bool = False) -> str:
        # jinja's own tojson escapes HTML characters; transformers' does not.
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(source)


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
    if is_gguf(path):
        return from_gguf(path)
    if path.is_dir():
        return from_directory(path)
    if architecture == "gpt2":
        return TiktokenTokenizer()
    raise LlafError(f"no tokenizer known for {source}: load the model from a GGUF file or a directory")


def gpt2_tokenizer() -> Any:
    """tiktoken's GPT-2 encoding, from llaf's offline cache."""
    return TiktokenTokenizer().encoding
