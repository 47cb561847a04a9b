-- | Training's products of the layers' matrices (src/train.fut): a
-- `matrix` that also gives the adjoint of its product with respect to the
-- tokens, so that a LoRA step differentiates its frozen base by a product
-- of its own.  `vjp` of `products` makes that adjoint an accumulation into
-- each token's row (a load and a store of it for every two rows); as the
-- product of the transposed matrix it is a forward product, here the
-- engine's kernel's (docs/PERFORMANCE.md, "Fine-tuning").  Training's only:
-- the engine's builds do not compile this file (the Makefile's
-- ENGINE_SOURCES).

import "matrix"
import "differentiable"
import "target"

module type trainable = {
  include matrix
  -- | `ys W`: the adjoint of `xs ↦ xs Wᵀ` with respect to the `n` columns of `xs`.
  val adjoint [m][kb][b] : (n: i64) -> mat [m][kb] -> [b][m]f32 -> [b][n]f32
}

-- | The engine's products over f32 panels (src/matrix.fut `f32_products`),
-- as many rows of a panel at a time as this build's target wants
-- (src/target.fut `kernel_rows`; the Makefile compiles training from the
-- c backend's copy of it).
local module panel_kernel = f32_products kernel_rows

-- | `xs Wᵀ` for the f32 panels `a` by the engine's batched kernel: its
-- running sums are tuples a panel's lanes wide, which the C compiler packs
-- into vector registers; with training's reassociated sums (the Makefile's
-- `TRAIN_CFLAGS`) its loop vectorizer vectorized them the wrong way, 10×
-- slower.  A C function of its own (not inlined), so that
-- scripts/patch-runtime.py can compile it with exact sums and AVX-512's
-- whole registers (`--panel-products`).  Bit for bit the engine's products.
#[noinline]
def panel_product [m][kb][b][n] (a: f32_panels.mat [m][kb]) (xs: [b][n]f32) : [b][m]f32 =
  panel_kernel.matmul a xs

-- | A frozen base of format `F`: a layer's matrix (up to `whole_below`
-- values) decoded into f32 panels as the engine decodes it for a long
-- prompt (`matrix F`'s `dense`) and multiplied by `panel_product`, its
-- adjoint the product of the transposed matrix, decoded into f32 panels
-- too; a larger one (whose f32 copy would not stay in the cache) as
-- `products_of D F` multiplies it, its adjoint by `vjp`.
module frozen_base (D: decoding) (F: format) : trainable with mat [m][kb] = F.mat [m][kb] = {
  module whole = products_of D F
  module engine = matrix F
  type mat [m][kb] = F.mat [m][kb]

  -- | `a` transposed into f32 panels of `n` rows and `m` columns: panel
  -- `b`'s block `t` is block `b` of panel `t` of `a` transposed (a panel is
  -- 32 rows and a block 32 columns), so each tile is decoded from its own
  -- codes, a column pair's lanes at a time (`F.pair`: columns `j` and `j +
  -- 16`), and written in the rows' order.  The padding rows of `a`'s last
  -- panel, columns of the transposed, are zeros.
  def transposed [m][kb] (n: i64) (a: mat [m][kb]) : f32_panels.mat [n][(m + P - 1) / P] =
    let tile b t : [32][P]f32 =
      tabulate 32 (\r -> tabulate P (\c -> let (lo, hi) = F.pair a t b (c % 16) r
                                           in if t * P + r >= m then 0 else if c < 16 then lo else hi))
    in f32_mat n (tabulate kb (\b -> tabulate (panels m) (tile b)) :> [(n + P - 1) / P][(m + P - 1) / P][32][P]f32)

  def matmul [m][kb][b][n] (a: mat [m][kb]) (xs: [b][n]f32) : [b][m]f32 =
    if m * n <= whole_below then panel_product (engine.dense a) xs else whole.matmul a xs
  def adjoint [m][kb][b] (n: i64) (a: mat [m][kb]) (ys: [b][m]f32) : [b][n]f32 =
    if m * n <= whole_below then panel_product (transposed n a) ys
    else vjp (whole.matmul a) (replicate b (replicate n 0)) ys
  def matvec [m][kb][n] (a: mat [m][kb]) (x: [n]f32) : [m]f32 = (matmul a [x])[0]
  def layer_matmul [L][m][kb][b][n] (ws: [L](mat [m][kb])) (l: i64) (xs: [b][n]f32) : [b][m]f32 = matmul ws[l] xs
  def matmul_once [m][kb][b][n] (a: mat [m][kb]) (xs: [b][n]f32) : [b][m]f32 = matmul a xs
  def row [m][kb] (n: i64) (a: mat [m][kb]) (i: i64) : [n]f32 = whole.row n a i
  def dense [m][kb] (a: mat [m][kb]) : f32_panels.mat [m][kb] = whole.dense a
}

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
-- tokens that do not fill the kernel's groups, and a matrix of one block:
-- each within 1e-5 · (1 + the sum of its terms' magnitudes), as sums in
-- another order are (the adjoint's have 1000 terms).
local module q4_base = frozen_base by_loops q4_panels

-- ==
-- entry: test_frozen_base
-- input { 1000i64 70i64 3i64 } output { true }
-- input { 40i64 5i64 2i64 } output { true }
-- input { 31i64 1i64 1i64 } output { true }

entry test_frozen_base (m: i64) (b: i64) (kb: i64) : bool =
  let n = 32 * kb
  let t = (m + P - 1) / P
  let q = tabulate t (\i -> tabulate kb (\c -> tabulate 16 (\j -> tabulate P (\r ->
            u8.i64 ((((i * kb + c) * 16 + j) * P + r) * 37 % 256)))))
  let halves (base: i64) = tabulate t (\i -> tabulate kb (\c -> tabulate P (\r ->
                             u16.i64 (base + ((i * kb + c) * P + r) * 13 % 1024))))
  let a = q4_mat m q (halves 0x3000) (halves 0xb000)
  let w = by_loops.rows m n kb (\r c j -> q4_panels.pair a (r / P) c j (r % P))
  let xs = tabulate_2d b n (\i j -> f32.cos (f32.i64 (3 * i + 7 * j)))
  let ys = tabulate_2d b m (\i j -> f32.sin (f32.i64 (5 * i + 2 * j + 1)))
  -- (each plain sum with the sum of its terms' magnitudes)
  let plain [k] (u: [k]f32) (v: [k]f32) = (f32.sum (map2 (*) u v), f32.sum (map2 (\u v -> f32.abs (u * v)) u v))
  let close [k][l] (got: [k][l]f32) (want: [k][l](f32, f32)) =
    and (map2 (\g w -> and (map2 (\g (v, s) -> f32.abs (g - v) <= 1e-5 * (1 + s)) g w)) got want)
  in close (q4_base.matmul a xs) (map (\x -> map (plain x) w) xs)
     && close (q4_base.adjoint n a ys) (map (\y -> map (plain y) (transpose w)) ys)
