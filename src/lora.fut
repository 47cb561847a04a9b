-- | Low-rank adapters (LoRA, Hu et al. 2021): a frozen projection `W`
-- becomes `x ↦ W x + s · B (A x)`, with `A: [r][n]` and `B: [m][r]` the only
-- weights trained and `s = alpha / r`, as peft computes it.  The base `W`
-- stays in its own storage, quantized or not (src/matrix.fut).

-- | A projection's adapters in every layer of a model; without one (`on`
-- false, or rank 0) the projection is left as it is.
type adapter [L][r][n][m] = {a: [L][r][n]f32, b: [L][m][r]f32, on: bool}

def dot [n] (x: [n]f32) (y: [n]f32) : f32 = f32.sum (map2 (*) x y)

-- | One layer's adapter of a projection.
type layer [r][n][m] = {a: [r][n]f32, b: [m][r]f32, on: bool}

-- | The adapter in layer `l`.
def in_layer [L][r][n][m] (ad: adapter [L][r][n][m]) (l: i64) : layer [r][n][m] = {a = ad.a[l], b = ad.b[l], on = ad.on}

-- | `ys + s · B (A xs)`: an adapted projection of the tokens `xs`, given
-- their projections `ys = W xs` by the base.
def apply [r][n][m][N] (ad: layer [r][n][m]) (s: f32) (xs: [N][n]f32) (ys: [N][m]f32) : [N][m]f32 =
  if r == 0 || !ad.on then ys
  else map2 (\x y -> let z = map (\a -> dot a x) ad.a
                     in map2 (\y b -> y + dot b z * s) y ad.b) xs ys

-- | No adapter, for a model of `L` layers.
def none (L: i64) (n: i64) (m: i64) : adapter [L][0][n][m] =
  {a = replicate L (replicate 0 (replicate n 0)), b = replicate L (replicate m (replicate 0 0)), on = false}

-- | An adapter of rank `r` for `L` layers read from `theta` at `at` (`A`,
-- then `B`, each layer after layer, row after row: peft's tensors stacked),
-- or zeros when it is `off`; and where the next one starts.
def take_adapter [T] (L: i64) (r: i64) (n: i64) (m: i64) (on: bool) (theta: [T]f32) (at: i64)
    : (adapter [L][r][n][m], i64) =
  if !on then ({a = replicate L (replicate r (replicate n 0)), b = replicate L (replicate m (replicate r 0)), on},
               at)
  else let (na, nb) = (L * r * n, L * m * r)
       let a = (theta[at : at + na] :> [L * (r * n)]f32) |> unflatten |> map unflatten
       let b = (theta[at + na : at + na + nb] :> [L * (m * r)]f32) |> unflatten |> map unflatten
       in ({a, b, on}, at + na + nb)
