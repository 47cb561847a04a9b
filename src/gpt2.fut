-- | GPT-2: learned position embeddings, pre-LayerNorm transformer blocks
-- with GELU (tanh) MLPs, and an LM head tied to the token embedding.
--
-- Sizes: `L` layers, `V` vocabulary entries, `C` context positions, `d`
-- model features, `F` MLP features.  Every matrix is [out][in] (the
-- transpose of Hugging Face's Conv1D layout; llaf/gpt2.py does that once).
-- Per-layer weights are stacked along a leading `[L]` axis.

import "nn"
import "attention"

type gpt2 [L][V][C][d][F] =
  { wte: [V][d]f32,                       -- token embedding, also the LM head
    wpe: [C][d]f32,                       -- position embedding
    ln1_g: [L][d]f32, ln1_b: [L][d]f32,   -- LayerNorm before attention
    wq: [L][d][d]f32, bq: [L][d]f32,      -- query, key and value projections
    wk: [L][d][d]f32, bk: [L][d]f32,
    wv: [L][d][d]f32, bv: [L][d]f32,
    wo: [L][d][d]f32, bo: [L][d]f32,      -- attention output projection
    ln2_g: [L][d]f32, ln2_b: [L][d]f32,   -- LayerNorm before the MLP
    wfc: [L][F][d]f32, bfc: [L][F]f32,    -- MLP up-projection
    wproj: [L][d][F]f32, bproj: [L][d]f32, -- MLP down-projection
    lnf_g: [d]f32, lnf_b: [d]f32,         -- final LayerNorm
    heads: i64,                           -- attention heads (d = heads · head size)
    eps: f32 }                            -- LayerNorm epsilon

-- | An empty key/value cache sized for `p`.
def empty_cache [L][V][C][d][F] (p: gpt2 [L][V][C][d][F]) : *kv_cache [L][] [C][] =
  let H = p.heads
  in cache_empty L H C (d / H)

-- | The MLP: `proj (gelu (fc x))`.
def mlp [L][V][C][d][F][n] (p: gpt2 [L][V][C][d][F]) (l: i64) (x: [n][d]f32) : [n][d]f32 =
  linears p.wfc[l] p.bfc[l] x |> map (map gelu_tanh) |> linears p.wproj[l] p.bproj[l]

-- | Transformer block `l` for `n` tokens at positions `pos ..`:
-- `x + attn (ln1 x)`, then `x + mlp (ln2 x)`; also the tokens' keys and values.
def block [L][V][C][d][F][H][hd][n] (p: gpt2 [L][V][C][d][F]) (pos: i64) (cache: kv_cache [L][H][C][hd])
                                    (l: i64) (x: [n][d]f32)
                                    : ([n][d]f32, [n][H][hd]f32, [n][H][hd]f32) =
  let h = map (layer_norm p.eps p.ln1_g[l] p.ln1_b[l]) x
  let q = linears p.wq[l] p.bq[l] h |> map (split_heads H hd)
  let k = linears p.wk[l] p.bk[l] h |> map (split_heads H hd)
  let v = linears p.wv[l] p.bv[l] h |> map (split_heads H hd)
  let a = attend cache l pos q k v |> map (join_heads d) |> linears p.wo[l] p.bo[l]
  let x = map2 vadd x a
  let x = map2 vadd x (map (layer_norm p.eps p.ln2_g[l] p.ln2_b[l]) x |> mlp p l)
  in (x, k, v)

-- | The final hidden states of `n` tokens at positions `pos .. pos+n-1`,
-- which must lie inside the context; their keys and values enter the cache.
def hidden [L][V][C][d][F][H][hd][n] (p: gpt2 [L][V][C][d][F]) (cache: *kv_cache [L][H][C][hd])
                                     (pos: i64) (ids: [n]i64)
                                     : ([n][d]f32, *kv_cache [L][H][C][hd]) =
  let x = map2 (\t i -> vadd p.wte[t] p.wpe[pos + i]) ids (iota n)
  let (x, ks, vs) = run_layers (block p pos) cache x
  in (map (layer_norm p.eps p.lnf_g p.lnf_b) x, cache_append cache pos ks vs)

-- | Next-token logits from a final hidden state (the LM head is `wte`).
def logits [L][V][C][d][F] (p: gpt2 [L][V][C][d][F]) (h: [d]f32) : [V]f32 =
  matvec p.wte h
