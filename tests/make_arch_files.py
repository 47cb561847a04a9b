"""Make tests/data/{qwen2,qwen3,phi3,gemma}.gguf: small random-weight models
of the Llama family's descendants (tests/test_architectures.py's), written
by llama.cpp's own converter, `convert_hf_to_gguf.py` from llama-cpp-python's
source distribution (its vendor/llama.cpp).  Run once, the files committed:

    pip download llama-cpp-python==0.3.36 --no-binary :all: --no-deps -d /tmp/lcp
    tar xzf /tmp/lcp/llama_cpp_python-0.3.36.tar.gz -C /tmp/lcp
    pip install sentencepiece
    python -m tests.make_arch_files /tmp/lcp/llama_cpp_python-0.3.36/vendor/llama.cpp

Each model comes with a tokenizer trained here on a few paragraphs, as its
family's are made: byte-level BPE split as Qwen2 splits, with Qwen's chat
template (qwen2, qwen3); sentencepiece BPE with byte fallback (phi3,
gemma).  The converter names a BPE pre-tokenizer by the hash of its tokens
for a sample text, which only published tokenizers have: it is told that
this one is qwen2's, which it is by construction.  The weights are written
in two types, so that both the float and the block-quantized reading of
each architecture's tensors are tried (Phi-3's fused matrices are split by
rows of blocks).
"""

from __future__ import annotations

import runpy
import sys
import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
OUTTYPES = {"qwen2": "q8_0", "qwen3": "f16", "phi3": "q8_0", "gemma": "f16"}
VOCAB = 384
TEXT = """\
The quick brown fox jumps over the lazy dog. A journey of a thousand miles begins with a single step.
Futhark is a small programming language designed to be compiled to efficient parallel code.
Large language models predict the next token from the tokens before it, one step at a time.
It was the best of times, it was the worst of times, it was the age of wisdom.
Numbers like 12, 345 and 6789 appear in text; so do symbols such as (, ), [, ], {, }, +, -, = and ?!
Hello, world! How are you today? I am fine, thank you. What would you like to talk about?
"""
QWEN_TEMPLATE = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] "
                 "+ '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
                 "{% endif %}")
GEMMA_TEMPLATE = ("{{ bos_token }}{% for message in messages %}{{ '<start_of_turn>' + ('model' if message['role'] == "
                  "'assistant' else message['role']) + '\\n' + message['content'] + '<end_of_turn>\\n' }}{% endfor %}"
                  "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}")
PHI3_TEMPLATE = ("{% for message in messages %}"
                 "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}"
                 "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}")


def bpe_tokenizer(directory: Path) -> None:
    """A byte-level BPE tokenizer split as Qwen2's, with its special tokens and chat template."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from llaf.tokenizer import PRE_TOKENIZER_SPLITS

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRE_TOKENIZER_SPLITS["qwen2"]), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=VOCAB - len(specials), special_tokens=[],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([TEXT], trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=specials[1:])
    fast.add_special_tokens({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"})
    fast.chat_template = QWEN_TEMPLATE
    fast.save_pretrained(directory)


def sentencepiece_tokenizer(directory: Path, arch: str) -> None:
    """A sentencepiece BPE model with byte fallback, as Gemma's and Phi-3's are."""
    import io

    import sentencepiece as spm

    model = io.BytesIO()
    turns = ["<start_of_turn>", "<end_of_turn>"] if arch == "gemma" else ["<|user|>", "<|assistant|>", "<|end|>"]
    ids = (dict(pad_id=0, eos_id=1, bos_id=2, unk_id=3, bos_piece="<bos>", eos_piece="<eos>") if arch == "gemma"
           else dict(unk_id=0, bos_id=1, eos_id=2, pad_id=-1))
    spm.SentencePieceTrainer.train(sentence_iterator=iter(TEXT.splitlines() * 4), model_writer=model,
                                   model_type="bpe", vocab_size=VOCAB, byte_fallback=True,
                                   user_defined_symbols=turns, hard_vocab_limit=False, minloglevel=2,
                                   normalization_rule_name="identity", remove_extra_whitespaces=False,
                                   add_dummy_prefix=arch != "gemma", **ids)
    (directory / "tokenizer.model").write_bytes(model.getvalue())
    template = GEMMA_TEMPLATE if arch == "gemma" else PHI3_TEMPLATE
    eos = "<end_of_turn>" if arch == "gemma" else "<|end|>"
    import json

    (directory / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "GemmaTokenizer" if arch == "gemma" else "LlamaTokenizer",
         "chat_template": template, "eos_token": eos, "bos_token": "<bos>" if arch == "gemma" else "<s>",
         "unk_token": "<unk>",
         "add_bos_token": True, "add_eos_token": False}))


def convert(llama_cpp: Path, directory: Path, out: Path, outtype: str) -> None:
    """llama.cpp's converter on `directory`, told that a BPE tokenizer splits as qwen2's."""
    sys.path[:0] = [str(llama_cpp), str(llama_cpp / "gguf-py")]
    from conversion import base  # type: ignore[import-not-found]

    base.TextModel.get_vocab_base_pre = lambda self, tokenizer: "qwen2"
    argv = sys.argv
    sys.argv = ["convert_hf_to_gguf.py", str(directory), "--outfile", str(out), "--outtype", outtype]
    try:
        runpy.run_path(str(llama_cpp / "convert_hf_to_gguf.py"), run_name="__main__")
    finally:
        sys.argv = argv


# Texts whose token ids the tokenizers' own libraries give, for
# tests/test_architectures.py to compare llaf's tokenizer of each file with.
TEXTS = ["Hello, world! How are you today?", "  leading spaces and trailing   ",
         "tabs\tand\nnewlines\n\n and digits 12345 6789", "Unicode: café, naïve, 日本語, emoji 🤖",
         "The quick brown fox jumps over the lazy dog."]


def reference_ids(directory: Path, arch: str) -> dict[str, list[int]]:
    """Each text's ids as the source tokenizer gives them, with a BOS first
    where llama.cpp's converter has the file add one (sentencepiece)."""
    if arch in ("qwen2", "qwen3"):
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(directory / "tokenizer.json"))
        return {t: tok.encode(t, add_special_tokens=False).ids for t in TEXTS}
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(directory / "tokenizer.model"))
    return {t: [sp.bos_id(), *sp.encode(t)] for t in TEXTS}


def special_ids(directory: Path, arch: str) -> dict[str, int]:
    """The model's BOS, EOS and padding ids, as its tokenizer names them."""
    if arch in ("qwen2", "qwen3"):
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(directory / "tokenizer.json"))
        return {"bos_token_id": tok.token_to_id("<|endoftext|>"), "eos_token_id": tok.token_to_id("<|im_end|>"),
                "pad_token_id": tok.token_to_id("<|endoftext|>")}
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(directory / "tokenizer.model"))
    eos = sp.piece_to_id("<end_of_turn>" if arch == "gemma" else "<|end|>")
    return {"bos_token_id": sp.bos_id(), "eos_token_id": eos, "pad_token_id": max(sp.pad_id(), 0)}


def main() -> None:
    import json

    from .test_architectures import random_model

    llama_cpp = Path(sys.argv[1])
    references = {}
    for arch, outtype in OUTTYPES.items():
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            if arch in ("qwen2", "qwen3"):
                bpe_tokenizer(directory)
            else:
                sentencepiece_tokenizer(directory, arch)
            model = random_model(arch, vocab=VOCAB)
            for key, value in special_ids(directory, arch).items():
                setattr(model.config, key, value)
            model.save_pretrained(directory)
            convert(llama_cpp, directory, DATA / f"{arch}.gguf", outtype)
            references[arch] = reference_ids(directory, arch)
        print(f"wrote {DATA / f'{arch}.gguf'}", file=sys.stderr)
    (DATA / "arch_tokenizer_ids.json").write_text(json.dumps(references, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    main()
