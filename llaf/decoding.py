"""Streamed text: a sequence's tokens decoded as they come, each token once
where llaf can follow the tokenizer's decoder (`Tokenizer.decoding` in
llaf/tokenizer.py chooses; llaf/generation.py's TextPieces streams it).

Decoding all the tokens again for every new one made each token cost in
proportion to the sequence's length (docs/PERFORMANCE.md)."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Sequence
from typing import Any


class Decoding:
    """The text of a sequence's tokens as they come: `push` a token and get
    what the tokenizer's `decode` gives for all of them so far."""

    def push(self, tok: int) -> str:
        raise NotImplementedError


class WholeDecoding(Decoding):
    """Decodes all the tokens again for each new one: for the tokenizers
    whose text llaf does not build token by token (transformers' slow ones,
    fast ones that clean up spaces, decoders other than those below)."""

    def __init__(self, decode: Callable[[Sequence[int]], str]) -> None:
        self.decode = decode
        self.tokens: list[int] = []

    def push(self, tok: int) -> str:
        self.tokens.append(tok)
        return self.decode(self.tokens)


class BytesDecoding(Decoding):
    """For tokenizers whose text is the UTF-8 of their tokens' bytes one
    after another, undecodable bytes replaced (byte-level BPE: GPT-2's,
    SmolLM2's, Llama 3's, Qwen's): each token's bytes are decoded once, as
    they come.

    Python's incremental UTF-8 decoder gives, over the same bytes, what
    decoding them at once gives. The bytes it holds back (at most three,
    which may yet begin a character) `push` decodes at once too, each time:
    U+FFFD for each undecodable part of them, as `decode` has them now."""

    def __init__(self, token_bytes: Callable[[int], bytes]) -> None:
        self.token_bytes = token_bytes
        self.utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.settled = ""  # the text of the bytes decoded so far

    def push(self, tok: int) -> str:
        self.settled += self.utf8.decode(self.token_bytes(tok))
        held, _ = self.utf8.getstate()
        return self.settled + held.decode("utf-8", errors="replace") if held else self.settled


# A sentencepiece-style token's part of the text: its piece (the token with
# "▁" read as a space), or the byte a byte token (<0xNN>) stands for, or None
# for an id the vocabulary does not have (`decode` leaves it out).
Piece = str | int | None


class PiecesDecoding(Decoding):
    """For the sentencepiece-style tokenizers whose decoder is `tokenizers`'
    Replace("▁", " "), ByteFallback, Fuse and, with a space prefix, Strip of
    one leading space (llaf's GGUF ones for Llama 2, Mistral, Phi-3, Gemma,
    and transformers' of the same files): each token's piece is added once,
    as it comes.

    ByteFallback decodes a run of byte tokens whole: its UTF-8 if the run is
    valid, else U+FFFD for each of its bytes (a later byte can make a valid
    run invalid). So the current run stays apart, decoded again at each
    push, until a piece ends it."""

    def __init__(self, piece: Callable[[int], Piece], strip: bool) -> None:
        self.piece = piece
        self.strip = strip
        self.settled = ""  # the text of the tokens before the current run of byte tokens
        self.run = bytearray()

    def _run_text(self) -> str:
        try:
            return self.run.decode("utf-8")
        except UnicodeDecodeError:
            return "\ufffd" * len(self.run)

    def push(self, tok: int) -> str:
        piece = self.piece(tok)
        if isinstance(piece, int):
            self.run.append(piece)
        elif piece is not None:
            if self.run:
                self.settled += self._run_text()
                self.run.clear()
            self.settled += piece
        text = self.settled + self._run_text() if self.run else self.settled
        return text[1:] if self.strip and text.startswith(" ") else text


def sentencepiece_strip(decoder: Any) -> bool | None:
    """Whether `tokenizers` decoder `decoder` is PiecesDecoding's chain with
    the Strip (True) or without it (False); None if it is another."""
    chain = json.loads(decoder.__getstate__()).get("decoders") if decoder is not None else None
    base = [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"},
            {"type": "Fuse"}]
    if chain == base:
        return False
    if chain == [*base, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]:
        return True
    return None


_BYTE_TOKEN = re.compile(r"<0x(?:[0-9A-Fa-f]{2}|\+[0-9A-Fa-f])>")  # (what ByteFallback's u8::from_str_radix takes)


def sentencepiece_pieces(backend: Any) -> list[Piece]:
    """Each token's piece for `PiecesDecoding`, as Replace and ByteFallback
    read the token's spelling (added tokens' too)."""
    table: list[Piece] = []
    for i in range(backend.get_vocab_size(with_added_tokens=True)):
        token = backend.id_to_token(i)
        if token is None:
            table.append(None)
        elif _BYTE_TOKEN.fullmatch(token):
            table.append(int(token[3:5].lstrip("+"), 16))
        else:
            table.append(token.replace("\u2581", " "))
    return table


def byte_level_token_bytes(backend: Any) -> list[bytes]:
    """Each token's bytes, as the `tokenizers` ByteLevel decoder gives
    them: its characters' bytes in GPT-2's byte-level alphabet, or, for a
    token with a character outside it (an added token's), its UTF-8."""
    alphabet = byte_level_alphabet()
    table = []
    for i in range(backend.get_vocab_size(with_added_tokens=True)):
        token = backend.id_to_token(i) or ""
        try:
            table.append(bytes(alphabet[c] for c in token))
        except KeyError:
            table.append(token.encode())
    return table


def byte_level_alphabet() -> dict[str, int]:
    """GPT-2's byte-level alphabet: the character that stands for each of
    the 256 bytes (printable ones for themselves, the others from U+0100
    on), as the `tokenizers` ByteLevel pre-tokenizer and decoder use it."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return {**{chr(b): b for b in printable}, **{chr(256 + i): b for i, b in enumerate(others)}}
