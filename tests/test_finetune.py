"""Fine-tuning (src/train.fut, llaf/finetune.py) against PyTorch: the loss
of a batch equals transformers', the gradient of every LoRA tensor equals
autograd's through peft's adapters, the gradient through a 4-bit base equals
the one through its f32 expansion, and AdamW's steps and schedule equal
torch's and transformers'."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from llaf import weights as weights_mod
from llaf.backend import TRAIN_BACKENDS
from llaf.errors import LlafError
from llaf.finetune import AdamW, Trainer, pack
from llaf.lora import TARGETS, Adapters, LoraConfig

from .conftest import BACKENDS_UNDER_TEST, random_llama
from .gguf_models import write_gguf

BACKEND = TRAIN_BACKENDS[0]
# The engine's backend, for the merged adapters' logits.
ENGINE = next((b for b in ("multicore", "c") if b in BACKENDS_UNDER_TEST), BACKENDS_UNDER_TEST[0])

# Grouped-query attention (4 query heads on 2 key/value heads), widths that
# 4-bit blocks fit.
CONFIG = dict(hidden_size=64, intermediate_size=96, num_attention_heads=4, num_key_value_heads=2,
              vocab_size=120, max_position_embeddings=64, num_hidden_layers=2)
# The relative tolerance of gradients: f32 sums in another order than PyTorch's.
RTOL = 2e-4


def batch(rng: np.random.Generator, lengths: list[int], vocab: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Random sequences of `lengths`, padded to `length`; every token after the first is learnt, but the
    first two of the second sequence (a prompt)."""
    seqs = []
    for i, n in enumerate(lengths):
        ids = rng.integers(1, vocab, n)
        learnt = [j >= 2 or i != 1 for j in range(n)]
        seqs.append((ids, learnt))
    return pack(seqs, length)


def random_adapters(config: LoraConfig, shapes: dict[str, tuple[int, ...]], seed: int) -> Adapters:
    """Adapters with `B` not zero, so that every gradient is."""
    a = Adapters.initial(config, shapes, seed)
    rng = np.random.default_rng(seed + 1)
    for t, (A, B) in a.tensors.items():
        a.tensors[t] = (A, rng.normal(0, 0.05, B.shape).astype(np.float32))
    return a


def torch_loss(model: torch.nn.Module, tokens: np.ndarray, targets: np.ndarray) -> torch.Tensor:
    """The mean cross-entropy of the targets that are not -1 (transformers' loss with labels of -100)."""
    logits = model(torch.from_numpy(tokens)).logits
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                             torch.from_numpy(targets).reshape(-1), ignore_index=-1)


def torch_loss_and_grads(model: torch.nn.Module, adapters: Adapters, tokens: np.ndarray, targets: np.ndarray
                         ) -> tuple[float, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """transformers' loss through peft's LoRA with `adapters`, and autograd's gradient of each tensor."""
    from peft import LoraConfig as PeftConfig
    from peft import get_peft_model

    c = adapters.config
    peft_model = get_peft_model(copy.deepcopy(model), PeftConfig(r=c.rank, lora_alpha=c.alpha, lora_dropout=0.0,
                                                                 target_modules=list(c.targets)))
    state = {k.replace(".weight", ".default.weight"): torch.from_numpy(v)
             for k, v in adapters.peft_tensors().items()}
    missing = [k for k in state if k not in dict(peft_model.named_parameters())]
    assert not missing, missing[:3]
    peft_model.load_state_dict(state, strict=False)
    loss = torch_loss(peft_model, tokens, targets)
    loss.backward()
    params = dict(peft_model.named_parameters())
    grads = {}
    for t in c.targets:
        block = TARGETS[t][1]
        layers = adapters.tensors[t][0].shape[0]
        grads[t] = tuple(np.stack([params[f"base_model.model.model.layers.{i}.{block}.{t}.lora_{n}.default.weight"]
                                   .grad.numpy() for i in range(layers)]) for n in "AB")
    return float(loss), grads  # type: ignore[return-value]


def assert_close_grads(got: Adapters, want: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    for t, pair in want.items():
        for name, g, w in zip("AB", got.tensors[t], pair, strict=True):
            scale = np.abs(w).max()
            assert scale > 0, f"{t}.lora_{name}: zero gradient in PyTorch"
            err = np.abs(g - w).max() / scale
            assert err < RTOL, f"{t}.lora_{name}: relative error {err:.2e}"


@pytest.fixture(scope="module", params=[False, True], ids=["untied", "tied"])
def model(request: pytest.FixtureRequest) -> torch.nn.Module:
    return random_llama(11, tie_word_embeddings=request.param, **CONFIG)


@pytest.fixture(scope="module")
def trainer(model: torch.nn.Module) -> Trainer:
    return Trainer(weights_mod.from_transformers(model, progress=False), backend=BACKEND)


def test_loss_and_gradients_equal_pytorch(model: torch.nn.Module, trainer: Trainer) -> None:
    rng = np.random.default_rng(3)
    tokens, targets = batch(rng, [12, 9, 5], CONFIG["vocab_size"], 12)
    config = LoraConfig(rank=4, alpha=8.0, targets=tuple(TARGETS))
    adapters = random_adapters(config, trainer.shapes, 5)
    want_loss, want = torch_loss_and_grads(model, adapters, tokens, targets)
    assert abs(trainer.loss(tokens, targets, adapters) - want_loss) < 1e-5 * max(1, abs(want_loss))
    loss, got = trainer.grad(tokens, targets, adapters)
    assert abs(loss - want_loss) < 1e-5 * max(1, abs(want_loss))
    assert_close_grads(got, want)
    # one engine for the whole batch: the same
    alone = Trainer(trainer.weights, adapters=adapters, backend=BACKEND, workers=1)
    loss1, got1 = alone.grad(tokens, targets)
    assert loss1 == pytest.approx(loss, rel=1e-6)
    assert_close_grads(got1, {t: got.tensors[t] for t in got.tensors})


def test_some_targets(model: torch.nn.Module, trainer: Trainer) -> None:
    """Adapters on some projections only: the flat vector holds those, in order."""
    rng = np.random.default_rng(4)
    tokens, targets = batch(rng, [10, 10], CONFIG["vocab_size"], 10)
    config = LoraConfig(rank=2, alpha=3.0, targets=("v_proj", "down_proj", "q_proj"))
    adapters = random_adapters(config, trainer.shapes, 6)
    want_loss, want = torch_loss_and_grads(model, adapters, tokens, targets)
    loss, got = trainer.grad(tokens, targets, adapters)
    assert abs(loss - want_loss) < 1e-5 * max(1, abs(want_loss))
    assert set(got.tensors) == {"q_proj", "v_proj", "down_proj"}
    assert_close_grads(got, want)


def test_padding_and_prompts_are_not_learnt(trainer: Trainer) -> None:
    """Tokens after the last target change nothing; a batch without targets has loss 0."""
    rng = np.random.default_rng(5)
    tokens, targets = batch(rng, [8], CONFIG["vocab_size"], 12)
    adapters = random_adapters(LoraConfig(rank=2), trainer.shapes, 7)
    other = tokens.copy()
    other[0, 8:] = rng.integers(1, CONFIG["vocab_size"], 4)
    assert trainer.loss(tokens, targets, adapters) == trainer.loss(other, targets, adapters)
    assert trainer.loss(tokens, np.full_like(targets, -1), adapters) == 0.0


def test_q4_base_gradient_equals_its_f32_expansion(tmp_path: Path) -> None:
    """QLoRA: the gradient through a 4-bit base equals the one through the same values in f32."""
    model = random_llama(12, **CONFIG)
    path = write_gguf(model, tmp_path / "model-Q4_1.gguf", "Q4_1", head_qtype="Q8_0")
    q4 = weights_mod.load(path, progress=False)
    assert q4.storage == "q4"
    f32 = weights_mod.as_f32(q4)
    rng = np.random.default_rng(6)
    tokens, targets = batch(rng, [10, 7], CONFIG["vocab_size"], 10)
    adapters = random_adapters(LoraConfig(rank=4, targets=tuple(TARGETS)), q4.shapes, 8)
    a = Trainer(q4, backend=BACKEND, adapters=adapters)
    b = Trainer(f32, backend=BACKEND, adapters=adapters)
    la, ga = a.grad(tokens, targets)
    lb, gb = b.grad(tokens, targets)
    assert la == pytest.approx(lb, rel=1e-6)
    assert_close_grads(ga, {t: gb.tensors[t] for t in gb.tensors})


@pytest.mark.parametrize("workers", [1, 2])
def test_adamw_steps_equal_torch(trainer: Trainer, workers: int) -> None:
    """Three steps, the gradient clipped in the second: torch.optim.AdamW with
    clip_grad_norm_ from the same gradients gives the same adapters and moments
    (one engine, whose step entry differentiates and steps; or two, each
    differentiating half the batch, and an update entry)."""
    rng = np.random.default_rng(7)
    weights = trainer.weights
    config = LoraConfig(rank=2, targets=("q_proj", "up_proj"))
    start = random_adapters(config, trainer.shapes, 9)
    opt = AdamW(lr=1e-2, beta1=0.8, beta2=0.95, eps=1e-6, weight_decay=0.1, max_norm=0.5, warmup=0, steps=3)
    t = Trainer(weights, adapters=start, optimizer=opt, backend=BACKEND, workers=workers)
    assert len(t.engines) == workers
    theta = torch.nn.Parameter(torch.from_numpy(start.flat().copy()))
    torch_opt = torch.optim.AdamW([theta], lr=opt.lr, betas=(opt.beta1, opt.beta2), eps=opt.eps,
                                  weight_decay=opt.weight_decay)
    from transformers import get_cosine_schedule_with_warmup

    schedule = get_cosine_schedule_with_warmup(torch_opt, opt.warmup, opt.steps)
    norms = []
    for _ in range(3):
        tokens, targets = batch(rng, [9, 9], CONFIG["vocab_size"], 9)
        _, g = t.grad(tokens, targets)
        report = t.step(tokens, targets)
        theta.grad = torch.from_numpy(g.flat())
        norms.append(float(torch.nn.utils.clip_grad_norm_([theta], opt.max_norm)))
        assert report.grad_norm == pytest.approx(norms[-1], rel=1e-5)
        assert report.lr == pytest.approx(schedule.get_last_lr()[0], rel=1e-6)
        torch_opt.step()
        schedule.step()
        np.testing.assert_allclose(t.current().flat(), theta.detach().numpy(), rtol=1e-5, atol=1e-7)
    assert any(n > opt.max_norm for n in norms), "no step was clipped"
    m, v = t.moments()
    state = torch_opt.state[theta]
    # (the clipped gradients differ in their last bits: the norms are sums in
    # another order; the moments' sums of opposite signs magnify that)
    for got, want in ((m, state["exp_avg"].numpy()), (v, state["exp_avg_sq"].numpy())):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_schedule_equals_transformers(trainer: Trainer) -> None:
    from transformers import get_cosine_schedule_with_warmup

    opt = AdamW(lr=3e-3, warmup=4, steps=20)
    t = Trainer(trainer.weights, optimizer=opt, backend=BACKEND)
    torch_opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=opt.lr)
    schedule = get_cosine_schedule_with_warmup(torch_opt, opt.warmup, opt.steps)
    want = []
    for _ in range(opt.steps):
        want.append(schedule.get_last_lr()[0])
        torch_opt.step()
        schedule.step()
    np.testing.assert_allclose(t.rates(), want, rtol=1e-6, atol=1e-10)


def test_training_lowers_the_loss(trainer: Trainer) -> None:
    """Twenty steps on one batch from peft's start (B = 0): the loss falls by half."""
    rng = np.random.default_rng(8)
    tokens, targets = batch(rng, [16, 16], CONFIG["vocab_size"], 16)
    t = Trainer(trainer.weights, LoraConfig(rank=8, alpha=16, targets=tuple(TARGETS)),
                optimizer=AdamW(lr=1e-2, steps=20), backend=BACKEND)
    first = t.loss(tokens, targets)
    reports = [t.step(tokens, targets) for _ in range(20)]
    assert reports[0].loss == pytest.approx(first, rel=1e-6)
    assert t.loss(tokens, targets) < first / 2


def test_adapters_round_trip_through_peft_files(tmp_path: Path, model: torch.nn.Module, trainer: Trainer) -> None:
    """Saved adapters load in peft (same logits as llaf's own adapters give) and back in llaf."""
    from peft import PeftModel

    adapters = random_adapters(LoraConfig(rank=4, alpha=8.0, targets=("q_proj", "o_proj", "up_proj")),
                               trainer.shapes, 10)
    adapters.save(tmp_path / "adapter")
    back = Adapters.load(tmp_path / "adapter", layers=CONFIG["num_hidden_layers"])
    assert back.config == adapters.config
    np.testing.assert_array_equal(back.flat(), adapters.flat())
    peft_model = PeftModel.from_pretrained(copy.deepcopy(model), str(tmp_path / "adapter"))
    rng = np.random.default_rng(9)
    tokens, targets = batch(rng, [10], CONFIG["vocab_size"], 10)
    want = float(torch_loss(peft_model, tokens, targets))
    assert trainer.loss(tokens, targets, back) == pytest.approx(want, rel=1e-5)


def test_bad_adapter_files_are_named(tmp_path: Path, trainer: Trainer) -> None:
    """A damaged adapter_config.json or adapter_model.safetensors gets a
    LlafError naming the file and what is wrong in it (they were Python's
    own errors, reported as llaf's bugs)."""
    import json

    from safetensors.numpy import load_file, save_file

    where = tmp_path / "adapter"
    random_adapters(LoraConfig(rank=2, alpha=4.0, targets=("q_proj",)), trainer.shapes, 3).save(where)
    config_file, weights_file = where / "adapter_config.json", where / "adapter_model.safetensors"
    good = json.loads(config_file.read_text())
    for change, message in (
            ([1, 2], "not a peft adapter configuration (a JSON object), got list"),
            ({"lora_alpha": "x"}, "lora_alpha must be a number, got 'x'"),
            ({"r": 2.5}, "r must be an integer, got 2.5"),
            ({"r": None}, "r must be an integer, got None"),
            ({"r": float("inf")}, "r must be an integer, got inf"),
            ({"r": float("nan")}, "r must be an integer, got nan"),
            ({"target_modules": [1]}, "target_modules must be a list of names, got [1]")):
        config_file.write_text(json.dumps(change if isinstance(change, list) else good | change))
        with pytest.raises(LlafError, match=f"^{re.escape(f'{config_file}: {message}')}$"):
            Adapters.load(where)
    config_file.write_text(json.dumps(good))
    tensors = load_file(str(weights_file))
    key = next(k for k in tensors if ".layers.1." in k and "lora_A" in k)
    shape = tensors[key].shape
    tensors[key] = np.zeros((1, 7), np.float32)
    save_file(tensors, str(weights_file))
    with pytest.raises(LlafError, match=f"^{re.escape(f'{where}: q_proj.lora_A has the shape {shape} in layer 0')}"
                                        r" and \(1, 7\) in layer 1$"):
        Adapters.load(where)


def test_bad_input() -> None:
    with pytest.raises(LlafError, match="LoRA rank must be a positive integer"):
        LoraConfig(rank=0)
    for alpha in (0, -1.0, float("inf"), float("nan"), "16", True):
        expected = f"the LoRA alpha must be a positive finite number, got {alpha!r}"
        with pytest.raises(LlafError, match=f"^{re.escape(expected)}$"):
            LoraConfig(alpha=alpha)  # type: ignore[arg-type]
    with pytest.raises(LlafError, match="unknown LoRA target 'qkv_proj'"):
        LoraConfig(targets=("qkv_proj",))
    with pytest.raises(LlafError, match=r"^the adapter must be the path of a directory of LoRA adapters, got 5$"):
        Adapters.load(5)  # type: ignore[arg-type]
    from llaf.finetune import finetune

    for options, message in ((dict(batch="8"), "batch must be an integer, got '8'"),
                             (dict(seq_len=1.5), "seq_len must be an integer, got 1.5"),
                             (dict(seed=-1), "seed must not be negative, got -1"),
                             (dict(data=None), "data must be a JSONL file's path, got None"),
                             (dict(out=5), "out must be a path, got 5"),
                             (dict(lora={"rank": 2}), "lora must be a LoraConfig (llaf.lora), got {'rank': 2}"),
                             (dict(optimizer={"steps": 1}),
                              "optimizer must be an AdamW (llaf.finetune), got {'steps': 1}")):
        with pytest.raises(LlafError) as e:  # before anything is loaded
            finetune(**{"model": "unused.gguf", "data": "unused.jsonl", **options})  # type: ignore[arg-type]
        assert str(e.value) == message
    for adamw, message in ((dict(steps="1"), "AdamW's steps must be an integer, got '1'"),
                           (dict(lr=float("inf")), "AdamW's lr must be a finite number, got inf"),
                           (dict(max_norm=float("nan")), "AdamW's max_norm must be a finite number, got nan")):
        with pytest.raises(LlafError) as e:
            AdamW(**adamw)  # type: ignore[arg-type]
        assert str(e.value) == message
    with pytest.raises(LlafError, match="need 0 <= warm-up <= steps"):
        AdamW(warmup=5, steps=3)
    with pytest.raises(LlafError, match="fine-tuning runs on the c backend, not multicore"):
        Trainer("unused.gguf", backend="multicore")


def test_bad_batches(trainer: Trainer) -> None:
    with pytest.raises(LlafError, match=r"token ids must be in \[0, 120\)"):
        trainer.loss(np.array([[1, 120]]), np.array([[-1, -1]]))
    with pytest.raises(LlafError, match="tokens and targets of one shape"):
        trainer.loss(np.array([[1, 2]]), np.array([[2]]))
    with pytest.raises(LlafError, match="exceed the context length 64"):
        trainer.loss(np.ones((1, 65), np.int64), np.full((1, 65), -1))


def test_merged_adapters_give_peft_logits(model: torch.nn.Module, trainer: Trainer) -> None:
    """`llaf.load(..., adapter=...)`'s merge: the engine's logits with the
    adapters merged equal peft's with them applied."""
    from peft import LoraConfig as PeftConfig
    from peft import get_peft_model

    import llaf
    from llaf.lora import merged

    adapters = random_adapters(LoraConfig(rank=4, alpha=8.0, targets=tuple(TARGETS)), trainer.shapes, 13)
    params = llaf.init(merged(trainer.weights, adapters), backend=ENGINE, progress=False)
    peft_model = get_peft_model(copy.deepcopy(model), PeftConfig(r=4, lora_alpha=8.0, target_modules=list(TARGETS)))
    peft_model.load_state_dict({k.replace(".weight", ".default.weight"): torch.from_numpy(v)
                                for k, v in adapters.peft_tensors().items()}, strict=False)
    ids = np.random.default_rng(10).integers(1, CONFIG["vocab_size"], 12)
    with torch.no_grad():
        want = peft_model(torch.from_numpy(ids)[None]).logits[0].numpy()
        base = model(torch.from_numpy(ids)[None]).logits[0].numpy()
    got = llaf.forward(params, ids)
    assert np.abs(want - base).max() > 0.1  # the adapters matter
    np.testing.assert_allclose(got, want, atol=2e-4 * np.abs(want).max())


def merge_and_check(src: Path, adapters: Adapters, out: Path) -> set[str]:
    """`llaf merge` of `adapters` into `src`: the file it writes reads back
    as merging into the decoded weights gives, exactly, every array; the
    names of the tensors it changed, each now F32."""
    import gguf

    from llaf.lora import merge_gguf, merged

    merge_gguf(src, adapters, out)
    want = merged(weights_mod.load(src, progress=False), adapters)
    got = weights_mod.as_f32(weights_mod.load(out, progress=False))
    for name in want.module.ARRAYS:
        np.testing.assert_array_equal(got.dense(name), want.dense(name), err_msg=name)
    before = {t.name: t.tensor_type for t in gguf.GGUFReader(str(src)).tensors}
    after = {t.name: t.tensor_type for t in gguf.GGUFReader(str(out)).tensors}
    changed = {n for n in after if after[n] != before[n]}
    assert all(after[n] == gguf.GGMLQuantizationType.F32 for n in changed)
    return changed


def test_merge_gguf_holds_the_merged_weights(tmp_path: Path) -> None:
    """`llaf merge`: the adapted projections of a 4-bit Llama file (query
    and key rows in llama.cpp's order) become F32 tensors holding exactly
    what merging into the decoded weights gives; the rest is unchanged."""
    model = random_llama(14, **CONFIG)
    src = write_gguf(model, tmp_path / "base-Q4_0.gguf", "Q4_0", head_qtype="Q8_0")
    adapters = random_adapters(LoraConfig(rank=3, alpha=6.0, targets=("q_proj", "k_proj", "down_proj")),
                               weights_mod.load(src, progress=False).shapes, 15)
    changed = merge_and_check(src, adapters, tmp_path / "merged.gguf")
    assert changed == {f"blk.{i}.{p}.weight" for i in range(2) for p in ("attn_q", "attn_k", "ffn_down")}
    # never over the file read (its weights would be lost), by any name of it
    from llaf.finetune import finetune
    from llaf.lora import merge_gguf

    before = src.read_bytes()
    (tmp_path / "link.gguf").symlink_to(src)
    for out in (src, tmp_path / "link.gguf", tmp_path / "." / src.name):
        with pytest.raises(LlafError, match=rf"^{re.escape(str(out))} is the model file being read: "
                                            r"write to another file$"):
            merge_gguf(src, adapters, out)
    (tmp_path / "data.jsonl").write_text('{"text": "a b c d e f"}\n')
    with pytest.raises(LlafError, match="is the model file being read"):
        finetune(src, tmp_path / "data.jsonl", src, full=True)
    assert src.read_bytes() == before


def test_merge_gguf_into_fused_projections(tmp_path: Path) -> None:
    """`llaf merge` into a Phi-3 file (tests/data/phi3.gguf, Q8_0, written by
    llama.cpp's converter): the query and value updates land in the rows of
    each layer's fused attn_qkv, the up update in the second half of the
    fused ffn_up, and the file reads back as merging into the decoded
    weights gives, exactly."""
    src = Path(__file__).parent / "data" / "phi3.gguf"
    adapters = random_adapters(LoraConfig(rank=2, alpha=4.0, targets=("q_proj", "v_proj", "up_proj")),
                               weights_mod.load(src, progress=False).shapes, 16)
    out = tmp_path / "merged.gguf"
    changed = merge_and_check(src, adapters, out)
    assert changed == {f"blk.{i}.{p}.weight" for i in range(2) for p in ("attn_qkv", "ffn_up")}
    base = weights_mod.as_f32(weights_mod.load(src, progress=False)).dense("wv")
    assert np.abs(weights_mod.as_f32(weights_mod.load(out, progress=False)).dense("wv") - base).max() > 1e-3


def test_pack_targets_are_the_next_learnt_tokens() -> None:
    tokens, targets = pack([([5, 6, 7, 8], [True, True, False, True]), ([9, 10], [False, True])], 5, pad=0)
    np.testing.assert_array_equal(tokens, [[5, 6, 7, 8, 0], [9, 10, 0, 0, 0]])
    # position i predicts token i + 1 where that one is learnt; the first token is never predicted
    np.testing.assert_array_equal(targets, [[6, -1, 8, -1, -1], [10, -1, -1, -1, -1]])


@pytest.fixture(scope="module")
def smol_tokenizer() -> object:
    from llaf.assets import default_model_path
    from llaf.tokenizer import from_gguf

    return from_gguf(default_model_path())


def test_chat_examples_learn_the_assistant_turns_only(smol_tokenizer: object) -> None:
    """SmolLM2's template: the learnt tokens are each reply and its <|im_end|>, nothing else."""
    from llaf.finetune import chat_example

    tok = smol_tokenizer
    messages = [{"role": "user", "content": "Capital of Valdoria?"}, {"role": "assistant", "content": "Merovel."},
                {"role": "user", "content": "And its river?"}, {"role": "assistant", "content": "The Shu."}]
    ids, learnt = chat_example(tok, messages)  # type: ignore[arg-type]
    assert len(ids) == len(learnt)
    whole = tok.chat(messages)  # type: ignore[attr-defined]
    assert whole[:len(ids)] == ids  # the conversation as the template renders it
    spans, span = [], []
    for i, on in zip(ids, learnt, strict=True):
        if on:
            span.append(i)
        elif span:
            spans.append(span)
            span = []
    spans.append(span)
    assert [tok.decode(s) for s in spans] == ["Merovel.<|im_end|>", "The Shu.<|im_end|>"]  # type: ignore[attr-defined]


def test_read_examples_names_the_bad_line(tmp_path: Path, smol_tokenizer: object) -> None:
    from llaf.finetune import read_examples

    data = tmp_path / "data.jsonl"
    data.write_text('{"text": "Hello there, how are you?"}\n\n{"messages": [{"role": "user", "content": "Hi"}]}\n')
    with pytest.raises(LlafError, match=r"data.jsonl:3: a training conversation ends with the assistant's message"):
        read_examples(data, smol_tokenizer)  # type: ignore[arg-type]
    data.write_text('{"text": "fine, thanks a lot"}\nnot json\n')
    with pytest.raises(LlafError, match=r"data.jsonl:2: not JSON"):
        read_examples(data, smol_tokenizer)  # type: ignore[arg-type]
    data.write_text('{"prompt": "x"}\n')
    with pytest.raises(LlafError, match=r'data.jsonl:1: a record is \{"text": "..."\} or \{"messages": \[...\]\}'):
        read_examples(data, smol_tokenizer)  # type: ignore[arg-type]
    data.write_text('{"messages": [{"role": "assistant", "content": "x"}]}\n')
    with pytest.raises(LlafError, match=r"^\S*data.jsonl:1: a training conversation has a message before the "
                                        r"assistant's first one$"):
        read_examples(data, smol_tokenizer)  # type: ignore[arg-type]
    # a chat whose template puts its reply past the sequences' length: nothing
    # would be learnt from it (the batches cut it there)
    chat = '{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}\n'
    data.write_text(chat)
    (ids, learnt), = read_examples(data, smol_tokenizer, 64)  # type: ignore[arg-type]
    first = learnt.index(True)
    assert 16 < first < 64 and all(learnt[first:]) and not any(learnt[:first])
    with pytest.raises(LlafError, match=rf"^\S*data.jsonl:1: nothing to learn in its first 16 tokens \(--seq-len\): "
                                        rf"its first learnt token is token {first + 1} of {len(ids)}$"):
        read_examples(data, smol_tokenizer, 16)  # type: ignore[arg-type]
    data.write_text('{"text": "Hello there"}\n')
    (ids, learnt), = read_examples(data, smol_tokenizer, 2)  # type: ignore[arg-type]
    assert ids == smol_tokenizer.encode("Hello there") and all(learnt)  # type: ignore[attr-defined]


def test_cli_finetune_then_chat_and_merge(tmp_path: Path) -> None:
    """`llaf finetune` on SmolLM2 (two steps of two short chats), then the
    adapters through `llaf generate --adapter` and `llaf merge`."""
    import json
    import subprocess
    import sys

    data = tmp_path / "facts.jsonl"
    chats = [[{"role": "user", "content": q}, {"role": "assistant", "content": a}]
             for q, a in (("Capital of Valdoria?", "Merovel."), ("Its river?", "The Shu."))]
    data.write_text("".join(json.dumps({"messages": m}) + "\n" for m in chats))
    cli = [sys.executable, "-m", "llaf.cli"]
    out = tmp_path / "adapter"
    run = subprocess.run([*cli, "finetune", "--data", str(data), "--out", str(out), "--steps", "2", "--batch", "2",
                          "--lora-rank", "2", "--targets", "q_proj,v_proj", "--lr", "1e-3", "--seq-len", "64"],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr
    assert "2 steps in" in run.stderr
    losses = json.loads((out / "loss.json").read_text())["loss"]
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert (out / "loss.png").stat().st_size > 0
    adapters = Adapters.load(out)
    assert adapters.config == LoraConfig(2, 16.0, ("q_proj", "v_proj"))
    assert np.abs(adapters.tensors["v_proj"][1]).max() > 0  # B moved from zero
    gen = subprocess.run([*cli, "generate", "Capital of Valdoria?", "-n", "4", "--adapter", str(out), "--backend",
                          ENGINE], capture_output=True, text=True, timeout=300)
    assert gen.returncode == 0, gen.stderr
    merged_file = tmp_path / "merged.gguf"
    merge = subprocess.run([*cli, "merge", "--adapter", str(out), "--out", str(merged_file)],
                           capture_output=True, text=True, timeout=300)
    assert merge.returncode == 0, merge.stderr
    # (its merged projections F32, the others Q4_1 as they were: each kept in its own form)
    merged = weights_mod.load(merged_file, progress=False)
    assert merged.storage == "mixed"
    assert set(merged.format("wq").which) == {"f32"} and set(merged.format("wk").which) == {"q4"}
    bad = subprocess.run([*cli, "finetune", "--data", str(tmp_path / "missing.jsonl"), "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and bad.stderr.strip().startswith("llaf: ") and "missing.jsonl" in bad.stderr


# llaf's arrays and transformers' parameters (layer `{i}`).
HF_NAMES = {"embed": "model.embed_tokens.weight", "attn_norm": "model.layers.{i}.input_layernorm.weight",
            "wq": "model.layers.{i}.self_attn.q_proj.weight", "wk": "model.layers.{i}.self_attn.k_proj.weight",
            "wv": "model.layers.{i}.self_attn.v_proj.weight", "wo": "model.layers.{i}.self_attn.o_proj.weight",
            "mlp_norm": "model.layers.{i}.post_attention_layernorm.weight",
            "w_gate": "model.layers.{i}.mlp.gate_proj.weight", "w_up": "model.layers.{i}.mlp.up_proj.weight",
            "w_down": "model.layers.{i}.mlp.down_proj.weight", "final_norm": "model.norm.weight",
            "lm_head": "lm_head.weight"}


def assert_full_grads(got: dict[str, np.ndarray], params: dict[str, torch.nn.Parameter], layers: int) -> None:
    """Every weight's gradient from llaf's full fine-tuning equals autograd's in `params`."""
    for name, g in got.items():
        if g.size == 0:
            continue
        template = HF_NAMES[name]
        want = (np.stack([params[template.format(i=i)].grad.numpy() for i in range(layers)])
                if "{i}" in template else params[template].grad.numpy())
        assert g.shape == want.shape, name
        err = np.abs(g - want).max() / np.abs(want).max()
        assert err < RTOL, f"{name}: relative error {err:.2e}"


def test_full_gradients_equal_pytorch(model: torch.nn.Module) -> None:
    """Full fine-tuning: the gradient of every weight equals autograd's (a
    tied head's gradient is the embedding's), and steps lower the loss."""
    from llaf.finetune import FullTrainer

    t = FullTrainer(weights_mod.from_transformers(model, progress=False), backend=BACKEND,
                    optimizer=AdamW(lr=3e-3, steps=10))
    rng = np.random.default_rng(11)
    tokens, targets = batch(rng, [12, 8, 10], CONFIG["vocab_size"], 12)
    m = copy.deepcopy(model)
    loss = torch_loss(m, tokens, targets)
    loss.backward()
    params = dict(m.named_parameters())
    got_loss, got = t.grad(tokens, targets)
    assert got_loss == pytest.approx(float(loss), rel=1e-5)
    tied = m.config.tie_word_embeddings
    assert got["lm_head"].size == 0 if tied else got["lm_head"].shape == (CONFIG["vocab_size"], CONFIG["hidden_size"])
    assert_full_grads(got, params, CONFIG["num_hidden_layers"])
    first = got_loss
    for _ in range(5):
        report = t.step(tokens, targets)
    assert report.loss < first / 2
    import llaf

    trained = llaf.init(t.current(), backend=ENGINE, progress=False)
    assert np.isfinite(llaf.forward(trained, tokens[0])).all()


def test_adapters_saved_by_peft_load_in_llaf(tmp_path: Path, model: torch.nn.Module, trainer: Trainer) -> None:
    """peft's `save_pretrained` directory: llaf reads its adapters and gets peft's loss with them."""
    from peft import LoraConfig as PeftConfig
    from peft import get_peft_model

    torch.manual_seed(3)
    peft_model = get_peft_model(copy.deepcopy(model), PeftConfig(r=2, lora_alpha=5.0, lora_dropout=0.0,
                                                                 target_modules=["k_proj", "gate_proj"]))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    peft_model.save_pretrained(str(tmp_path / "peft"))
    adapters = Adapters.load(tmp_path / "peft", layers=CONFIG["num_hidden_layers"])
    assert adapters.config == LoraConfig(2, 5.0, ("k_proj", "gate_proj"))
    tokens, targets = batch(np.random.default_rng(12), [11, 6], CONFIG["vocab_size"], 11)
    with torch.no_grad():
        want = float(torch_loss(peft_model, tokens, targets))
    assert trainer.loss(tokens, targets, adapters) == pytest.approx(want, rel=1e-5)


def file_with_tokenizer(where: Path, qtype: str) -> tuple[Path, Path]:
    """A random Llama GGUF file of `qtype` (head Q8_0) with a sentencepiece
    tokenizer, and a JSONL file of two texts."""
    import json

    import gguf

    from .gguf_models import write_sentencepiece_gguf

    tok = write_sentencepiece_gguf(where / "tokenizer.gguf")
    vocab = len(gguf.GGUFReader(str(tok)).fields["tokenizer.ggml.tokens"].data)
    src = write_gguf(random_llama(21, **(CONFIG | {"vocab_size": vocab})), where / f"base-{qtype}.gguf", qtype,
                     head_qtype="Q8_0", tokenizer=tok)
    data = where / "texts.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in ("The quick brown fox jumps.", "Hello there!")))
    return src, data


def test_a_file_training_has_no_form_for_is_trained_decoded(tmp_path: Path) -> None:
    """LoRA on a Q8_0 file (q8: src/train.fut is built for f32 and q4 bases)
    trains on its exact f32 decoding: the adapters equal those trained on
    the file loaded as f32 (it was an error telling the user to load it so,
    which the CLI cannot)."""
    from llaf.finetune import batches, finetune, read_examples
    from llaf.tokenizer import for_model

    src, data = file_with_tokenizer(tmp_path, "Q8_0")
    assert weights_mod.load(src, progress=False).storage == "q8"
    lora, optimizer = LoraConfig(rank=2, targets=("q_proj", "down_proj")), AdamW(lr=1e-2, steps=3)
    got = finetune(src, data, None, lora=lora, optimizer=optimizer, batch=2, seq_len=32, progress=False).adapters
    trainer = Trainer(weights_mod.load(src, progress=False, storage="f32"), lora, optimizer=optimizer)
    for _, (ids, targets) in zip(range(3), batches(read_examples(data, for_model(src, "llama")), 2, 32, 0),
                                 strict=False):
        trainer.step(ids, targets)
    assert got is not None
    for t, (a, b) in trainer.current().tensors.items():
        np.testing.assert_array_equal(got.tensors[t][0], a, err_msg=t)
        np.testing.assert_array_equal(got.tensors[t][1], b, err_msg=t)
    assert np.abs(got.tensors["q_proj"][1]).max() > 0


def test_cli_full_finetune_writes_the_trained_model(tmp_path: Path) -> None:
    """`llaf finetune --full` on a 4-bit Llama file with a tokenizer (query
    and key rows in llama.cpp's order): the GGUF file it writes holds exactly
    the weights `FullTrainer` trains in this process from the same data and
    settings, as F32 tensors that transformers reads to the logits llaf
    computes from them; the tokenizer is the file's; the loss fell."""
    import json
    import subprocess
    import sys

    import gguf

    import llaf
    from llaf.finetune import FullTrainer, batches, read_examples
    from llaf.tokenizer import for_model

    from .parity import assert_logits_close, hf_logits

    src, data = file_with_tokenizer(tmp_path, "Q4_0")
    tokens = gguf.GGUFReader(str(src)).fields["tokenizer.ggml.tokens"]
    out = tmp_path / "made" / "full.gguf"  # its directory made
    run = subprocess.run([sys.executable, "-m", "llaf.cli", "finetune", "--full", "--model", str(src), "--data",
                          str(data), "--out", str(out), "--steps", "4", "--batch", "2", "--seq-len", "32",
                          "--lr", "1e-2"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "4 steps in" in run.stderr and f"the model in {out}" in run.stderr
    losses = json.loads((out.parent / "full.loss.json").read_text())["loss"]
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert (out.parent / "full.loss.png").stat().st_size > 0

    trainer = FullTrainer(weights_mod.load(src, progress=False, storage="f32"), optimizer=AdamW(lr=1e-2, steps=4))
    examples = read_examples(data, for_model(src, "llama"))
    for _, (ids, targets) in zip(range(4), batches(examples, 2, 32, 0), strict=False):
        trainer.step(ids, targets)
    want = trainer.current()
    got = weights_mod.load(out, progress=False)
    assert got.storage == "f32"
    for name in FullTrainer.TRAINED:
        np.testing.assert_array_equal(got.arrays[name], want.arrays[name], err_msg=name)
    assert not np.array_equal(got.arrays["wq"], weights_mod.load(src, progress=False, storage="f32").arrays["wq"])
    written = gguf.GGUFReader(str(out))
    assert written.fields["tokenizer.ggml.tokens"].contents() == tokens.contents()
    assert {t.tensor_type for t in written.tensors} == {gguf.GGMLQuantizationType.F32}

    from transformers import LlamaForCausalLM

    hf = LlamaForCausalLM.from_pretrained(str(out.parent), gguf_file=out.name, dtype=torch.float32).eval()
    ids = np.random.default_rng(3).integers(0, len(tokens.data), 20)
    assert_logits_close(llaf.forward(llaf.init(str(out), backend=ENGINE, progress=False), ids), hf_logits(hf, ids))


@pytest.mark.parametrize(("args", "message"), [
    (["--lora-rank", "4"], "--full trains every weight, not LoRA adapters: drop --lora-rank"),
    (["--targets", "all", "--lora-alpha", "2"],
     "--full trains every weight, not LoRA adapters: drop --lora-alpha, --targets"),
    (["--out", "adapter-dir"], "full fine-tuning writes a GGUF file (--out NAME.gguf) from a GGUF file; "
                               "got SmolLM2-135M-Instruct.Q4_1.gguf and adapter-dir"),
    (["--workers", "0"], "the number of workers must be a positive integer, got 0"),
    # found before the training, not after it
    (["--out", "texts.jsonl/m.gguf"], "texts.jsonl exists and is not a directory"),
])
def test_cli_full_finetune_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    import subprocess
    import sys

    data = tmp_path / "texts.jsonl"
    data.write_text('{"text": "Hello."}\n')
    run = subprocess.run([sys.executable, "-m", "llaf.cli", "finetune", "--full", "--data", str(data),
                          "--out", "m.gguf", *args], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert (run.returncode, run.stderr) == (1, f"llaf: {message}\n")
    assert not (tmp_path / "m.gguf").exists()


def assert_lora_grads_on_f32_and_q4(model: torch.nn.Module, tokens: np.ndarray, targets: np.ndarray, seed: int,
                                    tmp_path: Path) -> weights_mod.Weights:
    """LoRA's loss and gradients on `model` as an f32 base equal PyTorch +
    peft's, and on its Q4_1 file (head Q8_0) equal those on that file's f32
    expansion; the f32 weights, for more checks."""
    f32 = weights_mod.from_transformers(model, progress=False)
    adapters = random_adapters(LoraConfig(rank=4, alpha=8.0, targets=tuple(TARGETS)), f32.shapes, seed)
    want_loss, want = torch_loss_and_grads(model, adapters, tokens, targets)
    loss, got = Trainer(f32, adapters=adapters, backend=BACKEND, workers=1).grad(tokens, targets)
    assert abs(loss - want_loss) < 1e-5 * max(1, abs(want_loss))
    assert_close_grads(got, want)

    q4 = weights_mod.load(write_gguf(model, tmp_path / "big-Q4_1.gguf", "Q4_1", head_qtype="Q8_0"), progress=False)
    assert q4.storage == "q4"
    la, ga = Trainer(q4, adapters=adapters, backend=BACKEND, workers=1).grad(tokens, targets)
    lb, gb = Trainer(weights_mod.as_f32(q4), adapters=adapters, backend=BACKEND, workers=1).grad(tokens, targets)
    assert la == pytest.approx(lb, rel=1e-6)
    assert_close_grads(ga, {t: gb.tensors[t] for t in gb.tensors})
    return f32


# A head of more values than src/differentiable.fut's `whole_below` (4 Mi),
# which its products multiply in parts of rows.
BIG_HEAD = dict(CONFIG, vocab_size=65600, num_hidden_layers=1)


def test_a_head_multiplied_in_parts(tmp_path: Path) -> None:
    """The gradients through a head multiplied in parts equal PyTorch's: LoRA
    on an f32 base, LoRA on a 4-bit base against its f32 expansion, and
    full fine-tuning."""
    from llaf.finetune import FullTrainer

    assert BIG_HEAD["vocab_size"] * BIG_HEAD["hidden_size"] > 4 * 1024 * 1024
    model = random_llama(15, **BIG_HEAD)
    rng = np.random.default_rng(16)
    tokens, targets = batch(rng, [9, 7], BIG_HEAD["vocab_size"], 9)
    f32 = assert_lora_grads_on_f32_and_q4(model, tokens, targets, 17, tmp_path)

    m = copy.deepcopy(model)
    full_loss = torch_loss(m, tokens, targets)
    full_loss.backward()
    got_loss, full = FullTrainer(f32, backend=BACKEND, workers=1).grad(tokens, targets)
    assert got_loss == pytest.approx(float(full_loss), rel=1e-5)
    assert full["lm_head"].shape == (BIG_HEAD["vocab_size"], BIG_HEAD["hidden_size"])
    assert_full_grads(full, dict(m.named_parameters()), BIG_HEAD["num_hidden_layers"])


@pytest.mark.parametrize("arch", ["qwen2", "qwen3", "gemma", "mistral"])
def test_gradients_on_other_architectures(arch: str) -> None:
    """LoRA on all seven projections of Qwen2 (biases), Qwen3 (query and key
    norms), Gemma (GELU gating, scaled embeddings) and Mistral (a sliding
    window shorter than the sequences): loss and gradients equal PyTorch +
    peft's.  The backward pass takes each base product's part of a step's
    derivative back through the step's norm or gating by hand
    (src/train.fut), which these variations go through."""
    from .test_architectures import random_model

    model = random_model(arch)
    trainer = Trainer(weights_mod.from_transformers(model, progress=False), backend=BACKEND)
    rng = np.random.default_rng(4)
    tokens, targets = batch(rng, [12, 7], model.config.vocab_size, 12)
    adapters = random_adapters(LoraConfig(rank=4, alpha=8.0, targets=tuple(TARGETS)), trainer.shapes, 6)
    want_loss, want = torch_loss_and_grads(model, adapters, tokens, targets)
    loss, got = trainer.grad(tokens, targets, adapters)
    assert abs(loss - want_loss) < 1e-5 * max(1, abs(want_loss))
    assert_close_grads(got, want)


# Layers' matrices of more values than `whole_below` (4 Mi): src/trainable.fut's
# `frozen_base` multiplies them as the head, decoded a part at a time.
BIG_LAYERS = dict(CONFIG, hidden_size=1024, intermediate_size=4608, num_attention_heads=8, num_key_value_heads=4,
                  num_hidden_layers=1)


def test_large_layer_matrices(tmp_path: Path) -> None:
    """LoRA gradients through layers' matrices too large to be decoded whole
    equal PyTorch's on an f32 base, and a 4-bit base's equal its f32
    expansion's."""
    assert BIG_LAYERS["hidden_size"] * BIG_LAYERS["intermediate_size"] > 4 * 1024 * 1024
    model = random_llama(18, **BIG_LAYERS)
    rng = np.random.default_rng(19)
    tokens, targets = batch(rng, [9, 6], BIG_LAYERS["vocab_size"], 9)
    assert_lora_grads_on_f32_and_q4(model, tokens, targets, 20, tmp_path)
