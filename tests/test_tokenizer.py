"""Tokenizers: llaf's ids equal Hugging Face's (tokenizers, transformers) for the same text."""

from __future__ import annotations

import pytest

from llaf.assets import default_model_path, tiktoken_dir
from llaf.tokenizer import TiktokenTokenizer, from_gguf

TEXTS = [
    "Hello world",
    "  leading spaces and trailing   ",
    "tabs\tand\nnewlines\n\n\nand\r\nCRLF",
    "Numbers: 3.14159, 1,000,000 and 2024-11-23; 0x1F",
    "Unicode: café, naïve, Ωμέγα, 日本語のテキスト, emoji 🤖🚀, zero-width\u200bjoiner",
    "Code: def f(x):\n    return x ** 2  # square",
    "MiXeD CaSe and punctuation!!! ??? ... ---",
    "",
]


@pytest.fixture(scope="module")
def gpt2_hf():  # type: ignore[no-untyped-def]
    """Hugging Face's `tokenizers` byte-level BPE over the same vocabulary
    files: an independent implementation of GPT-2's encoding."""
    import hashlib

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    from llaf.assets import _tiktoken_files

    files = {name: str(tiktoken_dir() / hashlib.sha1(url.encode()).hexdigest())
             for name, (url, _) in _tiktoken_files().items()}
    tok = Tokenizer(models.BPE.from_file(files["encoder.json"], files["vocab.bpe"]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return tok


@pytest.mark.parametrize("text", TEXTS)
def test_gpt2_ids_equal_transformers(gpt2_hf, text: str) -> None:  # type: ignore[no-untyped-def]
    tok = TiktokenTokenizer()
    ids = tok.encode(text)
    assert ids == gpt2_hf.encode(text).ids
    assert tok.decode(ids) == text == gpt2_hf.decode(ids)


def test_gpt2_known_ids() -> None:
    tok = TiktokenTokenizer()
    assert tok.encode("Hello world") == [15496, 995]
    assert tok.encode("<|endoftext|>") == [50256]
    assert tok.eos_ids == {50256}


@pytest.fixture(scope="module")
def smollm2():  # type: ignore[no-untyped-def]
    return from_gguf(default_model_path())


@pytest.fixture(scope="module")
def smollm2_hf():  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    path = default_model_path()
    return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)


@pytest.mark.parametrize("text", [*TEXTS, "<|im_start|>user\nHi<|im_end|>\n", "<|endoftext|> after"])
def test_smollm2_ids_equal_transformers(smollm2, smollm2_hf, text: str) -> None:  # type: ignore[no-untyped-def]
    assert smollm2.encode(text) == smollm2_hf(text)["input_ids"]
    assert smollm2.decode(smollm2.encode(text)) == smollm2_hf.decode(smollm2_hf(text)["input_ids"])


def test_smollm2_special_tokens_and_chat_template(smollm2) -> None:  # type: ignore[no-untyped-def]
    assert smollm2.encode("<|im_start|>") == [1]
    assert smollm2.encode("<|im_end|>") == [2]
    assert 2 in smollm2.eos_ids
    ids = smollm2.chat([{"role": "user", "content": "Hi"}])
    text = smollm2.decode(ids)
    assert text.startswith("<|im_start|>system\n")
    assert text.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
