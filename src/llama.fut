-- | The Llama family: RMSNorm, rotary position embeddings, grouped-query
-- attention and a SwiGLU MLP (Llama 2/3, SmolLM, TinyLlama, Mistral...).
--
-- Sizes: `L` layers, `V` vocabulary entries, `d` model features, `kvd`
-- key/value features (`kv_heads · head size`), `F` MLP features, `R` rotary
-- frequencies (half the head size).  Matrices are [out][in]; query and key
-- rows are in Hugging Face's order (rotation pairs `i` and `i + hd/2`).
-- Per-layer weights are stacked along a leading `[L]` axis.
--
-- The model is written once over its weight formats (src/matrix.fut): `W`
-- stores the per-layer projections, `E` the token embedding and output
-- head.  A matrix with `n` columns has `kb` blocks of 32 columns per row:
-- `dk` for the `d`-column matrices, `Fk` for the MLP's down projection.

import "nn"
import "attention"
import "matrix"

-- | Rotate one head `x` (`[2R]` features) to position `pos`: feature pairs
-- `(i, i+R)` turn by the angle `pos · inv_freq[i]` ("rotate half" RoPE).
def rope [R][hd] (inv_freq: [R]f32) (pos: i64) (x: [hd]f32) : [hd]f32 =
  let angle i = f32.i64 pos * inv_freq[i % R]
  in tabulate hd (\i -> if i < R
                        then x[i] * f32.cos (angle i) - x[i + R] * f32.sin (angle i)
                        else x[i] * f32.cos (angle i) + x[i - R] * f32.sin (angle i))

module llama (W: matrix) (E: matrix) = {
  type params [L][V][Vo][d][kvd][F][R][dk][Fk] =
    { embed: E.mat [V][dk],                 -- token embedding
      attn_norm: [L][d]f32,                 -- RMSNorm before attention
      wq: [L](W.mat [d][dk]),               -- query projection (heads · head size = d)
      wk: [L](W.mat [kvd][dk]),             -- key and value projections
      wv: [L](W.mat [kvd][dk]),
      wo: [L](W.mat [d][dk]),               -- attention output projection
      mlp_norm: [L][d]f32,                  -- RMSNorm before the MLP
      w_gate: [L](W.mat [F][dk]),           -- SwiGLU: down (silu (gate x) · up x)
      w_up: [L](W.mat [F][dk]),
      w_down: [L](W.mat [d][Fk]),
      final_norm: [d]f32,
      lm_head: E.mat [Vo][dk],              -- output head; empty (Vo = 0) when tied to `embed`
      inv_freq: [R]f32,                     -- rotary frequencies θ^(-2i/hd), scaling applied
      heads: i64, kv_heads: i64,
      context: i64,                         -- the model's context length
      eps: f32 }                            -- RMSNorm epsilon

  -- | The shape of a key/value cache of `slots` sequences of `capacity` positions.
  def cache_shape [L][V][Vo][d][kvd][F][R][dk][Fk]
               (p: params [L][V][Vo][d][kvd][F][R][dk][Fk]) (slots: i64) (capacity: i64) : geometry =
    {slots, layers = L, heads = p.kv_heads, panels = panels capacity, hd = 2 * R}

  -- | Transformer block `l` for `N` tokens at their slots and positions:
  -- `x + attn (norm x)`, then `x + mlp (norm x)`; the tokens' keys and
  -- values enter the cache first, so each token attends to itself.
  #[inline]
  def block [L][V][Vo][d][kvd][F][R][dk][Fk][n][N]
            (p: params [L][V][Vo][d][kvd][F][R][dk][Fk]) (g: geometry) (slots: [N]i64) (pos: [N]i64) (l: i64)
            (x: [N][d]f32) (cache: *[n]f32) : ([N][d]f32, *[n]f32) =
    let (Q, H, hd) = (p.heads, p.kv_heads, 2 * R)
    let turned [n] (hs: [N][n][hd]f32) = map2 (\at h -> map (rope p.inv_freq at) h) pos hs
    let h = map (rms_norm p.eps p.attn_norm[l]) x
    let q = W.layer_matmul p.wq l h |> map (\r -> unflatten (r :> [Q * hd]f32)) |> turned
    let k = W.layer_matmul p.wk l h |> map (\r -> unflatten (r :> [H * hd]f32)) |> turned
    let v = W.layer_matmul p.wv l h |> map (\r -> unflatten (r :> [H * hd]f32))
    let cache = cache_write g cache l slots pos k v
    let a = attend g cache l slots pos q |> map (\a -> flatten a :> [d]f32)
    let x = map2 vadd x (W.layer_matmul p.wo l a)
    let h = map (rms_norm p.eps p.mlp_norm[l]) x
    let gated = map2 (map2 (\g u -> silu g * u)) (W.layer_matmul p.w_gate l h) (W.layer_matmul p.w_up l h)
    in (map2 vadd x (W.layer_matmul p.w_down l gated), cache)

  -- | The final hidden states of `N` tokens (`ids`, at positions `pos` of
  -- cache slots `slots`); their keys and values enter the cache.  Not
  -- inlined: the entry points share one copy of the model's code.
  #[noinline]
  def run [L][V][Vo][d][kvd][F][R][dk][Fk][n][N]
          (p: params [L][V][Vo][d][kvd][F][R][dk][Fk]) (g: geometry) (cache: *[n]f32)
          (ids: [N]i64) (slots: [N]i64) (pos: [N]i64) : ([N][d]f32, *[n]f32) =
    let g = assert (g == cache_shape p g.slots (g.panels * P) && n == cache_size g) g
    let x = map (E.row d p.embed) ids
    let (x, cache) = loop (x, cache) for l < L do block p g slots pos l x cache
    in (map (rms_norm p.eps p.final_norm) x, cache)

  -- | Next-token logits from final hidden states.
  def logits [L][V][Vo][d][kvd][F][R][dk][Fk][M]
             (p: params [L][V][Vo][d][kvd][F][R][dk][Fk]) (h: [M][d]f32) : [M][V]f32 =
    if Vo == 0 then E.matmul_once p.embed h else E.matmul_once p.lm_head h :> [M][V]f32

  -- | The parameter record, after checking that the sizes fit together.
  def init [L][V][Vo][d][kvd][F][R][dk][Fk]
           (heads: i64) (kv_heads: i64) (context: i64) (eps: f32)
           (embed: E.mat [V][dk]) (attn_norm: [L][d]f32)
           (wq: [L](W.mat [d][dk])) (wk: [L](W.mat [kvd][dk])) (wv: [L](W.mat [kvd][dk]))
           (wo: [L](W.mat [d][dk])) (mlp_norm: [L][d]f32)
           (w_gate: [L](W.mat [F][dk])) (w_up: [L](W.mat [F][dk])) (w_down: [L](W.mat [d][Fk]))
           (final_norm: [d]f32) (lm_head: E.mat [Vo][dk]) (inv_freq: [R]f32)
           : params [L][V][Vo][d][kvd][F][R][dk][Fk] =
    let heads = assert (heads > 0 && kv_heads > 0 && heads % kv_heads == 0) heads
    let heads = assert (d == heads * (2 * R) && kvd == kv_heads * (2 * R)) heads
    let heads = assert ((Vo == 0 || Vo == V) && context > 0) heads
    let heads = assert (dk == (d + 31) / 32 && Fk == (F + 31) / 32) heads
    in { embed, attn_norm, wq, wk, wv, wo, mlp_norm, w_gate, w_up, w_down, final_norm,
         lm_head, inv_freq, heads, kv_heads, context, eps }
}

-- ==
-- entry: test_rope
-- input @ ../tests/data/rope.in
-- output @ ../tests/data/rope.out
entry test_rope [n][R][hd] (inv_freq: [R]f32) (xs: [n][hd]f32) : [n][hd]f32 =
  map2 (rope inv_freq) (iota n) xs
