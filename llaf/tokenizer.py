"""Text ↔ token ids.

GPT-2 uses tiktoken's ``gpt2`` encoding.  Its files come from registry
packages (`make assets`, see llaf/assets.py) and are read from llaf's own
tiktoken cache, so nothing is downloaded at run time.
"""

from __future__ import annotations

import tiktoken

from .assets import use_tiktoken_cache


def gpt2_tokenizer() -> tiktoken.Encoding:
    """tiktoken's GPT-2 encoding, from llaf's offline cache."""
    use_tiktoken_cache()
    return tiktoken.get_encoding("gpt2")
