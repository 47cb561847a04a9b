-- | The optimizer of fine-tuning: AdamW (Loshchilov and Hutter) with its
-- bias corrections, as `torch.optim.AdamW` computes it; the gradient
-- clipped to a global norm first (`torch.nn.utils.clip_grad_norm_`); the
-- learning rate warmed up linearly and then decayed along a cosine to 0
-- (transformers' `get_cosine_schedule_with_warmup`).  The weights and the
-- moments are consumed and updated in place (three arrays rather than a
-- record: the fields of one record parameter count as aliases of each
-- other, and such a record cannot be consumed).

type adamw = {lr: f32, beta1: f32, beta2: f32, eps: f32, weight_decay: f32,
              max_norm: f32,        -- clip the gradient to this norm; 0: never
              warmup: i64, steps: i64}

-- | The learning rate of step `t` (from 0): `lr · t / warmup` while warming
-- up, then `lr · (1 + cos (π · progress)) / 2`.
def rate (o: adamw) (t: i64) : f32 =
  if t < o.warmup then o.lr * f32.i64 t / f32.i64 (i64.max 1 o.warmup)
  else let progress = f32.i64 (t - o.warmup) / f32.i64 (i64.max 1 (o.steps - o.warmup))
       in o.lr * f32.max 0 (0.5 * (1 + f32.cos (f32.pi * progress)))

-- | The gradient's norm and the gradient scaled down to `max_norm` if longer.
def clip [T] (max_norm: f32) (g: [T]f32) : (f32, [T]f32) =
  let norm = f32.sqrt (f32.sum (map (\x -> x * x) g))
  let coef = max_norm / (norm + 1e-6)
  in (norm, if max_norm > 0 && coef < 1 then map (* coef) g else g)

-- | Step `t` (from 1) along gradient `g` (already clipped), at the learning
-- rate `lr`: the weights `theta` and the moments `m` and `v` after it.
def step [T] (o: adamw) (lr: f32) (t: i64) (theta: *[T]f32) (m: *[T]f32) (v: *[T]f32) (g: [T]f32)
    : (*[T]f32, *[T]f32, *[T]f32) =
  let c1 = 1 - o.beta1 ** f32.i64 t
  let c2 = f32.sqrt (1 - o.beta2 ** f32.i64 t)
  let m = map2 (\m g -> m + (g - m) * (1 - o.beta1)) m g
  let v = map2 (\v g -> v * o.beta2 + g * g * (1 - o.beta2)) v g
  let theta = map3 (\w m v -> w * (1 - lr * o.weight_decay) - lr / c1 * m / (f32.sqrt v / c2 + o.eps)) theta m v
  in (theta, m, v)

-- | Step `t` (from 1) along gradient `g`: clipped, at the schedule's rate;
-- the weights and moments after it, the gradient's norm before clipping and
-- the learning rate.
def update [T] (o: adamw) (t: i64) (theta: *[T]f32) (m: *[T]f32) (v: *[T]f32) (g: [T]f32)
    : (*[T]f32, *[T]f32, *[T]f32, f32, f32) =
  let (norm, g) = clip o.max_norm g
  let lr = rate o (t - 1)
  let (theta, m, v) = step o lr t theta m v g
  in (theta, m, v, norm, lr)
