-- | Neural-network building blocks shared by every model in llaf (the
-- weight matrices and their products are in src/matrix.fut).

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
-- entry: test_argmax
-- input @ ../tests/data/argmax.in
-- output @ ../tests/data/argmax.out
entry test_argmax [k][n] (xs: [k][n]f32) : [k]i64 = map argmax xs
