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

// The k-th smallest of `xs` (from 0), reordering `xs` (Hoare's selection).
function select(xs, k) {
  let lo = 0;
  let hi = xs.length - 1;
  while (lo < hi) {
    const pivot = xs[(lo + hi) >> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (xs[i] < pivot) i++;
      while (xs[j] > pivot) j--;
      if (i <= j) {
        const x = xs[i];
        xs[i] = xs[j];
        xs[j] = x;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else break;
  }
  return xs[k];
}

// The ids of the `count` largest logits and of those tied with the last of
// them, most likely first (ties: the lower id first): sorting the whole
// vocabulary for every token cost a third of a decode step or more
// (docs/PERFORMANCE.md).
function likeliest(logits, count) {
  const n = logits.length;
  const least = count < n ? select(Float32Array.from(logits), n - count) : -Infinity;
  const ids = [];
  for (let i = 0; i < n; i++) if (logits[i] >= least) ids.push(i);
  return ids.sort((a, b) => logits[b] - logits[a] || a - b);
}

// `weight` of each of `logits` (a loop: Float64Array.from with a function
// took six times as long in Node 20).
function weighted(logits, weight) {
  const weights = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) weights[i] = weight(logits[i]);
  return weights;
}

// The sum of the first `n` of `weights`, in order.
function sum(weights, n) {
  let total = 0;
  for (let i = 0; i < n; i++) total += weights[i];
  return total;
}

// An index drawn from the first `kept` of `weights` (their sum `mass`) by
// `random`, or -1 where rounding left the draw past the last of them.
function drawn(random, weights, kept, mass) {
  let r = random() * mass;
  for (let i = 0; i < kept; i++) {
    r -= weights[i];
    if (r < 0) return i;
  }
  return -1;
}

// Options {temperature = 0, top_k = 0, top_p = 1, seed}, checked.
export function sampler({ temperature = 0, top_k: topK = 0, top_p: topP = 1, seed } = {}) {
  if (!(temperature >= 0)) throw new Error(`temperature must be >= 0, got ${temperature}`);
  if (!(topP > 0 && topP <= 1)) throw new Error(`top_p must be in (0, 1], got ${topP}`);
  if (!(Number.isInteger(topK) && topK >= 0)) throw new Error(`top_k must be a whole number >= 0, got ${topK}`);
  if (temperature === 0) return argmax;
  const random = generator(seed ?? Math.floor(Math.random() * 2 ** 32));
  return (logits) => {
    const n = logits.length;
    const top = logits[argmax(logits)];
    const weight = (x) => Math.exp((x - top) / temperature);
    const cut = topK > 0 && topK < n;
    if (!cut && topP === 1) {
      // Every token, in the vocabulary's order: nothing to sort.
      const weights = weighted(logits, weight);
      const i = drawn(random, weights, n, sum(weights, n));
      return i < 0 ? argmax(logits) : i;
    }
    // The candidates, most likely first: the top-k, or for top-p alone the
    // likeliest 64, 512, ... until they reach top_p of the whole.
    let order = cut ? likeliest(logits, topK).slice(0, topK) : [];
    let weights = order.map((i) => weight(logits[i]));
    const total = cut ? sum(weights, weights.length) : sum(weighted(logits, weight), n);
    let kept = 0;
    let mass = 0;
    for (let count = 64; ; count *= 8) {
      if (!cut) {
        order = likeliest(logits, count);
        weights = order.map((i) => weight(logits[i]));
      }
      // Top-p: the fewest most likely tokens whose probability reaches top_p.
      kept = 0;
      mass = 0;
      while (kept < order.length && mass < topP * total) mass += weights[kept++];
      if (cut || mass >= topP * total || order.length === n) break;
    }
    const i = drawn(random, weights, kept, mass);
    return order[i < 0 ? kept - 1 : i];
  };
}
