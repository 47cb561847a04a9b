// The next token from a step's logits: greedy at temperature 0 (the first
// of the largest, as numpy's argmax and so llaf's greedy tokens), else
// sampled with temperature, top-k and top-p from a seeded generator (the
// same seed gives the same text in the browser; not the same text as
// llaf's Python side, whose generator is numpy's).

// mulberry32: a small, fast 32-bit generator, plenty for picking tokens.
function generator(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function argmax(logits) {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

// Options {temperature = 0, top_k = 0, top_p = 1, seed}, checked.
export function sampler({ temperature = 0, top_k: topK = 0, top_p: topP = 1, seed } = {}) {
  if (!(temperature >= 0)) throw new Error(`temperature must be >= 0, got ${temperature}`);
  if (!(topP > 0 && topP <= 1)) throw new Error(`top_p must be in (0, 1], got ${topP}`);
  if (!(Number.isInteger(topK) && topK >= 0)) throw new Error(`top_k must be a whole number >= 0, got ${topK}`);
  if (temperature === 0) return argmax;
  const random = generator(seed ?? Math.floor(Math.random() * 2 ** 32));
  return (logits) => {
    // The candidates, most likely first, cut to top-k.
    let order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
    if (topK > 0) order = order.slice(0, topK);
    const top = logits[order[0]];
    const weights = order.map((i) => Math.exp((logits[i] - top) / temperature));
    const total = weights.reduce((a, b) => a + b, 0);
    // Top-p: the fewest most likely tokens whose probability reaches top_p.
    let kept = 0;
    let mass = 0;
    while (kept < order.length && mass < topP * total) mass += weights[kept++];
    let r = random() * mass;
    for (let i = 0; i < kept; i++) {
      r -= weights[i];
      if (r < 0) return order[i];
    }
    return order[kept - 1];
  };
}
