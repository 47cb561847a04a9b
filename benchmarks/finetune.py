"""Fine-tuning speed: llaf (src/train.fut, the c backend) beside PyTorch +
peft on the same model, data, LoRA rank, targets and batch, each in a
process of its own (its peak memory its own); `--full`: every weight
trained in f32 by both (llaf's `FullTrainer`, PyTorch's AdamW on all
parameters).

    .venv/bin/python benchmarks/finetune.py [--model FILE.gguf] [--steps N] [--batch B] [--seq-len L]
        [--rank R] [--targets q_proj,v_proj] [--full] [--rounds K] [--json OUT.json]

The batches are random token sequences (speed does not depend on the
values); every token after the first is learnt.  Prints tokens/s (steps
after the first, which includes one-off work) and peak RSS for each.
With `--rounds K` the two alternate K times and the ratio is the median of
the rounds' ratios: a shared host's speed moves by tens of percent within
minutes (docs/PERFORMANCE.md, "Fine-tuning").
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def batches(vocab: int, steps: int, batch: int, seq_len: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(steps):
        tokens = rng.integers(1, vocab, (batch, seq_len))
        targets = np.concatenate([tokens[:, 1:], np.full((batch, 1), -1)], axis=1)
        out.append((tokens.astype(np.int64), targets.astype(np.int64)))
    return out


def run_llaf(args: argparse.Namespace) -> dict[str, float]:
    from llaf import weights as weights_mod
    from llaf.finetune import AdamW, FullTrainer, Trainer
    from llaf.lora import LoraConfig, targets_of

    w = weights_mod.load(args.model, progress=False, storage="f32" if args.full else None)
    optimizer = AdamW(lr=1e-4, steps=args.steps)
    t = (FullTrainer(w, optimizer=optimizer) if args.full else
         Trainer(w, LoraConfig(args.rank, 2.0 * args.rank, targets_of(args.targets)), optimizer=optimizer))
    times = []
    for tokens, targets in batches(w.vocab, args.steps, args.batch, args.seq_len):
        start = time.perf_counter()
        t.step(tokens, targets)
        times.append(time.perf_counter() - start)
    return {"storage": w.storage, "first_step_s": times[0], "step_s": float(np.median(times[1:])),
            "tokens_per_s": args.batch * args.seq_len / float(np.median(times[1:]))}


def run_torch(args: argparse.Namespace) -> dict[str, float]:
    import torch
    from peft import LoraConfig as PeftConfig
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from llaf.lora import targets_of

    path = Path(args.model)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    if not args.full:
        model = get_peft_model(model, PeftConfig(r=args.rank, lora_alpha=2.0 * args.rank, lora_dropout=0.0,
                                                 target_modules=list(targets_of(args.targets))))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    times = []
    for tokens, targets in batches(model.config.vocab_size, args.steps, args.batch, args.seq_len):
        start = time.perf_counter()
        logits = model(torch.from_numpy(tokens)).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 torch.from_numpy(targets).reshape(-1), ignore_index=-1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - start)
    return {"threads": torch.get_num_threads(), "first_step_s": times[0], "step_s": float(np.median(times[1:])),
            "tokens_per_s": args.batch * args.seq_len / float(np.median(times[1:]))}


def main() -> None:
    from llaf.assets import default_model_path

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(default_model_path()))
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--targets", default="q_proj,v_proj")
    ap.add_argument("--full", action="store_true", help="train every weight (no adapters)")
    ap.add_argument("--rounds", type=int, default=1, help="alternate the two this many times")
    ap.add_argument("--json", default=None)
    ap.add_argument("--engine", choices=("llaf", "torch"), default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.engine is not None:  # one engine, in this process
        result = (run_llaf if args.engine == "llaf" else run_torch)(args)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    if args.rounds < 1:
        sys.exit("--rounds must be at least 1")
    rounds: list[dict[str, dict[str, float]]] = []
    ratios: list[float] = []
    peer = "PyTorch" if args.full else "PyTorch+peft"
    for k in range(args.rounds):
        results = {}
        for engine in ("llaf", "torch"):
            out = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--engine", engine],
                                 capture_output=True, text=True, check=False)
            if out.returncode != 0:
                sys.exit(f"{engine} failed:\n{out.stderr[-3000:]}")
            results[engine] = json.loads(out.stdout.strip().splitlines()[-1])
            r = results[engine]
            print(f"{engine:6s} {r['tokens_per_s']:8.1f} tokens/s  step {r['step_s']:.2f} s "
                  f"(first {r['first_step_s']:.2f} s)  peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
        rounds.append(results)
        ratios.append(results["llaf"]["tokens_per_s"] / results["torch"]["tokens_per_s"])
        memory = results["llaf"]["peak_rss_mb"] / results["torch"]["peak_rss_mb"]
        print(f"{'round ' + str(k + 1) + ': ' if args.rounds > 1 else ''}llaf / {peer}: {ratios[-1]:.2f}x tokens/s, "
              f"{memory:.2f}x memory", flush=True)
    if args.rounds > 1:
        print(f"llaf / {peer}: median {float(np.median(ratios)):.2f}x tokens/s over {args.rounds} rounds "
              f"({', '.join(f'{x:.2f}' for x in ratios)})")
    if args.json:
        Path(args.json).write_text(json.dumps({"settings": vars(args), "results": rounds[-1], "rounds": rounds,
                                               "median_ratio": float(np.median(ratios))}, indent=2) + "\n")


if __name__ == "__main__":
    main()
