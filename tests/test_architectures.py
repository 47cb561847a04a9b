"""The Llama family's descendants in llaf against transformers, on random
weights: Qwen2 (query/key/value biases), Qwen3 (per-head query/key norms,
a head size of its own), Phi-3 (fused projections, partial rotation, a
sliding window), Gemma (GELU gating, a scaled embedding, `1 + w` norms,
heads wider than the width over the heads) and Mistral with its sliding
window.  Logits within tests/parity.py's tolerance at every position,
greedy ids identical, the cached path equal to the uncached one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import llaf

from .parity import assert_cached_path_equals_uncached, assert_logits_close, hf_greedy, hf_logits, random_prompt

# Each a small model of its architecture, with what sets it apart from Llama
# in use; prompts of 40 tokens pass the sliding windows.
CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "qwen2": ("Qwen2", dict(hidden_size=96, num_attention_heads=6, num_key_value_heads=2, intermediate_size=192,
                            vocab_size=600, tie_word_embeddings=True)),
    "qwen3": ("Qwen3", dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                            intermediate_size=160, vocab_size=500, tie_word_embeddings=False)),
    "phi3": ("Phi3", dict(hidden_size=96, num_attention_heads=6, num_key_value_heads=3, intermediate_size=192,
                          vocab_size=600, sliding_window=16,
                          rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                           "partial_rotary_factor": 0.5})),
    "gemma": ("Gemma", dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=1, head_dim=24,
                            intermediate_size=160, vocab_size=500)),
    "mistral": ("Mistral", dict(hidden_size=96, num_attention_heads=6, num_key_value_heads=2, head_dim=16,
                                intermediate_size=200, vocab_size=600, sliding_window=10)),
}
_models: dict[str, torch.nn.Module] = {}
_params: dict[tuple[str, str], llaf.Params] = {}


def random_model(arch: str, seed: int = 3, vocab: int | None = None) -> torch.nn.Module:
    """A random-weight model of `arch`: its 1-D weights (norms, biases) made
    random too, since transformers starts them at one or zero, where a
    missing bias or norm would go unseen."""
    import transformers

    name, config = CONFIGS[arch]
    config = config | ({"vocab_size": vocab} if vocab else {})
    torch.manual_seed(seed)
    cfg = getattr(transformers, f"{name}Config")(num_hidden_layers=2, max_position_embeddings=80,
                                                 initializer_range=0.08, bos_token_id=0, eos_token_id=0,
                                                 pad_token_id=0, **config)
    model = getattr(transformers, f"{name}ForCausalLM")(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(0.2 * torch.randn_like(p))
    return model


def hf_model(arch: str) -> torch.nn.Module:
    if arch not in _models:
        _models[arch] = random_model(arch)
    return _models[arch]


@pytest.fixture(scope="module", params=list(CONFIGS))
def arch(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def params(backend: str, arch: str) -> llaf.Params:
    if (backend, arch) not in _params:
        _params[backend, arch] = llaf.init(hf_model(arch), backend=backend, progress=False)
    return _params[backend, arch]


def test_logits_match_transformers_at_every_position(params: llaf.Params, arch: str) -> None:
    ids = random_prompt(params, 40)
    assert_logits_close(llaf.forward(params, ids), hf_logits(hf_model(arch), ids))


def test_greedy_ids_identical(params: llaf.Params, arch: str) -> None:
    ids = random_prompt(params, 6, seed=1)
    np.testing.assert_array_equal(llaf.gen(ids, params, 40), hf_greedy(hf_model(arch), ids, 40))


def test_cached_path_equals_uncached(params: llaf.Params) -> None:
    assert_cached_path_equals_uncached(params, random_prompt(params, 36, seed=2), 12)


def test_what_sets_each_apart_is_read(arch: str) -> None:
    """The converted weights hold each variation (else the parity above
    would not be testing it)."""
    from llaf.weights import from_transformers

    w = from_transformers(hf_model(arch), progress=False)
    h = w.hparams
    expected = {"qwen2": ("bq", "bk", "bv"), "qwen3": ("q_norm", "k_norm"), "phi3": (), "gemma": (), "mistral": ()}
    for name in ("bq", "bk", "bv", "q_norm", "k_norm"):
        assert (w.arrays[name].shape[1] > 0) == (name in expected[arch]), name
    assert h["window"] == {"phi3": 16, "mistral": 10}.get(arch, 0)
    assert h["activation"] == (1 if arch == "gemma" else 0)
    assert h["embedding_scale"] == (np.float32(8.0) if arch == "gemma" else 1.0)
    rotated = {"phi3": 8, "qwen3": 32, "gemma": 24, "mistral": 16, "qwen2": 16}[arch]
    assert w.arrays["inv_freq"].shape == (rotated // 2,)


def test_unsupported_variations_are_refused() -> None:
    """What the one model does not cover is a LlafError naming it, not wrong output."""
    from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM

    from llaf.weights import from_transformers

    small = dict(hidden_size=32, num_attention_heads=2, num_key_value_heads=1, intermediate_size=64,
                 vocab_size=100, num_hidden_layers=2, pad_token_id=0)
    mixed = Qwen2ForCausalLM(Qwen2Config(use_sliding_window=True, sliding_window=8, max_window_layers=1, **small))
    with pytest.raises(llaf.LlafError, match=r"^sliding-window attention in some layers only is not supported$"):
        from_transformers(mixed, progress=False)
    biased = Qwen3ForCausalLM(Qwen3Config(attention_bias=True, **small))
    with pytest.raises(llaf.LlafError, match=r"^qwen3 models with a bias on the attention output are not supported$"):
        from_transformers(biased, progress=False)


# GGUF files of these models written by llama.cpp's converter (tests/make_arch_files.py),
# Q8_0 or F16, with tokenizers trained for them and their families' chat templates.
GGUF_ARCHS = ("qwen2", "qwen3", "phi3", "gemma")
DATA = Path(__file__).parent / "data"
# The file's tensors (gguf-py's names but for the layer) → transformers' parameters.
HF_NAMES = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
            "output.weight": "lm_head.weight", "attn_norm.weight": "input_layernorm.weight",
            "ffn_norm.weight": "post_attention_layernorm.weight", "attn_output.weight": "self_attn.o_proj.weight",
            "attn_qkv.weight": "self_attn.qkv_proj.weight", "ffn_gate.weight": "mlp.gate_proj.weight",
            "ffn_down.weight": "mlp.down_proj.weight", "attn_q_norm.weight": "self_attn.q_norm.weight",
            "attn_k_norm.weight": "self_attn.k_norm.weight",
            **{f"attn_{x}.{kind}": f"self_attn.{x}_proj.{kind}" for x in "qkv" for kind in ("weight", "bias")}}


def hf_from_gguf(path: Path) -> torch.nn.Module:
    """The oracle for a GGUF file: transformers' model of its architecture,
    configured from its metadata, holding its tensors as gguf-py reads and
    dequantizes them (transformers' own GGUF loading drops Qwen3's head
    size and Phi-3's window and partial rotation)."""
    import gguf
    import transformers

    r = gguf.GGUFReader(str(path))
    fields = {k: f.contents() for k, f in r.fields.items() if not k.startswith("tokenizer.")}
    arch = fields["general.architecture"]
    tensors = {t.name: torch.from_numpy(np.ascontiguousarray(
        gguf.quants.dequantize(t.data, t.tensor_type).reshape(tuple(int(n) for n in reversed(t.shape)))
        .astype(np.float32))) for t in r.tensors}
    heads, d = fields[f"{arch}.attention.head_count"], fields[f"{arch}.embedding_length"]
    hd = fields.get(f"{arch}.attention.key_length", d // heads)
    config = dict(hidden_size=d, num_attention_heads=heads, head_dim=hd,
                  num_key_value_heads=fields[f"{arch}.attention.head_count_kv"],
                  intermediate_size=fields[f"{arch}.feed_forward_length"],
                  num_hidden_layers=fields[f"{arch}.block_count"], vocab_size=tensors["token_embd.weight"].shape[0],
                  max_position_embeddings=fields[f"{arch}.context_length"],
                  rms_norm_eps=fields[f"{arch}.attention.layer_norm_rms_epsilon"],
                  tie_word_embeddings="output.weight" not in tensors, pad_token_id=0, bos_token_id=0, eos_token_id=0,
                  rope_parameters={"rope_type": "default", "rope_theta": fields.get(f"{arch}.rope.freq_base", 10000.0),
                                   "partial_rotary_factor": fields.get(f"{arch}.rope.dimension_count", hd) / hd},
                  sliding_window=fields.get(f"{arch}.attention.sliding_window") or None)
    name = CONFIGS[arch][0]
    model = getattr(transformers, f"{name}ForCausalLM")(getattr(transformers, f"{name}Config")(**config)).eval()
    state = {}
    for key, value in tensors.items():
        layer, _, rest = key.removeprefix("blk.").partition(".") if key.startswith("blk.") else ("", "", key)
        hf = ("mlp.gate_up_proj.weight" if arch == "phi3" and rest == "ffn_up.weight"
              else HF_NAMES.get(rest, "mlp.up_proj.weight" if rest == "ffn_up.weight" else rest))
        if arch == "gemma" and rest.endswith("norm.weight"):  # the converter wrote Gemma's 1 + w
            value = value - 1
        state[f"model.layers.{layer}.{hf}" if layer else hf] = value
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
    if "output.weight" not in tensors:
        model.tie_weights()
    return model


_gguf_models: dict[str, torch.nn.Module] = {}


def gguf_oracle(arch: str) -> torch.nn.Module:
    if arch not in _gguf_models:
        _gguf_models[arch] = hf_from_gguf(DATA / f"{arch}.gguf")
    return _gguf_models[arch]


@pytest.mark.parametrize("arch", GGUF_ARCHS)
def test_gguf_file_matches_transformers(backend: str, arch: str) -> None:
    params = llaf.init(DATA / f"{arch}.gguf", backend=backend, progress=False)
    ids = random_prompt(params, 40, seed=4)
    assert_logits_close(llaf.forward(params, ids), hf_logits(gguf_oracle(arch), ids))
    ids = random_prompt(params, 6, seed=5)
    np.testing.assert_array_equal(llaf.gen(ids, params, 34), hf_greedy(gguf_oracle(arch), ids, 34))


@pytest.mark.parametrize("arch", GGUF_ARCHS)
def test_gguf_tokenizer_gives_its_libraries_ids(arch: str) -> None:
    """Token ids as the tokenizer's own library gives them (`tokenizers` for
    the byte-level BPE, sentencepiece for the others; tests/make_arch_files.py)."""
    from llaf.tokenizer import from_gguf

    reference = json.loads((DATA / "arch_tokenizer_ids.json").read_text())[arch]
    tok = from_gguf(DATA / f"{arch}.gguf")
    for text, ids in reference.items():
        assert tok.encode(text) == ids, text
        assert tok.decode(ids[1:] if arch in ("phi3", "gemma") else ids) == text  # without the BOS


TURNS = {"qwen2": "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
         "phi3": "<|user|>\nHi<|end|>\n<|assistant|>\n",
         "gemma": "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"}


@pytest.mark.parametrize(("arch", "turn"), list(TURNS.items()))
def test_gguf_chat_template_and_end_of_turn(arch: str, turn: str) -> None:
    from llaf.tokenizer import from_gguf

    tok = from_gguf(DATA / f"{arch}.gguf")
    chat = [{"role": "user", "content": "Hi"}]
    assert tok._render(chat) == turn
    # (Phi-3's vocabulary puts its dummy-prefix space after each turn token, as transformers and llama.cpp do)
    assert tok.chat(chat) == tok._encode_template(turn)
    end = {"qwen2": "<|im_end|>", "phi3": "<|end|>", "gemma": "<end_of_turn>"}[arch]
    assert tok.backend.token_to_id(end) in tok.eos_ids


def test_hugging_face_directory_with_its_tokenizer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Qwen3 directory as transformers saves it, with a tokenizer of Qwen's
    kind: llaf.load converts the weights and takes the directory's tokenizer
    and chat template; a chat's greedy reply is transformers' continuation."""
    from transformers import AutoTokenizer

    from .make_arch_files import VOCAB, bpe_tokenizer, special_ids

    monkeypatch.setenv("LLAF_CACHE", str(tmp_path / "cache"))
    directory = tmp_path / "qwen3"
    bpe_tokenizer(directory)
    model = random_model("qwen3", vocab=VOCAB)
    for key, value in special_ids(directory, "qwen3").items():
        setattr(model.config, key, value)
    model.save_pretrained(directory)
    m = llaf.load(directory, backend="multicore", context=None)
    chat = [{"role": "user", "content": "Hello, world!"}]
    ids = m.tokenizer.chat(chat)
    assert ids == AutoTokenizer.from_pretrained(directory).apply_chat_template(chat, add_generation_prompt=True,
                                                                               tokenize=True, return_dict=False)
    np.testing.assert_array_equal(llaf.gen(ids, m.params, 32), hf_greedy(model, np.array(ids), 32))
