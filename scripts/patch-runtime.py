#!/usr/bin/env python3
"""Make a failed allocation in Futhark's generated C an error, not a segfault,
reuse the memory of function calls' scratch arrays from call to call, make
plain copies at once, and keep the multicore scheduler's idle worker awake
between parallel loops.

    scripts/patch-runtime.py [--lexical-memory] build/c/llm.c

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
4. Memory that the generated code keeps for the length of a function call
   ("lexical": scratch arrays of a loop, the derivative's intermediate
   arrays) goes through the runtime's free list as its other arrays do,
   where it had its own `realloc` and `free`: glibc maps a block of 32 MB or
   more fresh from the kernel at each call and unmaps it after, so every
   call paid for zeroing those pages again (docs/BACKENDS.md, "Lexical
   memory").  Only with --lexical-memory, which the engine's builds pass
   (prefill 6-8 % faster); fine-tuning's two engines trained slower with it
   (docs/PERFORMANCE.md).
5. A copy between two row-major arrays laid out alike (one `memcpy`) is
   made at once: the runtime's `lmad_copy_*` first tests whether the copy
   is a transposition and then searches every permutation of the
   dimensions for a contiguous layout, which cost far more than copying
   the 16 values of a block that fine-tuning's decoding copies by the
   million (docs/BACKENDS.md, "Copies").
6. Multicore only (docs/BACKENDS.md, "The multicore scheduler"): a worker
   that finds no task spins for up to LLAF_SPIN_US microseconds (default
   200) before it sleeps on its queue's condition variable.  A decode step
   runs hundreds of parallel loops; waking the sleeping worker for each
   (futex calls, a context switch) cost more than many of the loops.

7. Multicore only: a worker thread that cannot start (the system's limit on
   threads or memory) fails the context's creation with an error the caller
   reads, where the runtime's `check_err` ended the whole process (exit 11,
   half a message); the workers already started are stopped when the
   context is freed, as always.

8. Multicore only (docs/BACKENDS.md, "The multicore scheduler"): a
   reduction or scan runs as one subtask, summing in the program's order.
   The scheduler chose each loop's subtasks from the times it had measured
   so far (all the threads for a loop never run; one where the loop looked
   shorter than the cost of a task), and a loop over one token (RMSNorm's
   sum of squares) ran the reduction inside it in parallel or not by the
   same measure: the sums' order, and so the last bits of the logits, then
   depended on the machine's load and on whether the loop had run before.
   The parallel loops that are maps keep the scheduler's choice.

Each patch must match the text exactly as often as expected, else this
exits non-zero and the build stops: a Futhark upgrade that changes the
runtime has to be looked at, not silently left unpatched.  Running it twice
is harmless (the patched text no longer matches, and a marker says it is done).
"""

from __future__ import annotations

import argparse
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
# Lexical memory: allocated through host_alloc (which takes a block from the
# free list when one fits) and given back through host_free, under a tag that
# names the variable (a block goes back to the variable that had it). The
# block's size is what the generated code caches in `<name>_cached_sizze_<n>`.
LEXICAL_AT = """\
static int lexical_realloc(struct futhark_context *ctx,
"""
LEXICAL_FN = """\
/* llaf: lexical memory through the free list (scripts/patch-runtime.py). */
static int llaf_lexical_alloc(struct futhark_context *ctx, const char *tag, unsigned char **ptr,
                              int64_t *size, int64_t new_size) {
  if (*ptr != NULL)
    host_free(ctx, (size_t) *size, tag, *ptr);
  *ptr = NULL;
  *size = 0;
  size_t got = 0;
  void *mem = NULL;
  host_alloc(ctx, (size_t) new_size, tag, &got, &mem);
  if (mem == NULL && new_size != 0) {
    lexical_realloc_error(ctx, (size_t) new_size);
    return FUTHARK_OUT_OF_MEMORY;
  }
  *ptr = (unsigned char *) mem;
  *size = (int64_t) got;
  return FUTHARK_SUCCESS;
}

static void llaf_lexical_free(struct futhark_context *ctx, const char *tag, unsigned char *mem, int64_t size) {
  if (mem != NULL)
    host_free(ctx, (size_t) size, tag, mem);
}

"""
LEXICAL_DECLARATION = re.compile(r"int64_t ([A-Za-z0-9_]+)_cached_sizze_([0-9]+) = 0;")
LEXICAL_USE = re.compile(LEXICAL_DECLARATION.pattern
                         + r"|lexical_realloc\(ctx, &([A-Za-z0-9_]+), &([A-Za-z0-9_]+), "
                         r"|\bfree\(([A-Za-z0-9_]+)\);")


def lexical(text: str) -> str:
    """Lexical memory's allocations and frees through the free list. A
    variable's name can be declared again in another function, with another
    size variable: each use takes the latest declaration before it."""
    sizes: dict[str, str] = {}
    counts = {"realloc": 0, "free": 0}

    def use(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            sizes[m.group(1)] = f"{m.group(1)}_cached_sizze_{m.group(2)}"
            return m.group(0)
        if m.group(3) is not None:
            if sizes.get(m.group(3)) != m.group(4):
                raise SystemExit(f"patch-runtime: lexical_realloc of {m.group(3)} with an unknown size variable")
            counts["realloc"] += 1
            return f'llaf_lexical_alloc(ctx, "{m.group(3)}", &{m.group(3)}, &{m.group(4)}, '
        name = m.group(5)
        if name not in sizes:
            return m.group(0)
        counts["free"] += 1
        return f'llaf_lexical_free(ctx, "{name}", {name}, {sizes[name]});'

    declared = len(LEXICAL_DECLARATION.findall(text))
    text = LEXICAL_USE.sub(use, text)
    if counts["free"] != declared or counts["realloc"] < declared:
        raise SystemExit(f"patch-runtime: {declared} lexical arrays, {counts['realloc']} allocations and "
                         f"{counts['free']} frees patched: Futhark's runtime changed; see docs/BACKENDS.md")
    if text.count(LEXICAL_AT) != 1:
        raise SystemExit("patch-runtime: expected one lexical_realloc in the generated C: Futhark's runtime "
                         "changed; see docs/BACKENDS.md")
    return text.replace(LEXICAL_AT, LEXICAL_FN + LEXICAL_AT)


# Copies: both sides row-major with the same strides go straight to memcpy
# (what the runtime's general path ends in for them, after its searches).
FLAT_AT = "#define GEN_LMAD_COPY(NAME, ELEM_TYPE) "
FLAT_FN = """\
/* llaf: a copy between two row-major arrays laid out alike is one memcpy,
   made without the runtime's general search (scripts/patch-runtime.py). */
static inline bool llaf_row_major_copy(int r, int64_t dst_strides[r], int64_t src_strides[r], int64_t shape[r]) {
  int64_t expected = 1;
  for (int i = r - 1; i >= 0; i--) {
    if (shape[i] != 1 && (dst_strides[i] != expected || src_strides[i] != expected))
      return false;
    expected *= shape[i];
  }
  return true;
}

"""
FLAT_OLD = """\
    if (size == 0) { return; }                                          \\
    int64_t k, n, m;                                                    \\
"""
FLAT_NEW = """\
    if (size == 0) { return; }                                          \\
    if (llaf_row_major_copy(r, dst_strides, src_strides, shape)) {      \\
      memcpy(dst+dst_offset, src+src_offset, size*sizeof(*dst));        \\
      return;                                                           \\
    }                                                                   \\
    int64_t k, n, m;                                                    \\
"""


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
# Reductions and scans in one subtask: the order of their sums is the
# program's whatever the load, the threads and the timings measured so far.
SMALL_OLD = """\
  int64_t time = *task->task_time;
  int64_t iter = *task->task_iter;
"""
SMALL_NEW = SMALL_OLD + """\
  /* llaf: a reduction or scan is one subtask, summing in the program's
     order: split by the times measured so far, the last bits of its result
     depended on the machine's load (scripts/patch-runtime.py, patch 8). */
  if (strncmp(task->name, "futhark_mc_segred", 17) == 0 || strncmp(task->name, "futhark_mc_segscan", 18) == 0) {
    *nsubtasks = 1;
    return 1;
  }
"""
# A worker that cannot start: the scheduler keeps the workers started so far
# (scheduler_destroy stops those when the context is freed) and fails.
WORKER_OLD = """\
    CHECK_ERR(pthread_create(&cur_worker->thread,
                             NULL,
                             &scheduler_worker,
                             cur_worker),
              "Failed to create worker %d\\n", i);
"""
WORKER_NEW = """\
    if (pthread_create(&cur_worker->thread, NULL, &scheduler_worker, cur_worker) != 0) {
      /* llaf: scripts/patch-runtime.py: an error, not the process's exit */
      subtask_queue_destroy(&cur_worker->q);
      scheduler->num_threads = i;
      return 1;
    }
"""
SCHEDULER_ERROR_OLD = """\
    ctx->error = strdup("Failed to initialise scheduler.");
"""
SCHEDULER_ERROR_NEW = """\
    ctx->error = strdup("a worker thread could not start (the system's limit on threads or memory)");
"""
# futhark_new_*: `if ((size_t) <elements> * <bytes> > 0) memmove(arr->mem.mem ...`
COPY = re.compile(r"(\n    if \()(\(size_t\) [^\n]* > 0\)\n"
                  r"        memmove\(arr->mem\.mem \+ 0, \(const unsigned char \*\) data)")


def patch(text: str, lexical_memory: bool = False) -> str:
    if MARKER in text:
        return text
    for old, new in ((HOST_OLD, HOST_NEW), (ALLOC_OLD, ALLOC_NEW), (ERROR_OLD, ERROR_NEW),
                     (FLAT_AT, FLAT_FN + FLAT_AT), (FLAT_OLD, FLAT_NEW)):
        if text.count(old) != 1:
            raise SystemExit(f"patch-runtime: expected one copy of {old.splitlines()[0].strip()!r} in the generated "
                             f"C, found {text.count(old)}: Futhark's runtime changed; see docs/BACKENDS.md")
        text = text.replace(old, new)
    if lexical_memory:
        text = lexical(text)
    if "scheduler_worker" in text:  # the multicore backend
        for old, new in ((SPIN_AT, SPIN_FN + SPIN_AT), (SLEEP_OLD, SLEEP_NEW), (WORKER_OLD, WORKER_NEW),
                         (SCHEDULER_ERROR_OLD, SCHEDULER_ERROR_NEW), (SMALL_OLD, SMALL_NEW)):
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
    parser = argparse.ArgumentParser(prog="scripts/patch-runtime.py")
    parser.add_argument("--lexical-memory", action="store_true",
                        help="send function calls' scratch arrays through the free list (patch 4)")
    parser.add_argument("path", type=Path, help="the generated C, e.g. build/c/llm.c")
    args = parser.parse_args(argv[1:])
    args.path.write_text(patch(args.path.read_text(), args.lexical_memory))


if __name__ == "__main__":
    main(sys.argv)
