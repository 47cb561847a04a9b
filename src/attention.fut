-- | Causal multi-head attention over a key/value cache, shared by GPT-2 and
-- Llama.
--
-- The cache of one model holds, for each of its `L` layers and `H` key/value
-- heads, the keys (and values) of every position seen so far:
-- `[L][H][C][hd]`, with `C` the context length and `hd` the head size.
-- Attention for `n` new tokens at positions `pos .. pos+n-1` first writes
-- their keys and values at those positions, in place, then lets each query
-- attend to positions `0 .. its own`.  Only the first `pos+n` positions are
-- read, so decoding token `p` costs O(p).
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
def join_heads [h][hd] (d: i64) (x: [h][hd]f32) : [d]f32 =
  flatten x :> [d]f32

type kv_cache [L][H][C][hd] = [2][L][H][C][hd]f32

-- | Write the keys and values of `n` new tokens into layer `l` of the cache
-- at positions `pos .. pos+n-1`.
--
-- Inlined: called as a function, the compiler copied the whole cache into a
-- fresh block before every call (a full cache copy per layer per token).
#[inline]
def cache_write [L][H][C][hd][n] (cache: *kv_cache [L][H][C][hd]) (l: i64) (pos: i64)
                                 (k: [n][H][hd]f32) (v: [n][H][hd]f32) : *kv_cache [L][H][C][hd] =
  let rows x = transpose x :> [H][pos + n - pos][hd]f32
  let cache = cache with [0, l, :, pos:pos + n] = rows k
  in cache with [1, l, :, pos:pos + n] = rows v

-- | One attention head: queries `q` at positions `pos + i` attend to keys and
-- values at positions `0 .. pos + i` (causal mask).
def attend_head [n][m][hd] (pos: i64) (q: [n][hd]f32) (k: [m][hd]f32) (v: [m][hd]f32) : [n][hd]f32 =
  let scale = 1 / f32.sqrt (f32.i64 hd)
  let scores = map2 (\i qi -> map2 (\j kj -> if j <= pos + i then scale * dot qi kj else -f32.inf)
                                   (iota m) k)
                    (iota n) q
  in matmul (map softmax scores) (transpose v)

-- | Causal attention of `n` new tokens (queries `[n][Q][hd]`) at positions
-- `pos ..` over layer `l` of the cache, which already holds the new tokens'
-- keys and values.
def attend [L][H][C][hd][n][Q] (cache: kv_cache [L][H][C][hd]) (l: i64) (pos: i64)
                               (q: [n][Q][hd]f32) : [n][Q][hd]f32 =
  let m = pos + n
  let group = Q / H
  in map2 (\i qh -> attend_head pos qh cache[0, l, i / group, :m] cache[1, l, i / group, :m])
          (iota Q) (transpose q)
     |> transpose

-- | An empty cache.
def cache_empty (L: i64) (H: i64) (C: i64) (hd: i64) : *kv_cache [L][H][C][hd] =
  replicate 2 (replicate L (replicate H (replicate C (replicate hd 0f32))))

-- ==
-- entry: test_attention
-- input @ ../tests/data/attention.in
-- output @ ../tests/data/attention.out
entry test_attention [n][Q][H][hd] (q: [n][Q][hd]f32) (k: [n][H][hd]f32) (v: [n][H][hd]f32) : [n][Q][hd]f32 =
  let cache = cache_write (cache_empty 1 H n hd) 0 0 k v
  in attend cache 0 0 q

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
      let cache = cache_write cache 0 p [k[p]] [v[p]]
      let o = attend cache 0 p [q[p]]
      in (out with [p] = o[0], cache)
  in out
