"""The Llama family's weights in the layout of ``src/llama.fut``: Llama,
Mistral, Qwen2/2.5, Qwen3, Phi-3 and Gemma, which that one model covers.

Hugging Face's ``nn.Linear`` weights are already ``[out][in]``, and its query
and key rows are in the "rotate half" order that src/llama.fut uses, so
conversion from transformers is mostly a renaming; Phi-3's fused
projections are split and Gemma's ``1 + w`` norms become ``w`` here.
(GGUF files store Llama's query/key rows permuted; llaf/gguf_file.py
undoes that.)
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
HPARAMS = ("heads", "kv_heads", "context", "eps", "window", "embedding_scale", "activation")
SCALARS = (("heads", np.int64), ("kv_heads", np.int64), ("context", np.int64), ("eps", np.float32),
           ("window", np.int64), ("embedding_scale", np.float32), ("activation", np.int64),
           ("vocab", np.int64), ("ff", np.int64), ("head_dim", np.int64))
ARRAYS = ("embed", "attn_norm", "wq", "wk", "wv", "bq", "bk", "bv", "q_norm", "k_norm", "wo", "mlp_norm",
          "w_gate", "w_up", "w_down", "final_norm", "lm_head", "inv_freq")
# What a model without them has: no sliding window, an unscaled embedding,
# SiLU gating, and the arrays of the variations it lacks empty (src/llama.fut).
DEFAULTS: dict[str, Any] = {"window": 0, "embedding_scale": 1.0, "activation": 0}
OPTIONAL = ("bq", "bk", "bv", "q_norm", "k_norm")
# The MLP's gate activations, numbered as src/llama.fut's `silu_gated` and
# `gelu_gated`, by their transformers names.
ACTIVATIONS = {"silu": 0, "swish": 0, "gelu_pytorch_tanh": 1, "gelu_new": 1}
HF_TYPES = ("llama", "mistral", "qwen2", "qwen3", "phi3", "gemma")
STORAGES = storage.NAMES
# The weight matrices, by role in a storage: per-layer projections or embedding/head.
MATRICES = {"embed": "head", "wq": "layers", "wk": "layers", "wv": "layers", "wo": "layers",
            "w_gate": "layers", "w_up": "layers", "w_down": "layers", "lm_head": "head"}


def with_defaults(hparams: Mapping[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """`hparams` with the variations' defaults where absent, and `arrays` with
    the optional arrays it lacks added empty (weights saved before llaf had them)."""
    layers = next((a.shape[0] for k, a in arrays.items() if k == "attn_norm"), 0)
    for name in OPTIONAL:
        arrays.setdefault(name, np.zeros((layers, 0), np.float32))
    return DEFAULTS | dict(hparams)


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
    """The shape every array must have, from the embedding, the MLP, the query
    projection and the heads (`shapes`: the arrays' actual shapes, a matrix's
    as `[rows][columns]`)."""
    layers, ff, d = shapes["w_gate"]
    vocab = shapes["embed"][0]
    qd = shapes["wq"][1]
    heads, kv_heads = hparams["heads"], hparams["kv_heads"]
    if heads <= 0 or kv_heads <= 0 or qd % heads or heads % kv_heads:
        raise LlafError(f"heads={heads}, kv_heads={kv_heads} do not fit the {qd} query features")
    hd = qd // heads
    kvd = kv_heads * hd
    rotated = 2 * shapes["inv_freq"][0]
    if not 0 < rotated <= hd:
        raise LlafError(f"{rotated} rotated features do not fit heads of {hd}")
    # present or empty; the value bias with the key bias and the key norm
    # with the query norm (the engine gives each pair one size)
    optional = {"bq": ("bq", qd), "bk": ("bk", kvd), "bv": ("bk", kvd), "q_norm": ("q_norm", hd),
                "k_norm": ("q_norm", hd)}
    expected: dict[str, tuple[int, ...]] = {
        "embed": (vocab, d), "wq": (layers, qd, d), "wk": (layers, kvd, d), "wv": (layers, kvd, d),
        "wo": (layers, d, qd), "w_gate": (layers, ff, d), "w_up": (layers, ff, d), "w_down": (layers, d, ff),
        "attn_norm": (layers, d), "mlp_norm": (layers, d), "final_norm": (d,), "inv_freq": (rotated // 2,),
    }
    expected |= {k: (layers, n if shapes[lead][1] else 0) for k, (lead, n) in optional.items()}
    expected["lm_head"] = (0, d) if shapes["lm_head"][0] == 0 else (vocab, d)
    return expected


def sizes(shapes: Mapping[str, tuple[int, ...]], hparams: Mapping[str, Any]) -> dict[str, int]:
    """The sizes init takes besides the arrays (a matrix's rows are padded in
    the engine, so its logical row counts are given)."""
    return {"vocab": vocab(shapes), "ff": int(shapes["w_gate"][1]),
            "head_dim": int(shapes["wq"][1]) // int(hparams["heads"])}


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


def _window(config: Any) -> int:
    """The sliding attention window (0: none) of every layer; a LlafError if
    only some layers have one (Qwen2's `max_window_layers`, Gemma 2)."""
    window = int(getattr(config, "sliding_window", None) or 0)
    kinds = set(getattr(config, "layer_types", None) or ())
    if getattr(config, "model_type", "") in ("qwen2", "qwen3"):  # their window is per layer
        if kinds == {"sliding_attention"} and window:
            return window
        if "sliding_attention" in kinds or getattr(config, "use_sliding_window", False):
            raise LlafError("sliding-window attention in some layers only is not supported")
        return 0
    if len(kinds) > 1:
        raise LlafError(f"layers of kinds {', '.join(sorted(kinds))} are not supported (one kind for all)")
    return window


def from_transformers(model: Any, progress: bool = True) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Hyper-parameters and llaf arrays from a transformers model of the Llama
    family (llama, mistral, qwen2, qwen3, phi3, gemma)."""
    c = model.config
    kind = getattr(c, "model_type", "llama")
    if getattr(c, "mlp_bias", False):
        raise LlafError(f"{kind} models with MLP biases are not supported")
    act = getattr(c, "hidden_act", None) or getattr(c, "hidden_activation", "silu")
    if act not in ACTIVATIONS:
        raise LlafError(f"activation {act!r} is not supported ({', '.join(ACTIVATIONS)} are)")
    heads = int(c.num_attention_heads)
    kv_heads = int(getattr(c, "num_key_value_heads", None) or heads)
    hd = int(getattr(c, "head_dim", None) or c.hidden_size // heads)
    theta, scaling = _rope_config(c)
    params = getattr(c, "rope_parameters", None)
    partial = float((params if isinstance(params, Mapping) else {}).get("partial_rotary_factor", None)
                    or getattr(c, "partial_rotary_factor", 1.0))
    rotated = int(hd * partial)
    if rotated % 2 or not 0 < rotated <= hd:
        raise LlafError(f"a rotary factor of {partial} gives {rotated} rotated features of heads of {hd}")
    gemma = kind == "gemma"
    hparams = {"heads": heads, "kv_heads": kv_heads, "context": int(c.max_position_embeddings),
               "eps": float(c.rms_norm_eps), "window": _window(c), "activation": ACTIVATIONS[act],
               "embedding_scale": float(np.float32(c.hidden_size ** 0.5)) if gemma else 1.0}
    state = model.state_dict()

    def get(name: str) -> np.ndarray:
        if name not in state:
            raise LlafError(f"{kind} weights lack tensor {name!r}")
        return state[name].detach().to("cpu").float().numpy()

    def norm(name: str) -> np.ndarray:  # Gemma's RMSNorm multiplies by 1 + w, in float32
        return get(name) + np.float32(1) if gemma else get(name)

    qd, kvd, ff = heads * hd, kv_heads * hd, int(c.intermediate_size)
    stacks: dict[str, list[np.ndarray]] = {k: [] for k in ARRAYS if k not in ("embed", "final_norm", "lm_head",
                                                                              "inv_freq")}
    for i in tqdm(range(c.num_hidden_layers), desc=f"converting {kind}", unit="layer", disable=not progress):
        at = f"model.layers.{i}."
        if at + "self_attn.o_proj.bias" in state:
            raise LlafError(f"{kind} models with a bias on the attention output are not supported")
        layer = {"attn_norm": norm(at + "input_layernorm.weight"),
                 "mlp_norm": norm(at + "post_attention_layernorm.weight"),
                 "wo": get(at + "self_attn.o_proj.weight"), "w_down": get(at + "mlp.down_proj.weight")}
        if at + "self_attn.qkv_proj.weight" in state:  # Phi-3: one matrix of the query, key and value rows
            layer |= dict(zip(("wq", "wk", "wv"), np.split(get(at + "self_attn.qkv_proj.weight"), [qd, qd + kvd]),
                              strict=True))
        else:
            layer |= {w: get(f"{at}self_attn.{w[1]}_proj.weight") for w in ("wq", "wk", "wv")}
        if at + "mlp.gate_up_proj.weight" in state:  # Phi-3: the gate's rows, then the up projection's
            layer |= dict(zip(("w_gate", "w_up"), np.split(get(at + "mlp.gate_up_proj.weight"), [ff]), strict=True))
        else:
            layer |= {"w_gate": get(at + "mlp.gate_proj.weight"), "w_up": get(at + "mlp.up_proj.weight")}
        for key, name, n in (("bq", "q_proj.bias", qd), ("bk", "k_proj.bias", kvd), ("bv", "v_proj.bias", kvd),
                             ("q_norm", "q_norm.weight", hd), ("k_norm", "k_norm.weight", hd)):
            present = f"{at}self_attn.{name}" in state
            layer[key] = get(f"{at}self_attn.{name}") if present else np.zeros(0, np.float32)
            if present and layer[key].shape != (n,):
                raise LlafError(f"tensor {at}self_attn.{name} has shape {layer[key].shape}, expected {(n,)}")
        for key in stacks:
            stacks[key].append(layer[key])
    arrays = {k: np.ascontiguousarray(np.stack(v)) for k, v in stacks.items()}
    arrays["embed"] = get("model.embed_tokens.weight")
    arrays["final_norm"] = norm("model.norm.weight")
    tied = bool(getattr(c, "tie_word_embeddings", False)) or "lm_head.weight" not in state
    arrays["lm_head"] = np.zeros((0, c.hidden_size), np.float32) if tied else get("lm_head.weight")
    arrays["inv_freq"] = inv_freq(rotated, theta, scaling)
    return hparams, arrays
