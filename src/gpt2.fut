-- | GPT-2: learned position embeddings, pre-LayerNorm transformer blocks
-- with GELU (tanh) MLPs, and an LM head tied to the token embedding.
--
-- Sizes: `L` layers, `V` vocabulary entries, `C` context positions, `d`
-- model features, `F` MLP features; `dk` and `Fk` blocks of 32 columns in
-- the rows of the `d`- and `F`-column matrices (src/matrix.fut).  Every
-- matrix is [out][in] (the transpose of Hugging Face's Conv1D layout;
-- llaf/gpt2.py does that once), kept in f32 panels.  Per-layer weights are
-- stacked along a leading `[L]` axis.

import "nn"
import "attention"
import "matrix"

module W = f32_matrix

type gpt2 [L][V][C][d][F][dk][Fk] =
  { wte: W.mat [V][dk],                   -- token embedding, also the LM head
    wpe: [C][d]f32,                       -- position embedding
    ln1_g: [L][d]f32, ln1_b: [L][d]f32,   -- LayerNorm before attention
    wq: [L](W.mat [d][dk]), bq: [L][d]f32, -- query, key and value projections
    wk: [L](W.mat [d][dk]), bk: [L][d]f32,
    wv: [L](W.mat [d][dk]), bv: [L][d]f32,
    wo: [L](W.mat [d][dk]), bo: [L][d]f32, -- attention output projection
    ln2_g: [L][d]f32, ln2_b: [L][d]f32,   -- LayerNorm before the MLP
    wfc: [L](W.mat [F][dk]), bfc: [L][F]f32,    -- MLP up-projection
    wproj: [L](W.mat [d][Fk]), bproj: [L][d]f32, -- MLP down-projection
    lnf_g: [d]f32, lnf_b: [d]f32,         -- final LayerNorm
    heads: i64,                           -- attention heads (d = heads · head size)
    eps: f32 }                            -- LayerNorm epsilon

-- | The shape of a key/value cache of `slots` sequences of `capacity` positions.
def cache_shape [L][V][C][d][F][dk][Fk] (p: gpt2 [L][V][C][d][F][dk][Fk]) (slots: i64) (capacity: i64) : geometry =
  {slots, layers = L, heads = p.heads, panels = panels capacity, hd = d / p.heads}

-- | `xs W[l]ᵀ + b[l]`.
def linear [L][m][kb][N][n] (w: [L](W.mat [m][kb])) (b: [L][m]f32) (l: i64) (xs: [N][n]f32) : [N][m]f32 =
  map (map2 (+) b[l]) (W.layer_matmul w l xs)

-- | Transformer block `l` for `N` tokens at their slots and positions:
-- `x + attn (ln1 x)`, then `x + mlp (ln2 x)`; the tokens' keys and values
-- enter the cache first.
#[inline]
def block [L][V][C][d][F][dk][Fk][n][N]
          (p: gpt2 [L][V][C][d][F][dk][Fk]) (g: geometry) (slots: [N]i64) (pos: [N]i64) (l: i64)
          (x: [N][d]f32) (cache: *[n]f32) : ([N][d]f32, *[n]f32) =
  let (H, hd) = (p.heads, d / p.heads)
  let heads (rows: [N][d]f32) : [N][H][hd]f32 = map (\r -> unflatten (r :> [H * hd]f32)) rows
  let h = map (layer_norm p.eps p.ln1_g[l] p.ln1_b[l]) x
  let q = linear p.wq p.bq l h |> heads
  let k = linear p.wk p.bk l h |> heads
  let v = linear p.wv p.bv l h |> heads
  let cache = cache_write g cache l slots pos k v
  let a = attend g 0 cache l slots pos q |> map (\a -> flatten a :> [d]f32)
  let x = map2 vadd x (linear p.wo p.bo l a)
  let h = map (layer_norm p.eps p.ln2_g[l] p.ln2_b[l]) x
  let mlp = linear p.wfc p.bfc l h |> map (map gelu_tanh) |> linear p.wproj p.bproj l
  in (map2 vadd x mlp, cache)

-- | The final hidden states of `N` tokens (`ids`, at positions `pos` of
-- cache slots `slots`); their keys and values enter the cache.  Not inlined:
-- the entry points share one copy of the model's code.
#[noinline]
def run [L][V][C][d][F][dk][Fk][n][N]
        (p: gpt2 [L][V][C][d][F][dk][Fk]) (g: geometry) (cache: *[n]f32)
        (ids: [N]i64) (slots: [N]i64) (pos: [N]i64) : ([N][d]f32, *[n]f32) =
  let g = assert (g == cache_shape p g.slots (g.panels * P) && n == cache_size g) g
  let x = map2 (\t i -> vadd (W.row d p.wte t) p.wpe[i]) ids pos
  let (x, cache) = loop (x, cache) for l < L do block p g slots pos l x cache
  in (map (layer_norm p.eps p.lnf_g p.lnf_b) x, cache)

-- | Next-token logits from final hidden states (the LM head is `wte`).
def logits [L][V][C][d][F][dk][Fk][M] (p: gpt2 [L][V][C][d][F][dk][Fk]) (h: [M][d]f32) : [M][V]f32 =
  W.matmul_once p.wte h
