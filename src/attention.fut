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
import "differentiable"

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
-- attending to the positions `0 ..= pos[i]` of slot `slots[i]`, or with a
-- sliding window of `window > 0` positions to the last `window` of them
-- (`pos[i] - window < p`, as transformers masks them).  Inlined:
-- called as a function (the compiler does not inline it on its own where
-- several models use it), its cache argument was copied whole, every layer.
--
-- One task per token and query head computes its softmax weights in a
-- buffer of the cache's panels updated in place, panel by panel, with
-- constant lane indices (`lanes.foldi`): an array made per panel was copied
-- into place by the runtime's general copy, several calls per panel
-- (docs/PERFORMANCE.md).  Only the panels the token sees are visited and
-- read later.  The buffers have the cache's length rather than `used`: sized
-- by `used`, a value computed on the device, the GPU pipeline's
-- device-synchronisation pass failed (Futhark 0.25.27, "unknown variable").
#[inline]
def attend [n][N][Q][hd] (g: geometry) (window: i64) (cache: [n]f32) (l: i64) (slots: [N]i64) (pos: [N]i64)
                         (q: [N][Q][hd]f32) : *[N][Q][hd]f32 =
  let group = Q / g.heads
  let scale = 1 / f32.sqrt (f32.i64 hd)
  let used = i64.maximum pos / P + 1   -- panels any token reads
  let seen i = pos[i] / P + 1          -- panels token `i` reads: from `first i` to `seen i`
  let oldest i = if window > 0 then i64.max 0 (pos[i] - window + 1) else 0
  let first i = oldest i / P
  let panel kv i h t = panel_at g kv slots[i] l (h / group) t
  let zeros = lanes.tabulate (\_ -> 0f32)
  let np = g.panels
  let put t (x: lanes.t f32) (buf: *[np][P]f32) : *[np][P]f32 =
    lanes.foldi (\(buf: *[np][P]f32) r v : *[np][P]f32 -> buf with [t, r] = v) buf x
  let weights = tabulate_2d N Q (\i h ->
    -- Scores, panel by panel: `hd` multiply-adds of `P` positions at a
    -- time; `-inf` at the positions past the token's own.
    let s = loop s = replicate np (replicate P 0f32) for u < seen i - first i do
              let t = first i + u
              let at = panel 0 i h t
              let dot = loop acc = zeros for j < hd do
                          let qj = #[unsafe] q[i, h, j]
                          in lanes.map2 (\a k -> a + qj * k) acc (lanes.tabulate (\r -> #[unsafe] cache[at + j * P + r]))
              let visible r = t * P + r <= pos[i] && t * P + r >= oldest i
              in put t (lanes.map2 (\r a -> if visible r then scale * a else -f32.inf) (lanes.tabulate id) dot) s
    -- Softmax: the maximum lane by lane (exact in any order), the
    -- exponentials and their sum lane by lane, the sum of the lanes last.
    let top = loop m = lanes.tabulate (\_ -> -f32.inf) for u < seen i - first i do
                let t = first i + u
                in lanes.map2 f32.max m (lanes.tabulate (\r -> #[unsafe] s[t, r]))
    let top = let m = to_panel top in loop x = -f32.inf for r < P do f32.max x m[r]
    let (e, sums) = loop (e, sums) = (replicate np (replicate P 0f32), zeros) for u < seen i - first i do
                      let t = first i + u
                      let x = lanes.tabulate (\r -> f32.exp (#[unsafe] s[t, r] - top))
                      in (put t x e, lanes.map2 (+) sums x)
    let total = lanes.sum sums
    -- (written over the scores: `e` cannot be both read and updated here)
    let w = loop w = s for u < seen i - first i do
              let t = first i + u
              in put t (lanes.tabulate (\r -> #[unsafe] e[t, r] / total)) w
    in w[:used])
  -- Weighted sums of the values, `P` positions at a time, for each feature.
  in tabulate_3d N Q hd (\i h j ->
       let w = weights[i, h]
       let acc = loop acc = zeros for u < seen i - first i do
                   let t = first i + u
                   let at = panel 1 i h t + j * P
                   in lanes.map2 (\a (w, v) -> a + w * v) acc
                                 (lanes.tabulate (\r -> (#[unsafe] w[t, r], #[unsafe] cache[at + r])))
       in lanes.sum acc)

-- | Causal attention of `B` whole sequences of `S` tokens (queries
-- `[B][S][Q][hd]`, keys and values `[B][S][H][hd]`): the token at position
-- `i` attends to positions `0 ..= i` of its own sequence, or with a sliding
-- window of `window > 0` positions to the last `window` of them.  No cache:
-- training's attention (src/llama.fut `sequence_attention`), written for
-- differentiation: the scores and the weighted sums are src/differentiable.fut's
-- products, of each key/value head with the queries of its group.
-- (`attend`'s loops over panels, differentiated as loops, kept each
-- iteration's state for the reverse sweep: docs/PERFORMANCE.md, "Fine-tuning".)
def attend_sequences [B][S][Q][H][hd] (window: i64) (q: [B][S][Q][hd]f32) (k: [B][S][H][hd]f32) (v: [B][S][H][hd]f32)
                     : [B][S][Q][hd]f32 =
  let group = Q / H
  let scale = 1 / f32.sqrt (f32.i64 hd)
  let seen i j = j <= i && (window == 0 || i - j < window)
  let softmax i (s: [S]f32) : [S]f32 =
    let s = map2 (\j s -> if seen i j then scale * s else -f32.inf) (iota S) s
    let top = f32.maximum s
    let e = map (\s -> f32.exp (s - top)) s
    let total = f32.sum e
    in map (/ total) e
  -- key/value head `[S][hd]` of one sequence and its group's queries `[group][S][hd]`
  let heads (q: [group][S][hd]f32) (k: [S][hd]f32) (v: [S][hd]f32) : [group][S][hd]f32 =
    let w = products k (flatten q) |> map2 softmax (flatten (replicate group (iota S)))
    in products (transpose v) w |> unflatten
  in map3 (\q k v ->
             let q = unflatten (transpose q :> [H * group][S][hd]f32)
             in map3 heads q (transpose k) (transpose v) |> flatten |> transpose :> [S][Q][hd]f32)
          q k v

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
  in attend g 0 cache 0 (replicate n 0) (iota n) q

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
      let o = attend g 0 cache 0 [0] [p] [q[p]]
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
  let first = attend g 0 cache 0 slots pos (with_reverse m q)
  let cache = cache_write g cache 0 (replicate (n - m) 1) (m ..< n :> [n - m]i64) k[m:] v[m:]
  let rest = attend g 0 cache 0 (replicate (n - m) 1) (m ..< n :> [n - m]i64) q[m:]
  in first[:m] ++ rest :> [n][Q][hd]f32

-- | Attention of whole sequences, without a cache: two copies of the
-- sequence in one batch must each give the cached path's result, with and
-- without a sliding window (within 1e-5 · (1 + magnitude): the sums run in
-- another order).
-- ==
-- entry: test_attention_sequences
-- input @ ../tests/data/attention.in
-- output { true }
-- input @ ../tests/data/attention_long.in
-- output { true }
entry test_attention_sequences [n][Q][H][hd] (q: [n][Q][hd]f32) (k: [n][H][hd]f32) (v: [n][H][hd]f32) : bool =
  let g = {slots = 1, layers = 1, heads = H, panels = panels n, hd}
  let cache = cache_write g (cache_empty g) 0 (replicate n 0) (iota n) k v
  let close (a: [n][Q][hd]f32) (e: [n][Q][hd]f32) =
    and (map2 (\a e -> f32.abs (a - e) <= 1e-5 * (1 + f32.abs e)) (flatten (flatten a)) (flatten (flatten e)))
  let agree window =
    let cached = attend g window cache 0 (replicate n 0) (iota n) q
    let both = attend_sequences window [q, q] [k, k] [v, v]
    in close both[0] cached && close both[1] cached
  in agree 0 && agree 3 && agree (n / 2)
