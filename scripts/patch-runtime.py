#!/usr/bin/env python3
"""Make a failed allocation in Futhark's generated C an error, not a segfault,
and keep the multicore scheduler's idle worker awake between parallel loops.

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
4. Multicore only (docs/BACKENDS.md, "The multicore scheduler"): a worker
   that finds no task spins for up to LLAF_SPIN_US microseconds (default
   200) before it sleeps on its queue's condition variable.  A decode step
   runs hundreds of parallel loops; waking the sleeping worker for each
   (futex calls, a context switch) cost more than many of the loops.

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
# The multicore scheduler's idle worker: it spins a while before it sleeps.
SPIN_AT = """\
static inline void *scheduler_worker(void* args)
"""
SPIN_FN = """\
/* llaf: an idle worker waits for the next task spinning, for up to
   LLAF_SPIN_US microseconds (default 200; 0 turns it off), before it sleeps on its queue's
   condition variable: a decode step runs hundreds of parallel loops, and
   waking a sleeping thread for each cost more than the loops' own work
   (scripts/patch-runtime.py, docs/PERFORMANCE.md). */
static int64_t llaf_spin_ns = -1;
static inline int llaf_spin(struct worker *worker) {
  int64_t budget = __atomic_load_n(&llaf_spin_ns, __ATOMIC_RELAXED);
  if (budget < 0) {
    const char *us = getenv("LLAF_SPIN_US");
    budget = us != NULL && *us != '\\0' ? (int64_t) atoll(us) * 1000 : (int64_t) 200000;
    __atomic_store_n(&llaf_spin_ns, budget, __ATOMIC_RELAXED);
  }
  if (budget <= 0)
    return 0;
  struct scheduler *scheduler = worker->scheduler;
  int64_t t0 = get_wall_time_ns();
  for (unsigned n = 1;; n++) {
    if (__atomic_load_n(&worker->q.num_used, __ATOMIC_ACQUIRE) != 0
        || __atomic_load_n(&scheduler->active_work, __ATOMIC_ACQUIRE) != 0
        || __atomic_load_n(&worker->dead, __ATOMIC_ACQUIRE) != 0)
      return 1;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    if (n % 64 == 0 && get_wall_time_ns() - t0 > budget)
      return 0;
  }
}

"""
SLEEP_OLD = """\
    } else { /* go back to sleep and wait for work */
      int retval = subtask_queue_dequeue(worker, &subtask, 1);
"""
SLEEP_NEW = """\
    } else { /* go back to sleep and wait for work */
      if (llaf_spin(worker))  /* llaf: work came while spinning */
        continue;
      int retval = subtask_queue_dequeue(worker, &subtask, 1);
"""
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
    if "scheduler_worker" in text:  # the multicore backend
        for old, new in ((SPIN_AT, SPIN_FN + SPIN_AT), (SLEEP_OLD, SLEEP_NEW)):
            if text.count(old) != 1:
                raise SystemExit(f"patch-runtime: expected one copy of {old.splitlines()[0].strip()!r} in the "
                                 f"multicore runtime, found {text.count(old)}: Futhark's runtime changed; "
                                 "see docs/BACKENDS.md")
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
