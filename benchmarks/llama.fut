-- | `futhark bench` programs for the hot paths, at SmolLM2-135M's shape
-- (30 layers, width 576, 9 query and 3 key/value heads, MLP 1536,
-- vocabulary 49152) with random weights in the q4 storage (llaf's default
-- for the default model): one decode step at position 15 (over a zeroed
-- cache: the same work as a filled one), and a 16-token prefill.
-- `make bench-futhark` runs them on the c and multicore backends;
-- docs/PERFORMANCE.md has the figures.
--
-- Each entry builds the parameter record from its arrays (free: records of
-- arrays are not copied) and a cache for the positions it needs.

import "../src/matrix"
import "../src/llama"
import "../src/generate"
import "../src/attention"

module m = llama q4_blocks q8_blocks

def model [L][V][d][kvd][F][R][dk][Fk]
    (embed_q: [V][dk][32]u8) (embed_s: [V][dk]f32) (attn_norm: [L][d]f32)
    (wq: [L][d][dk][16]u8) (wk: [L][kvd][dk][16]u8) (wv: [L][kvd][dk][16]u8) (wo: [L][d][dk][16]u8)
    (w_gate: [L][F][dk][16]u8) (w_up: [L][F][dk][16]u8) (w_down: [L][d][Fk][16]u8)
    (s_d: [L][d][dk]f32) (s_kvd: [L][kvd][dk]f32) (s_F: [L][F][dk]f32) (s_down: [L][d][Fk]f32)
    (inv_freq: [R]f32) (context: i64) =
  let q4s [m][k] (q: [L][m][k][16]u8) (s: [L][m][k]f32) = map2 (\q s -> {q, scale = s, offset = s}) q s
  in m.init 9 3 context 1e-5 {q = embed_q, scale = embed_s, offset = embed_s} attn_norm
            (q4s wq s_d) (q4s wk s_kvd) (q4s wv s_kvd) (q4s wo s_d) attn_norm
            (q4s w_gate s_F) (q4s w_up s_F) (q4s w_down s_down) attn_norm[0]
            {q = replicate 0 (replicate dk (replicate 32 0)), scale = replicate 0 (replicate dk 0),
             offset = replicate 0 (replicate dk 0)} inv_freq

-- ==
-- entry: decode_q4 prefill_q4
-- random input { [49152][18][32]u8 [49152][18]f32 [30][576]f32
--                [30][576][18][16]u8 [30][192][18][16]u8 [30][192][18][16]u8 [30][576][18][16]u8
--                [30][1536][18][16]u8 [30][1536][18][16]u8 [30][576][48][16]u8
--                [30][576][18]f32 [30][192][18]f32 [30][1536][18]f32 [30][576][48]f32 [32]f32 }

entry decode_q4 [L][V][d][kvd][F][R][dk][Fk] embed_q embed_s attn_norm wq wk wv wo w_gate w_up w_down
    s_d s_kvd s_F s_down (inv_freq: [R]f32) : [V]f32 =
  let p = model embed_q embed_s attn_norm wq wk wv wo w_gate w_up w_down s_d s_kvd s_F s_down inv_freq 16
          : m.params [L][V][0][d][kvd][F][R][dk][Fk][dk]
  in (m.run_step p (m.empty_cache p) 7 15).0

entry prefill_q4 [L][V][d][kvd][F][R][dk][Fk] embed_q embed_s attn_norm wq wk wv wo w_gate w_up w_down
    s_d s_kvd s_F s_down (inv_freq: [R]f32) : [V]f32 =
  let p = model embed_q embed_s attn_norm wq wk wv wo w_gate w_up w_down s_d s_kvd s_F s_down inv_freq 16
          : m.params [L][V][0][d][kvd][F][R][dk][Fk][dk]
  in (m.run_prefill p (iota 16)).0
