-- | llaf's entry points: what Python calls.
--
-- For each architecture and weight storage `A` (gpt2; llama_f32,
-- llama_f16, llama_q8, llama_q4: see src/matrix.fut and llaf/storage.py):
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
import "matrix"
import "llama"

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
--
-- One model per storage: (per-layer projections, embedding and head).
--   llama_f32  f32, f32     transformers models, F32/BF16 GGUF files
--   llama_f16  f16, f16     F16 GGUF files
--   llama_q8   q8, q8       Q8_0 (and mixed 8/4-bit) GGUF files
--   llama_q4   q4, q8       Q4_0/Q4_1 GGUF files, e.g. SmolLM2's (Q8_0 embedding)
-- A block-format matrix arrives as three arrays: codes, scales, offsets.

module llama_f32 = llama f32_rows f32_rows
module llama_f16 = llama f16_rows f16_rows
module llama_q8 = llama q8_blocks q8_blocks
module llama_q4 = llama q4_blocks q8_blocks

type llama_cache [L][H][C][hd] = {kv: kv_cache [L][H][C][hd]}

-- | A stack of `[m][k]` block matrices from their codes, scales and offsets.
def q8s [L][m][k] (q: [L][m][k][32]u8) (s: [L][m][k]f32) (o: [L][m][k]f32) : [L](q8_blocks.mat [m][k]) =
  map3 (\q scale offset -> {q, scale, offset}) q s o

def q4s [L][m][k] (q: [L][m][k][16]u8) (s: [L][m][k]f32) (o: [L][m][k]f32) : [L](q4_blocks.mat [m][k]) =
  map3 (\q scale offset -> {q, scale, offset}) q s o

-- f32 -----------------------------------------------------------------------

type llama_f32_params [L][V][Vo][d][kvd][F][R] = llama_f32.params [L][V][Vo][d][kvd][F][R] [d][F][d]

entry llama_f32_init [L][V][Vo][d][kvd][F][R]
    (heads: i64) (kv_heads: i64) (context: i64) (eps: f32)
    (embed: [V][d]f32) (attn_norm: [L][d]f32)
    (wq: [L][d][d]f32) (wk: [L][kvd][d]f32) (wv: [L][kvd][d]f32) (wo: [L][d][d]f32)
    (mlp_norm: [L][d]f32) (w_gate: [L][F][d]f32) (w_up: [L][F][d]f32) (w_down: [L][d][F]f32)
    (final_norm: [d]f32) (lm_head: [Vo][d]f32) (inv_freq: [R]f32)
    : llama_f32_params [L][V][Vo][d][kvd][F][R] =
  llama_f32.init heads kv_heads context eps embed attn_norm wq wk wv wo mlp_norm w_gate w_up w_down
                 final_norm lm_head inv_freq

entry llama_f32_forward [L][V][Vo][d][kvd][F][R][n] (p: llama_f32_params [L][V][Vo][d][kvd][F][R]) (ids: [n]i64)
    : [n][V]f32 =
  llama_f32.run_forward p ids

entry llama_f32_prefill [L][V][Vo][d][kvd][F][R][n] (p: llama_f32_params [L][V][Vo][d][kvd][F][R]) (ids: [n]i64)
    : ([V]f32, llama_cache [L][] [] []) =
  let (lg, kv) = llama_f32.run_prefill p ids in (lg, {kv})

entry llama_f32_step [L][V][Vo][d][kvd][F][R][H][C][hd] (p: llama_f32_params [L][V][Vo][d][kvd][F][R])
    (c: *llama_cache [L][H][C][hd]) (tok: i64) (pos: i64) : ([V]f32, *llama_cache [L][H][C][hd]) =
  let (lg, kv) = llama_f32.run_step p c.kv tok pos in (lg, {kv})

entry llama_f32_gen [L][V][Vo][d][kvd][F][R][n] (ids: [n]i64) (p: llama_f32_params [L][V][Vo][d][kvd][F][R])
    (cnt: i64) : [n + cnt]i64 =
  llama_f32.run_gen ids p cnt

-- f16 -----------------------------------------------------------------------

type llama_f16_params [L][V][Vo][d][kvd][F][R] = llama_f16.params [L][V][Vo][d][kvd][F][R] [d][F][d]

entry llama_f16_init [L][V][Vo][d][kvd][F][R]
    (heads: i64) (kv_heads: i64) (context: i64) (eps: f32)
    (embed: [V][d]u16) (attn_norm: [L][d]f32)
    (wq: [L][d][d]u16) (wk: [L][kvd][d]u16) (wv: [L][kvd][d]u16) (wo: [L][d][d]u16)
    (mlp_norm: [L][d]f32) (w_gate: [L][F][d]u16) (w_up: [L][F][d]u16) (w_down: [L][d][F]u16)
    (final_norm: [d]f32) (lm_head: [Vo][d]u16) (inv_freq: [R]f32)
    : llama_f16_params [L][V][Vo][d][kvd][F][R] =
  llama_f16.init heads kv_heads context eps embed attn_norm wq wk wv wo mlp_norm w_gate w_up w_down
                 final_norm lm_head inv_freq

entry llama_f16_forward [L][V][Vo][d][kvd][F][R][n] (p: llama_f16_params [L][V][Vo][d][kvd][F][R]) (ids: [n]i64)
    : [n][V]f32 =
  llama_f16.run_forward p ids

entry llama_f16_prefill [L][V][Vo][d][kvd][F][R][n] (p: llama_f16_params [L][V][Vo][d][kvd][F][R]) (ids: [n]i64)
    : ([V]f32, llama_cache [L][] [] []) =
  let (lg, kv) = llama_f16.run_prefill p ids in (lg, {kv})

entry llama_f16_step [L][V][Vo][d][kvd][F][R][H][C][hd] (p: llama_f16_params [L][V][Vo][d][kvd][F][R])
    (c: *llama_cache [L][H][C][hd]) (tok: i64) (pos: i64) : ([V]f32, *llama_cache [L][H][C][hd]) =
  let (lg, kv) = llama_f16.run_step p c.kv tok pos in (lg, {kv})

entry llama_f16_gen [L][V][Vo][d][kvd][F][R][n] (ids: [n]i64) (p: llama_f16_params [L][V][Vo][d][kvd][F][R])
    (cnt: i64) : [n + cnt]i64 =
  llama_f16.run_gen ids p cnt

-- q8 ------------------------------------------------------------------------

type llama_q8_params [L][V][Vo][d][kvd][F][R][dk][Fk] = llama_q8.params [L][V][Vo][d][kvd][F][R] [dk][Fk][dk]

entry llama_q8_init [L][V][Vo][d][kvd][F][R][dk][Fk]
    (heads: i64) (kv_heads: i64) (context: i64) (eps: f32)
    (embed_q: [V][dk][32]u8) (embed_s: [V][dk]f32) (embed_o: [V][dk]f32) (attn_norm: [L][d]f32)
    (wq_q: [L][d][dk][32]u8) (wq_s: [L][d][dk]f32) (wq_o: [L][d][dk]f32)
    (wk_q: [L][kvd][dk][32]u8) (wk_s: [L][kvd][dk]f32) (wk_o: [L][kvd][dk]f32)
    (wv_q: [L][kvd][dk][32]u8) (wv_s: [L][kvd][dk]f32) (wv_o: [L][kvd][dk]f32)
    (wo_q: [L][d][dk][32]u8) (wo_s: [L][d][dk]f32) (wo_o: [L][d][dk]f32)
    (mlp_norm: [L][d]f32)
    (w_gate_q: [L][F][dk][32]u8) (w_gate_s: [L][F][dk]f32) (w_gate_o: [L][F][dk]f32)
    (w_up_q: [L][F][dk][32]u8) (w_up_s: [L][F][dk]f32) (w_up_o: [L][F][dk]f32)
    (w_down_q: [L][d][Fk][32]u8) (w_down_s: [L][d][Fk]f32) (w_down_o: [L][d][Fk]f32)
    (final_norm: [d]f32)
    (lm_head_q: [Vo][dk][32]u8) (lm_head_s: [Vo][dk]f32) (lm_head_o: [Vo][dk]f32) (inv_freq: [R]f32)
    : llama_q8_params [L][V][Vo][d][kvd][F][R][dk][Fk] =
  let heads = assert (d == dk * 32 && F == Fk * 32) heads
  in llama_q8.init heads kv_heads context eps {q = embed_q, scale = embed_s, offset = embed_o} attn_norm
                   (q8s wq_q wq_s wq_o) (q8s wk_q wk_s wk_o) (q8s wv_q wv_s wv_o) (q8s wo_q wo_s wo_o) mlp_norm
                   (q8s w_gate_q w_gate_s w_gate_o) (q8s w_up_q w_up_s w_up_o) (q8s w_down_q w_down_s w_down_o)
                   final_norm {q = lm_head_q, scale = lm_head_s, offset = lm_head_o} inv_freq

entry llama_q8_forward [L][V][Vo][d][kvd][F][R][dk][Fk][n]
    (p: llama_q8_params [L][V][Vo][d][kvd][F][R][dk][Fk]) (ids: [n]i64) : [n][V]f32 =
  llama_q8.run_forward p ids

entry llama_q8_prefill [L][V][Vo][d][kvd][F][R][dk][Fk][n]
    (p: llama_q8_params [L][V][Vo][d][kvd][F][R][dk][Fk]) (ids: [n]i64) : ([V]f32, llama_cache [L][] [] []) =
  let (lg, kv) = llama_q8.run_prefill p ids in (lg, {kv})

entry llama_q8_step [L][V][Vo][d][kvd][F][R][dk][Fk][H][C][hd] (p: llama_q8_params [L][V][Vo][d][kvd][F][R][dk][Fk])
    (c: *llama_cache [L][H][C][hd]) (tok: i64) (pos: i64) : ([V]f32, *llama_cache [L][H][C][hd]) =
  let (lg, kv) = llama_q8.run_step p c.kv tok pos in (lg, {kv})

entry llama_q8_gen [L][V][Vo][d][kvd][F][R][dk][Fk][n] (ids: [n]i64)
    (p: llama_q8_params [L][V][Vo][d][kvd][F][R][dk][Fk]) (cnt: i64) : [n + cnt]i64 =
  llama_q8.run_gen ids p cnt

-- q4 ------------------------------------------------------------------------

type llama_q4_params [L][V][Vo][d][kvd][F][R][dk][Fk] = llama_q4.params [L][V][Vo][d][kvd][F][R] [dk][Fk][dk]

entry llama_q4_init [L][V][Vo][d][kvd][F][R][dk][Fk]
    (heads: i64) (kv_heads: i64) (context: i64) (eps: f32)
    (embed_q: [V][dk][32]u8) (embed_s: [V][dk]f32) (embed_o: [V][dk]f32) (attn_norm: [L][d]f32)
    (wq_q: [L][d][dk][16]u8) (wq_s: [L][d][dk]f32) (wq_o: [L][d][dk]f32)
    (wk_q: [L][kvd][dk][16]u8) (wk_s: [L][kvd][dk]f32) (wk_o: [L][kvd][dk]f32)
    (wv_q: [L][kvd][dk][16]u8) (wv_s: [L][kvd][dk]f32) (wv_o: [L][kvd][dk]f32)
    (wo_q: [L][d][dk][16]u8) (wo_s: [L][d][dk]f32) (wo_o: [L][d][dk]f32)
    (mlp_norm: [L][d]f32)
    (w_gate_q: [L][F][dk][16]u8) (w_gate_s: [L][F][dk]f32) (w_gate_o: [L][F][dk]f32)
    (w_up_q: [L][F][dk][16]u8) (w_up_s: [L][F][dk]f32) (w_up_o: [L][F][dk]f32)
    (w_down_q: [L][d][Fk][16]u8) (w_down_s: [L][d][Fk]f32) (w_down_o: [L][d][Fk]f32)
    (final_norm: [d]f32)
    (lm_head_q: [Vo][dk][32]u8) (lm_head_s: [Vo][dk]f32) (lm_head_o: [Vo][dk]f32) (inv_freq: [R]f32)
    : llama_q4_params [L][V][Vo][d][kvd][F][R][dk][Fk] =
  let heads = assert (d == dk * 32 && F == Fk * 32) heads
  in llama_q4.init heads kv_heads context eps {q = embed_q, scale = embed_s, offset = embed_o} attn_norm
                   (q4s wq_q wq_s wq_o) (q4s wk_q wk_s wk_o) (q4s wv_q wv_s wv_o) (q4s wo_q wo_s wo_o) mlp_norm
                   (q4s w_gate_q w_gate_s w_gate_o) (q4s w_up_q w_up_s w_up_o) (q4s w_down_q w_down_s w_down_o)
                   final_norm {q = lm_head_q, scale = lm_head_s, offset = lm_head_o} inv_freq

entry llama_q4_forward [L][V][Vo][d][kvd][F][R][dk][Fk][n]
    (p: llama_q4_params [L][V][Vo][d][kvd][F][R][dk][Fk]) (ids: [n]i64) : [n][V]f32 =
  llama_q4.run_forward p ids

entry llama_q4_prefill [L][V][Vo][d][kvd][F][R][dk][Fk][n]
    (p: llama_q4_params [L][V][Vo][d][kvd][F][R][dk][Fk]) (ids: [n]i64) : ([V]f32, llama_cache [L][] [] []) =
  let (lg, kv) = llama_q4.run_prefill p ids in (lg, {kv})

entry llama_q4_step [L][V][Vo][d][kvd][F][R][dk][Fk][H][C][hd] (p: llama_q4_params [L][V][Vo][d][kvd][F][R][dk][Fk])
    (c: *llama_cache [L][H][C][hd]) (tok: i64) (pos: i64) : ([V]f32, *llama_cache [L][H][C][hd]) =
  let (lg, kv) = llama_q4.run_step p c.kv tok pos in (lg, {kv})

entry llama_q4_gen [L][V][Vo][d][kvd][F][R][dk][Fk][n] (ids: [n]i64)
    (p: llama_q4_params [L][V][Vo][d][kvd][F][R][dk][Fk]) (cnt: i64) : [n + cnt]i64 =
  llama_q4.run_gen ids p cnt
