"""Fine-tuning: LoRA adapters trained on a frozen model by src/train.fut.

`Trainer` holds a model's weights in src/train.fut's engine (in their own
storage: a 4-bit base stays 4-bit) and the adapters being trained with
their AdamW moments; ``loss``, ``grad`` and ``step`` run one batch.  A
batch is `tokens` (``[B][S]``) and `targets` (``[B][S]``): the token that
should follow each one, or -1 where nothing is learnt.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import checks, gguf_file, llama
from . import weights as weights_mod
from .backend import TRAIN_BACKENDS, Engine, check_threads, check_train_backend, resolve_backend
from .entries import TRAIN_STORAGES
from .errors import LlafError
from .lora import Adapters, LoraConfig
from .tokenizer import Tokenizer, chat_messages

# A training example: token ids and, for each, whether it is learnt.
Example = tuple[list[int], list[bool]]

# The storages src/train.fut is compiled for.
STORAGES = TRAIN_STORAGES


@dataclass(frozen=True)
class AdamW:
    """The optimizer's settings, as `torch.optim.AdamW` takes them, with
    gradient clipping to `max_norm` (0: none) and a schedule of `steps`
    steps: linear warm-up over `warmup` steps, then a cosine decay to 0."""

    lr: float = 2e-4
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    max_norm: float = 1.0
    warmup: int = 0
    steps: int = 100

    def __post_init__(self) -> None:
        for name in ("lr", "beta1", "beta2", "eps", "weight_decay", "max_norm"):
            checks.number(f"AdamW's {name}", getattr(self, name))
        for name in ("warmup", "steps"):
            checks.integer(f"AdamW's {name}", getattr(self, name))
        if not self.lr > 0:
            raise LlafError(f"the learning rate must be positive, got {self.lr!r}")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise LlafError(f"AdamW's betas must be in [0, 1), got {self.beta1!r} and {self.beta2!r}")
        if self.steps < 1 or not 0 <= self.warmup <= self.steps:
            raise LlafError(f"{self.steps} steps with {self.warmup} of warm-up: need 0 <= warm-up <= steps, steps >= 1")
        if self.max_norm < 0 or self.weight_decay < 0 or not self.eps > 0:
            raise LlafError("max_norm and weight_decay must be >= 0, eps > 0")

    def args(self) -> tuple[Any, ...]:
        f, i = np.float32, np.int64
        return (f(self.lr), f(self.beta1), f(self.beta2), f(self.eps), f(self.weight_decay), f(self.max_norm),
                i(self.warmup), i(self.steps))


@dataclass(frozen=True)
class StepReport:
    loss: float          # the batch's loss before the step
    grad_norm: float     # the gradient's norm before clipping
    lr: float            # the step's learning rate


class _Training:
    """A model in src/train.fut's engine, the weights being trained (one flat
    vector) and AdamW's state."""

    storages: tuple[str, ...] = STORAGES
    what = "fine-tuning"

    def __init__(self, source: Any, optimizer: AdamW | None, backend: str | None, threads: int | None,
                 progress: bool, workers: int | None = None) -> None:
        backend = resolve_backend(TRAIN_BACKENDS[0] if backend is None else backend)
        check_train_backend(backend)  # before minutes of loading
        check_threads(threads, backend)
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise LlafError(f"the number of workers must be a positive integer, got {workers!r}")
        w = source if isinstance(source, weights_mod.Weights) else weights_mod.load(source, progress=progress)
        if w.architecture != "llama":
            raise LlafError(f"fine-tuning runs on Llama-family models, not {w.architecture}")
        if w.storage not in self.storages:
            raise LlafError(f"{self.what} runs on weights stored as {' or '.join(self.storages)}, not {w.storage} "
                            "(load the model with storage='f32')")
        self.weights = w
        self.shapes = w.shapes
        self.prefix = f"train_{w.storage}"
        # One engine a core: each differentiates its share of a batch, at
        # once (the calls release Python's lock), and the first one steps.
        self.engines = [Engine(backend, threads, program="train")
                        for _ in range(workers or min(2, os.cpu_count() or 1))]
        self.engine = self.engines[0]
        self.params = []
        for engine in self.engines:
            args = [engine.put(a) if isinstance(a, np.ndarray) else a for a in w.init_args()]
            self.params.append(engine.call(f"{self.prefix}_init", *args))
        self.optimizer = optimizer or AdamW()
        self._adamw = self.engine.call("adamw", *self.optimizer.args())
        self.steps_taken = 0

    def _start(self, theta: np.ndarray) -> None:
        self._theta = self.engine.put(theta)
        self._m = self.engine.put(np.zeros(theta.size, np.float32))
        self._v = self.engine.put(np.zeros(theta.size, np.float32))

    def batch(self, tokens: Any, targets: Any) -> tuple[np.ndarray, np.ndarray]:
        """`tokens` and `targets` checked: int64 `[B][S]` of the same shape, ids in the vocabulary."""
        tokens, targets = np.asarray(tokens), np.asarray(targets)
        if tokens.ndim != 2 or tokens.shape != targets.shape or tokens.size == 0:
            raise LlafError(f"a batch is tokens and targets of one shape [sequences][length], "
                            f"got {tokens.shape} and {targets.shape}")
        vocab, context = self.weights.vocab, self.weights.context
        if tokens.shape[1] > context:
            raise LlafError(f"sequences of {tokens.shape[1]} tokens exceed the context length {context}")
        if tokens.min() < 0 or tokens.max() >= vocab or targets.min() < -1 or targets.max() >= vocab:
            raise LlafError(f"token ids must be in [0, {vocab}) (targets: or -1)")
        return np.ascontiguousarray(tokens, np.int64), np.ascontiguousarray(targets, np.int64)

    def _grad(self, entry: str, lead: Callable[[int], tuple[Any, ...]], theta: np.ndarray, tokens: np.ndarray,
              targets: np.ndarray) -> tuple[float, np.ndarray]:
        """The loss of a checked batch and its gradient at `theta`, the batch's
        sequences shared among the engines: each part's mean weighted by its
        targets, so that the whole is the batch's mean."""
        parts = [(k, g) for k, g in zip(np.array_split(tokens, len(self.engines)),
                                        np.array_split(targets, len(self.engines)), strict=True) if len(k)]
        counts = [int((g >= 0).sum()) for _, g in parts]

        def run(i: int) -> tuple[float, np.ndarray]:
            engine = self.engines[i]
            loss, g = engine.call(entry, *lead(i), theta, *parts[i])
            return float(loss), engine.array(g)

        if len(parts) == 1:
            results = [run(0)]
        else:
            with ThreadPoolExecutor(len(parts)) as pool:
                results = list(pool.map(run, range(len(parts))))
        total = max(1, sum(counts))
        loss = sum(c * l for c, (l, _) in zip(counts, results, strict=True)) / total
        # weighted and summed in the parts' own buffers (a full model's
        # gradient is the model's size): the same f32 operations in the same order
        grads = [np.multiply(g, np.float32(c / total), out=g) for c, (_, g) in zip(counts, results, strict=True)]
        for g in grads[1:]:
            np.add(grads[0], g, out=grads[0])
        return float(loss), grads[0]

    def _step(self, entry: str, lead: Callable[[int], tuple[Any, ...]], tokens: Any, targets: Any) -> StepReport:
        tokens, targets = self.batch(tokens, targets)
        self.steps_taken += 1
        t = np.int64(self.steps_taken)
        if len(self.engines) == 1:  # the gradient and the step in one call
            theta, m, v, loss, norm, lr = self.engine.call(
                f"{entry}_step", *lead(0), self._adamw, t, self._theta, self._m, self._v, tokens, targets)
        else:
            loss, g = self._grad(f"{entry}_grad", lead, self.engine.array(self._theta), tokens, targets)
            theta, m, v, norm, lr = self.engine.call("train_update", self._adamw, t, self._theta, self._m,
                                                     self._v, g)
        self._theta, self._m, self._v = theta, m, v
        return StepReport(float(loss), float(norm), float(lr))

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """AdamW's first and second moments, laid out as the weights trained."""
        return self.engine.array(self._m), self.engine.array(self._v)

    def rates(self) -> np.ndarray:
        """The learning rate of every step of the schedule."""
        return self.engine.array(self.engine.call("train_rates", self._adamw))


class Trainer(_Training):
    """LoRA adapters trained on a frozen model (in its own storage)."""

    def __init__(self, source: Any, lora: LoraConfig | None = None, *, adapters: Adapters | None = None,
                 optimizer: AdamW | None = None, backend: str | None = None, threads: int | None = None,
                 seed: int = 0, progress: bool = False, workers: int | None = None) -> None:
        if adapters is not None and lora is not None and lora != adapters.config:
            raise LlafError("give a LoRA configuration or adapters, not both")
        super().__init__(source, optimizer, backend, threads, progress, workers)
        if adapters is None:
            adapters = Adapters.initial(lora or LoraConfig(), self.shapes, seed)
        adapters.check(self.shapes)
        self.adapters = adapters
        self._start(adapters.flat())

    def _common(self, adapters: Adapters, engine: int = 0) -> tuple[Any, ...]:
        c = adapters.config
        return (self.params[engine], np.int64(c.rank), np.int64(c.mask), np.float32(c.scale))

    def loss(self, tokens: Any, targets: Any, adapters: Adapters | None = None) -> float:
        """The batch's mean next-token cross-entropy with `adapters` (default: those being trained)."""
        adapters = adapters or self.current()
        tokens, targets = self.batch(tokens, targets)
        return float(self.engine.call(f"{self.prefix}_loss", *self._common(adapters), adapters.flat(), tokens, targets))

    def grad(self, tokens: Any, targets: Any, adapters: Adapters | None = None) -> tuple[float, Adapters]:
        """The loss and its gradient with respect to every adapter tensor."""
        adapters = adapters or self.current()
        tokens, targets = self.batch(tokens, targets)
        loss, g = self._grad(f"{self.prefix}_grad", lambda i: self._common(adapters, i), adapters.flat(), tokens,
                             targets)
        return loss, adapters.with_flat(g)

    def step(self, tokens: Any, targets: Any) -> StepReport:
        """One AdamW step of the adapters on a batch."""
        return self._step(self.prefix, lambda i: self._common(self.adapters, i), tokens, targets)

    def current(self) -> Adapters:
        """The adapters as trained so far."""
        return self.adapters.with_flat(self.engine.array(self._theta))


class FullTrainer(_Training):
    """Every weight of an f32 model trained (the rotary frequencies apart):
    src/train.fut `full`, on the arrays of ``llama_f32_init`` laid end to end."""

    storages = ("f32",)
    what = "full fine-tuning"
    TRAINED = tuple(n for n in llama.ARRAYS if n != "inv_freq")

    def __init__(self, source: Any, *, optimizer: AdamW | None = None, backend: str | None = None,
                 threads: int | None = None, progress: bool = False, workers: int | None = None) -> None:
        super().__init__(source, optimizer, backend, threads, progress, workers)
        self._parts = [(n, a.shape) for n in self.TRAINED for a in self._arrays(self.weights, n)]
        self._start(self.flat(self.weights))

    @staticmethod
    def _arrays(w: weights_mod.Weights, name: str) -> list[np.ndarray]:
        return w.format(name).panels(w.arrays, name) if name in llama.MATRICES else [w.arrays[name]]

    def flat(self, w: weights_mod.Weights) -> np.ndarray:
        """The weights of `w` as src/train.fut's flat vector."""
        return np.concatenate([a.ravel() for n in self.TRAINED for a in self._arrays(w, n)]).astype(np.float32)

    def unflat(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """A flat vector as llaf's arrays (a matrix `[..][rows][columns]`)."""
        out, at = {}, 0
        for name, shape in self._parts:
            a = np.asarray(theta[at:at + int(np.prod(shape))], np.float32).reshape(shape)
            at += a.size
            if name in llama.MATRICES:  # panels [..][T][kb][32][P] -> [..][rows][columns]
                rows, cols = self.shapes[name][-2:]
                a = np.moveaxis(a, -1, -3)
                a = a.reshape(*a.shape[:-4], a.shape[-4] * a.shape[-3], a.shape[-2] * a.shape[-1])[..., :rows, :cols]
            out[name] = np.ascontiguousarray(a)
        return out

    def grad(self, tokens: Any, targets: Any) -> tuple[float, dict[str, np.ndarray]]:
        """The loss and its gradient with respect to every weight, by name."""
        tokens, targets = self.batch(tokens, targets)
        loss, g = self._grad(f"{self.prefix}_full_grad", lambda i: (self.params[i],),
                             self.engine.array(self._theta), tokens, targets)
        return loss, self.unflat(g)

    def step(self, tokens: Any, targets: Any) -> StepReport:
        """One AdamW step of every weight on a batch."""
        return self._step(f"{self.prefix}_full", lambda i: (self.params[i],), tokens, targets)

    def current(self) -> weights_mod.Weights:
        """The model as trained so far (`llaf.save` writes it, `llaf.init` runs it)."""
        arrays = dict(self.weights.arrays) | self.unflat(self.engine.array(self._theta))
        return weights_mod.Weights(self.weights.architecture, self.weights.hparams, arrays, "f32")


def pack(sequences: Sequence[tuple[Sequence[int], Sequence[bool]]], length: int, pad: int = 0
         ) -> tuple[np.ndarray, np.ndarray]:
    """Token sequences with, for each token, whether it is learnt (predicted
    from the ones before), as a batch: `tokens` padded with `pad` to
    `length`, `targets[b][i]` the token after position `i` where that one is
    learnt, else -1."""
    tokens = np.full((len(sequences), length), pad, np.int64)
    targets = np.full((len(sequences), length), -1, np.int64)
    for b, (ids, learnt) in enumerate(sequences):
        ids, learnt = list(ids)[:length], list(learnt)[:length]
        tokens[b, :len(ids)] = ids
        for i in range(1, len(ids)):
            if learnt[i]:
                targets[b, i - 1] = ids[i]
    return tokens, targets


def text_example(tokenizer: Tokenizer, text: str) -> Example:
    """A text: every token learnt."""
    ids = tokenizer.encode(text)
    return ids, [True] * len(ids)


def chat_example(tokenizer: Tokenizer, messages: Any) -> Example:
    """A conversation in the model's chat template: only the assistant's
    turns are learnt, each up to and including its end of turn."""
    messages = chat_messages(messages)
    if messages[-1]["role"] != "assistant":
        raise LlafError("a training conversation ends with the assistant's message")
    ids: list[int] = []
    learnt: list[bool] = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        if i == 0:  # (the template renders no conversation of no message)
            raise LlafError("a training conversation has a message before the assistant's first one")
        prompt = _extending(ids, tokenizer.chat(messages[:i]))  # ready for the assistant's reply
        turn = _extending(prompt, tokenizer.chat(messages[:i + 1]))[len(prompt):]
        end = next((j for j, tok in enumerate(turn) if tok in tokenizer.eos_ids), None)
        if end is None:
            raise LlafError("the chat template ends no assistant turn with an end-of-turn token")
        learnt += [False] * (len(prompt) - len(ids)) + [True] * (end + 1)
        ids = prompt + turn[:end + 1]
    return ids, learnt


def _extending(start: list[int], ids: list[int]) -> list[int]:
    """`ids`, which must begin with `start`: a conversation rendered further."""
    if ids[:len(start)] != start:
        raise LlafError("the chat template renders a conversation's start differently from the "
                        "whole conversation: its assistant turns cannot be found")
    return ids


def read_examples(path: str | Path, tokenizer: Tokenizer, seq_len: int | None = None) -> list[Example]:
    """The records of a JSONL file: ``{"text": ...}`` or ``{"messages": [...]}``
    (a chat); each must have a token to learn, within its first `seq_len`
    tokens if given (the batches cut sequences there)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise LlafError(f"{path}: cannot read it ({e})") from None
    examples = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as e:
            raise LlafError(f"{path}:{n}: not JSON ({e})") from None
        try:
            if isinstance(record, dict) and isinstance(record.get("text"), str):
                examples.append(text_example(tokenizer, record["text"]))
            elif isinstance(record, dict) and "messages" in record:
                examples.append(chat_example(tokenizer, record["messages"]))
            else:
                raise LlafError('a record is {"text": "..."} or {"messages": [...]}')
        except LlafError as e:
            raise LlafError(f"{path}:{n}: {e}") from None
        learnt = examples[-1][1]
        if not any(learnt[1:]):
            raise LlafError(f"{path}:{n}: nothing to learn (no token after the first is learnt)")
        if seq_len is not None and not any(learnt[1:seq_len]):
            first = learnt.index(True, 1)
            raise LlafError(f"{path}:{n}: nothing to learn in its first {seq_len} tokens (--seq-len): its first "
                            f"learnt token is token {first + 1} of {len(learnt)}")
    if not examples:
        raise LlafError(f"{path}: no records")
    return examples


def batches(examples: Sequence[Example], batch: int, seq_len: int, seed: int
            ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches of `batch` examples (all of them if fewer), each epoch in a new
    random order (an epoch's last examples that fill no batch wait for the
    next), cut to `seq_len` tokens and padded to the longest of the batch."""
    rng = np.random.default_rng(seed)
    whole = len(examples) - len(examples) % batch if len(examples) >= batch else len(examples)
    while True:
        order = rng.permutation(len(examples))
        for start in range(0, whole, batch):
            chosen = [examples[i] for i in order[start:start + batch]]
            length = min(seq_len, max(len(ids) for ids, _ in chosen))
            yield pack(chosen, length)


@dataclass
class Finetuned:
    """What `finetune` made: the adapters (or, fully fine-tuned, the
    weights), the loss of each step and the speed."""

    adapters: Adapters | None = None
    weights: weights_mod.Weights | None = None
    losses: list[float] = field(default_factory=list)
    tokens_per_second: float = 0.0
    seconds: float = 0.0


def finetune(model: Any = None, data: str | Path = "", out: str | Path | None = None, *,
             lora: LoraConfig | None = None, optimizer: AdamW | None = None, batch: int = 8, seq_len: int = 256,
             backend: str | None = None, threads: int | None = None, seed: int = 0, progress: bool = True,
             workers: int | None = None, full: bool = False) -> Finetuned:
    """Train LoRA adapters on `model` (as `llaf.load` names it; default
    SmolLM2-135M-Instruct) with the JSONL file `data`, and save them to the
    directory `out` (peft's layout) with the loss curve (``loss.png``,
    ``loss.json``).  `workers`: engines differentiating parts of each batch
    at once (default: one a core, at most 2).

    `full`: train every weight instead, in f32 (a quantized file is decoded
    exactly first), and write the model to `out`, a GGUF file made from the
    model's own GGUF file (its tokenizer and metadata kept, the trained
    tensors in F32), with the loss curve beside it (``NAME.loss.png``,
    ``NAME.loss.json``)."""
    from tqdm import tqdm

    from .generation import model_source
    from .tokenizer import for_model

    batch, seq_len = checks.integer("batch", batch), checks.integer("seq_len", seq_len)
    seed = checks.count("seed", seed)
    if batch < 1 or seq_len < 2:
        raise LlafError(f"the batch must hold at least 1 sequence and sequences 2 tokens, got {batch} and {seq_len}")
    for name, value, kinds, what in (
            ("data", data, (str, os.PathLike), "a JSONL file's path"),
            ("out", out, (str, os.PathLike, type(None)), "a path"),
            ("lora", lora, (LoraConfig, type(None)), "a LoraConfig (llaf.lora)"),
            ("optimizer", optimizer, (AdamW, type(None)), "an AdamW (llaf.finetune)")):
        if not isinstance(value, kinds):
            raise LlafError(f"{name} must be {what}, got {value!r}")
    if not str(data):
        raise LlafError("no data: give a JSONL file of training records")
    if full and lora is not None:
        raise LlafError("full fine-tuning trains every weight: a LoRA configuration does not apply")
    source = model_source(model)
    if full and out is not None and not (str(source).endswith(".gguf") and str(out).endswith(".gguf")):
        raise LlafError(f"full fine-tuning writes a GGUF file (--out NAME.gguf) from a GGUF file; "
                        f"got {Path(str(source)).name} and {out}")
    if out is not None:  # before minutes of training: a path that cannot be written is found now
        if full:
            gguf_file.not_the_source(str(source), out)
        checks.writable(Path(out).parent if full else Path(out))
    w = weights_mod.load(source, progress=False, storage="f32" if full else None)
    if w.storage not in (FullTrainer if full else Trainer).storages:  # no trainable form of its own
        w = weights_mod.as_f32(w)
    tokenizer = for_model(source, w.architecture)
    examples = read_examples(data, tokenizer, seq_len)
    if seq_len > w.context:
        raise LlafError(f"sequences of {seq_len} tokens exceed the context length {w.context}")
    optimizer = optimizer or AdamW()
    trainer: Trainer | FullTrainer
    if full:
        trainer = FullTrainer(w, optimizer=optimizer, backend=backend, threads=threads, workers=workers)
    else:
        trainer = Trainer(w, lora or LoraConfig(), optimizer=optimizer, backend=backend, threads=threads, seed=seed,
                          workers=workers)
        trainer.adapters.base = Path(str(source)).name
    result = Finetuned()
    learnt = 0
    start = time.perf_counter()
    bar = tqdm(total=optimizer.steps, desc="fine-tuning", disable=not progress, file=sys.stderr)
    for _, (tokens, targets) in zip(range(optimizer.steps), batches(examples, batch, seq_len, seed), strict=False):
        report = trainer.step(tokens, targets)
        result.losses.append(report.loss)
        learnt += tokens.size
        elapsed = time.perf_counter() - start
        bar.set_postfix(loss=f"{report.loss:.3f}", tok_s=f"{learnt / elapsed:.0f}", refresh=False)
        bar.update(1)
    bar.close()
    result.seconds = time.perf_counter() - start
    result.tokens_per_second = learnt / result.seconds
    if isinstance(trainer, FullTrainer):
        result.weights = trainer.current()
    else:
        result.adapters = trainer.current()
    if out is None:
        return result
    if result.weights is not None:
        out = gguf_file.rewrite(source, out, gguf_file.llama_tensors(source, result.weights.arrays,
                                                                     result.weights.hparams))
        curve = out.with_suffix(".loss.json"), out.with_suffix(".loss.png")
    else:
        assert result.adapters is not None
        where = result.adapters.save(out)
        curve = where / "loss.json", where / "loss.png"
    curve[0].write_text(json.dumps({"loss": result.losses, "tokens_per_second": result.tokens_per_second}) + "\n")
    plot_losses(result.losses, curve[1])
    return result


def plot_losses(losses: Sequence[float], path: Path) -> None:
    """The loss curve as a PNG (matplotlib, llaf's `bench` extra; skipped without it)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("llaf: matplotlib is not installed: no loss.png (the losses are in loss.json)", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(range(1, len(losses) + 1), losses)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("fine-tuning loss")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
