-- | The products of a format written for reverse-mode differentiation
-- (src/train.fut): maps and sums only, which `vjp` differentiates as maps
-- and sums.  (Differentiating the panel kernels of src/matrix.fut, loops
-- over running sums, would store the sums of every iteration.)  The same
-- products as `matrix F`'s up to the order of the sums.  Training's: the
-- engine's builds compile it only for src/attention.fut's
-- `attend_sequences`, which they do not call.

import "matrix"

-- | The running sums of two rows times four tokens.
local type sums = (f32, f32, f32, f32, f32, f32, f32, f32)

local def add ((a0, a1, a2, a3, a4, a5, a6, a7): sums) ((b0, b1, b2, b3, b4, b5, b6, b7): sums) : sums =
  (a0 + b0, a1 + b1, a2 + b2, a3 + b3, a4 + b4, a5 + b5, a6 + b6, a7 + b7)

-- | `a` with rows of zeros after it up to `k'` rows (`a` itself when it has them).
local def padded [k][n] (k': i64) (a: [k][n]f32) : [k'][n]f32 =
  if k' == k then a :> [k'][n]f32 else a ++ replicate (k' - k) (replicate n 0) :> [k'][n]f32

-- | `xs wᵀ`, two rows of `w` times four tokens in each sum over the
-- columns: rows `r` and `r + m/2`, tokens `i`, `i + b/4`, `i + b/2` and `i
-- + 3b/4`.  Eight running sums are what the vector registers hold with the
-- loads (docs/PERFORMANCE.md, "Fine-tuning"); a row of `w` is read once for
-- four tokens, and in the derivative each token's adjoint is updated once
-- for two rows.
def products [m][n][b] (w: [m][n]f32) (xs: [b][n]f32) : [b][m]f32 =
  let (nq, mh) = ((b + 3) / 4, (m + 1) / 2)
  let (x, w) = (padded (4 * nq) xs, padded (2 * mh) w)
  let sums g r : sums =
    map2 (\(w0, w1) (x0, x1, x2, x3) -> (w0 * x0, w0 * x1, w0 * x2, w0 * x3, w1 * x0, w1 * x1, w1 * x2, w1 * x3))
         (zip w[r] w[r + mh]) (zip4 x[g] x[g + nq] x[g + 2 * nq] x[g + 3 * nq])
    |> reduce_comm add (0, 0, 0, 0, 0, 0, 0, 0)
  let ys = tabulate_2d nq mh sums
  -- a quarter of the tokens' rows: sums `lo` (rows r) and `hi` (rows r + m/2)
  let quarter (lo: sums -> f32) (hi: sums -> f32) : [nq][m]f32 = map (\y -> take m (map lo y ++ map hi y)) ys
  in (quarter (.0) (.4) ++ quarter (.1) (.5) ++ quarter (.2) (.6) ++ quarter (.3) (.7)) |> take b

module differentiable (F: format) : matrix with mat [m][kb] = F.mat [m][kb] = {
  module fast = matrix F
  type mat [m][kb] = F.mat [m][kb]

  -- | The matrix decoded row by row (`n` columns), a column pair at a time.
  def decoded [m][kb] (n: i64) (a: mat [m][kb]) : [m][n]f32 =
    let block r b : [32]f32 =
      let pairs = tabulate 16 (\j -> F.pair a (r / P) b j (r % P))
      in map (.0) pairs ++ map (.1) pairs :> [32]f32
    in tabulate m (\r -> tabulate kb (block r) |> flatten |> take n)

  def matmul [m][kb][b][n] (a: mat [m][kb]) (xs: [b][n]f32) : [b][m]f32 = products (decoded n a) xs
  def matvec [m][kb][n] (a: mat [m][kb]) (x: [n]f32) : [m]f32 = (matmul a [x])[0]
  def layer_matmul [L][m][kb][b][n] (ws: [L](mat [m][kb])) (l: i64) (xs: [b][n]f32) : [b][m]f32 = matmul ws[l] xs
  def matmul_once [m][kb][b][n] (a: mat [m][kb]) (xs: [b][n]f32) : [b][m]f32 = matmul a xs
  def row [m][kb] (n: i64) (a: mat [m][kb]) (i: i64) : [n]f32 = tabulate n (F.get a i)
  def dense [m][kb] (a: mat [m][kb]) : f32_panels.mat [m][kb] = fast.dense a
}

-- Tests: the products and their derivatives with respect to both operands
-- against plain dot products, for sizes that fill the groups of two rows
-- and four tokens and sizes that do not (the values are reassociated sums:
-- each within 1e-5 · (1 + its plain value's magnitude)).
-- ==
-- entry: test_products
-- input { 8i64 4i64 64i64 } output { true }
-- input { 7i64 5i64 37i64 } output { true }
-- input { 1i64 1i64 3i64 } output { true }
-- input { 33i64 10i64 96i64 } output { true }

entry test_products (m: i64) (b: i64) (n: i64) : bool =
  let w = tabulate_2d m n (\i j -> f32.sin (f32.i64 (i * n + j)))
  let xs = tabulate_2d b n (\i j -> f32.cos (f32.i64 (3 * i + 7 * j)))
  let yb = tabulate_2d b m (\i j -> f32.sin (f32.i64 (5 * i + 2 * j + 1)))
  let plain (w: [m][n]f32) (xs: [b][n]f32) = map (\x -> map (\r -> f32.sum (map2 (*) r x)) w) xs
  let close [k][l] (a: [k][l]f32) (e: [k][l]f32) =
    and (map2 (\a e -> and (map2 (\a e -> f32.abs (a - e) <= 1e-5 * (1 + f32.abs e)) a e)) a e)
  let (wb, xb) = vjp (\(w, xs) -> products w xs) (w, xs) yb
  let (wb', xb') = vjp (\(w, xs) -> plain w xs) (w, xs) yb
  in close (products w xs) (plain w xs) && close wb wb' && close xb xb'
