"""Low-rank adapters (LoRA) of a Llama-family model, in peft's layout.

A projection ``W`` (``[out][in]``) with an adapter computes
``W x + (alpha / r) · B (A x)``, ``A: [r][in]``, ``B: [out][r]``
(src/lora.fut).  `Adapters` holds ``A`` and ``B`` of every layer for each
projection that has them; src/train.fut sees them as one flat vector
(`Adapters.flat`), and peft as its ``adapter_model.safetensors`` and
``adapter_config.json`` (`Adapters.save`, `Adapters.load`), so that either
side can load what the other saved.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .checks import shown
from .errors import LlafError

# The projections that can have adapters, by peft's names for Llama's
# modules, in the order of src/train.fut's flat vector (bit i of its mask):
# each with its matrix in llaf/llama.py and its block in transformers.
TARGETS: dict[str, tuple[str, str]] = {
    "q_proj": ("wq", "self_attn"), "k_proj": ("wk", "self_attn"), "v_proj": ("wv", "self_attn"),
    "o_proj": ("wo", "self_attn"), "gate_proj": ("w_gate", "mlp"), "up_proj": ("w_up", "mlp"),
    "down_proj": ("w_down", "mlp")}
# peft's default for Llama models.
DEFAULT_TARGETS = ("q_proj", "v_proj")
WEIGHTS_FILE = "adapter_model.safetensors"
CONFIG_FILE = "adapter_config.json"


@dataclass(frozen=True)
class LoraConfig:
    """An adapter's rank, its `alpha` (the update is scaled by alpha / rank)
    and the projections it adapts (`TARGETS`' names)."""

    rank: int = 8
    alpha: float = 16.0
    targets: tuple[str, ...] = DEFAULT_TARGETS

    def __post_init__(self) -> None:
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1:
            raise LlafError(f"the LoRA rank must be a positive integer, got {self.rank!r}")
        alpha = self.alpha
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < float("inf"):
            # (an infinite alpha scales the update to infinity: every weight NaN after the first step)
            raise LlafError(f"the LoRA alpha must be a positive finite number, got {alpha!r}")
        unknown = [t for t in self.targets if t not in TARGETS]
        if unknown or not self.targets:
            raise LlafError(f"unknown LoRA target {unknown[0]!r}: choose among {', '.join(TARGETS)}" if unknown
                            else "give at least one LoRA target")
        # in TARGETS' order, each once
        object.__setattr__(self, "targets", tuple(t for t in TARGETS if t in self.targets))

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    @property
    def mask(self) -> int:
        """The targets as src/train.fut's bit mask."""
        return sum(1 << i for i, t in enumerate(TARGETS) if t in self.targets)


def projection_shapes(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[int, int, int]]:
    """Each target's `(layers, out, in)`, from a model's logical shapes (`Weights.shapes`)."""
    return {t: tuple(shapes[matrix]) for t, (matrix, _) in TARGETS.items()}  # type: ignore[misc]


@dataclass
class Adapters:
    """`A` (`[layers][r][in]`) and `B` (`[layers][out][r]`) for each target of `config`."""

    config: LoraConfig
    tensors: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    base: str = ""  # the base model, as peft's config names it

    @classmethod
    def initial(cls, config: LoraConfig, shapes: Mapping[str, tuple[int, ...]], seed: int = 0,
                base: str = "") -> Adapters:
        """New adapters as peft makes them: `A` uniform in ±1/√in (Kaiming's
        uniform with a = √5), `B` zero, so that training starts from the base model."""
        rng = np.random.default_rng(seed)
        tensors = {}
        for t in config.targets:
            layers, out, n = projection_shapes(shapes)[t]
            bound = 1 / np.sqrt(n)
            tensors[t] = (rng.uniform(-bound, bound, (layers, config.rank, n)).astype(np.float32),
                          np.zeros((layers, out, config.rank), np.float32))
        return cls(config, tensors, base)

    def flat(self) -> np.ndarray:
        """The flat vector of src/train.fut: per target, `A` then `B`."""
        parts = [a.ravel() for t in self.config.targets for a in self.tensors[t]]
        return np.concatenate(parts).astype(np.float32)

    def with_flat(self, theta: np.ndarray) -> Adapters:
        """Adapters of the same shapes holding the values of `theta`."""
        tensors, at = {}, 0
        for t in self.config.targets:
            pair = []
            for a in self.tensors[t]:
                pair.append(np.asarray(theta[at:at + a.size], np.float32).reshape(a.shape))
                at += a.size
            tensors[t] = (pair[0], pair[1])
        if at != theta.size:
            raise LlafError(f"the adapters have {at} values, the vector {theta.size}")
        return Adapters(self.config, tensors, self.base)

    def delta(self, target: str, layer: int) -> np.ndarray:
        """What the adapter adds to layer `layer`'s matrix: `(alpha / r) · B A` (`[out][in]`)."""
        a, b = self.tensors[target]
        return (np.float32(self.config.scale) * (b[layer] @ a[layer])).astype(np.float32)

    def peft_tensors(self) -> dict[str, np.ndarray]:
        """peft's tensors: ``base_model.model.model.layers.{i}.{block}.{target}.lora_{A,B}.weight``."""
        out = {}
        for t in self.config.targets:
            block = TARGETS[t][1]
            for name, stack in zip("AB", self.tensors[t], strict=True):
                for i, a in enumerate(stack):
                    out[f"base_model.model.model.layers.{i}.{block}.{t}.lora_{name}.weight"] = np.ascontiguousarray(a)
        return out

    def save(self, directory: str | Path) -> Path:
        """Write the adapters as peft saves them (a directory `peft` and
        `llaf.load(..., adapter=...)` both read)."""
        from safetensors.numpy import save_file

        where = Path(directory)
        where.mkdir(parents=True, exist_ok=True)
        save_file(self.peft_tensors(), str(where / WEIGHTS_FILE), metadata={"format": "pt"})
        config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": self.config.rank,
                  "lora_alpha": self.config.alpha, "target_modules": list(self.config.targets),
                  "lora_dropout": 0.0, "bias": "none", "fan_in_fan_out": False, "inference_mode": True,
                  "base_model_name_or_path": self.base or None, "use_rslora": False, "use_dora": False,
                  "init_lora_weights": True, "modules_to_save": None, "layers_to_transform": None,
                  "rank_pattern": {}, "alpha_pattern": {}}
        (where / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        return where

    @classmethod
    def load(cls, directory: str | Path, layers: int | None = None) -> Adapters:
        """Adapters saved by `save` or by peft (LoRA on Llama's projections,
        one rank and alpha for all)."""
        from safetensors.numpy import load_file

        if not isinstance(directory, (str, os.PathLike)):
            raise LlafError(f"the adapter must be the path of a directory of LoRA adapters, got {shown(directory)}")
        where = Path(directory)
        if not (where / CONFIG_FILE).is_file() or not (where / WEIGHTS_FILE).is_file():
            raise LlafError(f"{where}: not a LoRA adapter directory (it needs {CONFIG_FILE} and {WEIGHTS_FILE})")
        try:
            config = json.loads((where / CONFIG_FILE).read_text())
        except (OSError, ValueError) as e:
            raise LlafError(f"{where / CONFIG_FILE}: unreadable ({e})") from None
        if not isinstance(config, dict):
            raise LlafError(f"{where / CONFIG_FILE}: not a peft adapter configuration (a JSON object), "
                            f"got {type(config).__name__}")
        if config.get("peft_type") != "LORA":
            raise LlafError(f"{where}: peft type {config.get('peft_type')!r}, llaf reads LORA adapters")
        for key in ("rank_pattern", "alpha_pattern"):
            if config.get(key):
                raise LlafError(f"{where}: adapters with a {key} (a rank or alpha per module) are not supported")
        if config.get("use_rslora") or config.get("use_dora"):
            raise LlafError(f"{where}: rsLoRA and DoRA adapters are not supported")
        targets = config.get("target_modules") or []
        if isinstance(targets, str):
            targets = [t for t in TARGETS if t in targets]
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise LlafError(f"{where / CONFIG_FILE}: target_modules must be a list of names, got {targets!r}")
        for key, whole in (("r", True), ("lora_alpha", False)):
            value = config.get(key)
            # (JSON's Infinity and NaN are floats: not whole numbers)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or (whole and isinstance(value, float) and not value.is_integer()):
                raise LlafError(f"{where / CONFIG_FILE}: {key} must be {'an integer' if whole else 'a number'}, "
                                f"got {value!r}")
        lora = LoraConfig(int(config["r"]), float(config["lora_alpha"]), tuple(targets))
        try:
            found = load_file(str(where / WEIGHTS_FILE))
        except Exception as e:
            raise LlafError(f"{where / WEIGHTS_FILE}: unreadable ({e})") from None
        tensors = {}
        for t in lora.targets:
            block = TARGETS[t][1]
            pair = []
            for name in "AB":
                stack = []
                i = 0
                while (key := _peft_key(found, i, block, t, name)) is not None:
                    stack.append(found[key].astype(np.float32))
                    i += 1
                if not stack or (layers is not None and len(stack) != layers):
                    raise LlafError(f"{where}: {t}.lora_{name} found for {len(stack)} layers"
                                    + (f", the model has {layers}" if layers is not None else ""))
                odd = next((i for i, a in enumerate(stack) if a.shape != stack[0].shape), None)
                if odd is not None:
                    raise LlafError(f"{where}: {t}.lora_{name} has the shape {stack[0].shape} in layer 0 and "
                                    f"{stack[odd].shape} in layer {odd}")
                pair.append(np.stack(stack))
            tensors[t] = (pair[0], pair[1])
        return cls(lora, tensors, config.get("base_model_name_or_path") or "")

    def check(self, shapes: Mapping[str, tuple[int, ...]]) -> None:
        """A LlafError unless every tensor fits the model of `shapes`."""
        r = self.config.rank
        for t, (layers, out, n) in projection_shapes(shapes).items():
            if t not in self.config.targets:
                continue
            a, b = self.tensors[t]
            if a.shape != (layers, r, n) or b.shape != (layers, out, r):
                raise LlafError(f"the {t} adapter has shapes {a.shape} and {b.shape}; this model needs "
                                f"{(layers, r, n)} and {(layers, out, r)}")


def merged(weights: Any, adapters: Adapters) -> Any:
    """`weights` (llaf/weights.py `Weights`) with `adapters` merged into its
    matrices, `W + (alpha / r) · B A`, as peft's ``merge_and_unload`` does:
    f32 weights (a quantized base is decoded first: its adapted matrices
    are no longer on its grid)."""
    from .weights import as_f32

    if weights.architecture != "llama":
        raise LlafError(f"LoRA adapters apply to Llama-family models, not {weights.architecture}")
    adapters.check(weights.shapes)
    w = as_f32(weights)
    arrays = dict(w.arrays)
    for t in adapters.config.targets:
        name = TARGETS[t][0]
        arrays[name] = np.stack([arrays[name][i] + adapters.delta(t, i) for i in range(arrays[name].shape[0])])
    return type(w)(w.architecture, w.hparams, arrays, "f32")


def merge_gguf(source: str | Path, adapters: Adapters, out: str | Path) -> Path:
    """A copy of the GGUF file `source` with `adapters` merged into its
    projections (`gguf_file.rewrite`): the adapted matrices in F32
    (`W + (alpha / r) · B A` from their exact values), every other tensor
    and all metadata as they were.  llama.cpp loads it as it loads the
    source."""
    import gguf

    from . import gguf_file

    source = Path(source)
    gguf_file.not_the_source(source, out)
    arch = gguf_file.open_gguf(source).field(gguf_file.field_name("General.ARCHITECTURE"))
    layout = gguf_file.LAYOUTS.get(arch)
    if layout is None:
        raise LlafError(f"{source.name}: merging adapters into a {arch} file is not supported "
                        f"(files of the {', '.join(gguf_file.LAYOUTS)} architectures are)")
    from .weights import load

    w = load(source, progress=False)
    adapters.check(w.shapes)
    # the updates as llaf's arrays, laid out as the file's tensors by the
    # mechanism that writes fully fine-tuned weights back (permuted query and
    # key rows; a fused tensor's parts not adapted get a zero update)
    updates = {TARGETS[t][0]: np.stack([adapters.delta(t, i) for i in range(adapters.tensors[t][0].shape[0])])
               .astype(np.float32) for t in adapters.config.targets}
    if layout.fused:
        for _, names in gguf_file.FUSED.values():
            if any(n in updates for n in names):
                updates |= {n: np.zeros(w.shapes[n], np.float32) for n in names if n not in updates}
    deltas = gguf_file.llama_tensors(source, updates, w.hparams)
    merged = {}
    for tensor in gguf.GGUFReader(str(source)).tensors:
        if tensor.name in deltas:
            values = gguf.quants.dequantize(tensor.data, tensor.tensor_type).reshape(deltas[tensor.name].shape)
            merged[tensor.name] = values.astype(np.float32) + deltas.pop(tensor.name)
    if deltas:
        raise LlafError(f"{source.name}: no tensor {sorted(deltas)[0]!r} to merge into")
    return gguf_file.rewrite(source, out, merged)


def _peft_key(found: Mapping[str, Any], i: int, block: str, target: str, name: str) -> str | None:
    """The key of layer `i`'s tensor in peft's file (with or without the adapter's name)."""
    for key in (f"base_model.model.model.layers.{i}.{block}.{target}.lora_{name}.weight",
                f"base_model.model.model.layers.{i}.{block}.{target}.lora_{name}.default.weight"):
        if key in found:
            return key
    return None


def targets_of(names: Sequence[str] | str) -> tuple[str, ...]:
    """Targets from a CLI list (``q_proj,v_proj``) or ``all``."""
    if isinstance(names, str):
        names = list(TARGETS) if names == "all" else [n.strip() for n in names.split(",") if n.strip()]
    return tuple(names)
