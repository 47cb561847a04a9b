-- | What the products are shaped for (src/matrix.fut), per target:
--
-- * `kernel_rows`: the rows of a panel the batched products take at a
--   time, `vec32` (a whole panel) or `vec8`.
-- * `dense_above`: the number of tokens above which a product decodes the
--   whole matrix once into f32 (`dense`) and multiplies that, rather than
--   decoding every block again for each group of 4 tokens.
--
-- This file says `vec32` and 16, what `futhark check`, `futhark test`, the
-- PyOpenCL build and the browser's module use.  The Makefile compiles the c
-- and multicore backends from a copy of src/ with this file rewritten for
-- the CPU they are built on: `KERNEL_ROWS` (32 where the C compiler targets
-- AVX-512, else 8) and `DENSE_ABOVE` (160: there the f32 copy, written to
-- memory and read back, cost more than decoding again up to about 200
-- tokens, docs/PERFORMANCE.md).

import "vec"

module kernel_rows = vec32

def dense_above : i64 = 16
