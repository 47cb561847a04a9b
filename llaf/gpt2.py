"""GPT-2's weights in the layout of ``src/gpt2.fut``.

Hugging Face stores GPT-2's projections as Conv1D weights, ``[in][out]``,
with query, key and value fused into one ``c_attn``.  llaf wants every matrix
as ``[out][in]`` (one contiguous row per output feature, so a matrix–vector
product reads each weight once) and the three attention projections apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from tqdm import tqdm

from .errors import LlafError

ARCHITECTURE = "gpt2"

# The hyper-parameters; init's leading scalar arguments (name, numpy type):
# those, then the sizes `sizes` reads off the arrays; then init's arrays.
HPARAMS = ("heads", "eps")
SCALARS = (("heads", np.int64), ("eps", np.float32), ("vocab", np.int64))
ARRAYS = ("wte", "wpe", "ln1_g", "ln1_b", "wq", "bq", "wk", "bk", "wv", "bv", "wo", "bo",
          "ln2_g", "ln2_b", "wfc", "bfc", "wproj", "bproj", "lnf_g", "lnf_b")


HF_TYPES = ("gpt2",)
STORAGES = ("f32",)
# The weight matrices, by role: all kept in f32 (GPT-2 has one storage).
MATRICES = {"wte": "head", "wq": "layers", "wk": "layers", "wv": "layers", "wo": "layers", "wfc": "layers",
            "wproj": "layers"}


def expected_shapes(shapes: Mapping[str, tuple[int, ...]], hparams: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """The shape every array must have, from the embeddings and the MLP
    (`shapes`: the arrays' actual shapes)."""
    L, F, d = shapes["wfc"]
    V, C = shapes["wte"][0], shapes["wpe"][0]
    heads = hparams["heads"]
    if heads <= 0 or d % heads:
        raise LlafError(f"heads={heads} does not divide the model width {d}")
    shapes: dict[str, tuple[int, ...]] = {"wte": (V, d), "wpe": (C, d), "lnf_g": (d,), "lnf_b": (d,),
                                          "wfc": (L, F, d), "bfc": (L, F), "wproj": (L, d, F)}
    for name in ("ln1_g", "ln1_b", "ln2_g", "ln2_b", "bq", "bk", "bv", "bo", "bproj"):
        shapes[name] = (L, d)
    for name in ("wq", "wk", "wv", "wo"):
        shapes[name] = (L, d, d)
    return shapes


def with_defaults(hparams: Mapping[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """`hparams` as they are: GPT-2 has no optional parts."""
    return dict(hparams)


def sizes(shapes: Mapping[str, tuple[int, ...]], hparams: Mapping[str, Any]) -> dict[str, int]:
    """The sizes init takes besides the arrays (the vocabulary: the embedding's
    rows are padded in the engine)."""
    return {"vocab": vocab(shapes)}


def vocab(shapes: Mapping[str, tuple[int, ...]]) -> int:
    return int(shapes["wte"][0])


def context(shapes: Mapping[str, tuple[int, ...]], hparams: Mapping[str, Any]) -> int:
    return int(shapes["wpe"][0])


def kv_width(shapes: Mapping[str, tuple[int, ...]], hparams: Mapping[str, Any]) -> int:
    """Keys (and as many values) the cache holds per position: every layer's heads."""
    layers, _, d = shapes["wq"]
    return int(layers * d)


def from_transformers(model: Any, progress: bool = True) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Hyper-parameters and llaf arrays from a transformers GPT-2."""
    return check_config(model.config), convert(model.state_dict(), model.config.n_layer, progress)


def check_config(config: Any) -> dict[str, Any]:
    """The hyper-parameters llaf needs, from a transformers GPT2Config; a
    LlafError for a variant src/gpt2.fut does not compute."""
    if getattr(config, "model_type", None) != "gpt2":
        raise LlafError(f"not a GPT-2 config (model_type={getattr(config, 'model_type', None)!r})")
    act = config.activation_function
    if act not in ("gelu_new", "gelu_pytorch_tanh"):
        raise LlafError(f"GPT-2 activation {act!r} is not supported (llaf computes gelu_new)")
    for flag in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"):
        if getattr(config, flag, False):
            raise LlafError(f"GPT-2 option {flag}=True is not supported")
    if not getattr(config, "scale_attn_weights", True):
        raise LlafError("GPT-2 option scale_attn_weights=False is not supported")
    if config.n_embd % config.n_head:
        raise LlafError(f"n_embd={config.n_embd} is not a multiple of n_head={config.n_head}")
    return {"heads": int(config.n_head), "eps": float(config.layer_norm_epsilon)}


def convert(state: Mapping[str, Any], layers: int, progress: bool = True) -> dict[str, np.ndarray]:
    """llaf's GPT-2 arrays from a Hugging Face state dict (tensors or arrays)."""

    def get(name: str) -> np.ndarray:
        for key in (name, "transformer." + name):
            if key in state:
                value = state[key]
                if hasattr(value, "detach"):
                    value = value.detach().to("cpu").float().numpy()
                return np.asarray(value, dtype=np.float32)
        raise LlafError(f"GPT-2 weights lack tensor {name!r}")

    out: dict[str, list[np.ndarray]] = {name: [] for name in ARRAYS}
    for i in tqdm(range(layers), desc="converting GPT-2", unit="layer", disable=not progress):
        h = f"h.{i}."
        wq, wk, wv = np.split(get(h + "attn.c_attn.weight").T, 3, axis=0)
        bq, bk, bv = np.split(get(h + "attn.c_attn.bias"), 3)
        layer = {
            "ln1_g": get(h + "ln_1.weight"), "ln1_b": get(h + "ln_1.bias"),
            "wq": wq, "bq": bq, "wk": wk, "bk": bk, "wv": wv, "bv": bv,
            "wo": get(h + "attn.c_proj.weight").T, "bo": get(h + "attn.c_proj.bias"),
            "ln2_g": get(h + "ln_2.weight"), "ln2_b": get(h + "ln_2.bias"),
            "wfc": get(h + "mlp.c_fc.weight").T, "bfc": get(h + "mlp.c_fc.bias"),
            "wproj": get(h + "mlp.c_proj.weight").T, "bproj": get(h + "mlp.c_proj.bias"),
        }
        for name, value in layer.items():
            out[name].append(value)
    arrays = {name: np.ascontiguousarray(np.stack(values)) for name, values in out.items() if values}
    arrays |= {"wte": get("wte.weight"), "wpe": get("wpe.weight"),
               "lnf_g": get("ln_f.weight"), "lnf_b": get("ln_f.bias")}
    return arrays


def to_state_dict(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The inverse of `convert`: a Hugging Face GPT-2 state dict (for running
    transformers on exactly llaf's weights, as the benchmark does)."""
    state = {"transformer.wte.weight": arrays["wte"], "transformer.wpe.weight": arrays["wpe"],
             "transformer.ln_f.weight": arrays["lnf_g"], "transformer.ln_f.bias": arrays["lnf_b"],
             "lm_head.weight": arrays["wte"]}
    for i in range(arrays["wq"].shape[0]):
        h = f"transformer.h.{i}."
        state |= {
            h + "ln_1.weight": arrays["ln1_g"][i], h + "ln_1.bias": arrays["ln1_b"][i],
            h + "attn.c_attn.weight": np.concatenate([arrays["wq"][i], arrays["wk"][i], arrays["wv"][i]]).T,
            h + "attn.c_attn.bias": np.concatenate([arrays["bq"][i], arrays["bk"][i], arrays["bv"][i]]),
            h + "attn.c_proj.weight": arrays["wo"][i].T, h + "attn.c_proj.bias": arrays["bo"][i],
            h + "ln_2.weight": arrays["ln2_g"][i], h + "ln_2.bias": arrays["ln2_b"][i],
            h + "mlp.c_fc.weight": arrays["wfc"][i].T, h + "mlp.c_fc.bias": arrays["bfc"][i],
            h + "mlp.c_proj.weight": arrays["wproj"][i].T, h + "mlp.c_proj.bias": arrays["bproj"][i],
        }
    return state
