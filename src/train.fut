-- | Fine-tuning: low-rank adapters (src/lora.fut) on a frozen Llama-family
-- model in its own storage, trained by AdamW (src/optim.fut) on the
-- gradient that Futhark's `vjp` derives from the model of src/llama.fut —
-- the engine's own definition, with products written for differentiation
-- (src/differentiable.fut).  A program of its own: the engine's
-- builds need none of this.
--
-- The loss is next-token cross-entropy over a batch of `B` sequences of
-- `S` tokens: `targets[b][i]` is the token that should follow
-- `tokens[b][i]`, or -1 where nothing is learnt (padding, a prompt), and the
-- loss is the mean over the others, as transformers computes it with
-- labels of -100.
--
-- The adapters are one flat vector `theta`: for each projection that has
-- them, in the order q, k, v, o, gate, up, down (bit 0 to bit 6 of
-- `targets`), `A` then `B` of every layer, as llaf/lora.py lays them out.
--
-- For each storage `s` (llaf/lora.py `STORAGES`), the entry points:
--   train_s_init   the model's weights, as src/llm.fut's llama_s_init
--   train_s_loss   params, rank, targets, scale, theta, tokens, targets → loss
--   train_s_grad   the same → (loss, its gradient with respect to theta)
--   train_s_step   params, rank, targets, scale, optimizer, step t (from 1),
--                  theta, moments m and v, tokens, targets → (theta, m, v
--                  after the step, loss, gradient norm before clipping,
--                  learning rate of the step)
-- and for f32 models, full fine-tuning (`full` below):
--   train_f32_full_grad   params, weights, tokens, targets → (loss, gradient)
--   train_f32_full_step   params, optimizer, t, weights, m, v, tokens,
--                         targets → as train_s_step

-- Built by the Makefile as a library; `futhark test` leaves it out (it has
-- no tests of its own, and compiling it takes minutes):
-- ==
-- tags { library }

import "nn"
import "matrix"
import "differentiable"
import "trainable"
import "llama"
module lora = import "lora"
module optim = import "optim"

module trainer (W: trainable) (E: trainable) = {
  module model = llama (uniform W E)
  -- | The model without its layers' products: what the LoRA backward pass
  -- differentiates, each base product's part of a derivative added by
  -- `W.adjoint` (a step's output is its base products plus the rest).
  module adapted = llama (uniform (without_products W) E)

  -- | The adapters of rank `r` on the projections that `mask` names, read from `theta`.
  def adapters [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][T]
               (_: model.params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) (r: i64) (mask: i64)
               (scale: f32) (theta: [T]f32) : model.adapters [L][r][d][qd][kvd][F] =
    let on i = (mask >> i) & 1 == 1
    let (q, at) = lora.take_adapter L r d qd (on 0) theta 0
    let (k, at) = lora.take_adapter L r d kvd (on 1) theta at
    let (v, at) = lora.take_adapter L r d kvd (on 2) theta at
    let (o, at) = lora.take_adapter L r qd d (on 3) theta at
    let (gate, at) = lora.take_adapter L r d F (on 4) theta at
    let (up, at) = lora.take_adapter L r d F (on 5) theta at
    let (down, at) = lora.take_adapter L r F d (on 6) theta at
    let scale = assert (at == T) scale
    in {q, k, v, o, gate, up, down, scale}

  -- | The largest of a token's logits, by a plain comparison, where nothing
  -- differentiates it: `f32.maximum`'s `max`, which minds NaNs, kept the C
  -- compiler from vectorizing it (a scalar loop, 2/3 of the time of the
  -- head's cross-entropy and its derivative, docs/PERFORMANCE.md).
  def largest [V] (l: [V]f32) : f32 = reduce (\a b -> if a > b then a else b) (-f32.inf) l

  -- | The mean cross-entropy of `M` tokens' logits `l` against their
  -- targets `ts`, each token's logits shifted by their largest, `tops`
  -- (given: the result does not depend on the shift, so `vjp` has nothing
  -- of it to differentiate).
  def cross_entropy [M][V] (tops: [M]f32) (l: [M][V]f32) (ts: [M]i64) : f32 =
    let ce (top: f32) (l: [V]f32) (t: i64) = top + f32.log (f32.sum (map (\x -> f32.exp (x - top)) l)) - l[t]
    in f32.sum (map3 ce tops l ts) / f32.i64 (i64.max 1 M)

  -- | The tokens that have a target, and their targets: the head runs on
  -- those only (a chat's prompts are most of its tokens, and the head is
  -- the largest product).
  def learnt [N] (targets: [N]i64) : ([]i64, []i64) =
    zip (iota N) targets |> filter (\(_, t) -> t >= 0) |> unzip

  -- | The mean next-token cross-entropy of `N` tokens' final hidden states
  -- `h` (see the head of this file).
  def head_loss [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][N]
                (p: model.params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) (h: [N][d]f32) (targets: [N]i64) : f32 =
    let (at, ts) = learnt targets
    let l = model.logits p (map (\i -> h[i]) at)
    -- (`f32.maximum`: full fine-tuning differentiates this, and `vjp` knows
    -- its derivative; `largest` it would differentiate as any reduction)
    in cross_entropy (map f32.maximum l) l ts

  -- | `head_loss` of the last layer's hidden states `x` (after the final
  -- norm) and its adjoint with respect to `x`: the head's product's part by
  -- `E.adjoint` (a LoRA trainer's head is a frozen base), the cross-entropy
  -- and the norm by `vjp`.  The head is the embedding when there is no
  -- `lm_head`, as src/llama.fut's `logits` chooses.
  def head_grad [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][N]
                (p: model.params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) (x: [N][d]f32) (targets: [N]i64)
                : (f32, [N][d]f32) =
    let (at, ts) = learnt targets
    let hs = model.final p x
    let h = map (\i -> hs[i]) at
    let l = model.logits p h
    let tops = map largest l
    let (loss, l_bar) = vjp2 (\l -> cross_entropy tops l ts) l 1
    let head = if Vo == 0 then p.embed else p.lm_head :> E.mat [V][dk]
    let h_bar = scatter (replicate N (replicate d 0)) at (E.adjoint d head l_bar)
    in (loss, vjp (model.final p) x h_bar)

  -- | The mean next-token cross-entropy of a batch.
  def loss [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][r][B][S]
           (p: model.params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk])
           (ad: model.adapters [L][r][d][qd][kvd][F]) (tokens: [B][S]i64) (targets: [B][S]i64) : f32 =
    head_loss p (model.train_pass p ad tokens) (flatten targets)

  -- | A batch checked against the vocabulary and the context.
  def checked [B][S] (V: i64) (context: i64) (tokens: [B][S]i64) (targets: [B][S]i64) : ([B][S]i64, [B][S]i64) =
    let ok = S <= context && all (all (\t -> t >= 0 && t < V)) tokens && all (all (\t -> t >= -1 && t < V)) targets
    in (assert ok tokens, targets)

  -- | What the forward pass keeps of each layer for the backward one
  -- (src/llama.fut's steps of a layer): the layer's input `x`, its
  -- attention's projections `q`, `k`, `v` and output `a`, the hidden states
  -- `mid` after the attention, the MLP's projections `gate` and `up`.
  type tape [L][N][d][qd][kvd][F] =
    {x: [L][N][d]f32, q: [L][N][qd]f32, k: [L][N][kvd]f32, v: [L][N][kvd]f32, a: [L][N][qd]f32,
     mid: [L][N][d]f32, gate: [L][N][F]f32, up: [L][N][F]f32}

  -- | Training's forward pass (`model.train_pass`) over `N` tokens,
  -- sequences of `S`: the last layer's hidden states and the tape.
  def forward [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][r][N]
              (p: model.params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) (ad: model.adapters [L][r][d][qd][kvd][F]) (S: i64) (ids: [N]i64)
              : ([N][d]f32, tape [L][N][d][qd][kvd][F]) =
    let zeros m = replicate L (replicate N (replicate m 0f32))
    let (x, xs, qs, ks, vs, as, mids, gates, ups) =
      loop (x, xs: *[L][N][d]f32, qs: *[L][N][qd]f32, ks: *[L][N][kvd]f32, vs: *[L][N][kvd]f32, as: *[L][N][qd]f32,
            mids: *[L][N][d]f32, gates: *[L][N][F]f32, ups: *[L][N][F]f32) =
        (model.embed p ids, zeros d, zeros qd, zeros kvd, zeros kvd, zeros qd, zeros d, zeros F, zeros F)
      for l < L do
        let la = model.layer_adapters ad l
        let (q, k, v) = model.attention_projections p la l x
        let a = model.sequence_attention p S l (q, k, v)
        let mid = model.attention_output p la l x a
        let (gate, up) = model.mlp_projections p la l mid
        in (model.mlp_output p la l mid (gate, up), xs with [l] = x, qs with [l] = q, ks with [l] = k, vs with [l] = v,
            as with [l] = a, mids with [l] = mid, gates with [l] = gate, ups with [l] = up)
    in (x, {x = xs, q = qs, k = ks, v = vs, a = as, mid = mids, gate = gates, up = ups})

  -- | The arrays of adapters `ad`: `A` and `B` of q, k, v, o, gate, up, down.
  def arrays [L][r][d][qd][kvd][F] (ad: model.adapters [L][r][d][qd][kvd][F]) =
    (ad.q.a, ad.q.b, ad.k.a, ad.k.b, ad.v.a, ad.v.b, ad.o.a, ad.o.b,
     ad.gate.a, ad.gate.b, ad.up.a, ad.up.b, ad.down.a, ad.down.b)

  -- The derivatives of a layer's steps, each a function of its own: `vjp`
  -- of the step without its base products (`adapted`), plus their part,
  -- each a product by `W.adjoint` taken back through what is before it in
  -- the step (a norm, the gating: as src/llama.fut's steps compute them)
  -- (inlined into one, the compiler's simplifier took minutes on it).
  #[noinline]
  def mlp_output_vjp [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][r][N] (p: model.params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) (la: model.layer_adapters [r][d][qd][kvd][F]) (l: i64)
                     (mid: [N][d]f32) (gate_up: ([N][F]f32, [N][F]f32)) (y_bar: [N][d]f32) =
    let set (c: lora.layer [r][F][d]) ((a, b): ([r][F]f32, [d][r]f32)) = c with a = a with b = b
    let (mid_bar, (gate_bar, up_bar), w_bar) =
      vjp (\(mid, gate_up, w) -> adapted.mlp_output p (la with down = set la.down w) l mid gate_up)
          (mid, gate_up, (la.down.a, la.down.b)) y_bar
    -- the base's part: the adjoint of the gated values, through the gating
    let (gate_bar', up_bar') = vjp (model.gated p) gate_up (W.adjoint F p.w_down[l] y_bar)
    in (mid_bar, (map2 vadd gate_bar gate_bar', map2 vadd up_bar up_bar'), w_bar)

  #[noinline]
  def mlp_projections_vjp [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][r][N] (p: model.params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) (la: model.layer_adapters [r][d][qd][kvd][F]) (l: i64)
                          (mid: [N][d]f32) (y_bar: ([N][F]f32, [N][F]f32)) =
    let set (c: lora.layer [r][d][F]) ((a, b): ([r][d]f32, [F][r]f32)) = c with a = a with b = b
    let (mid_bar, g_bar, u_bar) =
      vjp (\(mid, wg, wu) -> adapted.mlp_projections p (la with gate = set la.gate wg with up = set la.up wu) l mid)
          (mid, (la.gate.a, la.gate.b), (la.up.a, la.up.b)) y_bar
    let h_bar = map2 vadd (W.adjoint d p.w_gate[l] y_bar.0) (W.adjoint d p.w_up[l] y_bar.1)
    in (map2 vadd mid_bar (vjp (map (rms_norm p.eps p.mlp_norm[l])) mid h_bar), g_bar, u_bar)

  #[noinline]
  def attention_output_vjp [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][r][N] (p: model.params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) (la: model.layer_adapters [r][d][qd][kvd][F]) (l: i64)
                           (x: [N][d]f32) (a: [N][qd]f32) (y_bar: [N][d]f32) =
    let set (c: lora.layer [r][qd][d]) ((a, b): ([r][qd]f32, [d][r]f32)) = c with a = a with b = b
    let (x_bar, a_bar, w_bar) =
      vjp (\(x, a, w) -> adapted.attention_output p (la with o = set la.o w) l x a) (x, a, (la.o.a, la.o.b)) y_bar
    in (x_bar, map2 vadd a_bar (W.adjoint qd p.wo[l] y_bar), w_bar)

  -- (`model.sequence_attention`: the heads' biases, norms and rotations
  -- differentiated by `vjp`, their attention by `attention_adjoint`.)
  #[noinline]
  def sequence_attention_vjp [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][N] (p: model.params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) (S: i64) (l: i64)
                             (qkv: ([N][qd]f32, [N][kvd]f32, [N][kvd]f32)) (y_bar: [N][qd]f32) =
    let (B, Q, H, hd) = (N / S, p.heads, p.kv_heads, qd / p.heads)
    let heads qkv = let (q, k, v) = model.attention_heads p (tabulate N (% S)) l qkv
                    in (q :> [B * S][Q][hd]f32, k :> [B * S][H][hd]f32, v :> [B * S][H][hd]f32)
    let (q, k, v) = heads qkv
    let (q_bar, k_bar, v_bar) = attention_adjoint p.window (unflatten q) (unflatten k) (unflatten v)
                                                  (unflatten (map (\a -> unflatten (a :> [Q * hd]f32)) y_bar :> [B * S][Q][hd]f32))
    in vjp heads qkv (flatten q_bar, flatten k_bar, flatten v_bar)

  #[noinline]
  def attention_projections_vjp [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][r][N] (p: model.params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) (la: model.layer_adapters [r][d][qd][kvd][F]) (l: i64)
                                (x: [N][d]f32) (y_bar: ([N][qd]f32, [N][kvd]f32, [N][kvd]f32)) =
    let set [m] (c: lora.layer [r][d][m]) ((a, b): ([r][d]f32, [m][r]f32)) = c with a = a with b = b
    let (x_bar, q_bar, k_bar, v_bar) =
      vjp (\(x, wq, wk, wv) -> adapted.attention_projections p (la with q = set la.q wq with k = set la.k wk
                                                                 with v = set la.v wv) l x)
          (x, (la.q.a, la.q.b), (la.k.a, la.k.b), (la.v.a, la.v.b)) y_bar
    let (yq, yk, yv) = y_bar
    let h_bar = map3 (map3 (\a b c -> a + b + c)) (W.adjoint d p.wq[l] yq) (W.adjoint d p.wk[l] yk)
                     (W.adjoint d p.wv[l] yv)
    in (map2 vadd x_bar (vjp (map (rms_norm p.eps p.attn_norm[l])) x h_bar), q_bar, k_bar, v_bar)

  -- | The backward pass: from the adjoint `x_bar` of the last layer's
  -- hidden states, each layer's in turn, last to first, and the adjoints
  -- of the adapters (as `arrays`).  Each step of a layer is differentiated
  -- on its own, from its inputs on the tape: `vjp` of the whole layer loop
  -- kept only each layer's input and re-ran the layer's forward pass,
  -- projections included, in the reverse sweep; a step's derivative needs
  -- no product of the step's own (a projection's adjoints are products
  -- with the output's adjoint), so only the norms, the attention's scores
  -- and the gating are computed again.
  def backward [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][r][N]
               (p: model.params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) (ad: model.adapters [L][r][d][qd][kvd][F]) (S: i64)
               (tape: tape [L][N][d][qd][kvd][F]) (x_bar: [N][d]f32) =
    let zeros [n][m] (_: [L][n][m]f32) = replicate L (replicate n (replicate m 0f32))
    let (_, g) =
      loop (x_bar, (qa, qb, ka, kb, va, vb, oa, ob, ga, gb, ua, ub, da, db)) =
           (x_bar, (zeros ad.q.a, zeros ad.q.b, zeros ad.k.a, zeros ad.k.b, zeros ad.v.a, zeros ad.v.b,
                    zeros ad.o.a, zeros ad.o.b, zeros ad.gate.a, zeros ad.gate.b, zeros ad.up.a, zeros ad.up.b,
                    zeros ad.down.a, zeros ad.down.b))
      for i < L do
        let l = L - 1 - i
        let la = model.layer_adapters ad l
        let (mid_bar, gate_up_bar, (da_l, db_l)) = mlp_output_vjp p la l tape.mid[l] (tape.gate[l], tape.up[l]) x_bar
        let (mid_bar', (ga_l, gb_l), (ua_l, ub_l)) = mlp_projections_vjp p la l tape.mid[l] gate_up_bar
        let mid_bar = map2 vadd mid_bar mid_bar'
        let (x_bar, a_bar, (oa_l, ob_l)) = attention_output_vjp p la l tape.x[l] tape.a[l] mid_bar
        let qkv_bar = sequence_attention_vjp p S l (tape.q[l], tape.k[l], tape.v[l]) a_bar
        let (x_bar', (qa_l, qb_l), (ka_l, kb_l), (va_l, vb_l)) =
          attention_projections_vjp p la l tape.x[l] qkv_bar
        in (map2 vadd x_bar x_bar',
            (qa with [l] = qa_l, qb with [l] = qb_l, ka with [l] = ka_l, kb with [l] = kb_l,
             va with [l] = va_l, vb with [l] = vb_l, oa with [l] = oa_l, ob with [l] = ob_l,
             ga with [l] = ga_l, gb with [l] = gb_l, ua with [l] = ua_l, ub with [l] = ub_l,
             da with [l] = da_l, db with [l] = db_l))
    in g

  -- | The loss and its gradient with respect to the adapters `theta`: the
  -- forward pass keeping its tape, the head's loss differentiated by `vjp`,
  -- the backward pass, and the adjoints of the adapters gathered into
  -- `theta`'s layout by `vjp` of `adapters` (which reads them from it).  Not
  -- inlined: the entry points share one copy of the derivative's code
  -- (megabytes of C).
  #[noinline]
  def grad [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][T][B][S]
           (p: model.params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) (r: i64) (mask: i64)
           (scale: f32) (theta: [T]f32) (tokens: [B][S]i64) (targets: [B][S]i64) : (f32, [T]f32) =
    let (tokens, targets) = checked V p.context tokens targets
    let ad = adapters p r mask scale theta
    let (x, tape) = forward p ad S (flatten tokens)
    let (loss, x_bar) = head_grad p x (flatten targets)
    let g = backward p ad S tape x_bar
    in (loss, vjp (\theta -> arrays (adapters p r mask scale theta)) theta g)

  -- | Step `t` (from 1) of AdamW on a batch: the adapters and moments after
  -- it, the loss, the gradient's norm before clipping and the step's
  -- learning rate.
  def step [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][T][B][S]
           (p: model.params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) (r: i64) (mask: i64)
           (scale: f32) (o: optim.adamw) (t: i64) (theta: *[T]f32) (m: *[T]f32) (v: *[T]f32)
           (tokens: [B][S]i64) (targets: [B][S]i64) : (*[T]f32, *[T]f32, *[T]f32, f32, f32, f32) =
    let (l, g) = grad p r mask scale theta tokens targets
    -- (copied: the checker takes the gradient for an alias of `theta`)
    let (theta, m, v, norm, lr) = optim.update o t theta m v (copy g)
    in (theta, m, v, l, norm, lr)
}

-- | Full fine-tuning of a model in f32: every weight trained (the rotary
-- frequencies apart), read from one flat vector `theta` that holds the
-- arrays of src/llm.fut's `llama_f32_init` after another, a matrix as its
-- panels (llaf/finetune.py lays it out).
module full = {
  module tr = trainer (differentiated by_maps f32_panels) (differentiated by_maps f32_panels)

  def vector [T] (theta: [T]f32) (at: i64) (n: i64) : ([n]f32, i64) =
    (theta[at : at + n] :> [n]f32, at + n)

  def vectors [T] (theta: [T]f32) (at: i64) (L: i64) (n: i64) : ([L][n]f32, i64) =
    ((theta[at : at + L * n] :> [L * n]f32) |> unflatten, at + L * n)

  def matrix [T] (theta: [T]f32) (at: i64) (m: i64) (kb: i64) : (f32_panels.mat [m][kb], i64) =
    let t = (m + P - 1) / P
    let (w, at) = vector theta at (t * (kb * (32 * P)))
    in (f32_mat m (unflatten w |> map unflatten |> map (map unflatten) : [t][kb][32][P]f32), at)

  def matrices [T] (theta: [T]f32) (at: i64) (L: i64) (m: i64) (kb: i64) : ([L](f32_panels.mat [m][kb]), i64) =
    let size = (m + P - 1) / P * kb * 32 * P
    in (tabulate L (\l -> (matrix theta (at + l * size) m kb).0), at + L * size)

  -- | The weights of `p` replaced by those in `theta`.
  def with_weights [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][T]
                   (p: tr.model.params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) (theta: [T]f32)
                   : tr.model.params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk] =
    let (embed, at) = matrix theta 0 V dk
    let (attn_norm, at) = vectors theta at L d
    let (wq, at) = matrices theta at L qd dk
    let (wk, at) = matrices theta at L kvd dk
    let (wv, at) = matrices theta at L kvd dk
    let (bq, at) = vectors theta at L Bq
    let (bk, at) = vectors theta at L Bk
    let (bv, at) = vectors theta at L Bk
    let (q_norm, at) = vectors theta at L Nn
    let (k_norm, at) = vectors theta at L Nn
    let (wo, at) = matrices theta at L d qk
    let (mlp_norm, at) = vectors theta at L d
    let (w_gate, at) = matrices theta at L F dk
    let (w_up, at) = matrices theta at L F dk
    let (w_down, at) = matrices theta at L d Fk
    let (final_norm, at) = vector theta at d
    let (lm_head, at) = matrix theta at Vo dk
    let embed = assert (at == T) embed
    in p with embed = embed with attn_norm = attn_norm with wq = wq with wk = wk with wv = wv
         with bq = bq with bk = bk with bv = bv with q_norm = q_norm with k_norm = k_norm with wo = wo
         with mlp_norm = mlp_norm with w_gate = w_gate with w_up = w_up with w_down = w_down
         with final_norm = final_norm with lm_head = lm_head

  -- | The loss and its gradient with respect to every weight.
  #[noinline]
  def grad [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][T][B][S]
           (p: tr.model.params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]) (theta: [T]f32)
           (tokens: [B][S]i64) (targets: [B][S]i64) : (f32, [T]f32) =
    let (tokens, targets) = tr.checked V p.context tokens targets
    in vjp2 (\theta -> let q = with_weights p theta in tr.loss q (tr.model.no_adapters q) tokens targets) theta 1
}

-- | AdamW's settings.
entry adamw (lr: f32) (beta1: f32) (beta2: f32) (eps: f32) (weight_decay: f32) (max_norm: f32)
            (warmup: i64) (steps: i64) : optim.adamw =
  {lr, beta1, beta2, eps, weight_decay, max_norm, warmup, steps}

-- | Step `t` of AdamW along gradient `g` (summed by the caller over parts
-- of a batch that several engines differentiated at once): the weights and
-- moments after it, the gradient's norm before clipping, the learning rate.
entry train_update [T] (o: optim.adamw) (t: i64) (theta: *[T]f32) (m: *[T]f32) (v: *[T]f32) (g: [T]f32)
    : ([T]f32, [T]f32, [T]f32, f32, f32) =
  optim.update o t theta m v g

-- | The learning rate of each step of a schedule.
entry train_rates (o: optim.adamw) : []f32 = map (optim.rate o) (iota o.steps)

-- Generated by `python -m llaf.entries` from llaf's tables: do not edit below. --

-- train_f32 ----------------------------------------------------------------

module train_f32 = trainer (frozen_base f32_panels) (frozen_base f32_panels)
type~ train_f32_params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk] = train_f32.model.params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]

entry train_f32_init [L][Vt][Vot][d][qt][dt][kt][Ft][dk][qk][Fk][R][Bq][Bk][Nn]
    (heads: i64) (kv_heads: i64) (context: i64) (eps: f32) (window: i64) (embedding_scale: f32)
    (activation: i64) (vocab: i64) (ff: i64) (head_dim: i64) (embed: [Vt][dk][32][P]f32) (attn_norm: [L][d]f32)
    (wq: [L][qt][dk][32][P]f32) (wk: [L][kt][dk][32][P]f32) (wv: [L][kt][dk][32][P]f32) (bq: [L][Bq]f32)
    (bk: [L][Bk]f32) (bv: [L][Bk]f32) (q_norm: [L][Nn]f32) (k_norm: [L][Nn]f32) (wo: [L][dt][qk][32][P]f32)
    (mlp_norm: [L][d]f32) (w_gate: [L][Ft][dk][32][P]f32) (w_up: [L][Ft][dk][32][P]f32)
    (w_down: [L][dt][Fk][32][P]f32) (final_norm: [d]f32) (lm_head: [Vot][dk][32][P]f32) (inv_freq: [R]f32)
    : train_f32_params [L][vocab][] [d][] [] [ff][R][Bq][Bk][Nn][dk][qk][Fk] =
  let (qd, kvd) = (heads * head_dim, kv_heads * head_dim)
  let Vo = if Vot == 0 then 0 else vocab
  in train_f32.model.init heads kv_heads context eps window embedding_scale activation () (f32_mat vocab embed)
       attn_norm (map (f32_mat qd) wq) (map (f32_mat kvd) wk) (map (f32_mat kvd) wv) bq bk bv q_norm k_norm
       (map (f32_mat d) wo) mlp_norm (map (f32_mat ff) w_gate) (map (f32_mat ff) w_up) (map (f32_mat d) w_down)
       final_norm (f32_mat Vo lm_head) inv_freq

entry train_f32_loss [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][T][B][S] (p: train_f32_params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk])
    (r: i64) (mask: i64) (scale: f32) (theta: [T]f32) (tokens: [B][S]i64) (targets: [B][S]i64) : f32 =
  let (tokens, targets) = train_f32.checked V p.context tokens targets
  in train_f32.loss p (train_f32.adapters p r mask scale theta) tokens targets

entry train_f32_grad [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][T][B][S] (p: train_f32_params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk])
    (r: i64) (mask: i64) (scale: f32) (theta: [T]f32) (tokens: [B][S]i64) (targets: [B][S]i64) : (f32, [T]f32) =
  train_f32.grad p r mask scale theta tokens targets

entry train_f32_step [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][T][B][S] (p: train_f32_params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk])
    (r: i64) (mask: i64) (scale: f32) (o: optim.adamw) (t: i64) (theta: *[T]f32) (m: *[T]f32) (v: *[T]f32)
    (tokens: [B][S]i64) (targets: [B][S]i64) : ([T]f32, [T]f32, [T]f32, f32, f32, f32) =
  train_f32.step p r mask scale o t theta m v tokens targets

entry train_f32_full_grad [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][T][B][S] (p: train_f32_params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk])
    (theta: [T]f32) (tokens: [B][S]i64) (targets: [B][S]i64) : (f32, [T]f32) =
  full.grad p theta tokens targets

entry train_f32_full_step [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][T][B][S] (p: train_f32_params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk])
    (o: optim.adamw) (t: i64) (theta: *[T]f32) (m: *[T]f32) (v: *[T]f32) (tokens: [B][S]i64)
    (targets: [B][S]i64) : ([T]f32, [T]f32, [T]f32, f32, f32, f32) =
  let (l, g) = full.grad p theta tokens targets
  let (theta, m, v, norm, lr) = optim.update o t theta m v (copy g)
  in (theta, m, v, l, norm, lr)

-- train_q4 -----------------------------------------------------------------

module train_q4 = trainer (frozen_base q4_panels) (frozen_base q8_panels)
type~ train_q4_params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk] = train_q4.model.params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk]

entry train_q4_init [L][Vt][Vot][d][qt][dt][kt][Ft][dk][qk][Fk][R][Bq][Bk][Nn]
    (heads: i64) (kv_heads: i64) (context: i64) (eps: f32) (window: i64) (embedding_scale: f32)
    (activation: i64) (vocab: i64) (ff: i64) (head_dim: i64) (embed_q: [Vt][dk][32][P]u8)
    (embed_scale: [Vt][dk][P]u16) (embed_offset: [Vt][dk][P]u16) (attn_norm: [L][d]f32)
    (wq_q: [L][qt][dk][16][P]u8) (wq_scale: [L][qt][dk][P]u16) (wq_offset: [L][qt][dk][P]u16)
    (wk_q: [L][kt][dk][16][P]u8) (wk_scale: [L][kt][dk][P]u16) (wk_offset: [L][kt][dk][P]u16)
    (wv_q: [L][kt][dk][16][P]u8) (wv_scale: [L][kt][dk][P]u16) (wv_offset: [L][kt][dk][P]u16) (bq: [L][Bq]f32)
    (bk: [L][Bk]f32) (bv: [L][Bk]f32) (q_norm: [L][Nn]f32) (k_norm: [L][Nn]f32) (wo_q: [L][dt][qk][16][P]u8)
    (wo_scale: [L][dt][qk][P]u16) (wo_offset: [L][dt][qk][P]u16) (mlp_norm: [L][d]f32)
    (w_gate_q: [L][Ft][dk][16][P]u8) (w_gate_scale: [L][Ft][dk][P]u16) (w_gate_offset: [L][Ft][dk][P]u16)
    (w_up_q: [L][Ft][dk][16][P]u8) (w_up_scale: [L][Ft][dk][P]u16) (w_up_offset: [L][Ft][dk][P]u16)
    (w_down_q: [L][dt][Fk][16][P]u8) (w_down_scale: [L][dt][Fk][P]u16) (w_down_offset: [L][dt][Fk][P]u16)
    (final_norm: [d]f32) (lm_head_q: [Vot][dk][32][P]u8) (lm_head_scale: [Vot][dk][P]u16)
    (lm_head_offset: [Vot][dk][P]u16) (inv_freq: [R]f32)
    : train_q4_params [L][vocab][] [d][] [] [ff][R][Bq][Bk][Nn][dk][qk][Fk] =
  let (qd, kvd) = (heads * head_dim, kv_heads * head_dim)
  let Vo = if Vot == 0 then 0 else vocab
  in train_q4.model.init heads kv_heads context eps window embedding_scale activation ()
       (q8_mat vocab embed_q embed_scale embed_offset) attn_norm (map3 (q4_mat qd) wq_q wq_scale wq_offset)
       (map3 (q4_mat kvd) wk_q wk_scale wk_offset) (map3 (q4_mat kvd) wv_q wv_scale wv_offset) bq bk bv q_norm
       k_norm (map3 (q4_mat d) wo_q wo_scale wo_offset) mlp_norm
       (map3 (q4_mat ff) w_gate_q w_gate_scale w_gate_offset) (map3 (q4_mat ff) w_up_q w_up_scale w_up_offset)
       (map3 (q4_mat d) w_down_q w_down_scale w_down_offset) final_norm
       (q8_mat Vo lm_head_q lm_head_scale lm_head_offset) inv_freq

entry train_q4_loss [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][T][B][S] (p: train_q4_params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk])
    (r: i64) (mask: i64) (scale: f32) (theta: [T]f32) (tokens: [B][S]i64) (targets: [B][S]i64) : f32 =
  let (tokens, targets) = train_q4.checked V p.context tokens targets
  in train_q4.loss p (train_q4.adapters p r mask scale theta) tokens targets

entry train_q4_grad [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][T][B][S] (p: train_q4_params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk])
    (r: i64) (mask: i64) (scale: f32) (theta: [T]f32) (tokens: [B][S]i64) (targets: [B][S]i64) : (f32, [T]f32) =
  train_q4.grad p r mask scale theta tokens targets

entry train_q4_step [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk][T][B][S] (p: train_q4_params [L][V][Vo][d][qd][kvd][F][R][Bq][Bk][Nn][dk][qk][Fk])
    (r: i64) (mask: i64) (scale: f32) (o: optim.adamw) (t: i64) (theta: *[T]f32) (m: *[T]f32) (v: *[T]f32)
    (tokens: [B][S]i64) (targets: [B][S]i64) : ([T]f32, [T]f32, [T]f32, f32, f32, f32) =
  train_q4.step p r mask scale o t theta m v tokens targets
