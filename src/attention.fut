-- | Causal multi-head attention over a key/value cache of several
-- sequences, shared by GPT-2 and Llama.
--
-- The cache holds `B` sequences ("slots"), each up to `C` positions, for
-- each of the `L` layers and `H` key/value heads.  Positions are stored in
-- panels of `P` (src/matrix.fut): keys `[B][L][H][T][hd][P]`, `T = C / P`,
-- so the keys of `P` positions at one feature are one register vector, and
-- a query's scores for a panel are `hd` vector multiply-adds; the values are
-- laid out the same way for the weighted sums.  Keys and values are the two
-- halves of one flat array: a cache carried through the layer loop and
-- returned from an entry point stays in place only as a one-dimensional
-- array (a multi-dimensional one was copied whole on return, O(context) per
-- token; a record of two arrays was not updated in place at all).
--
-- A pass runs `N` tokens, each with its slot and its position (the tokens
-- of one sequence at consecutive positions, several sequences at once when
-- decoding a batch).  Each layer first writes the new keys and values into
-- the cache, then every token attends to the positions `0 ..= pos` of its
-- own slot.  Positions past a token's own are never read, so a slot's old
-- contents beyond its length do not matter.
--
-- Grouped-query attention: with `Q` query heads and `H ≤ Q` key/value heads,
-- query head `i` uses key/value head `i / (Q/H)`.  GPT-2 has `Q = H`.

import "nn"
import "vec"
import "matrix"

-- | The shape of a cache: `slots` sequences of `panels · P` positions, for
-- `layers` layers of `heads` key/value heads of `hd` features.
type geometry = {slots: i64, layers: i64, heads: i64, panels: i64, hd: i64}

-- | The values a cache of shape `g` holds.
def cache_size (g: geometry) : i64 = 2 * g.slots * g.layers * g.heads * g.panels * g.hd * P

-- | Where the `[hd][P]` panel `t` of slot `s`, layer `l`, head `h` starts:
-- keys for `kv = 0`, values for `kv = 1`.
def panel_at (g: geometry) (kv: i64) (s: i64) (l: i64) (h: i64) (t: i64) : i64 =
  (((((kv * g.slots + s) * g.layers + l) * g.heads + h) * g.panels + t) * g.hd) * P

-- | A cache of shape `g` holding nothing.
def cache_empty (g: geometry) : *[]f32 = replicate (opaque (cache_size g)) 0

-- | Write the keys and values of `N` tokens of layer `l` (`[N][H][hd]`) at
-- their slots and positions, in place: one `scatter`.  (The cache was once
-- copied whole around here, every layer: that was `attend` called as a
-- function, below.  Slice updates per token and head instead made a
-- thread-pool task, or on a GPU a transfer, of `hd` values each.)
def cache_write [n][N][H][hd] (g: geometry) (cache: *[n]f32) (l: i64) (slots: [N]i64) (pos: [N]i64)
                              (k: [N][H][hd]f32) (v: [N][H][hd]f32) : *[n]f32 =
  let at kv i h j = panel_at g kv slots[i] l h (pos[i] / P) + j * P + pos[i] % P
  let where = tabulate_3d N H hd (\i h j -> [at 0 i h j, at 1 i h j])
  let what = map2 (map2 (map2 (\k v -> [k, v]))) k v
  in scatter cache (flatten (flatten (flatten where))) (flatten (flatten (flatten what)))

-- | Causal attention of `N` tokens at layer `l`: queries `[N][Q][hd]`, each
-- attending to the positions `0 ..= pos[i]` of slot `slots[i]`.  Inlined:
-- called as a function (the compiler does not inline it on its own where
-- several models use it), its cache argument was copied whole, every layer.
#[inline]
def attend [n][N][Q][hd] (g: geometry) (cache: [n]f32) (l: i64) (slots: [N]i64) (pos: [N]i64)
                         (q: [N][Q][hd]f32) : *[N][Q][hd]f32 =
  let group = Q / g.heads
  let scale = 1 / f32.sqrt (f32.i64 hd)
  let used = i64.maximum pos / P + 1   -- panels any token reads
  let valid i t r = t * P + r <= pos[i]
  let panel kv i h t = panel_at g kv slots[i] l (h / group) t
  -- Scores, panel by panel: `hd` multiply-adds of `P` positions at a time.
  let scores = tabulate_3d N Q used (\i h t ->
    if t * P > pos[i] then replicate P (-f32.inf)
    else let at = panel 0 i h t
         let s = loop s = lanes.tabulate (\_ -> 0f32) for j < hd do
                   let qj = #[unsafe] q[i, h, j]
                   in lanes.map2 (\s k -> s + qj * k) s (lanes.tabulate (\r -> #[unsafe] cache[at + j * P + r]))
         in to_panel s |> map2 (\r s -> if valid i t r then scale * s else -f32.inf) (iota P))
  -- Softmax weights: zero at the positions a token does not see.  The
  -- maximum and the sum are sequential loops: as reductions, PoCL computed
  -- them wrongly for one token attending to more than two panels (GPT-2
  -- 124M's shape, positions from 64 on; docs/BACKENDS.md).
  let weights = map2 (\i (s: [Q][used][P]f32) ->
                        map (\s -> let top = loop m = -f32.inf for k < used * P do
                                               f32.max m (#[unsafe] s[k / P, k % P])
                                   let e = map2 (\t (s: [P]f32) : [P]f32 ->
                                                   if t * P > pos[i] then replicate P 0
                                                   else map (\v -> f32.exp (v - top)) s) (iota used) s
                                   let total = loop acc = 0f32 for k < used * P do
                                                 acc + #[unsafe] e[k / P, k % P]
                                   in map (map (/ total)) e) s)
                      (iota N) scores
  -- Weighted sums of the values, `P` positions at a time, for each feature.
  in tabulate_3d N Q hd (\i h j ->
       let w = weights[i, h]
       let acc = loop acc = lanes.tabulate (\_ -> 0f32) for t < pos[i] / P + 1 do
                   let at = panel 1 i h t + j * P
                   in lanes.map2 (\a (w, v) -> a + w * v) acc
                                 (lanes.tabulate (\r -> (#[unsafe] w[t, r], #[unsafe] cache[at + r])))
       in lanes.sum acc)

-- ==
-- entry: test_attention
-- input @ ../tests/data/attention.in
-- output @ ../tests/data/attention.out
-- input @ ../tests/data/attention_long.in
-- output @ ../tests/data/attention_long.out
entry test_attention [n][Q][H][hd] (q: [n][Q][hd]f32) (k: [n][H][hd]f32) (v: [n][H][hd]f32) : [n][Q][hd]f32 =
  let g = {slots = 1, layers = 1, heads = H, panels = panels n, hd}
  let empty = cache_empty g
  let cache = cache_write g empty 0 (replicate n 0) (iota n) k v
  in attend g cache 0 (replicate n 0) (iota n) q

-- | The same attention, one token at a time through the cache, and as two
-- sequences in one batch: each must give the result of the whole-sequence path.
-- ==
-- entry: test_attention_cached
-- input @ ../tests/data/attention.in
-- output @ ../tests/data/attention.out
-- input @ ../tests/data/attention_long.in
-- output @ ../tests/data/attention_long.out
entry test_attention_cached [n][Q][H][hd] (q: [n][Q][hd]f32) (k: [n][H][hd]f32) (v: [n][H][hd]f32) : [n][Q][hd]f32 =
  let g = {slots = 1, layers = 1, heads = H, panels = panels n, hd}
  let size = cache_size g
  let (out, _) =
    loop (out: *[n][Q][hd]f32, cache: *[size]f32) = (replicate n (replicate Q (replicate hd 0f32)),
                                                     cache_empty g :> [size]f32)
    for p < n do
      let cache = cache_write g cache 0 [0] [p] [k[p]] [v[p]]
      let o = attend g cache 0 [0] [p] [q[p]]
      in (out with [p] = o[0], cache)
  in out

def with_reverse [n][a][b] (m: i64) (xs: [n][a][b]f32) : [m + n][a][b]f32 = xs[:m] ++ reverse xs :> [m + n][a][b]f32

-- ==
-- entry: test_attention_batched
-- input @ ../tests/data/attention.in
-- output @ ../tests/data/attention.out
-- input @ ../tests/data/attention_long.in
-- output @ ../tests/data/attention_long.out
entry test_attention_batched [n][Q][H][hd] (q: [n][Q][hd]f32) (k: [n][H][hd]f32) (v: [n][H][hd]f32) : [n][Q][hd]f32 =
  -- slot 1 holds the sequence; slot 0 holds its reverse, decoded alongside.
  let m = n / 2
  let slots = replicate m 1 ++ replicate n 0 :> [m + n]i64
  let pos = iota m ++ iota n :> [m + n]i64
  let g = {slots = 2, layers = 1, heads = H, panels = panels n, hd}
  let empty = cache_empty g
  let cache = cache_write g empty 0 slots pos (with_reverse m k) (with_reverse m v)
  let first = attend g cache 0 slots pos (with_reverse m q)
  let cache = cache_write g cache 0 (replicate (n - m) 1) (m ..< n :> [n - m]i64) k[m:] v[m:]
  let rest = attend g cache 0 (replicate (n - m) 1) (m ..< n :> [n - m]i64) q[m:]
  in first[:m] ++ rest :> [n][Q][hd]f32
