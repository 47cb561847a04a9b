-- | The products of a format written for reverse-mode differentiation
-- (src/train.fut): maps and sums only, which `vjp` differentiates as maps
-- and sums.  (Differentiating the panel kernels of src/matrix.fut, loops
-- over running sums, would store the sums of every iteration.)  The same
-- products as `matrix F`'s up to the order of the sums.  Training's: the
-- engine's builds compile it only for src/attention.fut's
-- `attend_sequences`, which they do not call.

import "matrix"

-- | The running sums of two rows times four tokens.
type sums = (f32, f32, f32, f32, f32, f32, f32, f32)

def add ((a0, a1, a2, a3, a4, a5, a6, a7): sums) ((b0, b1, b2, b3, b4, b5, b6, b7): sums) : sums =
  (a0 + b0, a1 + b1, a2 + b2, a3 + b3, a4 + b4, a5 + b5, a6 + b6, a7 + b7)

-- | `a` with rows of zeros after it up to `k'` rows (`a` itself when it has them).
def padded [k][n] (k': i64) (a: [k][n]f32) : [k'][n]f32 =
  if k' == k then a :> [k'][n]f32 else a ++ replicate (k' - k) (replicate n 0) :> [k'][n]f32

-- | The sums of rows `r` and `r + mh` of `w` times tokens `g`, `g + nq`,
-- `g + 2nq` and `g + 3nq` of `x`, over the columns.
def pair_sums [k][l][n] (w: [k][n]f32) (x: [l][n]f32) (nq: i64) (mh: i64) (g: i64) (r: i64) : sums =
  map2 (\(w0, w1) (x0, x1, x2, x3) -> (w0 * x0, w0 * x1, w0 * x2, w0 * x3, w1 * x0, w1 * x1, w1 * x2, w1 * x3))
       (zip w[r] w[r + mh]) (zip4 x[g] x[g + nq] x[g + 2 * nq] x[g + 3 * nq])
  |> reduce_comm add (0, 0, 0, 0, 0, 0, 0, 0)

-- | The `b` tokens' rows of `m` results from `ys`, the sums of every four
-- tokens and pair of rows (`pair_sums`).
def unpaired [nq][mh] (m: i64) (b: i64) (ys: [nq][mh]sums) : [b][m]f32 =
  -- a quarter of the tokens' rows: sums `lo` (rows r) and `hi` (rows r + m/2)
  let quarter (lo: sums -> f32) (hi: sums -> f32) : [nq][m]f32 = map (\y -> take m (map lo y ++ map hi y)) ys
  in (quarter (.0) (.4) ++ quarter (.1) (.5) ++ quarter (.2) (.6) ++ quarter (.3) (.7)) |> take b

-- | `xs wᵀ`, two rows of `w` times four tokens in each sum over the
-- columns (`pair_sums`).  Eight running sums are what the vector registers
-- hold with the loads (docs/PERFORMANCE.md, "Fine-tuning"); a row of `w` is
-- read once for four tokens, and in the derivative each token's adjoint is
-- updated once for two rows.
def products [m][n][b] (w: [m][n]f32) (xs: [b][n]f32) : [b][m]f32 =
  let (nq, mh) = ((b + 3) / 4, (m + 1) / 2)
  let (x, w) = (padded (4 * nq) xs, padded (2 * mh) w)
  in tabulate_2d nq mh (pair_sums w x nq mh) |> unpaired m b

-- | How a matrix is decoded into rows for `products`: `rows m n kb pair`,
-- where `pair r b j` is row `r`'s columns `32·b + j` and `32·b + 16 + j`.
module type decoding = {
  val rows : (m: i64) -> (n: i64) -> (kb: i64) -> (i64 -> i64 -> i64 -> (f32, f32)) -> [m][n]f32
}

-- | Decoded by maps, which `vjp` differentiates as maps: for weights that
-- are differentiated (full fine-tuning).  Each block is joined from its
-- pairs' halves and each row from its blocks, copies of every value.
module by_maps : decoding = {
  def rows (m: i64) (n: i64) (kb: i64) (pair: i64 -> i64 -> i64 -> (f32, f32)) : [m][n]f32 =
    let block r b : [32]f32 =
      let pairs = tabulate 16 (pair r b)
      in map (.0) pairs ++ map (.1) pairs :> [32]f32
    in tabulate m (\r -> tabulate kb (block r) |> flatten |> take n)
}

-- | Decoded by a loop a row, each pair's two values written in place: no
-- copies (a q4 1536×576 matrix in 0.7 ms rather than 1.5, docs/PERFORMANCE.md).
-- Only for weights that are constants of the derivative (a frozen base
-- whose values come from integer codes): `vjp` of a loop over values it
-- differentiates would keep every iteration's row.
module by_loops : decoding = {
  def rows (m: i64) (n: i64) (kb: i64) (pair: i64 -> i64 -> i64 -> (f32, f32)) : [m][n]f32 =
    let row r : [n]f32 =
      let whole = loop o = replicate (kb * 32) 0f32 for b < kb do
                    loop o for j < 16 do
                      let (lo, hi) = pair r b j
                      in o with [b * 32 + j] = lo with [b * 32 + 16 + j] = hi
      in take n whole
    in tabulate m row
}

-- | `xs Wᵀ` for `W` of `m` rows given `C` rows at a time (`rows c`: rows
-- `c·C ..`, zeros past the last): each part decoded and multiplied while it
-- is in the cache.
def chunked_products [b][n] (m: i64) (C: i64) (rows: i64 -> [C][n]f32) (xs: [b][n]f32) : [b][m]f32 =
  let parts = (m + C - 1) / C
  in tabulate parts (\c -> products (rows c) xs) |> transpose |> map flatten |> map (\y -> take m y)

-- | A matrix of more values than this is multiplied in parts of
-- `chunk_rows` rows: whole, a vocabulary's head (113 MB decoded, SmolLM2's)
-- was read from memory once for every four tokens; a layer's matrices (3.5
-- MB) stay in the cache whole, where parts made them slower
-- (docs/PERFORMANCE.md).
def whole_below : i64 = 4 * 1024 * 1024
def chunk_rows : i64 = 256

-- | The products of format `F`, its matrices decoded by `D`.
module products_of (D: decoding) (F: format) : matrix with mat [m][kb] = F.mat [m][kb] = {
  module fast = matrix F
  type mat [m][kb] = F.mat [m][kb]

  def pair [m][kb] (a: mat [m][kb]) (r: i64) (b: i64) (j: i64) : (f32, f32) = F.pair a (r / P) b j (r % P)
  def decoded [m][kb] (n: i64) (a: mat [m][kb]) : [m][n]f32 = D.rows m n kb (pair a)

  def matmul [m][kb][b][n] (a: mat [m][kb]) (xs: [b][n]f32) : [b][m]f32 =
    if m * n <= whole_below then products (decoded n a) xs
    else -- (a size not known to the compiler: with the constant, AD made
         -- maps of mismatched sizes, an internal error of Futhark 0.25.32)
         let C = opaque chunk_rows
         let part c = D.rows C n kb (\r b j -> let i = c * C + r in if i < m then pair a i b j else (0, 0))
         in chunked_products m C part xs
  def matvec [m][kb][n] (a: mat [m][kb]) (x: [n]f32) : [m]f32 = (matmul a [x])[0]
  def layer_matmul [L][m][kb][b][n] (ws: [L](mat [m][kb])) (l: i64) (xs: [b][n]f32) : [b][m]f32 = matmul ws[l] xs
  def matmul_once [m][kb][b][n] (a: mat [m][kb]) (xs: [b][n]f32) : [b][m]f32 = matmul a xs
  def row [m][kb] (n: i64) (a: mat [m][kb]) (i: i64) : [n]f32 = tabulate n (F.get a i)
  def dense [m][kb] (a: mat [m][kb]) : f32_panels.mat [m][kb] = fast.dense a
}

-- | Products whose matrices are differentiated.
module differentiable = products_of by_maps

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

local def close [k][l] (a: [k][l]f32) (e: [k][l]f32) : bool =
  and (map2 (\a e -> and (map2 (\a e -> f32.abs (a - e) <= 1e-5 * (1 + f32.abs e)) a e)) a e)

local def plain [m][n][b] (w: [m][n]f32) (xs: [b][n]f32) : [b][m]f32 =
  map (\x -> map (\r -> f32.sum (map2 (*) r x)) w) xs

entry test_products (m: i64) (b: i64) (n: i64) : bool =
  let w = tabulate_2d m n (\i j -> f32.sin (f32.i64 (i * n + j)))
  let xs = tabulate_2d b n (\i j -> f32.cos (f32.i64 (3 * i + 7 * j)))
  let yb = tabulate_2d b m (\i j -> f32.sin (f32.i64 (5 * i + 2 * j + 1)))
  let (wb, xb) = vjp (\(w, xs) -> products w xs) (w, xs) yb
  let (wb', xb') = vjp (\(w, xs) -> plain w xs) (w, xs) yb
  in close (products w xs) (plain w xs) && close wb wb' && close xb xb'

-- Tests: the products of a matrix in parts of `C` rows, and their
-- derivatives with respect to both operands, against plain dot products,
-- for parts that fill the rows, do not, and outnumber them.
-- ==
-- entry: test_chunked_products
-- input { 7i64 3i64 5i64 40i64 } output { true }
-- input { 6i64 3i64 4i64 32i64 } output { true }
-- input { 2i64 3i64 1i64 8i64 } output { true }

entry test_chunked_products (m: i64) (C: i64) (b: i64) (n: i64) : bool =
  let w = tabulate_2d m n (\i j -> f32.sin (f32.i64 (i * n + j)))
  let xs = tabulate_2d b n (\i j -> f32.cos (f32.i64 (3 * i + 7 * j)))
  let yb = tabulate_2d b m (\i j -> f32.sin (f32.i64 (5 * i + 2 * j + 1)))
  let parts (w: [m][n]f32) c : [C][n]f32 =
    tabulate C (\r -> let i = c * C + r in if i < m then w[i] else replicate n 0)
  let chunked (w, xs) = chunked_products m C (parts w) xs
  let (wb, xb) = vjp chunked (w, xs) yb
  let (wb', xb') = vjp (\(w, xs) -> plain w xs) (w, xs) yb
  in close (chunked (w, xs)) (plain w xs) && close wb wb' && close xb xb'

-- Tests: a q4 matrix decoded by loops equals it decoded by maps, value for
-- value, with rows that do not fill the last panel and columns that do not
-- fill the last block.
-- ==
-- entry: test_decodings
-- input { 40i64 3i64 80i64 } output { true }
-- input { 32i64 2i64 64i64 } output { true }

entry test_decodings (m: i64) (kb: i64) (n: i64) : bool =
  let t = (m + P - 1) / P
  let q = tabulate t (\i -> tabulate kb (\b -> tabulate 16 (\j -> tabulate P (\r ->
            u8.i64 ((((i * kb + b) * 16 + j) * P + r) * 37 % 256)))))
  let halves (base: i64) = tabulate t (\i -> tabulate kb (\b -> tabulate P (\r ->
                             u16.i64 (base + ((i * kb + b) * P + r) * 13 % 1024))))
  let a = q4_mat m q (halves 0x3000) (halves 0xb000)
  let pair r b j = q4_panels.pair a (r / P) b j (r % P)
  let (x, y) = (by_maps.rows m n kb pair, by_loops.rows m n kb pair)
  in and (map2 (\u v -> and (map2 (==) u v)) x y)
