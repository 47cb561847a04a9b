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
-- head.  A matrix with `n` columns is stored in `k` units per row (`n` for
-- dense formats, `n / 32` blocks otherwise): `dk` for the `d`-column
-- matrices, `Fk` for the MLP's down projection, `ek` for the embedding.

import "nn"
import "attention"
import "matrix"
import "generate"

-- | Rotate one head `x` (`[2R]` features) to position `pos`: feature pairs
-- `(i, i+R)` turn by the angle `pos · inv_freq[i]` ("rotate half" RoPE).
def rope [R][hd] (inv_freq: [R]f32) (pos: i64) (x: [hd]f32) : [hd]f32 =
  let angle i = f32.i64 pos * inv_freq[i % R]
  in tabulate hd (\i -> if i < R
                        then x[i] * f32.cos (angle i) - x[i + R] * f32.sin (angle i)
                        else x[i] * f32.cos (angle i) + x[i - R] * f32.sin (angle i))

module llama (W: matrix) (E: matrix) = {
  type params [L][V][Vo][d][kvd][F][R][dk][Fk][ek] =
    { embed: E.mat [V][ek],                 -- token embedding
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
      lm_head: E.mat [Vo][ek],              -- output head; empty (Vo = 0) when tied to `embed`
      inv_freq: [R]f32,                     -- rotary frequencies θ^(-2i/hd), scaling applied
      heads: i64, kv_heads: i64,
      context: i64,                         -- the model's context length
      eps: f32 }                            -- RMSNorm epsilon

  -- | An empty key/value cache sized for `p`.
  def empty_cache [L][V][Vo][d][kvd][F][R][dk][Fk][ek]
                  (p: params [L][V][Vo][d][kvd][F][R][dk][Fk][ek]) : *kv_cache [L][] [] [] =
    let H = p.kv_heads
    in cache_empty L H p.context (kvd / H)

  -- | How a pass multiplies its tokens by a weight matrix: `xs Wᵀ`.
  module type product = {
    val matmul [b][m][k][n] : [b][n]f32 -> W.mat [m][k] -> [b][m]f32
  }

  -- | The model's layers, given the product: `mlp`, `block` and `hidden`.
  module pass (P: product) = {
    -- | The MLP: `down (silu (gate x) · up x)`.
    def mlp [L][V][Vo][d][kvd][F][R][dk][Fk][ek][n]
            (p: params [L][V][Vo][d][kvd][F][R][dk][Fk][ek]) (l: i64) (x: [n][d]f32) : [n][d]f32 =
      map2 (map2 (\g u -> silu g * u)) (P.matmul x p.w_gate[l]) (P.matmul x p.w_up[l]) |> flip P.matmul p.w_down[l]

    -- | Transformer block `l` for `n` tokens at positions `pos ..`:
    -- `x + attn (norm x)`, then `x + mlp (norm x)`; also the tokens' keys and values.
    def block [L][V][Vo][d][kvd][F][R][dk][Fk][ek][H][C][hd][n]
              (p: params [L][V][Vo][d][kvd][F][R][dk][Fk][ek]) (pos: i64) (cache: kv_cache [L][H][C][hd])
              (l: i64) (x: [n][d]f32) : ([n][d]f32, [n][H][hd]f32, [n][H][hd]f32) =
      let Q = p.heads
      let h = map (rms_norm p.eps p.attn_norm[l]) x
      let at i = map (rope p.inv_freq (pos + i))
      let q = P.matmul h p.wq[l] |> map (split_heads Q hd) |> map2 at (iota n)
      let k = P.matmul h p.wk[l] |> map (split_heads H hd) |> map2 at (iota n)
      let v = P.matmul h p.wv[l] |> map (split_heads H hd)
      let a = attend cache l pos q k v |> map (join_heads d) |> flip P.matmul p.wo[l]
      let x = map2 vadd x a
      let x = map2 vadd x (map (rms_norm p.eps p.mlp_norm[l]) x |> mlp p l)
      in (x, k, v)

    -- | The final hidden states of `n` tokens at positions `pos .. pos+n-1`;
    -- their keys and values enter the cache.
    def hidden [L][V][Vo][d][kvd][F][R][dk][Fk][ek][H][C][hd][n]
               (p: params [L][V][Vo][d][kvd][F][R][dk][Fk][ek]) (cache: *kv_cache [L][H][C][hd])
               (pos: i64) (ids: [n]i64) : ([n][d]f32, *kv_cache [L][H][C][hd]) =
      let x = map (E.row d p.embed) ids
      let (x, ks, vs) = run_layers (block p pos) cache x
      in (map (rms_norm p.eps p.final_norm) x, cache_append cache pos ks vs)
  }

  -- | Decode: one token, so one matrix–vector product that decodes each
  -- weight as it reads it, reading every weight once per token.
  module decode = pass {
    def matmul [b][m][k][n] (xs: [b][n]f32) (w: W.mat [m][k]) : [b][m]f32 = map (W.matvec w) xs
  }

  -- | Prompts: each matrix decoded once, then multiplied by four tokens at a
  -- time (`matmul4`).  A q4 1536×576 matrix times 512 tokens (`futhark
  -- bench`, multicore): 22.3 ms as 512 matrix–vector products, 9.9 ms so.
  module prompt = pass {
    def matmul [b][m][k][n] (xs: [b][n]f32) (w: W.mat [m][k]) : [b][m]f32 = matmul4 xs (W.dense n w)
  }

  -- | Next-token logits from a final hidden state.
  def logits [L][V][Vo][d][kvd][F][R][dk][Fk][ek]
             (p: params [L][V][Vo][d][kvd][F][R][dk][Fk][ek]) (h: [d]f32) : [V]f32 =
    if Vo == 0 then E.matvec p.embed h else E.matvec p.lm_head h :> [V]f32

  -- | The parameter record, after checking that the sizes fit together.
  def init [L][V][Vo][d][kvd][F][R][dk][Fk][ek]
           (heads: i64) (kv_heads: i64) (context: i64) (eps: f32)
           (embed: E.mat [V][ek]) (attn_norm: [L][d]f32)
           (wq: [L](W.mat [d][dk])) (wk: [L](W.mat [kvd][dk])) (wv: [L](W.mat [kvd][dk]))
           (wo: [L](W.mat [d][dk])) (mlp_norm: [L][d]f32)
           (w_gate: [L](W.mat [F][dk])) (w_up: [L](W.mat [F][dk])) (w_down: [L](W.mat [d][Fk]))
           (final_norm: [d]f32) (lm_head: E.mat [Vo][ek]) (inv_freq: [R]f32)
           : params [L][V][Vo][d][kvd][F][R][dk][Fk][ek] =
    let heads = assert (heads > 0 && kv_heads > 0 && heads % kv_heads == 0) heads
    let heads = assert (d == heads * (2 * R) && kvd == kv_heads * (2 * R)) heads
    let heads = assert ((Vo == 0 || Vo == V) && context > 0) heads
    in { embed, attn_norm, wq, wk, wv, wo, mlp_norm, w_gate, w_up, w_down, final_norm,
         lm_head, inv_freq, heads, kv_heads, context, eps }

  -- The entry points' work (src/llm.fut), with the ids checked first.
  def run_forward [L][V][Vo][d][kvd][F][R][dk][Fk][ek][n]
                  (p: params [L][V][Vo][d][kvd][F][R][dk][Fk][ek]) (ids: [n]i64) : [n][V]f32 =
    forward (prompt.hidden p) (logits p) (empty_cache p) (checked V p.context 0 ids)

  def run_prefill [L][V][Vo][d][kvd][F][R][dk][Fk][ek][n]
                  (p: params [L][V][Vo][d][kvd][F][R][dk][Fk][ek]) (ids: [n]i64)
                  : ([V]f32, *kv_cache [L][] [] []) =
    prefill (prompt.hidden p) (logits p) (empty_cache p) (checked V p.context 0 ids)

  def run_step [L][V][Vo][d][kvd][F][R][dk][Fk][ek][H][C][hd]
               (p: params [L][V][Vo][d][kvd][F][R][dk][Fk][ek]) (cache: *kv_cache [L][H][C][hd])
               (tok: i64) (pos: i64) : ([V]f32, *kv_cache [L][H][C][hd]) =
    let ids = checked V C pos [tok]
    in step (decode.hidden p) (logits p) cache ids[0] pos

  def run_gen [L][V][Vo][d][kvd][F][R][dk][Fk][ek][n]
              (ids: [n]i64) (p: params [L][V][Vo][d][kvd][F][R][dk][Fk][ek]) (cnt: i64) : [n + cnt]i64 =
    let cnt = assert (cnt >= 0) cnt
    let ids = checked V p.context 0 ids
    let ids = assert (n + cnt <= p.context) ids
    in greedy (prompt.hidden p) (decode.hidden p) (logits p) (empty_cache p) ids cnt
}

-- ==
-- entry: test_rope
-- input @ ../tests/data/rope.in
-- output @ ../tests/data/rope.out
entry test_rope [n][R][hd] (inv_freq: [R]f32) (xs: [n][hd]f32) : [n][hd]f32 =
  map2 (rope inv_freq) (iota n) xs
