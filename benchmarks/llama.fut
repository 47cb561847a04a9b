-- | `futhark bench` programs for the hot paths, at SmolLM2-135M's shape
-- (30 layers, width 576, 9 query and 3 key/value heads, MLP 1536,
-- vocabulary 49152) with random weights in the q4 storage (llaf's default
-- for the default model, src/matrix.fut's panels): one decode step at
-- position 15 (over a zeroed cache: the same work as a filled one), eight
-- sequences' steps in one pass, and a 16-token prefill.  `make
-- bench-futhark` runs them on the c and multicore backends;
-- docs/PERFORMANCE.md has the figures.
--
-- Each entry builds the parameter record from its arrays (free: records of
-- arrays are not copied) and a cache for the positions it needs.

import "../src/matrix"
import "../src/llama"
import "../src/attention"

module m = llama (uniform q4_matrix q8_matrix)

def model [L][Vt][d][dt][kt][Ft][dk][Fk][R]
    (embed_q: [Vt][dk][32][P]u8) (embed_s: [Vt][dk][P]u16) (attn_norm: [L][d]f32)
    (wq: [L][dt][dk][16][P]u8) (wk: [L][kt][dk][16][P]u8) (wv: [L][kt][dk][16][P]u8) (wo: [L][dt][dk][16][P]u8)
    (w_gate: [L][Ft][dk][16][P]u8) (w_up: [L][Ft][dk][16][P]u8) (w_down: [L][dt][Fk][16][P]u8)
    (s_d: [L][dt][dk][P]u16) (s_kvd: [L][kt][dk][P]u16) (s_F: [L][Ft][dk][P]u16) (s_down: [L][dt][Fk][P]u16)
    (inv_freq: [R]f32) =
  -- random bits as scales and offsets: masked to normal halves in ±[1/16, 1/8)
  -- (NaNs and subnormals would slow the arithmetic); a pass over them
  let half [t][k] (s: [t][k][P]u16) = map (map (map (\b -> (b & 0x83ff) | 0x2c00))) s
  let q4s [t][k] (rows: i64) (q: [L][t][k][16][P]u8) (s: [L][t][k][P]u16) =
    map2 (\q s -> let s = half s in q4_mat rows q s s) q s
  let embed_s = half embed_s
  let (V, F, kvd) = (Vt * P, Ft * P, kt * P)
  let none = replicate L []   -- no biases or query/key norms (SmolLM2 has none)
  in m.init 9 3 1024 1e-5 0 1 silu_gated () (q8_mat V embed_q embed_s embed_s) attn_norm
            (q4s d wq s_d) (q4s kvd wk s_kvd) (q4s kvd wv s_kvd) none none none none none (q4s d wo s_d) attn_norm
            (q4s F w_gate s_F) (q4s F w_up s_F) (q4s d w_down s_down) attn_norm[0]
            (q8_mat 0 (replicate 0 (replicate dk (replicate 32 (replicate P 0))))
                      (replicate 0 (replicate dk (replicate P 0))) (replicate 0 (replicate dk (replicate P 0))))
            inv_freq

-- | Logits after `n` tokens of each of `B` sequences, at positions `pos ..`.
def pass [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]
         (p: m.params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk])
         (B: i64) (n: i64) (pos: i64) : [][V]f32 =
  let g = m.cache_shape p B (pos + n)
  let empty = cache_empty g
  let slots = tabulate (B * n) (/ n)
  let (h, _) = m.run p g empty (tabulate (B * n) (% 1000)) slots (tabulate (B * n) (\i -> pos + i % n))
  in m.logits p (tabulate B (\b -> h[b * n + n - 1]))

-- ==
-- entry: decode_q4 decode8_q4 prefill_q4
-- random input { [1536][18][32][32]u8 [1536][18][32]u16 [30][576]f32
--                [30][18][18][16][32]u8 [30][6][18][16][32]u8 [30][6][18][16][32]u8 [30][18][18][16][32]u8
--                [30][48][18][16][32]u8 [30][48][18][16][32]u8 [30][18][48][16][32]u8
--                [30][18][18][32]u16 [30][6][18][32]u16 [30][48][18][32]u16 [30][18][48][32]u16 [32]f32 }

entry decode_q4 embed_q embed_s attn_norm wq wk wv wo w_gate w_up w_down s_d s_kvd s_F s_down inv_freq =
  pass (model embed_q embed_s attn_norm wq wk wv wo w_gate w_up w_down s_d s_kvd s_F s_down inv_freq) 1 1 15

entry decode8_q4 embed_q embed_s attn_norm wq wk wv wo w_gate w_up w_down s_d s_kvd s_F s_down inv_freq =
  pass (model embed_q embed_s attn_norm wq wk wv wo w_gate w_up w_down s_d s_kvd s_F s_down inv_freq) 8 1 15

entry prefill_q4 embed_q embed_s attn_norm wq wk wv wo w_gate w_up w_down s_d s_kvd s_F s_down inv_freq =
  pass (model embed_q embed_s attn_norm wq wk wv wo w_gate w_up w_down s_d s_kvd s_F s_down inv_freq) 1 16 0
