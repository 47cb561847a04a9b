"""What loading and using the engine does to the process around it: no
change to its floating point, no output or abort at exit."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import llaf
from llaf.assets import default_model_path
from llaf.backend import build_dir

from .conftest import BACKENDS_UNDER_TEST, ROOT

# The reproduction: a cache kept alive by a closure until shutdown.
SCRIPT = """
import numpy as np, llaf
p = llaf.init({model!r}, backend={backend!r}, progress=False)
def make():
    state = {{}}
    class Eng:
        def prefill(self, ids):
            lg, state["cache"] = llaf.prefill(p, ids); return int(np.argmax(lg))
        def step(self, t):
            return int(np.argmax(llaf.step(state["cache"], t)))
    return Eng()
e = make(); t = e.prefill([1, 2, 3, 4])
for _ in range(3): t = e.step(t)
tiny = np.float64(1e-310)
print(1e-310 > 0, bool(tiny > 0), bool(np.float32(1e-40) > 0))
"""


@pytest.mark.parametrize("backend", BACKENDS_UNDER_TEST)
def test_engine_leaves_the_process_alone(backend: str) -> None:
    """Subnormal numbers stay non-zero after the engine is loaded (no
    flush-to-zero from -ffast-math), and the process exits quietly and
    successfully with engine objects still alive at shutdown."""
    code = textwrap.dedent(SCRIPT.format(model=str(default_model_path()), backend=backend))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "True True True\n", "")


# A model that dies in a reference cycle: the failed call's traceback, kept
# as `err`, holds the frame that holds the model; the collector finalizes
# the cycle's objects in no particular order.
CYCLE = """
import ctypes, gc, llaf
def use_and_fail():
    m = llaf.load({model!r}, backend={backend!r}, context=64)
    endless = {{"type": "object", "properties": {{"a": {{"$ref": "#"}}}}, "required": ["a"]}}
    try:  # fails after the prompt's pass (a schema the JSON matcher gives up on)
        m.generate("Hi", 64, json_schema=endless)
    except llaf.LlafError as e:
        err = e
for _ in range(3):
    use_and_fail()
    gc.collect()
    ctypes.CDLL(None).malloc_trim(0)  # walks the heap: a corrupted one aborts here
print("ok")
"""


@pytest.mark.parametrize("backend", [b for b in BACKENDS_UNDER_TEST if b != "pyopencl"])
def test_a_model_collected_in_a_cycle_frees_its_context_last(backend: str) -> None:
    """The context outlives its arrays even when a cycle is collected: freed
    first, the arrays' frees wrote into its freed memory (the runtime's
    chatter on stderr, then a heap abort)."""
    code = textwrap.dedent(CYCLE.format(model=str(default_model_path()), backend=backend))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "ok\n", "")


@pytest.mark.skipif("multicore" not in BACKENDS_UNDER_TEST, reason="multicore is not under test")
def test_threads_that_cannot_start_are_an_error() -> None:
    """Worker threads the system cannot give (stacks of 64 MB in 3 GB of
    address space) fail the engine's start with one line, exit 1: the
    runtime's own check ended the process (exit 11, half a message)."""
    command = (f"ulimit -s 65536; ulimit -v 3000000; exec {sys.executable} -m llaf.cli generate hi -n 1 "
               "-b multicore --threads 256")
    proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=600)
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == ("llaf: the multicore engine could not start: a worker thread could not start (the "
                           "system's limit on threads or memory) (256 asked for: ask for fewer with --threads)\n")


@pytest.mark.skipif("pyopencl" not in BACKENDS_UNDER_TEST, reason="pyopencl is not under test")
def test_engines_build_one_opencl_program() -> None:
    """Each pyopencl engine builds its program with the same options, so
    that PoCL compiles a kernel once per machine, not once per engine: the
    generated class's shared default list of options is left empty."""
    from llaf.backend import Engine, _load

    engines = [Engine("pyopencl"), Engine("pyopencl")]
    assert _load("llaf_llm_pyopencl", build_dir("pyopencl") / "llm.py").build_options == []
    assert all(e.backend == "pyopencl" for e in engines)


# The backends whose runtime scripts/patch-runtime.py patches. On pyopencl
# the allocation happens inside PoCL, which asserts (exit 134) when it fails:
# docs/BACKENDS.md, "Out of memory".
C_BACKENDS = [b for b in BACKENDS_UNDER_TEST if b in ("c", "multicore")]

# An engine call that cannot get its memory: the address space is limited
# to what the process has mapped plus HEADROOM, after the model is loaded,
# and llaf's own check of the cache size (llaf/model.py, check_cache_fits)
# is turned off, so the allocation that fails is the engine's own.  A failed
# malloc itself costs address space (glibc then maps a 64 MiB arena).
HEADROOM = 256 << 20
LIMIT = """
import resource
from pathlib import Path
import llaf.model
llaf.model.check_cache_fits = lambda *args: None
def limit(headroom):
    mapped = [int(l.split()[1]) * 1024 for l in Path("/proc/self/status").read_text().splitlines()
              if l.startswith("VmSize:")][0]
    resource.setrlimit(resource.RLIMIT_AS, (mapped + headroom, resource.RLIM_INFINITY))
"""

API_SCRIPT = LIMIT + """
import numpy as np, llaf
p = llaf.init({model!r}, backend={backend!r}, progress=False)
def tokens():
    logits, cache = llaf.prefill(p, [1, 2, 3, 4])
    out = [int(np.argmax(logits))]
    for _ in range(3):
        out.append(int(np.argmax(llaf.step(cache, out[-1]))))
    return out
before = tokens()
big = np.zeros(96 << 20, np.float32)  # 384 MiB, mapped before the limit
limit({headroom})
try:
    p.engine.put(big)  # futhark-ffi's array constructor returns NULL
    print("array copied")
except llaf.OutOfMemoryError as e:
    print("array out of memory:", e)
del big
try:
    llaf.Cache(p, slots=8)  # 8 x 8192 positions: 2.8 GiB
    print("cache allocated")
except llaf.OutOfMemoryError as e:
    print("cache out of memory:", e)
cache = llaf.Cache(p, 1, 2048)  # 90 MiB
try:
    cache.run({{0: [1] * 2048}})  # the attention's scores: 2048 x 2048 x 9 heads, 144 MiB
    print("pass computed")
except llaf.OutOfMemoryError as e:
    print("pass out of memory:", e)
try:
    cache.run({{0: [1]}})
except llaf.LlafError as e:
    print("cache after:", e)
del cache
print("after", tokens() == before)
"""


@pytest.mark.parametrize("backend", C_BACKENDS)
def test_an_allocation_failing_in_the_engine_is_an_error(backend: str) -> None:
    """An out-of-memory inside the engine, allocating a cache or in a pass,
    raises OutOfMemoryError saying so (Futhark's C runtime used to keep
    malloc's NULL and segfault: exit 139), and the model goes on giving the
    same tokens afterwards."""
    code = API_SCRIPT.format(model=str(default_model_path()), backend=backend, headroom=HEADROOM)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == 5, proc.stdout
    assert lines.pop(0) == ("array out of memory: the engine ran out of memory taking an array of 384.0 MiB "
                            "(it asked for 384.0 MiB more): free memory, or ask for fewer tokens or sequences")
    for line, what, entry in zip(lines, ("cache", "pass"), ("cache", "run"), strict=False):
        assert re.fullmatch(rf"{what} out of memory: the engine ran out of memory in llama_q4_{entry} \(it asked for "
                            r"[\d.]+ MiB more\): free memory, or ask for fewer tokens or sequences", line), line
    # the pass consumed the cache: its contents are undefined, so it is given up
    assert lines[2] == "cache after: this cache was lost when a pass over it failed: make a new one"
    assert lines[3] == "after True"


CLI_SCRIPT = LIMIT + """
import sys
import llaf.generation
from llaf import cli
load = llaf.generation.load
def load_then_limit(*args, **kwargs):
    model = load(*args, **kwargs)
    limit({headroom})
    return model
llaf.generation.load = load_then_limit
cli.main(sys.argv[1:])
"""


@pytest.mark.parametrize("backend", C_BACKENDS)
def test_the_cli_reports_the_engine_running_out_of_memory_in_one_line(backend: str) -> None:
    """`llaf generate` whose cache (8192 positions: 360 MiB) the engine cannot
    allocate: exit 1 with one `llaf:` line, no traceback, no segfault."""
    code = CLI_SCRIPT.format(headroom=HEADROOM)
    proc = subprocess.run([sys.executable, "-c", code, "generate", "Hello", "--backend", backend, "--context", "8192",
                           "--max-new-tokens", "8000"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-3000:])
    assert re.fullmatch(r"llaf: the engine ran out of memory in llama_q4_\w+ \(it asked for [\d.]+ MiB more\): "
                        r"free memory, or ask for fewer tokens or sequences\n", proc.stderr), proc.stderr[-3000:]


def test_allocation_failures_of_every_backend_are_out_of_memory() -> None:
    """What each backend raises when an allocation fails becomes the one
    OutOfMemoryError message; other failures do not."""
    import pyopencl as cl
    from pyopencl._cl import _ErrorRecord

    from llaf.backend import _out_of_memory

    def opencl(kind: type[Exception], code: int) -> Exception:
        return kind(_ErrorRecord("clEnqueueNDRangeKernel failed", code, "clEnqueueNDRangeKernel"))

    plain = "the engine ran out of memory in llama_q4_run: free memory, or ask for fewer tokens or sequences"
    runtime = ValueError("Failed to allocate memory in default space.\nAttempted allocation:      3145728 bytes\n"
                         "Currently allocated:     1048576 bytes\n")
    cases: list[tuple[Exception, str | None]] = [
        (runtime, plain.replace(":", " (it asked for 3.0 MiB more):")),
        (ValueError("Failed to allocate memory"), plain),
        (MemoryError("Unable to allocate 54.0 MiB for an array with shape (884736, 32)"), plain),
        (opencl(cl.MemoryError, cl.status_code.MEM_OBJECT_ALLOCATION_FAILURE), plain),
        (opencl(cl.RuntimeError, cl.status_code.OUT_OF_HOST_MEMORY), plain),
        (opencl(cl.RuntimeError, cl.status_code.OUT_OF_RESOURCES), plain),
        (opencl(cl.LogicError, cl.status_code.INVALID_VALUE), None),
        (cl.Error("no status code"), None),
        (ValueError("Error: Assertion is false"), None),
    ]
    for error, message in cases:
        oom = _out_of_memory(error, "in llama_q4_run")
        assert (None if oom is None else str(oom)) == message, error


def test_the_runtime_patch_stops_the_build_on_a_runtime_it_does_not_know(tmp_path: Path) -> None:
    """scripts/patch-runtime.py fails, rather than leaving a runtime it cannot
    find its text in unpatched (a Futhark upgrade), and every C backend under
    test was built from patched C."""
    other = tmp_path / "llm.c"
    other.write_text("static void host_alloc(void) {}\n")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "patch-runtime.py"), str(other)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "Futhark's runtime changed" in proc.stderr, proc.stderr
    assert other.read_text() == "static void host_alloc(void) {}\n"
    for backend in C_BACKENDS:
        assert (build_dir(backend) / "llm.c").read_text().startswith("/* llaf: scripts/patch-runtime.py applied */")
    # the training program's too, plain copies made at once included
    pr = _runtime_patch()
    assert pr.FLAT_NEW in (build_dir("c") / "train.c").read_text()


def _runtime_patch() -> ModuleType:
    spec = importlib.util.spec_from_file_location("patch_runtime", ROOT / "scripts" / "patch-runtime.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif("multicore" not in BACKENDS_UNDER_TEST, reason="multicore is not under test")
def test_the_multicore_runtime_patch_makes_idle_workers_spin_before_they_sleep() -> None:
    """The multicore build's C is Futhark's runtime with the patches applied
    once each, the spin (`llaf_spin`) in the idle worker's sleep branch
    included; a runtime whose sleep branch reads otherwise stops the build."""
    pr = _runtime_patch()
    patched = (build_dir("multicore") / "llm.c").read_text()
    assert "if (llaf_spin(worker))" in patched
    # Futhark's text, recovered by undoing each patch.
    original = (patched.removeprefix(pr.MARKER).replace(pr.SPIN_FN, "").replace(pr.LEXICAL_FN, "")
                .replace(pr.FLAT_FN, ""))
    original = re.sub(r'llaf_lexical_alloc\(ctx, "(\w+)", &', r"lexical_realloc(ctx, &", original)
    original = re.sub(r'llaf_lexical_free\(ctx, "(\w+)", \w+, \w+\);', r"free(\1);", original)
    for old, new in ((pr.HOST_OLD, pr.HOST_NEW), (pr.ALLOC_OLD, pr.ALLOC_NEW), (pr.ERROR_OLD, pr.ERROR_NEW),
                     (pr.FLAT_OLD, pr.FLAT_NEW), (pr.SLEEP_OLD, pr.SLEEP_NEW), (pr.WORKER_OLD, pr.WORKER_NEW),
                     (pr.SCHEDULER_ERROR_OLD, pr.SCHEDULER_ERROR_NEW), (pr.SMALL_OLD, pr.SMALL_NEW),
                     ("\n    if ((size_t)", "\n    if (err == 0 && (size_t)")):
        original = original.replace(new, old)
    assert "llaf" not in original
    assert pr.patch(original, lexical_memory=True) == patched
    with pytest.raises(SystemExit, match="in the multicore runtime, found 0: Futhark's runtime changed"):
        pr.patch(original.replace(pr.SLEEP_OLD, pr.SLEEP_OLD.replace("go back to sleep", "sleep")))


def test_the_engine_reuses_its_scratch_arrays_but_training_does_not() -> None:
    """The engines' C takes every scratch array of a function call
    (`lexical_realloc`, the cleanup's `free`) through the free list; the
    fine-tuning program's keeps Futhark's own (its two engines trained
    slower with the free list, docs/PERFORMANCE.md)."""
    pr = _runtime_patch()
    for backend in sorted({"c", "multicore"} & set(BACKENDS_UNDER_TEST)):
        engine = (build_dir(backend) / "llm.c").read_text()
        allocations = len(re.findall(r'llaf_lexical_alloc\(ctx, "\w+", &', engine))
        assert allocations > 0 and "lexical_realloc(ctx, &" not in engine, backend
        assert len(pr.LEXICAL_DECLARATION.findall(engine)) == len(re.findall(r"llaf_lexical_free\(ctx,", engine))
    training = (build_dir("c") / "train.c").read_text()
    assert "lexical_realloc(ctx, &" in training and "llaf_lexical" not in training


@pytest.mark.skipif("multicore" not in BACKENDS_UNDER_TEST, reason="multicore is not under test")
def test_the_multicore_engine_decodes_alike_with_the_spin_off() -> None:
    """LLAF_SPIN_US=0 (Futhark's own sleeping workers) and the default spin
    give the same greedy tokens: the spin changes when a worker runs, never
    what it computes."""
    code = textwrap.dedent(f"""
        import llaf
        m = llaf.load({str(default_model_path())!r}, backend="multicore")
        print([a.tolist() for a in llaf.gen([[1, 2, 3, 4], [5, 6, 7]], m.params, 8)])
    """)
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                           env={**os.environ, "LLAF_SPIN_US": spin}) for spin in ("0", "200")]
    assert [(r.returncode, r.stderr) for r in runs] == [(0, ""), (0, "")]
    assert runs[0].stdout == runs[1].stdout and runs[0].stdout.startswith("[")


@pytest.mark.skipif("multicore" not in BACKENDS_UNDER_TEST, reason="multicore is not under test")
def test_the_multicore_engine_computes_the_same_bits_whatever_its_scheduler_chose() -> None:
    """Futhark's scheduler splits each parallel loop by the times it has
    measured: a loop never run yet goes to all the threads, a short one to
    one. A loop over one token (a pass of one token: RMSNorm's sum of
    squares) ran its reduction split or not accordingly, and so a fresh
    model's first pass differed from the same pass repeated in the last bits,
    as a loaded machine's passes could (scripts/patch-runtime.py, patch 8).
    The same passes give the same logits bit for bit: first or later, with 1,
    2 or 3 threads."""
    def passes(threads: int | None) -> np.ndarray:
        model = llaf.load(backend="multicore", context=64, threads=threads)
        logits = []
        for _ in range(3):
            cache = llaf.Cache(model.params)
            logits += [cache.run({0: [5]})[0], cache.run({0: list(range(100, 120))})[0], cache.run({0: [7]})[0]]
        return np.stack(logits)

    fresh = passes(None)
    np.testing.assert_array_equal(fresh[:3], fresh[3:6])  # the first passes, the second ones
    np.testing.assert_array_equal(fresh[3:6], fresh[6:])
    for threads in (1, 2, 3):
        np.testing.assert_array_equal(passes(threads), fresh, err_msg=f"{threads} threads")
