"""Continue a prompt with GPT-2 running on llaf's Futhark engine.

    python examples/gpt2/run.py "Hello, my name is" -n 20
    python examples/gpt2/run.py "Hello" -m gpt2-medium --backend c --bench

Weights: llaf's cache (.cache/weights), else transformers (the Hugging Face
cache, or the hub when online).  --bench also runs transformers on the very
same weights and prints both timings and their ratio.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import llaf
from llaf.tokenizer import gpt2_tokenizer
from llaf.weights import load

NAMES = ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl")


def transformers_twin(weights: llaf.Weights):  # type: ignore[no-untyped-def]
    """A transformers GPT-2 holding exactly `weights`."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from llaf.gpt2 import to_state_dict

    if weights.architecture != "gpt2":
        raise llaf.LlafError(f"--bench runs GPT-2 weights, not {weights.architecture}")
    layers, ff, d = weights.arrays["wfc"].shape
    cfg = GPT2Config(vocab_size=weights.vocab, n_positions=weights.context, n_embd=d, n_layer=layers,
                     n_head=weights.hparams["heads"], n_inner=ff, layer_norm_epsilon=weights.hparams["eps"])
    model = GPT2LMHeadModel(cfg).eval()
    state = to_state_dict(weights.arrays)
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()})
    return model


def bench(weights: llaf.Weights, params: llaf.Params, ids: list[int], cnt: int) -> None:
    import torch

    twin = transformers_twin(weights)
    llaf.gen(ids, params, 1)  # warm-up: first-call set-up of the engine
    t0 = time.perf_counter()
    ours = llaf.gen(ids, params, cnt)
    t_llaf = time.perf_counter() - t0
    with torch.no_grad():
        x = torch.tensor([ids])
        twin.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=1, do_sample=False, pad_token_id=0)
        t0 = time.perf_counter()
        theirs = twin.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=cnt, min_new_tokens=cnt,
                               do_sample=False, pad_token_id=0)[0].numpy()
        t_hf = time.perf_counter() - t0
    print(f"llaf ({params.engine.backend}): {t_llaf:.3f} s, {cnt / t_llaf:.1f} tok/s")
    print(f"transformers (PyTorch CPU, f32): {t_hf:.3f} s, {cnt / t_hf:.1f} tok/s")
    print(f"llaf / transformers speed: {t_hf / t_llaf:.2f}x; same tokens: {bool(np.array_equal(ours, theirs))}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("prompt")
    # The flags are `llaf generate`'s: -m/--model, -n/--max-new-tokens, -b/--backend.
    ap.add_argument("--model", "-m", default="gpt2", help=f"{', '.join(NAMES)}, a directory or a llaf weight file")
    ap.add_argument("--max-new-tokens", "-n", type=int, default=20, help="tokens to generate (default 20)")
    ap.add_argument("--backend", "-b", default=None, help="pyopencl, c, multicore, opencl or cuda")
    ap.add_argument("--bench", action="store_true", help="also time transformers on the same weights")
    args = ap.parse_args()
    try:
        enc = gpt2_tokenizer()
        ids = enc.encode(args.prompt)
        weights = load(args.model)
        params = llaf.init(weights, backend=args.backend)
        out = llaf.gen(ids, params, args.max_new_tokens)
        print(args.prompt + enc.decode([int(t) for t in out[len(ids):]]))
        if args.bench:
            bench(weights, params, ids, args.max_new_tokens)
    except (llaf.LlafError, FileNotFoundError) as e:
        sys.exit(f"run.py: {e}")


if __name__ == "__main__":
    main()
