-- | Causal multi-head attention over a key/value cache, shared by GPT-2 and
-- Llama.
--
-- The cache of one model holds the keys (`[0]`) and values (`[1]`) of
-- every position seen so far, for each of its `L` layers and `H` key/value
-- heads: `[2][L][H][C][hd]`, with `C` the context length and `hd` the head
-- size.  A forward pass over `n` new tokens at positions `pos .. pos+n-1`
-- only reads the cache: each query attends to the cached positions
-- `0 .. pos-1` and to the new tokens up to its own.  The new keys and values
-- of all layers are appended afterwards, in place, by one `cache_append`.
-- Only the first `pos` positions are read, so decoding token `p` costs O(p).
--
-- Grouped-query attention: with `Q` query heads and `H ≤ Q` key/value heads,
-- query head `i` uses key/value head `i / (Q/H)`.  GPT-2 has `Q = H`.

import "nn"

-- | Split a vector of `h*hd` features into `h` heads.
--
-- `opaque` keeps the projection that produced `x` a plain matrix–vector
-- product: fused with this reshape, the compiler indexed the weights with a
-- division per element, 3× slower per token.
def split_heads [d] (h: i64) (hd: i64) (x: [d]f32) : [h][hd]f32 =
  unflatten (opaque x :> [h * hd]f32)

-- | Join `h` heads back into one vector of `d` features.
--
-- Built element by element into a fresh row (behind `opaque`, so that it is
-- not fused into its consumer): as a reshaped view of the head-major
-- attention output, the output projection indexed it with divisions per
-- weight (prefill 4× slower).
def join_heads [h][hd] (d: i64) (x: [h][hd]f32) : [d]f32 =
  opaque (tabulate d (\j -> x[j / hd, j % hd]))

type kv_cache [L][H][C][hd] = [2][L][H][C][hd]f32

-- | An empty cache.
def cache_empty (L: i64) (H: i64) (C: i64) (hd: i64) : *kv_cache [L][H][C][hd] =
  replicate 2 (replicate L (replicate H (replicate C (replicate hd 0f32))))

-- | Append the keys and values of `n` new tokens, for every layer
-- (`[L][H][n][hd]`), at positions `pos .. pos+n-1`.  One slice update per
-- array and no loop: the compiler then updates the cache in place (a loop
-- over layers made it copy the whole cache once per call).
def cache_append [L][H][C][hd][n] (cache: *kv_cache [L][H][C][hd]) (pos: i64)
                                  (k: [L][H][n][hd]f32) (v: [L][H][n][hd]f32) : *kv_cache [L][H][C][hd] =
  let cache = cache with [0, :, :, pos:pos + n] = (k :> [L][H][pos + n - pos][hd]f32)
  in cache with [1, :, :, pos:pos + n] = (v :> [L][H][pos + n - pos][hd]f32)

-- | `Σ_j w[j] · v[j]`: the attention-weighted sum of value rows.
def weighted [m][hd] (w: [m]f32) (v: [m][hd]f32) : [hd]f32 =
  map (dot w) (transpose v)

-- | One attention head: queries `q` of the new tokens attend to the `p`
-- cached keys and values, and causally to the new tokens' own.
def attend_head [n][p][hd] (q: [n][hd]f32) (k_old: [p][hd]f32) (v_old: [p][hd]f32)
                           (k_new: [n][hd]f32) (v_new: [n][hd]f32) : [n][hd]f32 =
  let scale = 1 / f32.sqrt (f32.i64 hd)
  let attend_one i qi =
    let s_old = map (\kj -> scale * dot qi kj) k_old
    let s_new = map2 (\j kj -> if j <= i then scale * dot qi kj else -f32.inf) (iota n) k_new
    let w = softmax (s_old ++ s_new)
    in map2 (+) (weighted w[:p] v_old) (weighted (w[p:] :> [n]f32) v_new)
  in map2 attend_one (iota n) q

-- | Causal attention of `n` new tokens (queries `[n][Q][hd]`, keys and
-- values `[n][H][hd]`) at positions `pos ..`, over layer `l` of the cache.
def attend [L][H][C][hd][n][Q] (cache: kv_cache [L][H][C][hd]) (l: i64) (pos: i64)
                               (q: [n][Q][hd]f32) (k: [n][H][hd]f32) (v: [n][H][hd]f32) : *[n][Q][hd]f32 =
  let group = Q / H
  let (k, v) = (transpose k, transpose v)
  in map2 (\i qh -> let g = i / group
                    in attend_head qh cache[0, l, g, :pos] cache[1, l, g, :pos] k[g] v[g])
          (iota Q) (transpose q)
     |> transpose

-- | Run the `L` layers of a model over `n` new tokens at positions `pos ..`.
-- `layer cache l x` is layer `l`'s output for input `x`, with the new
-- tokens' keys and values (`[n][H][hd]`); its attention reads the cache as it
-- was.  Returns the last layer's output and the new keys and values of every
-- layer, `[L][H][n][hd]`, for `cache_append`.
def run_layers [L][H][C][hd][n][d] (layer: kv_cache [L][H][C][hd] -> i64 -> [n][d]f32
                                           -> ([n][d]f32, [n][H][hd]f32, [n][H][hd]f32))
                                   (cache: kv_cache [L][H][C][hd]) (x: [n][d]f32)
                                   : ([n][d]f32, *[L][H][n][hd]f32, *[L][H][n][hd]f32) =
  let new () = replicate L (replicate H (replicate n (replicate hd 0f32)))
  in loop (x, ks, vs) = (x, new (), new ()) for l < L do
       let (x, k, v) = layer cache l x
       in (x, ks with [l] = transpose k, vs with [l] = transpose v)

-- ==
-- entry: test_attention
-- input @ ../tests/data/attention.in
-- output @ ../tests/data/attention.out
entry test_attention [n][Q][H][hd] (q: [n][Q][hd]f32) (k: [n][H][hd]f32) (v: [n][H][hd]f32) : [n][Q][hd]f32 =
  attend (cache_empty 1 H n hd) 0 0 q k v

-- | The same attention, one token at a time through the cache: the cached
-- path must give the result of the whole-sequence path.
-- ==
-- entry: test_attention_cached
-- input @ ../tests/data/attention.in
-- output @ ../tests/data/attention.out
entry test_attention_cached [n][Q][H][hd] (q: [n][Q][hd]f32) (k: [n][H][hd]f32) (v: [n][H][hd]f32) : [n][Q][hd]f32 =
  let (out, _) =
    loop (out, cache) = (replicate n (replicate Q (replicate hd 0f32)), cache_empty 1 H n hd)
    for p < n do
      let o = attend cache 0 p [q[p]] [k[p]] [v[p]]
      let cache = cache_append cache p [transpose [k[p]]] [transpose [v[p]]]
      in (out with [p] = o[0], cache)
  in out
