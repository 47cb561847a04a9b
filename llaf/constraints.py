"""Constrained decoding: output that is JSON, and valid against a JSON schema.

    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    model.generate(prompt, 64, json_schema=schema)       # parses, and validates against `schema`
    model.generate(prompt, 64, json_schema=ANY_OBJECT)   # any JSON object (OpenAI's "json_object")

The schema becomes a grammar, and a matcher of that grammar (llguidance,
chosen over xgrammar and outlines-core in docs/CONSTRAINED.md) says, before
each token, which tokens of the vocabulary may come next: the others get a
logit of -inf, so greedy and sampled decoding alike pick only tokens that
keep the text a prefix of a valid document. The end-of-turn token is allowed
only once the document is complete, and generation ends as soon as nothing
but the end can follow (`JsonConstraint.finished`). A token limit can still
cut the document short: the text then does not parse (finish reason
``"length"``, as in OpenAI's API).

The JSON is written compactly, with json.dumps' separators (``", "`` and
``": "``) and no other whitespace: a small model allowed free whitespace can
spend its tokens on newlines.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import llguidance
import numpy as np

from .checks import ArgumentError, shown
from .errors import first_line
from .tokenizer import GGUFTokenizer, HFTokenizer, TiktokenTokenizer, Tokenizer

ANY_OBJECT: dict[str, Any] = {"type": "object"}  # JSON mode: any JSON object
_FORMAT = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


def check_schema(name: str, schema: Any) -> dict[str, Any]:
    """A copy of `schema` (a JSON schema given as a mapping), or an
    ArgumentError naming `name` that says what is wrong with it."""
    if not isinstance(schema, Mapping):
        raise ArgumentError(name, f"{name} must be a JSON schema (an object, e.g. {{\"type\": \"object\"}}), "
                                  f"got {shown(schema)}")
    try:
        text = json.dumps(schema, allow_nan=False)  # in its order: properties come in the order given
    except (TypeError, ValueError) as e:
        raise ArgumentError(name, f"{name} is not JSON: {e}") from None
    problem = _grammar(text)[1] or _no_document(text)
    if problem:
        raise ArgumentError(name, f"{name} is not a usable JSON schema: {problem}")
    copy: dict[str, Any] = json.loads(text)
    return copy


@lru_cache(maxsize=64)
def _grammar(schema: str) -> tuple[str, str]:
    """The llguidance grammar of a schema (canonical JSON text), and what is
    wrong with it ("" if nothing), on one line."""
    try:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(schema, defaults=_FORMAT)  # type: ignore[arg-type]
    except ValueError as e:
        return "", " ".join(str(e).split())
    return grammar, " ".join(llguidance.LLMatcher.validate_grammar(grammar).split())


@lru_cache(maxsize=64)
def _no_document(schema: str) -> str:
    """What keeps any document from matching a schema whose grammar is valid
    ("" if nothing found): a schema that is only itself (``{"$ref": "#"}``)
    has no first byte, which a matcher over single bytes finds at once."""
    matcher = llguidance.LLMatcher(_bytes(), _grammar(schema)[0], log_level=0)
    matcher.compute_bitmask()
    return f"no document matches it ({first_line(matcher.get_error())})" if matcher.is_error() else ""


@lru_cache(maxsize=1)
def _bytes() -> llguidance.LLTokenizer:
    return llguidance.LLTokenizer("byte")


class SchemaLimitError(ArgumentError):
    """The matcher gave up on a schema during generation (a parser limit: a
    schema whose every document nests without end, say): the schema's fault."""

    def __init__(self, problem: str) -> None:
        super().__init__("json_schema", f"the JSON schema cannot be followed: {problem}")


# Reading a vocabulary into llguidance takes about a second (SmolLM2's
# 49152 tokens), so it is done once per tokenizer; the server's threads share it.
_vocabularies: weakref.WeakKeyDictionary[Tokenizer, llguidance.LLTokenizer] = weakref.WeakKeyDictionary()
_vocabularies_lock = threading.Lock()


def vocabulary(tokenizer: Tokenizer) -> llguidance.LLTokenizer:
    """llguidance's view of `tokenizer`: each token's bytes and the end-of-turn ids."""
    with _vocabularies_lock:
        known = _vocabularies.get(tokenizer)
        if known is not None:
            return known
        eos = sorted(tokenizer.eos_ids)
        if isinstance(tokenizer, GGUFTokenizer):
            made = llguidance.LLTokenizer(tokenizer.backend.to_str(), eos_token=eos)
        elif isinstance(tokenizer, HFTokenizer):
            from llguidance.hf import from_tokenizer

            try:
                made = from_tokenizer(tokenizer.tokenizer, eos_token=eos)
            except ValueError:
                raise ArgumentError("json_schema", f"JSON output needs a fast tokenizer; {tokenizer.name} "
                                                   "is a slow one") from None
        elif isinstance(tokenizer, TiktokenTokenizer):
            from llguidance.tiktoken import lltokenizer_from_encoding

            made = lltokenizer_from_encoding(tokenizer.encoding, eos_token=eos)
        else:
            raise ArgumentError("json_schema", f"JSON output is not available with {tokenizer.name}")
        _vocabularies[tokenizer] = made
        return made


class JsonConstraint:
    """The tokens one sequence may generate next, so that its text stays the
    beginning of a document valid against `schema`. `mask` the logits before
    each token is picked, then `accept` the token picked."""

    def __init__(self, schema: Mapping[str, Any], tokenizer: Tokenizer) -> None:
        grammar, problem = _grammar(json.dumps(schema))
        if problem:  # SamplingParams checked the schema: this is no user's error
            raise RuntimeError(f"the JSON schema's grammar: {problem}")
        self.vocab = vocabulary(tokenizer)
        self.matcher = llguidance.LLMatcher(self.vocab, grammar, log_level=0)
        self._check()

    def _check(self) -> None:
        if self.matcher.is_error():
            raise _failure(self.matcher.get_error())

    def allowed(self, size: int) -> np.ndarray:
        """Which of `size` token ids may come next (booleans)."""
        bits = np.unpackbits(np.frombuffer(self.matcher.compute_bitmask(), dtype=np.uint8), bitorder="little")
        self._check()
        ok = np.zeros(size, dtype=bool)
        n = min(size, self.vocab.vocab_size)
        ok[:n] = bits[:n]
        return ok

    def mask(self, logits: np.ndarray) -> np.ndarray:
        """`logits` (float64) with -inf for every token that may not come next."""
        x = np.asarray(logits, dtype=np.float64).reshape(-1)
        return np.where(self.allowed(x.size), x, -np.inf)

    def accept(self, token: int) -> None:
        """`token` was picked (a token `mask` allowed)."""
        if not self.matcher.consume_token(token):
            raise _failure(self.matcher.get_error(), f"it refused token {token}: ")

    @property
    def finished(self) -> bool:
        """The document is complete and nothing but the end of turn can follow."""
        return bool(self.matcher.is_stopped())


def _failure(error: str, context: str = "") -> Exception:
    """The matcher's failure: a parser limit is the schema's (SchemaLimitError);
    anything else is llaf's own (RuntimeError)."""
    problem = first_line(error)  # (llguidance dumps its state and grammar after it)
    if "parser error" in problem or "limit" in problem:
        return SchemaLimitError(problem)
    return RuntimeError(f"the JSON matcher failed: {context}{problem}")
