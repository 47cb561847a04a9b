"""The Llama family's weights in the layout of ``src/llama.fut``.

Hugging Face's ``nn.Linear`` weights are already ``[out][in]``, and its query
and key rows are in the "rotate half" order that src/llama.fut uses, so
conversion from transformers is a renaming.  (GGUF files store those rows
permuted; llaf/gguf_file.py undoes that.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from tqdm import tqdm

from . import storage
from .errors import LlafError

ARCHITECTURE = "llama"

# The hyper-parameters; init's leading scalar arguments (name, numpy type):
# those, then the sizes `sizes` reads off the arrays; then init's arrays.
HPARAMS = ("heads", "kv_heads", "context", "eps")
SCALARS = (("heads", np.int64), ("kv_heads", np.int64), ("context", np.int64), ("eps", np.float32),
           ("vocab", np.int64), ("ff", np.int64))
ARRAYS = ("embed", "attn_norm", "wq", "wk", "wv", "wo", "mlp_norm", "w_gate", "w_up", "w_down",
          "final_norm", "lm_head", "inv_freq")
HF_TYPES = ("llama", "mistral")
STORAGES = tuple(storage.STORAGES)
# The weight matrices, by role in a storage: per-layer projections or embedding/head.
MATRICES = {"embed": "head", "wq": "layers", "wk": "layers", "wv": "layers", "wo": "layers",
            "w_gate": "layers", "w_up": "layers", "w_down": "layers", "lm_head": "head"}


def inv_freq(head_dim: int, theta: float, scaling: Mapping[str, Any] | None = None) -> np.ndarray:
    """Rotary frequencies ``θ^(-2i/hd)``, with Llama 3's long-context scaling
    when `scaling` asks for it (as transformers computes them)."""
    freq = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.int64).astype(np.float32) / head_dim))
    kind = (scaling or {}).get("rope_type", (scaling or {}).get("type", "default"))
    if kind == "default":
        return freq.astype(np.float32)
    if kind != "llama3":
        raise LlafError(f"rope scaling {kind!r} is not supported (default and llama3 are)")
    assert scaling is not None
    factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
    old = scaling["original_max_position_embeddings"]
    wavelen = 2 * np.pi / freq
    scaled = np.where(wavelen > old / low, freq / factor, freq)
    smooth = (old / wavelen - low) / (high - low)
    mid = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= old / high) & (wavelen <= old / low)
    return np.where(medium, mid, scaled).astype(np.float32)


def expected_shapes(shapes: Mapping[str, tuple[int, ...]], hparams: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """The shape every array must have, from the embedding, the MLP and the heads
    (`shapes`: the arrays' actual shapes, a matrix's as `[rows][columns]`)."""
    layers, ff, d = shapes["w_gate"]
    vocab = shapes["embed"][0]
    heads, kv_heads = hparams["heads"], hparams["kv_heads"]
    if heads <= 0 or kv_heads <= 0 or d % heads or heads % kv_heads or (d // heads) % 2:
        raise LlafError(f"heads={heads}, kv_heads={kv_heads} do not fit the model width {d}")
    hd = d // heads
    kvd = kv_heads * hd
    expected: dict[str, tuple[int, ...]] = {
        "embed": (vocab, d), "wq": (layers, d, d), "wk": (layers, kvd, d), "wv": (layers, kvd, d),
        "wo": (layers, d, d), "w_gate": (layers, ff, d), "w_up": (layers, ff, d), "w_down": (layers, d, ff),
        "attn_norm": (layers, d), "mlp_norm": (layers, d), "final_norm": (d,), "inv_freq": (hd // 2,),
    }
    expected["lm_head"] = (0, d) if shapes["lm_head"][0] == 0 else (vocab, d)
    return expected


def sizes(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, int]:
    """The sizes init takes besides the arrays (a matrix's rows are padded in
    the engine, so its logical row counts are given)."""
    return {"vocab": vocab(shapes), "ff": int(shapes["w_gate"][1])}


def vocab(shapes: Mapping[str, tuple[int, ...]]) -> int:
    return int(shapes["embed"][0])


def context(shapes: Mapping[str, tuple[int, ...]], hparams: Mapping[str, Any]) -> int:
    return int(hparams["context"])


def kv_width(shapes: Mapping[str, tuple[int, ...]], hparams: Mapping[str, Any]) -> int:
    """Keys (and as many values) the cache holds per position: every layer's key/value heads."""
    layers, kvd, _ = shapes["wk"]
    return int(layers * kvd)


def _rope_config(config: Any) -> tuple[float, Mapping[str, Any] | None]:
    """θ and the scaling dict, from either transformers 4's or 5's config fields."""
    params = getattr(config, "rope_parameters", None)
    if isinstance(params, Mapping) and "rope_theta" in params:
        scaling = None if params.get("rope_type", "default") == "default" else params
        return float(params["rope_theta"]), scaling
    return float(config.rope_theta), getattr(config, "rope_scaling", None)


def from_transformers(model: Any, progress: bool = True) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Hyper-parameters and llaf arrays from a transformers Llama-family model."""
    c = model.config
    if getattr(c, "attention_bias", False) or getattr(c, "mlp_bias", False):
        raise LlafError("Llama models with attention or MLP biases are not supported")
    if getattr(c, "hidden_act", "silu") != "silu":
        raise LlafError(f"activation {c.hidden_act!r} is not supported (Llama uses silu)")
    if getattr(c, "sliding_window", None):
        raise LlafError("sliding-window attention is not supported")
    heads = int(c.num_attention_heads)
    kv_heads = int(getattr(c, "num_key_value_heads", None) or heads)
    hd = int(getattr(c, "head_dim", None) or c.hidden_size // heads)
    if hd * heads != c.hidden_size:
        raise LlafError(f"head_dim={hd} × heads={heads} differs from hidden_size={c.hidden_size}")
    theta, scaling = _rope_config(c)
    hparams = {"heads": heads, "kv_heads": kv_heads, "context": int(c.max_position_embeddings),
               "eps": float(c.rms_norm_eps)}
    state = model.state_dict()

    def get(name: str) -> np.ndarray:
        if name not in state:
            raise LlafError(f"Llama weights lack tensor {name!r}")
        return state[name].detach().to("cpu").float().numpy()

    per_layer = {"attn_norm": "input_layernorm", "wq": "self_attn.q_proj", "wk": "self_attn.k_proj",
                 "wv": "self_attn.v_proj", "wo": "self_attn.o_proj", "mlp_norm": "post_attention_layernorm",
                 "w_gate": "mlp.gate_proj", "w_up": "mlp.up_proj", "w_down": "mlp.down_proj"}
    stacks: dict[str, list[np.ndarray]] = {k: [] for k in per_layer}
    for i in tqdm(range(c.num_hidden_layers), desc="converting Llama", unit="layer", disable=not progress):
        for key, hf in per_layer.items():
            stacks[key].append(get(f"model.layers.{i}.{hf}.weight"))
    arrays = {k: np.ascontiguousarray(np.stack(v)) for k, v in stacks.items()}
    arrays["embed"] = get("model.embed_tokens.weight")
    arrays["final_norm"] = get("model.norm.weight")
    tied = bool(getattr(c, "tie_word_embeddings", False)) or "lm_head.weight" not in state
    arrays["lm_head"] = np.zeros((0, c.hidden_size), np.float32) if tied else get("lm_head.weight")
    arrays["inv_freq"] = inv_freq(hd, theta, scaling)
    return hparams, arrays
