#!/usr/bin/env python3
"""Compile fine-tuning's panel products with exact sums.

    scripts/patch-train.py build/c/train.c

`make train` runs this on the training program's C after
scripts/patch-runtime.py.  That C is compiled with reassociated sums and
clang's loop vectorizer, for its sums over a row's columns, with 256-bit
vectors (the Makefile's TRAIN_CFLAGS), while the kernel its frozen base
multiplies by (src/trainable.fut `panel_product`, a C function
`futrts_panel_product_N`), like the engine's batched kernel, holds its
running sums in tuples a panel's lanes wide that the compiler packs into vector registers itself:
with reassociation the loop vectorizer vectorized those sums over the wrong
loop, 10x slower (docs/PERFORMANCE.md, "Fine-tuning").  That function sums
in the program's order (clang's `#pragma clang fp reassociate(off)`; GCC's
`optimize` attribute) and may use 512-bit registers (clang's
`min_vector_width`, which matters only where the target has AVX-512: 15 %
faster there).  The build stops when no such function is found: a Futhark
that inlines or renames it has to be looked at.  Running it twice is
harmless (a marker says it is done).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

MARKER = "/* llaf: scripts/patch-train.py applied */\n"
# The function's definition, and what it is given.
PANEL_PRODUCT = re.compile(r"\n(FUTHARK_FUN_ATTR int futrts_panel_product_[0-9]+\([^;{]*\)\n\{\n)")
PANEL_MACROS = """\
#if defined(__clang__)
#define LLAF_PANEL_PRODUCT __attribute__((min_vector_width(512)))
#define LLAF_PROGRAM_ORDER _Pragma("clang fp reassociate(off)")
#elif defined(__GNUC__)
#define LLAF_PANEL_PRODUCT __attribute__((optimize("no-associative-math")))
#define LLAF_PROGRAM_ORDER
#else
#define LLAF_PANEL_PRODUCT
#define LLAF_PROGRAM_ORDER
#endif
"""


def patch(text: str) -> str:
    """Each `panel_product` function compiled with exact sums."""
    if MARKER in text:
        return text
    text, found = PANEL_PRODUCT.subn(lambda m: "\nLLAF_PANEL_PRODUCT " + m.group(1) + "    LLAF_PROGRAM_ORDER\n", text)
    if found == 0:
        raise SystemExit("patch-train: no futrts_panel_product_N function in the generated C "
                         "(src/trainable.fut `panel_product`): did Futhark inline or rename it?")
    return MARKER + PANEL_MACROS + text


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit("usage: scripts/patch-train.py build/c/train.c")
    path = Path(argv[1])
    path.write_text(patch(path.read_text()))


if __name__ == "__main__":
    main(sys.argv)
