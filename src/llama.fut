-- | The Llama family: RMSNorm, rotary position embeddings, grouped-query
-- attention and a gated MLP; with the variations of its descendants, each
-- absent (an empty array, a neutral scalar) where a model lacks it:
-- biases on the query/key/value projections (Qwen2), per-head RMSNorm of
-- queries and keys (Qwen3), a head size of its own rather than the width
-- over the heads (Qwen3, Gemma), a sliding attention window (Mistral,
-- Phi-3), a scaled embedding and GELU gating (Gemma).  Phi-3's fused
-- projections and Gemma's `1 + w` norms are the same model with their
-- weights rearranged on loading (llaf/llama.py).
--
-- Sizes: `L` layers, `V` vocabulary entries, `d` model features, `qd`
-- query features (`heads · head size`), `kvd` key/value features
-- (`kv_heads · head size`), `F` MLP features, `R` rotary frequencies (half
-- the rotated features of a head: all of it, or its first part), `Bq` and
-- `Bk` the query and key/value biases' lengths (`qd` and `kvd`, or 0
-- without), `Nn` the query/key norms' length (the head size, or 0).
-- Matrices are [out][in]; query and key rows are in Hugging Face's order
-- (rotation pairs `i` and `i + R`).  Per-layer weights are stacked along a
-- leading `[L]` axis.
--
-- The model is written once over its weights (src/matrix.fut `weights`):
-- stacks of the per-layer projections, and the token embedding and output
-- head, in one format each or each matrix in its own.  A matrix with `n`
-- columns has `kb` blocks of 32 columns per row: `dk` for the `d`-column
-- matrices, `qk` for the output projection, `Fk` for the MLP's down
-- projection.

import "nn"
import "attention"
import "matrix"
module lora = import "lora"

-- | Rotate one head `x` to position `pos`: feature pairs `(i, i+R)` turn by
-- the angle `pos · inv_freq[i]` ("rotate half" RoPE); features from `2R`
-- on, where the rotation covers part of the head, stay as they are.
def rope [R][hd] (inv_freq: [R]f32) (pos: i64) (x: [hd]f32) : [hd]f32 =
  let angle i = f32.i64 pos * inv_freq[i % R]
  in tabulate hd (\i -> if i < R
                        then x[i] * f32.cos (angle i) - x[i + R] * f32.sin (angle i)
                        else if i < 2 * R
                        then x[i] * f32.cos (angle i) + x[i - R] * f32.sin (angle i)
                        else x[i])

-- | The gating activations of the MLP, by number (llaf/llama.py `ACTIVATIONS`).
def silu_gated = 0i64
def gelu_gated = 1i64

module llama (W: weights) = {
  type~ params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk] =
    { store: W.store,                       -- the matrices' data (src/matrix.fut `weights`)
      embed: W.mat [V][dk],                 -- token embedding
      attn_norm: [L][d]f32,                 -- RMSNorm before attention
      wq: W.layers [L][qd][dk],             -- query projection (heads · head size = qd)
      wk: W.layers [L][kvd][dk],            -- key and value projections
      wv: W.layers [L][kvd][dk],
      bq: [L][Bq]f32,                       -- their biases (Qwen2); empty without
      bk: [L][Bk]f32,
      bv: [L][Bk]f32,
      q_norm: [L][Nn]f32,                   -- per-head RMSNorm of queries and keys (Qwen3); empty without
      k_norm: [L][Nn]f32,
      wo: W.layers [L][d][qk],              -- attention output projection
      mlp_norm: [L][d]f32,                  -- RMSNorm before the MLP
      w_gate: W.layers [L][F][dk],          -- SwiGLU: down (silu (gate x) · up x)
      w_up: W.layers [L][F][dk],
      w_down: W.layers [L][d][Fk],
      final_norm: [d]f32,
      lm_head: W.mat [Vo][dk],              -- output head; empty (Vo = 0) when tied to `embed`
      inv_freq: [R]f32,                     -- rotary frequencies θ^(-2i/hd), scaling applied
      heads: i64, kv_heads: i64,
      context: i64,                         -- the model's context length
      eps: f32,                             -- RMSNorm epsilon
      window: i64,                          -- sliding attention window (Mistral, Phi-3); 0: none
      embedding_scale: f32,                 -- embedding multiplier (Gemma: √d); 1: none
      activation: i64 }                     -- the MLP's gate: silu_gated or gelu_gated

  -- | Low-rank adapters of the seven projections (src/lora.fut), their
  -- scale `alpha / r`; rank 0 for none.
  type adapters [L][r][d][qd][kvd][F] =
    { q: lora.adapter [L][r][d][qd], k: lora.adapter [L][r][d][kvd], v: lora.adapter [L][r][d][kvd], o: lora.adapter [L][r][qd][d],
      gate: lora.adapter [L][r][d][F], up: lora.adapter [L][r][d][F], down: lora.adapter [L][r][F][d], scale: f32 }

  -- | A model's projections without adapters.
  def no_adapters [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]
                  (_: params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) : adapters [L][0][d][qd][kvd][F] =
    { q = lora.none L d qd, k = lora.none L d kvd, v = lora.none L d kvd, o = lora.none L qd d, gate = lora.none L d F, up = lora.none L d F,
      down = lora.none L F d, scale = 0 }

  -- | The shape of a key/value cache of `slots` sequences of `capacity` positions.
  def cache_shape [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]
               (p: params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) (slots: i64) (capacity: i64) : geometry =
    {slots, layers = L, heads = p.kv_heads, panels = panels capacity, hd = kvd / p.kv_heads}

  -- | The adapters of layer `l`: what a layer's functions below take,
  -- so that training can differentiate each with respect to its layer's
  -- adapters (src/train.fut `backward`).
  type layer_adapters [r][d][qd][kvd][F] =
    { q: lora.layer [r][d][qd], k: lora.layer [r][d][kvd], v: lora.layer [r][d][kvd], o: lora.layer [r][qd][d],
      gate: lora.layer [r][d][F], up: lora.layer [r][d][F], down: lora.layer [r][F][d], scale: f32 }

  def layer_adapters [L][r][d][qd][kvd][F] (ad: adapters [L][r][d][qd][kvd][F]) (l: i64) : layer_adapters [r][d][qd][kvd][F] =
    { q = lora.in_layer ad.q l, k = lora.in_layer ad.k l, v = lora.in_layer ad.v l, o = lora.in_layer ad.o l,
      gate = lora.in_layer ad.gate l, up = lora.in_layer ad.up l, down = lora.in_layer ad.down l, scale = ad.scale }

  -- | Layer `l`'s projection `w` of the tokens' features `h`, with its adapter `a`.
  #[inline]
  def project [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][r][N][m][kb][k]
              (p: params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) (s: f32)
              (l: i64) (w: W.layers [L][m][kb]) (a: lora.layer [r][k][m]) (h: [N][k]f32) : [N][m]f32 =
    W.layer_matmul p.store w l h |> lora.apply a s h

  -- A layer, step by step: the attention's projections of the normed
  -- hidden states `x`, their heads, the attention `a` of the heads, the
  -- output projection `x + wo a`, the MLP's projections of that normed, its
  -- output `x + down (gate · up)`.  Training keeps each step's inputs and
  -- differentiates the steps one by one (src/train.fut).

  -- | Layer `l`'s query, key and value projections of `N` tokens' hidden states `x`, normed.
  #[inline]
  def attention_projections [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][r][N]
                            (p: params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) (la: layer_adapters [r][d][qd][kvd][F])
                            (l: i64) (x: [N][d]f32) : ([N][qd]f32, [N][kvd]f32, [N][kvd]f32) =
    let h = map (rms_norm p.eps p.attn_norm[l]) x
    in (project p la.scale l p.wq la.q h, project p la.scale l p.wk la.k h, project p la.scale l p.wv la.v h)

  -- | Layer `l`'s queries, keys and values (`[N][heads][hd]`,
  -- `[N][kv_heads][hd]`) of tokens at positions `pos` from their
  -- projections: biased, the queries and keys normed per head and rotated.
  #[inline]
  def attention_heads [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][N]
                      (p: params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) (pos: [N]i64) (l: i64) ((q, k, v): ([N][qd]f32, [N][kvd]f32, [N][kvd]f32))
                      : ?[Q][H][hd].([N][Q][hd]f32, [N][H][hd]f32, [N][H][hd]f32) =
    let (Q, H, hd) = (p.heads, p.kv_heads, qd / p.heads)
    let biased [m] [B] (b: [L][B]f32) (y: [N][m]f32) =
      if B == 0 then y else map (vadd (b[l] :> [m]f32)) y
    let normed [m] (w: [L][Nn]f32) (hs: [N][m][hd]f32) =
      if Nn == 0 then hs else map (map (rms_norm p.eps (w[l] :> [hd]f32))) hs
    let turned [m] (hs: [N][m][hd]f32) = map2 (\at h -> map (rope p.inv_freq at) h) pos hs
    in (q |> biased p.bq |> map (\r -> unflatten (r :> [Q * hd]f32)) |> normed p.q_norm |> turned,
        k |> biased p.bk |> map (\r -> unflatten (r :> [H * hd]f32)) |> normed p.k_norm |> turned,
        v |> biased p.bv |> map (\r -> unflatten (r :> [H * hd]f32)))

  -- | Layer `l`'s `x + wo a`, given the tokens' attention `a`.
  #[inline]
  def attention_output [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][r][N]
                       (p: params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) (la: layer_adapters [r][d][qd][kvd][F])
                       (l: i64) (x: [N][d]f32) (a: [N][qd]f32) : [N][d]f32 =
    map2 vadd x (project p la.scale l p.wo la.o a)

  -- | Layer `l`'s MLP gate and up projections of the hidden states `x`, normed.
  #[inline]
  def mlp_projections [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][r][N]
                      (p: params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) (la: layer_adapters [r][d][qd][kvd][F])
                      (l: i64) (x: [N][d]f32) : ([N][F]f32, [N][F]f32) =
    let h = map (rms_norm p.eps p.mlp_norm[l]) x
    in (project p la.scale l p.w_gate la.gate h, project p la.scale l p.w_up la.up h)

  -- | The MLP's gated values `act gate · up`, its down projection's input.
  #[inline]
  def gated [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][N]
            (p: params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk])
            ((gate, up): ([N][F]f32, [N][F]f32)) : [N][F]f32 =
    if p.activation == gelu_gated then map2 (map2 (\g u -> gelu_tanh g * u)) gate up
    else map2 (map2 (\g u -> silu g * u)) gate up

  -- | Layer `l`'s `x + down (act gate · up)`.
  #[inline]
  def mlp_output [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][r][N]
                 (p: params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) (la: layer_adapters [r][d][qd][kvd][F])
                 (l: i64) (x: [N][d]f32) (gate_up: ([N][F]f32, [N][F]f32)) : [N][d]f32 =
    map2 vadd x (project p la.scale l p.w_down la.down (gated p gate_up))

  -- | The rest of layer `l` given the tokens' attention `a`: `x + wo a`, then
  -- `x + mlp (norm x)`.
  #[inline]
  def after_attention [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][r][N]
                      (p: params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) (la: layer_adapters [r][d][qd][kvd][F])
                      (l: i64) (x: [N][d]f32) (a: [N][qd]f32) : [N][d]f32 =
    let x = attention_output p la l x a
    in mlp_projections p la l x |> mlp_output p la l x

  -- | Transformer block `l` for `N` tokens at their slots and positions:
  -- `x + attn (norm x)`, then `x + mlp (norm x)`; the tokens' keys and
  -- values enter layer `cl` of the cache first, so each token attends to
  -- itself.
  #[inline]
  def block [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][r][n][N]
            (p: params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) (ad: adapters [L][r][d][qd][kvd][F])
            (g: geometry) (slots: [N]i64) (pos: [N]i64) (l: i64) (cl: i64)
            (x: [N][d]f32) (cache: *[n]f32) : ([N][d]f32, *[n]f32) =
    let la = layer_adapters ad l
    let (q, k, v) = attention_projections p la l x |> attention_heads p pos l
    let cache = cache_write g cache cl slots pos k v
    let a = attend g p.window cache cl slots pos q |> map (\a -> flatten a :> [qd]f32)
    in (after_attention p la l x a, cache)

  -- | The embeddings of tokens `ids`.
  def embed [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][N]
            (p: params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) (ids: [N]i64) : [N][d]f32 =
    let x = W.rows p.store d p.embed ids
    in if p.embedding_scale == 1 then x else map (map (* p.embedding_scale)) x

  -- | Final hidden states from the last layer's.
  def final [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][N]
            (p: params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) (x: [N][d]f32) : [N][d]f32 =
    map (rms_norm p.eps p.final_norm) x

  -- | The final hidden states of `N` tokens (`ids`, at positions `pos` of
  -- cache slots `slots`); their keys and values enter the cache.  Not
  -- inlined: the entry points share one copy of the model's code.
  #[noinline]
  def run [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][n][N]
          (p: params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) (g: geometry) (cache: *[n]f32)
          (ids: [N]i64) (slots: [N]i64) (pos: [N]i64) : ([N][d]f32, *[n]f32) =
    let g = assert (g == cache_shape p g.slots (g.panels * P) && n == cache_size g) g
    let ad = no_adapters p
    let (x, cache) = loop (x, cache) = (embed p ids, cache) for l < L do block p ad g slots pos l l x cache
    in (final p x, cache)

  -- | Layer `l`'s attention of `N` tokens, sequences of `S` each from
  -- position 0, given their projections (`attention_projections`): the
  -- tokens of a sequence attend to each other (src/attention.fut
  -- `attend_sequences`, written for differentiation).  Training's: no cache.
  def sequence_attention [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][N]
                         (p: params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) (S: i64) (l: i64)
                         (projections: ([N][qd]f32, [N][kvd]f32, [N][kvd]f32)) : [N][qd]f32 =
    let B = N / S
    let (q, k, v) = attention_heads p (tabulate N (% S)) l projections
    let sequences [m][hd] (y: [N][m][hd]f32) = unflatten (y :> [B * S][m][hd]f32)
    in attend_sequences p.window (sequences q) (sequences k) (sequences v)
       |> flatten |> map (\a -> flatten a :> [qd]f32) :> [N][qd]f32

  -- | Layer `l` of training's forward pass over `N` tokens, sequences of `S`.
  def sequence_layer [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][r][N]
                     (p: params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) (la: layer_adapters [r][d][qd][kvd][F]) (S: i64) (l: i64)
                     (x: [N][d]f32) : [N][d]f32 =
    attention_projections p la l x |> sequence_attention p S l |> after_attention p la l x

  -- | The final hidden states of `B` sequences of `S` tokens (`ids`, each
  -- sequence from position 0), through projections with adapters `ad`: the
  -- forward pass of training (src/train.fut).
  def train_pass [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][r][B][S]
                 (p: params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) (ad: adapters [L][r][d][qd][kvd][F])
                 (ids: [B][S]i64) : [B * S][d]f32 =
    let x = loop x = embed p (flatten ids) for l < L do sequence_layer p (layer_adapters ad l) S l x
    in final p x

  -- | Next-token logits from final hidden states.
  def logits [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][M]
             (p: params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) (h: [M][d]f32) : [M][V]f32 =
    if Vo == 0 then W.matmul_once p.store p.embed h else W.matmul_once p.store p.lm_head h :> [M][V]f32

  -- | The parameter record, after checking that the sizes fit together.
  def init [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]
           (heads: i64) (kv_heads: i64) (context: i64) (eps: f32)
           (window: i64) (embedding_scale: f32) (activation: i64) (store: W.store)
           (embed: W.mat [V][dk]) (attn_norm: [L][d]f32)
           (wq: W.layers [L][qd][dk]) (wk: W.layers [L][kvd][dk]) (wv: W.layers [L][kvd][dk])
           (bq: [L][Bq]f32) (bk: [L][Bk]f32) (bv: [L][Bk]f32) (q_norm: [L][Nn]f32) (k_norm: [L][Nn]f32)
           (wo: W.layers [L][d][qk]) (mlp_norm: [L][d]f32)
           (w_gate: W.layers [L][F][dk]) (w_up: W.layers [L][F][dk]) (w_down: W.layers [L][d][Fk])
           (final_norm: [d]f32) (lm_head: W.mat [Vo][dk]) (inv_freq: [R]f32)
           : params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk] =
    let heads = assert (heads > 0 && kv_heads > 0 && heads % kv_heads == 0 && qd % heads == 0) heads
    let hd = qd / heads
    let heads = assert (kvd == kv_heads * hd && 2 * R <= hd && R > 0) heads
    let heads = assert ((Bq == 0 || Bq == qd) && (Bk == 0 || Bk == kvd) && (Nn == 0 || Nn == hd)) heads
    let heads = assert ((Vo == 0 || Vo == V) && context > 0 && window >= 0) heads
    let heads = assert (activation == silu_gated || activation == gelu_gated) heads
    let heads = assert (dk == (d + 31) / 32 && qk == (qd + 31) / 32 && Fk == (F + 31) / 32) heads
    in { store, embed, attn_norm, wq, wk, wv, bq, bk, bv, q_norm, k_norm, wo, mlp_norm, w_gate, w_up, w_down,
         final_norm, lm_head, inv_freq, heads, kv_heads, context, eps, window, embedding_scale, activation }
}

-- ==
-- entry: test_rope
-- input @ ../tests/data/rope.in
-- output @ ../tests/data/rope.out
entry test_rope [n][R][hd] (inv_freq: [R]f32) (xs: [n][hd]f32) : [n][hd]f32 =
  map2 (rope inv_freq) (iota n) xs
