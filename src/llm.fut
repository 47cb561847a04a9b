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
module gpt2 = import "gpt2"
module llama = import "llama"

-- | Check that `n` tokens at positions `pos ..` fit in a context of `C`
-- and that every id is below `V`.
def checked [n] (V: i64) (C: i64) (pos: i64) (ids: [n]i64) : [n]i64 =
  let ids = assert (n > 0) ids
  let ids = assert (pos >= 0 && pos + n <= C) ids
  in assert (all (\t -> t >= 0 && t < V) ids) ids

-- GPT-2 ---------------------------------------------------------------------

type gpt2_params [L][V][C][d][F] = gpt2.gpt2 [L][V][C][d][F]
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
  forward (gpt2.hidden p) (gpt2.logits p) (gpt2.empty_cache p) (checked V C 0 ids)

entry gpt2_prefill [L][V][C][d][F][n] (p: gpt2_params [L][V][C][d][F]) (ids: [n]i64)
    : ([V]f32, gpt2_cache [L][] [C][]) =
  let (lg, kv) = prefill (gpt2.hidden p) (gpt2.logits p) (gpt2.empty_cache p) (checked V C 0 ids)
  in (lg, {kv})

entry gpt2_step [L][V][C][d][F][H][hd] (p: gpt2_params [L][V][C][d][F])
    (c: *gpt2_cache [L][H][C][hd]) (tok: i64) (pos: i64) : ([V]f32, *gpt2_cache [L][H][C][hd]) =
  let ids = checked V C pos [tok]
  let (lg, kv) = step (gpt2.hidden p) (gpt2.logits p) c.kv ids[0] pos
  in (lg, {kv})

entry gpt2_gen [L][V][C][d][F][n] (ids: [n]i64) (p: gpt2_params [L][V][C][d][F]) (cnt: i64) : [n + cnt]i64 =
  let cnt = assert (cnt >= 0) cnt
  let ids = checked V C 0 ids
  let ids = assert (n + cnt <= C) ids
  in greedy (gpt2.hidden p) (gpt2.hidden p) (gpt2.logits p) (gpt2.empty_cache p) ids cnt

-- Llama ---------------------------------------------------------------------

type llama_params [L][V][Vo][d][kvd][F][R] = llama.llama [L][V][Vo][d][kvd][F][R]
type llama_cache [L][H][C][hd] = {kv: kv_cache [L][H][C][hd]}

entry llama_init [L][V][Vo][d][kvd][F][R]
    (heads: i64) (kv_heads: i64) (context: i64) (eps: f32)
    (embed: [V][d]f32) (attn_norm: [L][d]f32)
    (wq: [L][d][d]f32) (wk: [L][kvd][d]f32) (wv: [L][kvd][d]f32) (wo: [L][d][d]f32)
    (mlp_norm: [L][d]f32) (w_gate: [L][F][d]f32) (w_up: [L][F][d]f32) (w_down: [L][d][F]f32)
    (final_norm: [d]f32) (lm_head: [Vo][d]f32) (inv_freq: [R]f32)
    : llama_params [L][V][Vo][d][kvd][F][R] =
  let heads = assert (heads > 0 && kv_heads > 0 && heads % kv_heads == 0) heads
  let heads = assert (d == heads * (2 * R) && kvd == kv_heads * (2 * R)) heads
  let heads = assert ((Vo == 0 || Vo == V) && context > 0) heads
  in { embed, attn_norm, wq, wk, wv, wo, mlp_norm, w_gate, w_up, w_down, final_norm,
       lm_head, inv_freq, heads, kv_heads, context, eps }

entry llama_forward [L][V][Vo][d][kvd][F][R][n] (p: llama_params [L][V][Vo][d][kvd][F][R]) (ids: [n]i64)
    : [n][V]f32 =
  forward (llama.hidden p) (llama.logits p) (llama.empty_cache p) (checked V p.context 0 ids)

entry llama_prefill [L][V][Vo][d][kvd][F][R][n] (p: llama_params [L][V][Vo][d][kvd][F][R]) (ids: [n]i64)
    : ([V]f32, llama_cache [L][] [] []) =
  let (lg, kv) = prefill (llama.hidden p) (llama.logits p) (llama.empty_cache p) (checked V p.context 0 ids)
  in (lg, {kv})

entry llama_step [L][V][Vo][d][kvd][F][R][H][C][hd] (p: llama_params [L][V][Vo][d][kvd][F][R])
    (c: *llama_cache [L][H][C][hd]) (tok: i64) (pos: i64) : ([V]f32, *llama_cache [L][H][C][hd]) =
  let ids = checked V C pos [tok]
  let (lg, kv) = step (llama.hidden p) (llama.logits p) c.kv ids[0] pos
  in (lg, {kv})

entry llama_gen [L][V][Vo][d][kvd][F][R][n] (ids: [n]i64) (p: llama_params [L][V][Vo][d][kvd][F][R]) (cnt: i64)
    : [n + cnt]i64 =
  let cnt = assert (cnt >= 0) cnt
  let ids = checked V p.context 0 ids
  let ids = assert (n + cnt <= p.context) ids
  in greedy (llama.hidden p) (llama.hidden p) (llama.logits p) (llama.empty_cache p) ids cnt
