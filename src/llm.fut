-- | llaf's entry points: what Python calls.
--
-- For each architecture `A` (gpt2; llama):
--   A_init     weight arrays → an opaque parameter record
--   A_forward  params, ids → logits at every position (one pass, no reuse)
--   A_prefill  params, ids → last-position logits and a new key/value cache
--   A_step     params, cache, token, position → logits, cache updated in place
--   A_gen      ids, params, cnt → ids followed by `cnt` greedy tokens, the
--              whole loop in Futhark (prefill, then one step per token)
--
-- Context: a sequence (prompt plus generated tokens) may hold at most the
-- model's context length C tokens.  Past it these entry points fail with an
-- assertion naming the limit; they never read or write out of bounds.
-- Token ids outside the vocabulary fail the same way.

import "nn"
import "generate"
import "attention"
import "gpt2"

-- | Check that `n` tokens at positions `pos ..` fit in a context of `C`
-- and that every id is below `V`.
def checked [n] (V: i64) (C: i64) (pos: i64) (ids: [n]i64) : [n]i64 =
  let ids = assert (n > 0) ids
  let ids = assert (pos >= 0 && pos + n <= C) ids
  in assert (all (\t -> t >= 0 && t < V) ids) ids

-- GPT-2 ---------------------------------------------------------------------

type gpt2_params [L][V][C][d][F] = gpt2 [L][V][C][d][F]
type gpt2_cache [L][H][C][hd] = {kv: kv_cache [L][H][C][hd]}

entry gpt2_init [L][V][C][d][F]
    (heads: i64) (eps: f32)
    (wte: [V][d]f32) (wpe: [C][d]f32)
    (ln1_g: [L][d]f32) (ln1_b: [L][d]f32)
    (wq: [L][d][d]f32) (bq: [L][d]f32) (wk: [L][d][d]f32) (bk: [L][d]f32)
    (wv: [L][d][d]f32) (bv: [L][d]f32) (wo: [L][d][d]f32) (bo: [L][d]f32)
    (ln2_g: [L][d]f32) (ln2_b: [L][d]f32)
    (wfc: [L][F][d]f32) (bfc: [L][F]f32) (wproj: [L][d][F]f32) (bproj: [L][d]f32)
    (lnf_g: [d]f32) (lnf_b: [d]f32)
    : gpt2_params [L][V][C][d][F] =
  let heads = assert (heads > 0 && d % heads == 0) heads
  in { wte, wpe, ln1_g, ln1_b, wq, bq, wk, bk, wv, bv, wo, bo, ln2_g, ln2_b,
       wfc, bfc, wproj, bproj, lnf_g, lnf_b, heads, eps }

entry gpt2_forward [L][V][C][d][F][n] (p: gpt2_params [L][V][C][d][F]) (ids: [n]i64) : [n][V]f32 =
  let (h, _) = hidden p (empty_cache p) 0 (checked V C 0 ids)
  in map (logits p) h

entry gpt2_prefill [L][V][C][d][F][n] (p: gpt2_params [L][V][C][d][F]) (ids: [n]i64)
    : ([V]f32, gpt2_cache [L][] [C][]) =
  let (lg, kv) = prefill (hidden p) (logits p) (empty_cache p) (checked V C 0 ids)
  in (lg, {kv})

entry gpt2_step [L][V][C][d][F][H][hd] (p: gpt2_params [L][V][C][d][F])
    (c: *gpt2_cache [L][H][C][hd]) (tok: i64) (pos: i64) : ([V]f32, *gpt2_cache [L][H][C][hd]) =
  let ids = checked V C pos [tok]
  let (lg, kv) = step (hidden p) (logits p) c.kv ids[0] pos
  in (lg, {kv})

entry gpt2_gen [L][V][C][d][F][n] (ids: [n]i64) (p: gpt2_params [L][V][C][d][F]) (cnt: i64) : [n + cnt]i64 =
  let cnt = assert (cnt >= 0) cnt
  let ids = checked V C 0 ids
  let ids = assert (n + cnt <= C) ids
  in greedy (hidden p) (hidden p) (logits p) (empty_cache p) ids cnt
