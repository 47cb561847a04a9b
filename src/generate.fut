-- | What every model's entry points share: checking a pass's tokens, and
-- laying out a batch of prompts for `gen` (src/llm.fut).

import "nn"

-- | The tokens of a pass after checking them: ids below `V`, slots below
-- `B`, positions inside a slot's `capacity`, at least one token.
def checked [N] (V: i64) (B: i64) (capacity: i64) (ids: [N]i64) (slots: [N]i64) (pos: [N]i64)
    : ([N]i64, [N]i64, [N]i64) =
  let ids = assert (N > 0) ids
  let ids = assert (all (\t -> t >= 0 && t < V) ids) ids
  let slots = assert (all (\s -> s >= 0 && s < B) slots) slots
  let pos = assert (all (\p -> p >= 0 && p < capacity) pos) pos
  in (ids, slots, pos)

-- | The slot and position of every token of `B` prompts laid end to end
-- (`lens` tokens each).
def layout [B] (N: i64) (lens: [B]i64) : ([N]i64, [N]i64) =
  let starts = map2 (-) (scan (+) 0 lens) lens
  let slot i = loop s = 0 while s + 1 < B && starts[s + 1] <= i do s + 1
  let slots = tabulate N slot
  in (slots, map2 (\i s -> i - starts[s]) (iota N) slots)
