-- | Neural-network building blocks shared by every model in llaf.
--
-- Weight matrices are stored row-major as [out][in], so a matrix–vector
-- product is one dot product per row and reads each weight exactly once.

-- | Dot product of two vectors.
def dot [n] (xs: [n]f32) (ys: [n]f32) : f32 =
  f32.sum (map2 (*) xs ys)

-- | Matrix–vector product `W x` for `W: [m][n]`.
def matvec [m][n] (w: [m][n]f32) (x: [n]f32) : [m]f32 =
  map (\row -> dot row x) w

-- | Product of a batch of rows with a transposed weight: `xs Wᵀ`.
def matmul [k][m][n] (xs: [k][n]f32) (w: [m][n]f32) : [k][m]f32 =
  map (matvec w) xs

-- | `xs Wᵀ` computed four rows of `xs` at a time: each weight row is read
-- once per four tokens and multiplied into four running sums, so a long
-- prompt's product runs from the caches instead of memory.  The last tile
-- repeats the last row where `b` is not a multiple of four.  Measured on a
-- 512×576 by 576×1536 product (`futhark bench`, multicore): 15.7 ms as one
-- matrix–vector product per row, 11.9 ms four rows at a time.  Padding `xs`
-- with zero rows instead was 45× slower (the padding was fused into the
-- inner loop as a branch per element), and a tail of plain matrix–vector
-- products concatenated to the tiles gave wrong last columns on PoCL.
def matmul4 [b][m][n] (xs: [b][n]f32) (w: [m][n]f32) : [b][m]f32 =
  let dot4 (x4: [4][n]f32) (row: [n]f32) =
    reduce (\(a0, a1, a2, a3) (b0, b1, b2, b3) -> (a0 + b0, a1 + b1, a2 + b2, a3 + b3)) (0, 0, 0, 0)
           (map5 (\v x0 x1 x2 x3 -> (v * x0, v * x1, v * x2, v * x3)) row x4[0] x4[1] x4[2] x4[3])
  let tile i = tabulate 4 (\j -> xs[i64.min (4 * i + j) (b - 1)])
  in tabulate ((b + 3) / 4) (\i -> map (dot4 (tile i)) w)
     |> map (\s -> let (s0, s1, s2, s3) = unzip4 s in [s0, s1, s2, s3]) |> flatten |> take b

-- | Affine map of a batch of rows: `xs Wᵀ + b`.
def linears [k][m][n] (w: [m][n]f32) (b: [m]f32) (xs: [k][n]f32) : [k][m]f32 =
  map (map2 (+) b) (matmul xs w)

-- | Affine map `W x + b`.
def linear [m][n] (w: [m][n]f32) (b: [m]f32) (x: [n]f32) : [m]f32 =
  map2 (+) (matvec w x) b

-- | Element-wise sum of two vectors (the residual connection).
def vadd [n] (xs: [n]f32) (ys: [n]f32) : [n]f32 =
  map2 (+) xs ys

-- | Numerically stable softmax: `exp (x - max x)` normalised to sum 1.
def softmax [n] (xs: [n]f32) : [n]f32 =
  let top = f32.maximum xs
  let es = map (\x -> f32.exp (x - top)) xs
  let total = f32.sum es
  in map (/ total) es

-- | Layer normalisation with gain `g` and bias `b` (biased variance, as in PyTorch).
def layer_norm [n] (eps: f32) (g: [n]f32) (b: [n]f32) (x: [n]f32) : [n]f32 =
  let mean = f32.sum x / f32.i64 n
  let centred = map (\v -> v - mean) x
  let var = f32.sum (map (\v -> v * v) centred) / f32.i64 n
  let r = 1 / f32.sqrt (var + eps)
  in map3 (\v gi bi -> v * r * gi + bi) centred g b

-- | Root-mean-square normalisation with gain `g` (Llama's RMSNorm).
def rms_norm [n] (eps: f32) (g: [n]f32) (x: [n]f32) : [n]f32 =
  let ms = f32.sum (map (\v -> v * v) x) / f32.i64 n
  let r = 1 / f32.sqrt (ms + eps)
  in map2 (\v gi -> v * r * gi) x g

-- | GELU, tanh approximation (GPT-2's "gelu_new").
def gelu_tanh (x: f32) : f32 =
  0.5 * x * (1 + f32.tanh (f32.sqrt (2 / f32.pi) * (x + 0.044715 * x * x * x)))

-- | SiLU (swish): `x · σ(x)`.
def silu (x: f32) : f32 =
  x / (1 + f32.exp (-x))

-- | Index of the largest element; the first one on ties (as `torch.argmax`).
def argmax [n] (xs: [n]f32) : i64 =
  let pick (a, i) (b, j) = if a > b || (a == b && i < j) then (a, i) else (b, j)
  in (reduce_comm pick (-f32.inf, -1) (zip xs (iota n))).1

-- ==
-- entry: test_softmax
-- input @ ../tests/data/softmax.in
-- output @ ../tests/data/softmax.out
entry test_softmax [k][n] (xs: [k][n]f32) : [k][n]f32 = map softmax xs

-- ==
-- entry: test_layer_norm
-- input @ ../tests/data/layer_norm.in
-- output @ ../tests/data/layer_norm.out
entry test_layer_norm [k][n] (g: [n]f32) (b: [n]f32) (xs: [k][n]f32) : [k][n]f32 =
  map (layer_norm 1e-5 g b) xs

-- ==
-- entry: test_rms_norm
-- input @ ../tests/data/rms_norm.in
-- output @ ../tests/data/rms_norm.out
entry test_rms_norm [k][n] (g: [n]f32) (xs: [k][n]f32) : [k][n]f32 =
  map (rms_norm 1e-5 g) xs

-- ==
-- entry: test_gelu
-- input @ ../tests/data/gelu.in
-- output @ ../tests/data/gelu.out
entry test_gelu [n] (xs: [n]f32) : [n]f32 = map gelu_tanh xs

-- ==
-- entry: test_silu
-- input @ ../tests/data/silu.in
-- output @ ../tests/data/silu.out
entry test_silu [n] (xs: [n]f32) : [n]f32 = map silu xs

-- ==
-- entry: test_matvec
-- input @ ../tests/data/matvec.in
-- output @ ../tests/data/matvec.out
entry test_matvec [m][n] (w: [m][n]f32) (x: [n]f32) : [m]f32 = matvec w x

-- ==
-- entry: test_matmul
-- input @ ../tests/data/matmul.in
-- output @ ../tests/data/matmul.out
entry test_matmul [k][m][n] (xs: [k][n]f32) (w: [m][n]f32) : [k][m]f32 = matmul xs w

-- ==
-- entry: test_matmul4
-- input @ ../tests/data/matmul.in
-- output @ ../tests/data/matmul.out
entry test_matmul4 [k][m][n] (xs: [k][n]f32) (w: [m][n]f32) : [k][m]f32 = matmul4 xs w

-- ==
-- entry: test_argmax
-- input @ ../tests/data/argmax.in
-- output @ ../tests/data/argmax.out
entry test_argmax [k][n] (xs: [k][n]f32) : [k]i64 = map argmax xs
