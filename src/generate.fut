-- | Greedy decoding, written once for every model.
--
-- A model is given to these functions as two of its own functions:
-- `run cache pos ids` (the final hidden states of `ids` at positions
-- `pos ..`, with their keys and values written into the cache) and
-- `head h` (the next-token logits of a hidden state).

import "nn"

-- | Logits after every one of `ids`, from one pass over the whole sequence.
def forward [n][d][V] 'c (run: *c -> i64 -> [n]i64 -> ([n][d]f32, *c)) (head: [d]f32 -> [V]f32)
                         (cache: *c) (ids: [n]i64) : [n][V]f32 =
  let (h, _) = run cache 0 ids
  in map head h

-- | The logits of the last of `ids` and the cache holding all of them.
def prefill [n][d][V] 'c (run: *c -> i64 -> [n]i64 -> ([n][d]f32, *c)) (head: [d]f32 -> [V]f32)
                         (cache: *c) (ids: [n]i64) : ([V]f32, *c) =
  let (h, cache) = run cache 0 ids
  in (head h[n - 1], cache)

-- | The logits after token `tok` at position `pos`, given the cache of the
-- positions before it.
def step [d][V] 'c (run: *c -> i64 -> [1]i64 -> ([1][d]f32, *c)) (head: [d]f32 -> [V]f32)
                   (cache: *c) (tok: i64) (pos: i64) : ([V]f32, *c) =
  let (h, cache) = run cache pos [tok]
  in (head h[0], cache)

-- | `ids` followed by `cnt` greedily chosen tokens: a prefill of the prompt,
-- then one cached step per new token.
def greedy [n][d][V] 'c (run_prompt: *c -> i64 -> [n]i64 -> ([n][d]f32, *c))
                        (run_token: *c -> i64 -> [1]i64 -> ([1][d]f32, *c))
                        (head: [d]f32 -> [V]f32)
                        (cache: *c) (ids: [n]i64) (cnt: i64) : [n + cnt]i64 =
  let (lg, cache) = prefill run_prompt head cache ids
  let (out, _, _) =
    loop (out, cache, lg) = (replicate cnt 0i64, cache, lg) for i < cnt do
      let tok = argmax lg
      let out = out with [i] = tok
      in if i + 1 < cnt
         then let (lg, cache) = step run_token head cache tok (n + i) in (out, cache, lg)
         else (out, cache, lg)
  in ids ++ out

-- | `ids` after checking that `n` tokens at positions `pos ..` fit in a
-- context of `C` and that every id is below `V`.
def checked [n] (V: i64) (C: i64) (pos: i64) (ids: [n]i64) : [n]i64 =
  let ids = assert (n > 0) ids
  let ids = assert (pos >= 0 && pos + n <= C) ids
  in assert (all (\t -> t >= 0 && t < V) ids) ids
