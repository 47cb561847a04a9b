"""Write transformers Llama models as GGUF files, the way llama.cpp's
converter does (its tensor names, its permuted query/key rows), with the
tensors in a chosen type; for the GGUF tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

TYPES = ("F32", "F16", "Q8_0", "Q4_0", "Q4_1")
# GGMLQuantizationType names, the unsupported ones included (for the error tests).


def permute(w: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's converter: "rotate half" rows → interleaved pairs."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(model: torch.nn.Module, path: Path, qtype: str = "F32", head_qtype: str | None = None) -> Path:
    """`model` as a GGUF file: matrices of type `qtype`, the embedding and
    output head of type `head_qtype` (default: `qtype`)."""
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
    state = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    names = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
             "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
             "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down"}
    tensors = {"token_embd.weight": state["model.embed_tokens.weight"],
               "output_norm.weight": state["model.norm.weight"]}
    if not c.tie_word_embeddings:
        tensors["output.weight"] = state["lm_head.weight"]
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
        if t.ndim == 1 or kind == Q.F32:  # norms stay F32, as llama.cpp keeps them
            w.add_tensor(name, t.astype(np.float32))
        elif kind == Q.F16:
            w.add_tensor(name, t.astype(np.float16))
        else:
            w.add_tensor(name, gguf.quants.quantize(t.astype(np.float32), kind), raw_dtype=kind)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
