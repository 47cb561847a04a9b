-- | Training's products of the layers' matrices (src/train.fut): a
-- `matrix` that also gives the adjoint of its product with respect to the
-- tokens, so that a LoRA step differentiates its frozen base by a product
-- of its own.  `vjp` of `products` makes that adjoint an accumulation into
-- each token's row (a load and a store of it for every two rows); as the
-- product of the transposed matrix it is the forward kernel's sums
-- (docs/PERFORMANCE.md, "Fine-tuning").  Training's only: the engine's
-- builds do not compile this file (the Makefile's ENGINE_SOURCES).

import "matrix"
import "differentiable"

module type trainable = {
  include matrix
  -- | `ys W`: the adjoint of `xs ↦ xs Wᵀ` with respect to the `n` columns of `xs`.
  val adjoint [m][kb][b] : (n: i64) -> mat [m][kb] -> [b][m]f32 -> [b][n]f32
}

-- | The values of a block of rows in `blocked_products`.
def block_values : i64 = 64 * 1024

-- | `products w xs`, bit for bit, with the rows in blocks of about
-- `block_values` values (pairs of rows `r` and `r + m/2`): every group of
-- four tokens goes through a block while the block is in the cache.  Whole
-- (`products`), a layer's 3.5 MB matrix was read from the last-level cache
-- once for each group of four tokens.
def blocked_products [m][n][b] (w: [m][n]f32) (xs: [b][n]f32) : [b][m]f32 =
  let (nq, mh) = ((b + 3) / 4, (m + 1) / 2)
  let blocks = i64.max 1 ((2 * n * mh + block_values - 1) / block_values)
  let pairs = (mh + blocks - 1) / blocks
  let (x, w) = (padded (4 * nq) xs, padded (2 * mh) w)
  -- (the last block's pairs past `mh` repeat the last pair, and are dropped)
  in tabulate_3d blocks nq pairs (\c g r -> pair_sums w x nq mh g (i64.min (c * pairs + r) (mh - 1)))
     |> transpose |> map flatten |> map (take mh) |> unpaired m b

-- | A frozen base of format `F`, decoded by `D`: a layer's matrix (up to
-- `whole_below` values) multiplied by `blocked_products`, and its adjoint
-- by `blocked_products` of the transposed matrix; a larger one as
-- `products_of D F` multiplies it, its adjoint by `vjp`.
module frozen_base (D: decoding) (F: format) : trainable with mat [m][kb] = F.mat [m][kb] = {
  module whole = products_of D F
  type mat [m][kb] = F.mat [m][kb]

  def decoded [m][kb] (n: i64) (a: mat [m][kb]) : [m][n]f32 =
    D.rows m n kb (\r b j -> F.pair a (r / P) b j (r % P))

  -- | `a` transposed and decoded, `[n][m]`: rows `32·b + j` and `32·b + 16
  -- + j` from column pair `j` of block `b`, a panel's lanes at a time (the
  -- codes' order in memory), each written in place (the adjoint is never
  -- differentiated).  `transpose` of the decoded rows took 4 ms for a q4
  -- 1536×576 matrix, against 1.3.
  def transposed [m][kb] (n: i64) (a: mat [m][kb]) : [n][m]f32 =
    let whole = loop o = replicate (kb * 32) (replicate m 0f32) for b < kb do
                  loop o for j < 16 do
                    let (lo, hi) = tabulate (panels m) (\t -> tabulate P (F.pair a t b j)) |> flatten |> unzip
                    in o with [b * 32 + j] = take m lo with [b * 32 + 16 + j] = take m hi
    in take n whole

  def matmul [m][kb][b][n] (a: mat [m][kb]) (xs: [b][n]f32) : [b][m]f32 =
    if m * n <= whole_below then blocked_products (decoded n a) xs else whole.matmul a xs
  def adjoint [m][kb][b] (n: i64) (a: mat [m][kb]) (ys: [b][m]f32) : [b][n]f32 =
    if m * n <= whole_below then blocked_products (transposed n a) ys
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

-- Tests: the blocked products equal `products` bit for bit, for sizes
-- that fill the blocks and groups of tokens and sizes that do not, and a
-- matrix of one block; the adjoint of a q4 base equals plain sums `ys W`
-- (each within 1e-5 · (1 + its magnitude)).
-- ==
-- entry: test_blocked_products
-- input { 1000i64 70i64 96i64 } output { true }
-- input { 7i64 5i64 37i64 } output { true }
-- input { 256i64 8i64 512i64 } output { true }

entry test_blocked_products (m: i64) (b: i64) (n: i64) : bool =
  let w = tabulate_2d m n (\i j -> f32.sin (f32.i64 (i * n + j)))
  let xs = tabulate_2d b n (\i j -> f32.cos (f32.i64 (3 * i + 7 * j)))
  in and (map2 (\u v -> and (map2 (==) u v)) (blocked_products w xs) (products w xs))

local module q4_base = frozen_base by_loops q4_panels

-- ==
-- entry: test_adjoint
-- input { 1000i64 70i64 3i64 } output { true }
-- input { 40i64 5i64 2i64 } output { true }

entry test_adjoint (m: i64) (b: i64) (kb: i64) : bool =
  let n = 32 * kb
  let t = (m + P - 1) / P
  let q = tabulate t (\i -> tabulate kb (\c -> tabulate 16 (\j -> tabulate P (\r ->
            u8.i64 ((((i * kb + c) * 16 + j) * P + r) * 37 % 256)))))
  let halves (base: i64) = tabulate t (\i -> tabulate kb (\c -> tabulate P (\r ->
                             u16.i64 (base + ((i * kb + c) * P + r) * 13 % 1024))))
  let a = q4_mat m q (halves 0x3000) (halves 0xb000)
  let w = by_loops.rows m n kb (\r c j -> q4_panels.pair a (r / P) c j (r % P))
  let ys = tabulate_2d b m (\i j -> f32.sin (f32.i64 (5 * i + 2 * j + 1)))
  let expected = map (\y -> map (\c -> f32.sum (map2 (*) y c)) (transpose w)) ys
  in and (map2 (\u v -> and (map2 (\u v -> f32.abs (u - v) <= 1e-5 * (1 + f32.abs v)) u v)) (q4_base.adjoint n a ys) expected)
