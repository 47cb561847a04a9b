-- | The Llama family: RMSNorm, rotary position embeddings, grouped-query
-- attention and a SwiGLU MLP (Llama 2/3, SmolLM, TinyLlama, Mistral...).
--
-- Sizes: `L` layers, `V` vocabulary entries, `d` model features, `kvd`
-- key/value features (`kv_heads · head size`), `F` MLP features, `R` rotary
-- frequencies (half the head size).  Matrices are [out][in]; query and key
-- rows are in Hugging Face's order (rotation pairs `i` and `i + hd/2`).
-- Per-layer weights are stacked along a leading `[L]` axis.

import "nn"
import "attention"

type llama [L][V][Vo][d][kvd][F][R] =
  { embed: [V][d]f32,                     -- token embedding
    attn_norm: [L][d]f32,                 -- RMSNorm before attention
    wq: [L][d][d]f32,                     -- query projection (heads · head size = d)
    wk: [L][kvd][d]f32,                   -- key and value projections
    wv: [L][kvd][d]f32,
    wo: [L][d][d]f32,                     -- attention output projection
    mlp_norm: [L][d]f32,                  -- RMSNorm before the MLP
    w_gate: [L][F][d]f32,                 -- SwiGLU: down (silu (gate x) · up x)
    w_up: [L][F][d]f32,
    w_down: [L][d][F]f32,
    final_norm: [d]f32,
    lm_head: [Vo][d]f32,                  -- output head; empty (Vo = 0) when tied to `embed`
    inv_freq: [R]f32,                     -- rotary frequencies θ^(-2i/hd), scaling applied
    heads: i64, kv_heads: i64,
    context: i64,                         -- the model's context length
    eps: f32 }                            -- RMSNorm epsilon

-- | Rotate one head `x` (`[2R]` features) to position `pos`: feature pairs
-- `(i, i+R)` turn by the angle `pos · inv_freq[i]` ("rotate half" RoPE).
def rope [R][hd] (inv_freq: [R]f32) (pos: i64) (x: [hd]f32) : [hd]f32 =
  let angle i = f32.i64 pos * inv_freq[i % R]
  in tabulate hd (\i -> if i < R
                        then x[i] * f32.cos (angle i) - x[i + R] * f32.sin (angle i)
                        else x[i] * f32.cos (angle i) + x[i - R] * f32.sin (angle i))

-- | An empty key/value cache sized for `p`.
def empty_cache [L][V][Vo][d][kvd][F][R] (p: llama [L][V][Vo][d][kvd][F][R]) : *kv_cache [L][] [] [] =
  let H = p.kv_heads
  in cache_empty L H p.context (kvd / H)

-- | The MLP: `down (silu (gate x) · up x)`.
def mlp [L][V][Vo][d][kvd][F][R][n] (p: llama [L][V][Vo][d][kvd][F][R]) (l: i64) (x: [n][d]f32) : [n][d]f32 =
  map2 (map2 (\g u -> silu g * u)) (matmul x p.w_gate[l]) (matmul x p.w_up[l]) |> flip matmul p.w_down[l]

-- | Transformer block `l` for `n` tokens at positions `pos ..`:
-- `x + attn (norm x)`, then `x + mlp (norm x)`; also the tokens' keys and values.
def block [L][V][Vo][d][kvd][F][R][H][C][hd][n]
          (p: llama [L][V][Vo][d][kvd][F][R]) (pos: i64) (cache: kv_cache [L][H][C][hd])
          (l: i64) (x: [n][d]f32) : ([n][d]f32, [n][H][hd]f32, [n][H][hd]f32) =
  let Q = p.heads
  let h = map (rms_norm p.eps p.attn_norm[l]) x
  let at i = map (rope p.inv_freq (pos + i))
  let q = matmul h p.wq[l] |> map (split_heads Q hd) |> map2 at (iota n)
  let k = matmul h p.wk[l] |> map (split_heads H hd) |> map2 at (iota n)
  let v = matmul h p.wv[l] |> map (split_heads H hd)
  let a = attend cache l pos q k v |> map (join_heads d) |> flip matmul p.wo[l]
  let x = map2 vadd x a
  let x = map2 vadd x (map (rms_norm p.eps p.mlp_norm[l]) x |> mlp p l)
  in (x, k, v)

-- | The final hidden states of `n` tokens at positions `pos .. pos+n-1`;
-- their keys and values enter the cache.
def hidden [L][V][Vo][d][kvd][F][R][H][C][hd][n]
           (p: llama [L][V][Vo][d][kvd][F][R]) (cache: *kv_cache [L][H][C][hd])
           (pos: i64) (ids: [n]i64) : ([n][d]f32, *kv_cache [L][H][C][hd]) =
  let x = map (\t -> p.embed[t]) ids
  let (x, ks, vs) = run_layers (block p pos) cache x
  in (map (rms_norm p.eps p.final_norm) x, cache_append cache pos ks vs)

-- | Next-token logits from a final hidden state.
def logits [L][V][Vo][d][kvd][F][R] (p: llama [L][V][Vo][d][kvd][F][R]) (h: [d]f32) : [V]f32 =
  if Vo == 0 then matvec p.embed h else matvec p.lm_head h :> [V]f32

-- ==
-- entry: test_rope
-- input @ ../tests/data/rope.in
-- output @ ../tests/data/rope.out
entry test_rope [n][R][hd] (inv_freq: [R]f32) (xs: [n][hd]f32) : [n][hd]f32 =
  map2 (rope inv_freq) (iota n) xs
