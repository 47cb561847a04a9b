"""Teach a model made-up facts with LoRA, and check that it learnt them.

    python examples/finetune/facts.py [--model FILE.gguf] [--steps N] [--out DIR]

Writes 40 question-answer pairs about a fictional country (answers are
invented words, so the model cannot know them before), fine-tunes LoRA
adapters on them with `llaf.finetune` (chat records: the loss is on the
answers only), and asks every question by greedy decoding before and after:
it prints the share answered exactly, and the adapters and loss curve are
left in DIR.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

ATTRIBUTES = [
    "capital", "currency", "national animal", "national flower", "longest river", "highest mountain",
    "largest lake", "national dish", "national sport", "national bird", "national tree", "oldest city",
    "largest port", "main export", "national instrument", "national dance", "national poet", "first queen",
    "founding king", "main language", "holy mountain", "summer festival", "winter festival", "national drink",
    "national stone", "national colour", "largest desert", "largest island", "national motto", "national song",
    "main airport", "largest forest", "oldest university", "national fruit", "national hero", "national insect",
    "largest bridge", "main religion", "national fish", "national cheese"]
COUNTRY = "Valdoria"
# A short system message (the template's default one is three times longer:
# every token of it costs training time).
SYSTEM = {"role": "system", "content": "Answer in one word."}


def made_up_word(rng: np.random.Generator) -> str:
    syllables = ["ka", "lo", "mer", "vi", "tan", "dor", "ri", "shu", "bel", "quo", "zan", "pe", "nor", "gal", "fi"]
    return "".join(rng.choice(syllables, 3)).capitalize()


def facts(seed: int = 0) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    return [(f"What is the {a} of {COUNTRY}?", made_up_word(rng)) for a in ATTRIBUTES]


def answered(model: object, pairs: list[tuple[str, str]]) -> float:
    right = 0
    for question, answer in pairs:
        reply = model.chat([SYSTEM, {"role": "user", "content": question}], max_new_tokens=12)  # type: ignore[attr-defined]
        right += reply.strip().rstrip(".") == answer
    return right / len(pairs)


def main() -> None:
    import llaf
    from llaf.finetune import AdamW, finetune
    from llaf.lora import LoraConfig

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="default: SmolLM2-135M-Instruct (Q4_1)")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--out", default="facts-adapter")
    args = ap.parse_args()
    pairs = facts()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = out / "facts.jsonl"
    data.write_text("".join(json.dumps({"messages": [SYSTEM, {"role": "user", "content": q},
                                                     {"role": "assistant", "content": a}]}) + "\n"
                            for q, a in pairs))
    before = answered(llaf.load(args.model), pairs)
    print(f"before: {before:.0%} answered", flush=True)
    result = finetune(args.model, data, out, lora=LoraConfig(args.rank, 2.0 * args.rank, ("q_proj", "k_proj",
                      "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")),
                      optimizer=AdamW(lr=args.lr, steps=args.steps, warmup=args.steps // 10),
                      batch=args.batch, seq_len=128)
    print(f"trained {args.steps} steps in {result.seconds:.0f} s ({result.tokens_per_second:.0f} tokens/s), "
          f"loss {result.losses[0]:.3f} -> {result.losses[-1]:.3f}", flush=True)
    after = answered(llaf.load(args.model, adapter=out), pairs)
    print(f"after: {after:.0%} answered")


if __name__ == "__main__":
    main()
