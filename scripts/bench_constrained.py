"""The figures of docs/CONSTRAINED.md: a constrained-decoding library on
SmolLM2's vocabulary (49152 tokens): reading the vocabulary, compiling a
JSON schema, and the token mask before each token of a valid document.

    pip install llguidance xgrammar outlines-core   # into a scratch environment
    python scripts/bench_constrained.py llguidance   # or xgrammar, outlines
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from llaf.assets import default_model_path
from llaf.decoding import byte_level_alphabet
from llaf.tokenizer import from_gguf

SCHEMA = {"type": "object", "properties": {
    "name": {"type": "string"}, "age": {"type": "integer", "minimum": 0},
    "email": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}},
    "address": {"type": "object", "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
                "required": ["city", "zip"]},
    "role": {"enum": ["admin", "user", "guest"]}},
    "required": ["name", "age", "email", "tags", "address", "role"], "additionalProperties": False}
DOC = json.dumps({"name": "Ada Lovelace", "age": 36, "email": "ada@example.com", "tags": ["math", "poetry"],
                  "address": {"city": "London", "zip": "W1"}, "role": "admin"})


def timed(f: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t


def main(lib: str) -> None:
    tok = from_gguf(default_model_path())
    backend = tok.backend
    vocab = backend.get_vocab_size(with_added_tokens=True)
    eos = sorted(tok.eos_ids)
    ids = backend.encode(DOC, add_special_tokens=False).ids
    masks: list[float] = []
    if lib == "llguidance":
        import llguidance
        from llguidance.numpy import allocate_token_bitmask, fill_next_token_bitmask

        llt, setup = timed(lambda: llguidance.LLTokenizer(backend.to_str(), eos_token=eos))
        fmt = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
        m, compile_ = timed(lambda: llguidance.LLMatcher(
            llt, llguidance.LLMatcher.grammar_from_json_schema(SCHEMA, defaults=fmt)))  # type: ignore[arg-type]
        bitmask = allocate_token_bitmask(1, vocab)
        for i in ids:
            masks.append(timed(lambda: fill_next_token_bitmask(m, bitmask))[1])
            assert m.consume_token(i), m.get_error()
    elif lib == "xgrammar":
        import xgrammar as xgr
        from transformers import PreTrainedTokenizerFast

        hf = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>")
        info, setup = timed(lambda: xgr.TokenizerInfo.from_huggingface(hf, vocab_size=vocab, stop_token_ids=eos))
        compiler = xgr.GrammarCompiler(info, max_threads=1, cache_enabled=False)
        grammar, compile_ = timed(lambda: compiler.compile_json_schema(json.dumps(SCHEMA), any_whitespace=False))
        matcher = xgr.GrammarMatcher(grammar)
        bitmask = xgr.allocate_token_bitmask(1, vocab)
        for i in ids:
            masks.append(timed(lambda: matcher.fill_next_token_bitmask(bitmask))[1])
            assert matcher.accept_token(i)
    elif lib == "outlines":
        from outlines_core import Guide, Index, Vocabulary
        from outlines_core.json_schema import build_regex_from_schema

        byte_of = byte_level_alphabet()

        def read() -> Any:
            tokens: dict[bytes, list[int]] = {}
            for s, i in backend.get_vocab(with_added_tokens=True).items():
                if i not in eos:
                    key = bytes(byte_of[c] for c in s) if all(c in byte_of for c in s) else s.encode()
                    tokens.setdefault(key, []).append(i)
            return Vocabulary(eos[0], tokens)

        voc, setup = timed(read)
        index, compile_ = timed(lambda: Index(build_regex_from_schema(json.dumps(SCHEMA)), voc))
        guide = Guide(index)
        for i in ids:
            allowed, t = timed(guide.get_tokens)
            masks.append(t)
            assert i in allowed
            guide.advance(i)
    else:
        sys.exit(f"unknown library {lib!r}: llguidance, xgrammar or outlines")
    us = np.array(masks) * 1e6
    print(f"{lib}: vocabulary {setup * 1e3:.0f} ms, schema {compile_ * 1e3:.1f} ms, mask per token "
          f"median {np.median(us):.0f} us, mean {us.mean():.0f} us, max {us.max():.0f} us ({len(ids)} tokens)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "llguidance")
