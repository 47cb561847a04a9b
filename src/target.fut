-- | What the products are shaped for (src/matrix.fut): the rows of a panel
-- the batched products take at a time, `vec32` (a whole panel) or `vec8`.
--
-- This file says `vec32`, what `futhark check`, `futhark test` and the
-- PyOpenCL build use.  The Makefile compiles the c and multicore backends
-- from a copy of src/ with this file rewritten for the CPU they are built
-- on (`KERNEL_ROWS`: 32 where the C compiler targets AVX-512, else 8).

import "vec"

module kernel_rows = vec32
