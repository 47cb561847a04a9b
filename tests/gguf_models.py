"""Write transformers Llama models as GGUF files, the way llama.cpp's
converter does (its tensor names, its permuted query/key rows), with the
tensors in a chosen type; for the GGUF tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

TYPES = ("F32", "F16", "Q8_0", "Q4_0", "Q4_1")
K_TYPES = ("Q4_K", "Q5_K", "Q6_K")
# GGMLQuantizationType names, the unsupported ones included (for the error tests).


def quantize_k(x: np.ndarray, kind: str) -> np.ndarray:
    """Rows of `x` as K-quant blocks (gguf-py writes none): valid blocks
    in GGUF's layout, each value the nearest one its sub-block's scale and
    minimum reach (not llama.cpp's search for the best scales)."""
    n = x.size // 256
    x = x.astype(np.float32).reshape(n, 256)
    if kind == "Q6_K":  # 16 sub-blocks of 16: value = d · sc · (q - 32)
        amax = np.abs(x.reshape(n, 16, 16)).max(-1)
        d = (amax.max(-1) / 32 / 127).astype(np.float16)
        df = d.astype(np.float32)[:, None]
        sc = np.clip(np.round(np.divide(amax / 32, df, out=np.zeros_like(amax), where=df > 0)), 0, 127)
        step = np.repeat(df * sc, 16, -1)
        q = (np.clip(np.round(np.divide(x, step, out=np.zeros_like(x), where=step > 0)), -32, 31) + 32).astype(np.uint8)
        halves = q.reshape(n, 2, 128)
        ql = (halves[..., :64] & 15) | ((halves[..., 64:] & 15) << 4)
        qh = sum(((halves[..., 32 * k:32 * k + 32] >> 4) & 3) << (2 * k) for k in range(4)).astype(np.uint8)
        return np.concatenate([ql.reshape(n, 128), qh.reshape(n, 64), sc.astype(np.int8).view(np.uint8),
                               d.view(np.uint8).reshape(n, 2)], axis=1)
    top = 15 if kind == "Q4_K" else 31  # 8 sub-blocks of 32: value = d · sc · q - dmin · m
    sub = x.reshape(n, 8, 32)
    low = np.maximum(0, -sub.min(-1))
    scale = (sub.max(-1) + low) / top
    d, dmin = (scale.max(-1) / 63).astype(np.float16), (low.max(-1) / 63).astype(np.float16)
    df, dminf = d.astype(np.float32)[:, None], dmin.astype(np.float32)[:, None]
    sc = np.clip(np.round(np.divide(scale, df, out=np.zeros_like(scale), where=df > 0)), 0, 63).astype(np.uint8)
    m = np.clip(np.round(np.divide(low, dminf, out=np.zeros_like(low), where=dminf > 0)), 0, 63).astype(np.uint8)
    step, base = (df * sc)[..., None], (dminf * m)[..., None]
    q = np.clip(np.round(np.divide(sub + base, step, out=np.zeros_like(sub), where=step > 0)), 0, top).astype(np.uint8)
    scales = np.concatenate([(sc[:, :4] & 63) | ((sc[:, 4:] >> 4) << 6), (m[:, :4] & 63) | ((m[:, 4:] >> 4) << 6),
                             (sc[:, 4:] & 15) | ((m[:, 4:] & 15) << 4)], axis=1)
    chunks = q.reshape(n, 4, 2, 32)
    qs = ((chunks[:, :, 0] & 15) | ((chunks[:, :, 1] & 15) << 4)).reshape(n, 128)
    head = [d.view(np.uint8).reshape(n, 2), dmin.view(np.uint8).reshape(n, 2), scales]
    if kind == "Q5_K":
        qh = sum(((q[:, i] >> 4) & 1) << i for i in range(8)).astype(np.uint8)
        head.append(qh)
    return np.concatenate([*head, qs], axis=1)


# llama.cpp's choice of type for each tensor of a Q4_K_M, Q5_K_M or Q6_K file
# of a Llama (src/llama-quant.cpp, `llama_tensor_get_type`): the output head
# (the embedding when it is tied) Q6_K; `attn_v` and `ffn_down` Q6_K in the
# layers `more_bits` picks; the rest the file's K-quant; and a tensor whose
# rows are not whole 256-value super-blocks falls back to the legacy type
# of `K_FALLBACK`.
K_FTYPES = {"Q4_K_M": "Q4_K", "Q5_K_M": "Q5_K", "Q6_K": "Q6_K"}
K_FALLBACK = {"Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0"}


def more_bits(layer: int, layers: int) -> bool:
    """llama.cpp's `use_more_bits`: the first and last eighth of the layers and every third between."""
    return layer < layers // 8 or layer >= 7 * layers // 8 or (layer - layers // 8) % 3 == 2


def llama_cpp_type(name: str, width: int, layers: int, ftype: str, tied: bool) -> str:
    """The type llama.cpp's quantizer gives the matrix `name` (rows of
    `width` values) of a `layers`-layer Llama in a file of `ftype`."""
    role, layer = name.split(".")[-2], int(name.split(".")[1]) if name.startswith("blk.") else -1
    head = name == "output.weight" or (tied and name == "token_embd.weight")
    more = role in ("attn_v", "ffn_down") and ftype != "Q6_K" and more_bits(layer, layers)
    kind = "Q6_K" if head or more else K_FTYPES[ftype]
    return K_FALLBACK[kind] if width % 256 else kind


def requantize(source: Path, out: Path, ftype: str) -> Path:
    """The Llama GGUF file `source` requantized to `ftype` (one of
    `K_FTYPES`) at `out`, the types chosen as llama.cpp's quantizer chooses
    them (`llama_cpp_type`), the K-quant blocks made by `quantize_k`, the
    others by gguf-py; every field but the file type as it was."""
    import gguf

    from llaf.gguf_file import copy_fields

    reader = gguf.GGUFReader(str(source))
    names = {t.name for t in reader.tensors}
    layers = int(reader.fields["llama.block_count"].contents())
    writer = gguf.GGUFWriter(str(out), "llama", endianess=reader.endianess)
    copy_fields(writer, reader, leave_out={gguf.Keys.General.FILE_TYPE})
    writer.add_file_type(getattr(gguf.LlamaFileType, f"MOSTLY_{ftype}"))
    for t in reader.tensors:
        values = gguf.quants.dequantize(t.data, t.tensor_type)
        if values.ndim == 1:  # norms stay F32, as llama.cpp keeps them
            writer.add_tensor(t.name, values.astype(np.float32))
            continue
        kind = llama_cpp_type(t.name, values.shape[-1], layers, ftype, "output.weight" not in names)
        if kind in K_TYPES:
            blocks = quantize_k(values, kind).reshape(values.shape[0], -1)
        else:
            blocks = gguf.quants.quantize(values.astype(np.float32), gguf.GGMLQuantizationType[kind])
        writer.add_tensor(t.name, blocks, raw_dtype=gguf.GGMLQuantizationType[kind])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def permute(w: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's converter: "rotate half" rows → interleaved pairs."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(model: torch.nn.Module, path: Path, qtype: str = "F32", head_qtype: str | None = None,
               extra: dict[str, np.ndarray] | None = None, types: dict[str, str] | None = None,
               tokenizer: Path | None = None) -> Path:
    """`model` as a GGUF file: matrices of type `qtype`, the embedding and
    output head of type `head_qtype` (default: `qtype`), tensors named in
    `types` of the type given there, and the F32 tensors `extra` (e.g.
    rope_freqs.weight); with the tokenizer of the GGUF file `tokenizer`
    (its ``tokenizer.*`` fields)."""
    import gguf
    from gguf import GGMLQuantizationType as Q

    c = model.config
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(c.num_hidden_layers)
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_rope_freq_base(float(getattr(c, "rope_theta", None) or c.rope_parameters["rope_theta"]))
    w.add_rope_dimension_count(c.hidden_size // c.num_attention_heads)
    w.add_vocab_size(c.vocab_size)
    if tokenizer is not None:
        from llaf.gguf_file import copy_field

        for f in gguf.GGUFReader(str(tokenizer)).fields.values():
            if f.name.startswith("tokenizer."):
                copy_field(w, f)
    state = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    names = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
             "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
             "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down"}
    tensors = {"token_embd.weight": state["model.embed_tokens.weight"],
               "output_norm.weight": state["model.norm.weight"]}
    if not c.tie_word_embeddings:
        tensors["output.weight"] = state["lm_head.weight"]
    tensors |= extra or {}
    for i in range(c.num_hidden_layers):
        for hf, name in names.items():
            t = state[f"model.layers.{i}.{hf}.weight"]
            if name == "attn_q":
                t = permute(t, c.num_attention_heads)
            elif name == "attn_k":
                t = permute(t, c.num_key_value_heads)
            tensors[f"blk.{i}.{name}.weight"] = t
    for name, t in tensors.items():
        kind = Q[head_qtype or qtype] if name in ("token_embd.weight", "output.weight") else Q[qtype]
        kind = Q[(types or {}).get(name, kind.name)]
        if t.ndim == 1 or kind == Q.F32:  # norms stay F32, as llama.cpp keeps them
            w.add_tensor(name, t.astype(np.float32))
        elif kind == Q.F16:
            w.add_tensor(name, t.astype(np.float16))
        elif kind.name in K_TYPES:
            w.add_tensor(name, quantize_k(t, kind.name).reshape(t.shape[0], -1), raw_dtype=kind)
        else:
            try:
                w.add_tensor(name, gguf.quants.quantize(t.astype(np.float32), kind), raw_dtype=kind)
            except NotImplementedError:  # a type gguf-py cannot write (K-quants): random blocks
                block, size = gguf.GGML_QUANT_SIZES[kind]
                raw = np.random.default_rng(0).integers(0, 256, (t.shape[0], t.shape[1] // block * size), np.uint8)
                w.add_tensor(name, raw, raw_dtype=kind)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


# Tokenizer GGUF files: vocabularies learnt here from a small corpus (there is
# no model hub), in the two layouts llama.cpp writes.
CORPUS = ["The quick brown fox jumps over the lazy dog.", "Hello world! Hello there, world.",
          "Numbers like 3.14159 and 2024-11-23 appear in text; so do 1,000,000 and 0x1F.",
          "Café, naïve, résumé and Ωμέγα are accented words.", "def f(x):\n    return x ** 2  # square",
          "the theory of the thing is that they think the three thieves threw the thread"] * 3

LLAMA2_TEMPLATE = (  # TinyLlama's and Llama 2's chat template
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}")

LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")


def write_tokenizer_gguf(path: Path, model: str, tokens: list[str], types: list[int], *,
                         scores: list[float] | None = None, merges: list[str] | None = None, pre: str | None = None,
                         template: str | None = None, ids: dict[str, int] | None = None,
                         add: dict[str, bool] | None = None, architecture: str = "llama") -> Path:
    """A GGUF file holding a tokenizer (`tokenizer.ggml.*`, chat template)
    and a tiny model's hyper-parameters, without tensors.  `ids`: special
    token ids by kind (bos, eos, unk, pad); `add`: add_bos/add_eos flags."""
    import gguf

    w = gguf.GGUFWriter(str(path), architecture)
    w.add_block_count(1)
    w.add_context_length(64)
    w.add_embedding_length(8)
    w.add_feed_forward_length(16)
    w.add_head_count(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model(model)
    if pre is not None:
        w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    if scores is not None:
        w.add_token_scores(scores)
    if merges is not None:
        w.add_token_merges(merges)
    for kind, tid in (ids or {}).items():
        getattr(w, f"add_{kind}_token_id")(tid)
    for kind, on in (add or {}).items():
        getattr(w, f"add_add_{kind}_token")(on)
    if template is not None:
        w.add_chat_template(template)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def write_sentencepiece_gguf(path: Path, template: str = LLAMA2_TEMPLATE) -> Path:
    """A Llama 2 / TinyLlama-style file: tokenizer model "llama", a
    sentencepiece BPE vocabulary (<unk>, <s>, </s>, the 256 byte tokens
    <0x00>..<0xFF>, then pieces by score, no merges), Llama 2's chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=300, show_progress=False))
    vocab = tok.get_vocab()
    # sentencepiece's order: merged pieces best first, then single characters
    pieces = [*sorted(vocab, key=lambda p: (len(p) == 1, vocab[p])), "<sep>"]
    tokens = ["<unk>", "<s>", "</s>", *(f"<0x{b:02X}>" for b in range(256)), *pieces]
    types = [2, 3, 3, *[6] * 256, *[1] * (len(pieces) - 1), 4]  # unknown, control, byte, normal, user-defined
    scores = [0.0] * 259 + [-float(i) for i in range(len(pieces))]
    return write_tokenizer_gguf(path, "llama", tokens, types, scores=scores, template=template,
                                ids={"bos": 1, "eos": 2, "unk": 0})


def write_llama3_gguf(path: Path) -> Path:
    """A Llama 3-style file: tokenizer model "gpt2" (byte-level BPE with
    merges), pre-tokenizer "llama-bpe", BOS added, control tokens after the
    vocabulary (one, with a space, that llama.cpp mislabels), a
    user-defined token, no <|endoftext|>."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=400, show_progress=False,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    bpe = json.loads(tok.to_str())["model"]
    tokens = sorted(bpe["vocab"], key=bpe["vocab"].get)
    n = len(tokens)
    tokens += ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
               "<|end of turn|>", "<think>"]
    types = [1] * n + [3] * 6 + [4]
    return write_tokenizer_gguf(path, "gpt2", tokens, types, merges=[" ".join(m) for m in bpe["merges"]],
                                pre="llama-bpe", template=LLAMA3_TEMPLATE, ids={"bos": n, "eos": n + 1},
                                add={"bos": True, "eos": False})
