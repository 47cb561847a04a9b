-- | Training's products of the layers' matrices (src/train.fut): a
-- `matrix` that also gives the adjoint of its product with respect to the
-- tokens, so that a LoRA step differentiates its frozen base by a product
-- of its own.  `vjp` of `products` makes that adjoint an accumulation into
-- each token's row (a load and a store of it for every two rows); as the
-- product of the transposed matrix it is a forward product, here by
-- `panel_product`, training's kernel over f32 panels (docs/PERFORMANCE.md,
-- "Fine-tuning").  And the adjoint of training's attention
-- (src/attention.fut `attend_sequences`), its products' adjoints products
-- by the same kernel.  Training's only: the
-- engine's builds do not compile this file (the Makefile's ENGINE_SOURCES).

import "matrix"
import "differentiable"
import "attention"
import "target"
import "vec"

module type trainable = {
  include matrix
  -- | `ys W`: the adjoint of `xs ↦ xs Wᵀ` with respect to the `n` columns of `xs`.
  val adjoint [m][kb][b] : (n: i64) -> mat [m][kb] -> [b][m]f32 -> [b][n]f32
}

-- | The tokens training's products multiply together: eight, where the
-- engine's batched kernel takes `G` (4), because it decodes a column pair
-- at a time and keeps a running sum for each of the pair's columns.  Over
-- f32 panels one sum a row and token will do, so twice the tokens fit in
-- the same registers (a whole panel of 32 rows times 8 tokens: 16 of
-- AVX-512's 32; 8 rows times 8 tokens: 8 of AVX2's 16), and each load of
-- the matrix feeds twice the multiply-adds (docs/PERFORMANCE.md,
-- "Fine-tuning").
local module tokens = vec8

-- | `xs Wᵀ` for the f32 panels `a`, `kernel_rows` rows of a panel at a time
-- (src/target.fut; the Makefile compiles training from the c backend's
-- copy of it).  The tokens go in blocks of up to four groups, each block
-- copied column by column into `[groups][columns][8]`, so that a
-- multiply-add reads its token's value straight from memory; the blocks'
-- rows are written in place, panel after panel.  The running sums are
-- tuples a panel's lanes wide, which the C compiler packs into vector
-- registers; with training's reassociated sums (the Makefile's
-- `TRAIN_CFLAGS`) its loop vectorizer vectorized such sums the wrong way,
-- 10× slower.  A C function of its own (not inlined), so that
-- scripts/patch-train.py can compile it with exact sums and AVX-512's
-- whole registers.
#[noinline]
def panel_product [m][kb][b][n] (a: f32_panels.mat [m][kb]) (xs: [b][n]f32) : [b][m]f32 =
  let G = tokens.n
  let TB = G * i64.max 1 (i64.min 4 ((b + G - 1) / G))
  let (blocks, groups) = ((b + TB - 1) / TB, TB / G)
  let zero = tokens.tabulate (\_ -> kernel_rows.tabulate (\_ -> 0f32))
  let fma acc w x = tokens.map2 (\a x -> kernel_rows.map2 (\a w -> a + w * x) a w) acc x
  let rows = tabulate blocks (\blk ->
    let xp = tabulate groups (\g -> tabulate (kb * 32 * G) (\f ->
               let (c, k) = (f / G, blk * TB + g * G + f % G)
               in if k < b && c < n then #[unsafe] xs[k, c] else 0))
    in loop out = replicate TB (replicate m 0f32) for t < panels m do
         loop out for g < groups do
           loop out for s < P / kernel_rows.n do
             let r0 = s * kernel_rows.n
             let sums = loop acc = zero for c < kb do
                          loop acc for j < 32 do
                            fma acc (kernel_rows.tabulate (\r -> #[unsafe] a.w[t, c, j, r0 + r]))
                                    (tokens.tabulate (\i -> #[unsafe] xp[g, (c * 32 + j) * G + i]))
             -- (rows `m` wide, the last panel's padding not stored, so that
             -- the blocks' rows are the result as they are)
             let put (out: *[TB][m]f32) i (y: kernel_rows.t f32) : *[TB][m]f32 =
               kernel_rows.foldi (\(out: *[TB][m]f32) r v : *[TB][m]f32 ->
                          let row = t * P + r0 + r
                          in if row < m then out with [g * G + i, row] = v else out) out y
             in tokens.foldi put out sums)
  in flatten rows |> take b

-- | `xs wᵀ` for a matrix of plain rows `w`, laid out in f32 panels for
-- `panel_product` (zeros past its last row and column).
def rows_product [m][n][b] (xs: [b][n]f32) (w: [m][n]f32) : [b][m]f32 =
  let kb = (n + 31) / 32
  let cell t c j r = let (i, k) = (t * P + r, c * 32 + j) in if i < m && k < n then #[unsafe] w[i, k] else 0
  in panel_product (f32_mat m (tabulate_3d (panels m) kb 32 (\t c j -> tabulate P (cell t c j)))) xs

-- | The panels of a matrix larger than `whole_below` values that its
-- products take at a time (256 rows, as `chunk_rows`): each part decoded
-- into f32 and multiplied while it is in the cache.
def chunk_panels : i64 = chunk_rows / P

-- | A frozen base of format `F` (the layers' matrices and the head of a
-- LoRA trainer): decoded into f32 panels and multiplied by
-- `panel_product`, its adjoint the product of the transposed matrix,
-- decoded into f32 panels too.  A layer's matrix (up to `whole_below`
-- values) is decoded whole; a larger one (a vocabulary's head)
-- `chunk_panels` panels at a time, whose f32 copy stays in the cache.
module frozen_base (F: format) : trainable with mat [m][kb] = F.mat [m][kb] = {
  module engine = matrix F
  type mat [m][kb] = F.mat [m][kb]

  -- The decodings below are loops that write each column pair's two values
  -- in place: as maps (a tile's rows or lanes where `a` ends zeros), the
  -- compiler wrote each row, then each tile, then the whole matrix into
  -- memory of its own and copied it on, 3.5× slower (docs/PERFORMANCE.md).

  -- | Panels `t0 ..` of `a`, `T` of them, decoded into f32 panels (zeros
  -- past `a`'s last panel).
  def decoded [m][kb] (a: mat [m][kb]) (t0: i64) (T: i64) : f32_panels.mat [T * P][kb] =
    let w = loop w = replicate T (replicate kb (replicate 32 (replicate P 0f32))) for t < T do
              if t0 + t >= panels m then w else
              loop w for b < kb do
                loop w for j < 16 do
                  loop w for r < P do
                    let (lo, hi) = F.pair a (t0 + t) b j r
                    in w with [t, b, j, r] = lo with [t, b, j + 16, r] = hi
    in f32_mat (T * P) w

  -- | Panels `t0 ..` of `a`, `T` of them, transposed into f32 panels of `n`
  -- rows and `T·P` columns (zeros past `a`'s last row): panel `b`'s block
  -- `t` is block `b` of panel `t0 + t` of `a` transposed (a panel is 32 rows
  -- and a block 32 columns), its row `r` column pair `j` of `a`'s row (`F.pair`:
  -- columns `j` and `j + 16`).
  def transposed [m][kb] (n: i64) (a: mat [m][kb]) (t0: i64) (T: i64) : f32_panels.mat [n][T] =
    let w = loop w = replicate kb (replicate T (replicate 32 (replicate P 0f32))) for b < kb do
              loop w for t < T do
                loop w for r < 32 do
                  if (t0 + t) * P + r >= m then w else
                  loop w for j < 16 do
                    let (lo, hi) = F.pair a (t0 + t) b j r
                    in w with [b, t, r, j] = lo with [b, t, r, j + 16] = hi
    in f32_mat n (w :> [(n + P - 1) / P][T][32][P]f32)

  def matmul [m][kb][b][n] (a: mat [m][kb]) (xs: [b][n]f32) : [b][m]f32 =
    if m * n <= whole_below then panel_product (f32_mat m (decoded a 0 (panels m)).w) xs
    else let parts = (panels m + chunk_panels - 1) / chunk_panels
         in tabulate parts (\c -> panel_product (decoded a (c * chunk_panels) chunk_panels) xs)
            |> transpose |> map flatten |> map (take m)

  def adjoint [m][kb][b] (n: i64) (a: mat [m][kb]) (ys: [b][m]f32) : [b][n]f32 =
    if m * n <= whole_below then panel_product (transposed n a 0 (panels m)) ys
    else let (T, parts) = (chunk_panels, (panels m + chunk_panels - 1) / chunk_panels)
         in loop acc = replicate b (replicate n 0f32) for c < parts do
              let part = tabulate b (\i -> tabulate (T * P) (\j -> let k = c * T * P + j in if k < m then ys[i, k] else 0))
              in map2 (map2 (+)) acc (panel_product (transposed n a (c * T) T) part)

  def matvec [m][kb][n] (a: mat [m][kb]) (x: [n]f32) : [m]f32 = (matmul a [x])[0]
  def layer_matmul [L][m][kb][b][n] (ws: [L](mat [m][kb])) (l: i64) (xs: [b][n]f32) : [b][m]f32 = matmul ws[l] xs
  def matmul_once [m][kb][b][n] (a: mat [m][kb]) (xs: [b][n]f32) : [b][m]f32 = matmul a xs
  def row [m][kb] (n: i64) (a: mat [m][kb]) (i: i64) : [n]f32 = engine.row n a i
  def dense [m][kb] (a: mat [m][kb]) : f32_panels.mat [m][kb] = engine.dense a
}

-- | The attention weights of `n` queries' scores `s` against `S` positions,
-- query `i` at position `at[i]` (`hd` features a head): the softmax of
-- src/attention.fut's `attend_sequences`, which weighs them the same way
-- inside (scaled by 1/√hd, causal, within the window when `window > 0`).
def attention_weights [n][S] (hd: i64) (window: i64) (at: [n]i64) (s: [n][S]f32) : [n][S]f32 =
  let scale = 1 / f32.sqrt (f32.i64 hd)
  let seen i j = j <= i && (window == 0 || i - j < window)
  let softmax i (s: [S]f32) : [S]f32 =
    let s = map2 (\j s -> if seen i j then scale * s else -f32.inf) (iota S) s
    let top = f32.maximum s
    let e = map (\s -> f32.exp (s - top)) s
    let total = f32.sum e
    in map (/ total) e
  in map2 softmax at s

-- | The adjoint of `attend_sequences window q k v` at the attention's
-- adjoint `a_bar`, with respect to `q`, `k` and `v`.  `vjp` of it
-- differentiated its products (src/differentiable.fut's sums of maps) into
-- accumulations, 5 ms a SmolLM2 layer; here each product's adjoints are
-- products by `panel_product`, and only the softmax is differentiated by
-- `vjp` (docs/PERFORMANCE.md, "Fine-tuning").
def attention_adjoint [B][S][Q][H][hd] (window: i64) (q: [B][S][Q][hd]f32) (k: [B][S][H][hd]f32)
                      (v: [B][S][H][hd]f32) (a_bar: [B][S][Q][hd]f32)
                      : ([B][S][Q][hd]f32, [B][S][H][hd]f32, [B][S][H][hd]f32) =
  let group = Q / H
  -- a key/value head `[S][hd]` and its group's queries `[group * S][hd]`:
  -- scores `s = q kᵀ`, weights `w`, attention `w v`
  let head (q: [group * S][hd]f32) (k: [S][hd]f32) (v: [S][hd]f32) (a_bar: [group * S][hd]f32) =
    let s = rows_product q k
    let (w, s_bar) = vjp2 (attention_weights hd window (flatten (replicate group (iota S)))) s (rows_product a_bar v)
    in (rows_product s_bar (transpose k), rows_product (transpose s_bar) (transpose q),
        rows_product (transpose w) (transpose a_bar))
  let sequence (q: [S][Q][hd]f32) (k: [S][H][hd]f32) (v: [S][H][hd]f32) (a_bar: [S][Q][hd]f32) =
    let of_head (y: [S][Q][hd]f32) h = tabulate_3d group S hd (\g i c -> y[i, h * group + g, c]) |> flatten
    let (q_bar, k_bar, v_bar) =
      unzip3 (tabulate H (\h -> head (of_head q h) (transpose k)[h] (transpose v)[h] (of_head a_bar h)))
    in (tabulate_3d S Q hd (\i h c -> q_bar[h / group, h % group * S + i, c]), transpose k_bar, transpose v_bar)
  in unzip3 (map4 sequence q k v a_bar)

-- | Matrices that are differentiated (full fine-tuning): `products_of D F`,
-- the adjoint by `vjp`.
module differentiated (D: decoding) (F: format) : trainable with mat [m][kb] = F.mat [m][kb] = {
  open (products_of D F)
  def adjoint [m][kb][b] (n: i64) (a: mat [m][kb]) (ys: [b][m]f32) : [b][n]f32 =
    vjp (matmul a) (replicate b (replicate n 0)) ys
}

-- | `W` without its products (zeros): the model whose steps the LoRA
-- backward pass differentiates, a frozen base's part of each derivative
-- added by `adjoint` (src/train.fut `backward`).
module without_products (W: matrix) : matrix with mat [m][kb] = W.mat [m][kb] = {
  type mat [m][kb] = W.mat [m][kb]
  def matvec [m][kb][n] (_: mat [m][kb]) (_: [n]f32) : [m]f32 = replicate m 0
  def matmul [m][kb][b][n] (_: mat [m][kb]) (_: [b][n]f32) : [b][m]f32 = replicate b (replicate m 0)
  def layer_matmul [L][m][kb][b][n] (_: [L](mat [m][kb])) (_: i64) (_: [b][n]f32) : [b][m]f32 =
    replicate b (replicate m 0)
  def matmul_once [m][kb][b][n] (_: mat [m][kb]) (_: [b][n]f32) : [b][m]f32 = replicate b (replicate m 0)
  def row [m][kb] (n: i64) (a: mat [m][kb]) (i: i64) : [n]f32 = W.row n a i
  def dense [m][kb] (a: mat [m][kb]) : f32_panels.mat [m][kb] = W.dense a
}

-- Tests: a frozen q4 base's products equal plain sums `xs Wᵀ`, and its
-- adjoint plain sums `ys W`, for rows that do not fill the last panel,
-- tokens that do not fill the kernel's groups, a matrix of one block, and
-- one of more than `whole_below` values (in parts, the last one short):
-- each within 1e-5 · (1 + the sum of its terms' magnitudes), as sums in
-- another order are (the adjoint's up to 40 000 terms).
local module q4_base = frozen_base q4_panels

-- ==
-- entry: test_frozen_base
-- input { 1000i64 70i64 3i64 } output { true }
-- input { 40i64 5i64 2i64 } output { true }
-- input { 31i64 1i64 1i64 } output { true }
-- input { 40000i64 3i64 4i64 } output { true }

entry test_frozen_base (m: i64) (b: i64) (kb: i64) : bool =
  let n = 32 * kb
  let t = (m + P - 1) / P
  let q = tabulate t (\i -> tabulate kb (\c -> tabulate 16 (\j -> tabulate P (\r ->
            u8.i64 ((((i * kb + c) * 16 + j) * P + r) * 37 % 256)))))
  let halves (base: i64) = tabulate t (\i -> tabulate kb (\c -> tabulate P (\r ->
                             u16.i64 (base + ((i * kb + c) * P + r) * 13 % 1024))))
  let a = q4_mat m q (halves 0x3000) (halves 0xb000)
  let w = by_maps.rows m n kb (\r c j -> q4_panels.pair a (r / P) c j (r % P))
  let xs = tabulate_2d b n (\i j -> f32.cos (f32.i64 (3 * i + 7 * j)))
  let ys = tabulate_2d b m (\i j -> f32.sin (f32.i64 (5 * i + 2 * j + 1)))
  -- (each plain sum with the sum of its terms' magnitudes)
  let plain [k] (u: [k]f32) (v: [k]f32) = (f32.sum (map2 (*) u v), f32.sum (map2 (\u v -> f32.abs (u * v)) u v))
  let close [k][l] (got: [k][l]f32) (want: [k][l](f32, f32)) =
    and (map2 (\g w -> and (map2 (\g (v, s) -> f32.abs (g - v) <= 1e-5 * (1 + s)) g w)) got want)
  in close (q4_base.matmul a xs) (map (\x -> map (plain x) w) xs)
     && close (q4_base.adjoint n a ys) (map (\y -> map (plain y) (transpose w)) ys)

-- `attention_adjoint` equals `vjp` of `attend_sequences`, for grouped heads
-- (two queries a key/value head), sequences of lengths that are not a
-- multiple of a panel, heads of features that are not, with and without a
-- window: each value within 1e-5 · (1 + the largest magnitude).
-- ==
-- entry: test_attention_adjoint
-- input { 2i64 37i64 4i64 2i64 24i64 0i64 } output { true }
-- input { 1i64 70i64 2i64 1i64 64i64 5i64 } output { true }

entry test_attention_adjoint (B: i64) (S: i64) (Q: i64) (H: i64) (hd: i64) (window: i64) : bool =
  let values (n: i64) (seed: i64) =
    tabulate_3d B S n (\b i h -> tabulate hd (\c -> f32.sin (f32.i64 (seed + 7 * b + 3 * i + 11 * h + 5 * c))))
  let (q, k, v, a_bar) = (values Q 1, values H 2, values H 3, values Q 4)
  let want = vjp (\(q, k, v) -> attend_sequences window q k v) (q, k, v) a_bar
  let got = attention_adjoint window q k v a_bar
  let close [n] (x: [n]f32) (y: [n]f32) =
    let top = f32.maximum (map f32.abs y)
    in all (\(x, y) -> f32.abs (x - y) <= 1e-5 * (1 + top)) (zip x y)
  in close (flatten_4d got.0) (flatten_4d want.0) && close (flatten_4d got.1) (flatten_4d want.1)
     && close (flatten_4d got.2) (flatten_4d want.2)
