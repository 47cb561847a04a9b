#!/usr/bin/env python3
"""Make a failed allocation in Futhark's generated C an error, not a segfault.

    scripts/patch-runtime.py build/c/llm.c

`make` runs this on the C that `futhark c --library` (or multicore) writes,
before cffi compiles it.  Futhark 0.25's runtime (0.25.27, 0.25.32) stores what `malloc`
returns without checking it: `host_alloc` hands a NULL to `memblock_alloc`,
which tests only `ctx->error` (never set by `host_alloc`) and so records the
NULL as a block; the first kernel to write there segfaults (exit 139, no
message).  The patches (docs/BACKENDS.md, "Out of memory"):

1. `host_alloc`, when malloc fails, gives the blocks the runtime keeps
   for reuse back to the system and tries once more.
2. `memblock_alloc` takes a NULL block (of a non-empty size), or a failed
   `malloc` of its reference count, as the out-of-memory error it already
   has a branch for: `ctx->error` says how many bytes were asked for, and it
   returns FUTHARK_OUT_OF_MEMORY, so the entry point returns non-zero and
   futhark-ffi raises.  The context stays usable: the entry point's cleanup
   frees what it had allocated.
3. The `futhark_new_*` array constructors copy the caller's data only when
   the allocation succeeded (they did the copy regardless, into NULL).

Each patch must match the text exactly as often as expected, else this
exits non-zero and the build stops: a Futhark upgrade that changes the
runtime has to be looked at, not silently left unpatched.  Running it twice
is harmless (the patched text no longer matches, and a marker says it is done).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

MARKER = "/* llaf: scripts/patch-runtime.py applied */\n"

# host_alloc's malloc: on failure, the blocks the runtime keeps for reuse
# (its free list, released only when the context is freed) go back to the
# system and malloc is tried once more.
HOST_OLD = """\
    *mem_out = malloc(size);
"""
HOST_NEW = """\
    *mem_out = malloc(size);
    if (*mem_out == NULL && size != 0) {  /* llaf: scripts/patch-runtime.py */
      free_all_in_free_list(ctx);
      *mem_out = malloc(size);
    }
"""
# memblock_alloc after host_alloc: the generated success test, and the
# reference count it allocates unchecked.
ALLOC_OLD = """\
    host_alloc(ctx, (size_t) size, desc, (size_t *) &size, (void *) &block->mem);
    if (ctx->error == NULL) {
        block->references = (int *) malloc(sizeof(int));
        *block->references = 1;
"""
ALLOC_NEW = """\
    host_alloc(ctx, (size_t) size, desc, (size_t *) &size, (void *) &block->mem);
    /* llaf: malloc's NULL is out of memory (scripts/patch-runtime.py). */
    int *llaf_references = ctx->error == NULL && (block->mem != NULL || size == 0)
        ? (int *) malloc(sizeof(int)) : NULL;
    if (llaf_references == NULL && block->mem != NULL)
        host_free(ctx, (size_t) size, desc, (void *) block->mem);
    if (llaf_references == NULL)
        block->mem = NULL;
    if (llaf_references != NULL) {
        block->references = llaf_references;
        *block->references = 1;
"""
# The error branch appends an older error, which now may not exist.
ERROR_OLD = """(long long) ctx->cur_mem_usage_default, old_error);
        free(old_error);"""
ERROR_NEW = """(long long) ctx->cur_mem_usage_default, old_error != NULL ? old_error : "");
        free(old_error);"""
# futhark_new_*: `if ((size_t) <elements> * <bytes> > 0) memmove(arr->mem.mem ...`
COPY = re.compile(r"(\n    if \()(\(size_t\) [^\n]* > 0\)\n"
                  r"        memmove\(arr->mem\.mem \+ 0, \(const unsigned char \*\) data)")


def patch(text: str) -> str:
    if MARKER in text:
        return text
    for old, new in ((HOST_OLD, HOST_NEW), (ALLOC_OLD, ALLOC_NEW), (ERROR_OLD, ERROR_NEW)):
        if text.count(old) != 1:
            raise SystemExit(f"patch-runtime: expected one copy of {old.splitlines()[0].strip()!r} in the generated "
                             f"C, found {text.count(old)}: Futhark's runtime changed; see docs/BACKENDS.md")
        text = text.replace(old, new)
    # Every copy of the caller's data into a new array is guarded, or the build stops.
    wanted = text.count("memmove(arr->mem.mem + 0, (const unsigned char *) data")
    text, copies = COPY.subn(r"\1err == 0 && \2", text)
    if copies == 0 or copies != wanted:
        raise SystemExit(f"patch-runtime: {copies} of {wanted} array constructor copies patched: "
                         "Futhark's runtime changed; see docs/BACKENDS.md")
    return MARKER + text


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit("usage: scripts/patch-runtime.py build/B/llm.c")
    path = Path(argv[1])
    path.write_text(patch(path.read_text()))


if __name__ == "__main__":
    main(sys.argv)
