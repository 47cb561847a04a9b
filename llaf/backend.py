"""Loading and calling the compiled Futhark module, whatever its backend.

`make BACKEND=B` compiles ``src/llm.fut`` into ``build/B/``:

* ``pyopencl``: Futhark's own Python module (``llm.py``), running on any
  OpenCL device through PyOpenCL (PoCL on a CPU);
* ``c``, ``multicore``, ``opencl``, ``cuda``: a C library wrapped by
  futhark-ffi (cffi) as ``_llm*.so``.

`Engine` hides the difference: ``engine.call(entry, *args)`` runs an entry
point, ``engine.array(value)`` brings a result array back as NumPy.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import os
import re
import weakref
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from . import profile as profiler
from .errors import EngineError, LlafError, OutOfMemoryError, first_line

BACKENDS = ("pyopencl", "c", "multicore", "opencl", "cuda")
ROOT = Path(__file__).resolve().parent.parent

# PoCL (OpenCL on the CPU) computes Futhark's reductions correctly only with
# work-group size 1; see docs/BACKENDS.md for the measurements.
POCL_OPTIONS: dict[str, Any] = {"default_group_size": 1}


def build_dir(backend: str) -> Path:
    """Where `make BACKEND=backend` puts the compiled module."""
    return Path(os.environ.get("LLAF_BUILD", ROOT / "build")) / backend


# On a CPU the multicore backend is the fastest (docs/PERFORMANCE.md); the first
# built backend of this list is the default.
PREFERENCE = ("multicore", "c", "pyopencl", "opencl", "cuda")


def default_backend() -> str:
    """``$LLAF_BACKEND``, else the first built backend of `PREFERENCE`."""
    if "LLAF_BACKEND" in os.environ:
        return os.environ["LLAF_BACKEND"]
    for backend in PREFERENCE:
        if (build_dir(backend) / ".built").exists():
            return backend
    raise LlafError("no backend is built: run `make` (or `make BACKEND=c`)")


def resolve_backend(backend: str | None) -> str:
    """`backend`, or the default one for None, checked to be a backend llaf has."""
    backend = default_backend() if backend is None else backend
    if backend not in BACKENDS:
        raise LlafError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    return backend


@functools.cache
def _load(name: str, path: Path) -> ModuleType:
    """Load a compiled module once per process: every Engine of a backend
    shares it (loading an extension module again gives it a second cffi
    instance, whose objects the first one's functions reject)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise LlafError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The futhark-ffi contexts alive in this process, by their object's id: its
# cffi and the context's cdata, whose destructor frees the context (each
# array's destructor holds it too).
#
# Held here, outside any reference cycle, until the futhark-ffi object is
# finalized: when a model dies in a cycle (a traceback kept as `err = e`
# holds the frames that hold it), Python's collector finalizes the cycle's
# objects in no particular order, and it ran the context's destructor
# before the arrays' (their frees then wrote into freed memory: a heap abort
# at a later malloc). Held here, the context goes with the last array.
#
# At interpreter shutdown objects are freed in no particular order too, so
# at exit the contexts lose their destructor and are left for the operating
# system to reclaim.
_CONTEXTS: dict[int, tuple[Any, Any]] = {}


def _hold_context(fut: Any) -> None:
    _CONTEXTS[id(fut)] = (fut.ffi, fut.ctx)
    weakref.finalize(fut, _CONTEXTS.pop, id(fut), None).atexit = False


@atexit.register
def _keep_contexts_at_exit() -> None:
    for ffi, ctx in list(_CONTEXTS.values()):
        ffi.gc(ctx, None)  # drops the destructor that frees the context (in place)


# Futhark's names of the element types llaf passes (the entry points'
# parameter types too, llaf/entries.py).
ELEMENTS = {np.dtype(np.float32): "f32", np.dtype(np.uint32): "u32", np.dtype(np.uint16): "u16",
            np.dtype(np.uint8): "u8", np.dtype(np.int64): "i64"}


# How Futhark's C runtime says that an allocation failed (memblock_alloc,
# which scripts/patch-runtime.py makes a failed malloc reach), and its size.
_FUTHARK_OOM = "Failed to allocate memory"
_ATTEMPTED = re.compile(r"Attempted allocation: *(\d+) bytes")


def _out_of_memory(error: Exception, what: str) -> OutOfMemoryError | None:
    """`error` as an OutOfMemoryError if it says an allocation failed: the C
    runtime's message, NumPy's or Python's MemoryError, or one of OpenCL's
    allocation failures (PyOpenCL raises those as cl.MemoryError, or
    cl.RuntimeError for host memory and resources)."""
    needed = ""
    if isinstance(error, OutOfMemoryError):
        return error
    if isinstance(error, MemoryError):
        pass
    elif str(error).startswith(_FUTHARK_OOM):
        m = _ATTEMPTED.search(str(error))
        needed = f" (it asked for {int(m[1]) / 2**20:.1f} MiB more)" if m else ""
    elif not _is_opencl_oom(error):
        return None
    return OutOfMemoryError(f"the engine ran out of memory {what}{needed}: free memory, "
                            "or ask for fewer tokens or sequences")


def _is_opencl_oom(error: Exception) -> bool:
    import sys

    cl = sys.modules.get("pyopencl")  # only the pyopencl backend raises its errors
    if cl is None or not isinstance(error, cl.Error):
        return False
    if isinstance(error, cl.MemoryError):
        return True
    try:
        code = error.code
    except Exception:  # an Error made without a status code
        return False
    return code in (cl.status_code.MEM_OBJECT_ALLOCATION_FAILURE, cl.status_code.OUT_OF_HOST_MEMORY,
                    cl.status_code.OUT_OF_RESOURCES)


@functools.cache
def _checked_futhark() -> type:
    """futhark-ffi's `Futhark`, checking what its array constructors return:
    futhark-ffi passes a NULL from a failed allocation on into the entry
    point, which then reads through it (a segfault, not an error)."""
    from futhark_ffi import Futhark

    class CheckedFuthark(Futhark):  # type: ignore[misc]  # futhark-ffi has no type hints
        def __init__(self, mod: Any, threads: int | None = None, profiling: bool = False) -> None:
            if threads is None and not profiling:
                super().__init__(mod)
                return
            # futhark-ffi makes the configuration and the context in one step,
            # leaving no moment to set the multicore backend's thread count
            # (by default one per core): its steps, with that setting between.
            self.lib, self.ffi = mod.lib, mod.ffi
            conf = self.conf = mod.lib.futhark_context_config_new()
            if threads is not None:
                mod.lib.futhark_context_config_set_num_threads(conf, threads)
            if profiling:
                mod.lib.futhark_context_config_set_profiling(conf, 1)

            def free_ctx(ctx: Any) -> None:
                mod.lib.futhark_context_free(ctx)
                mod.lib.futhark_context_config_free(conf)

            self.ctx = mod.ffi.gc(mod.lib.futhark_context_new(conf), free_ctx)
            error = self.lib.futhark_context_get_error(self.ctx)
            if error:
                raise ValueError(self._get_string(error))
            self.make_types()
            self.make_entrypoints()
            self.make_stores()
            self.make_restores()

        def to_futhark(self, fut_type: Any, data: Any) -> Any:
            arr = super().to_futhark(fut_type, data)
            if arr == self.ffi.NULL:
                self.ffi.gc(arr, None)  # the destructor of this NULL would free through it
                self._errorcheck(1)
            return arr

        def _errorcheck(self, err: int) -> None:
            if err != 0:
                message = self.lib.futhark_context_get_error(self.ctx)
                # the runtime's own message can be lost to the shortage it reports
                raise ValueError(self._get_string(message) if message != self.ffi.NULL else "Failed to allocate memory")

    return CheckedFuthark


MAX_THREADS = 512  # llama.cpp's GGML_MAX_N_THREADS


def check_threads(threads: Any, backend: str) -> int | None:
    """`threads` checked: None, or a positive thread count for the multicore
    backend (the others take none: c runs on one thread, the OpenCL ones on
    their device)."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise LlafError(f"the thread count must be a positive integer, got {threads!r}")
    if threads > MAX_THREADS:
        # (Futhark's runtime exits the process when it cannot start a worker;
        # thousands of threads took minutes to start on 2 cores.)
        raise LlafError(f"the thread count must be at most {MAX_THREADS} (as llama.cpp's), got {threads}")
    if backend != "multicore":
        raise LlafError(f"a thread count is for the multicore backend; the {backend} backend takes none")
    return threads


# The compiled programs, by name, and what builds each: the engine
# (src/llm.fut, every backend) and fine-tuning (src/train.fut, the c backend
# only: see the Makefile).
PROGRAMS = {"llm": "make BACKEND={backend}", "train": "make train"}
TRAIN_BACKENDS = ("c",)


def check_train_backend(backend: str) -> None:
    """A LlafError unless fine-tuning is built for `backend`."""
    if backend not in TRAIN_BACKENDS:
        raise LlafError(f"fine-tuning runs on the {' and '.join(TRAIN_BACKENDS)} backend, not {backend}")


def check_built(backend: str, program: str = "llm") -> Path:
    """The compiled `program` of `backend` (a resolved name): its Python
    module (pyopencl) or extension library; LlafError saying how to build
    it when it is missing."""
    where = build_dir(backend)
    if backend == "pyopencl":
        path = where / "llm.py"
        if not path.exists():
            raise LlafError(f"backend pyopencl is not built ({path} missing): run `make BACKEND=pyopencl`")
        return path
    libs = sorted(where.glob(f"_{program}*.so"))
    if not libs:
        what = "fine-tuning" if program == "train" else f"backend {backend}"
        raise LlafError(f"{what} is not built (no {where}/_{program}*.so): "
                        f"run `{PROGRAMS[program].format(backend=backend)}`")
    return libs[0]


class Engine:
    """One instance of a compiled program (`PROGRAMS`: llm.fut by default) on
    one backend; `threads`: the multicore backend's worker threads (default:
    one per core). With ``LLAF_PROFILE=1`` in the environment, a multicore
    engine records the time of each of its operations (`profile`)."""

    def __init__(self, backend: str | None = None, threads: int | None = None, program: str = "llm") -> None:
        self.backend = backend = resolve_backend(backend)
        self.threads = check_threads(threads, backend)
        self.profiling = os.environ.get(profiler.ENV, "0") not in ("", "0")
        if self.profiling and backend not in profiler.BACKENDS:
            raise LlafError(f"{profiler.ENV}: Futhark's profile of each operation is recorded by the "
                            f"{' and '.join(profiler.BACKENDS)} engine, not by {backend}")
        if program == "train":
            check_train_backend(backend)
        built = check_built(backend, program)
        if backend == "pyopencl":
            module = _load("llaf_llm_pyopencl", built)
            # A list of its own: the generated class's default is one list
            # for all instances, to which each appends its -D options, so
            # every further instance built a program PoCL had never seen
            # and compiled each kernel again (seconds per kernel).
            self._fut: Any = module.llm(build_options=[], **self._opencl_options())
        else:
            if backend == "opencl" and self._opencl_options():
                raise LlafError("the opencl backend computes wrong results on PoCL (docs/BACKENDS.md): "
                                "on a CPU use pyopencl, c or multicore")

            # An extension module must be loaded under the name it was built with.
            try:
                self._fut = _checked_futhark()(_load(f"_{program}", built), self.threads, self.profiling)
            except ValueError as e:  # the context's creation failed: its error, e.g. threads that cannot start
                hint = f" ({self.threads or 'one per core'} asked for: ask for fewer with --threads)" \
                    if backend == "multicore" else ""
                raise LlafError(f"the {backend} engine could not start: {first_line(e)}{hint}") from None
            _hold_context(self._fut)

    @staticmethod
    def _opencl_options() -> dict[str, Any]:
        import pyopencl as cl

        try:
            platforms = cl.get_platforms()
        except cl.Error as e:
            raise LlafError(f"no OpenCL platform ({first_line(e)}): install pocl-opencl-icd or a GPU driver") from None
        if not platforms:
            raise LlafError("no OpenCL platform: install pocl-opencl-icd or a GPU driver")
        pocl = os.environ.get("PYOPENCL_CTX") is None and platforms[0].name.startswith("Portable Computing")
        return dict(POCL_OPTIONS) if pocl else {}

    def profile(self) -> list[profiler.Operation]:
        """The operations run since the last call (llaf/profile.py), the
        slowest first; made with ``LLAF_PROFILE=1`` only."""
        if not self.profiling:
            raise LlafError(f"this engine records no profile: make it with {profiler.ENV}=1 in the environment "
                            f"({' and '.join(profiler.BACKENDS)} backend)")
        return profiler.operations(self._fut.report())

    def call(self, entry: str, *args: Any) -> Any:
        """Run entry point `entry`; a failed allocation becomes an
        OutOfMemoryError, any other failure (a Futhark assertion: llaf checks
        the input before calling) an EngineError."""
        try:
            return getattr(self._fut, entry)(*args)
        except Exception as e:  # the backends raise ValueError, TypeError, MemoryError or plain Exception
            raise _out_of_memory(e, f"in {entry}") or EngineError(f"{entry} failed: {first_line(e)}") from None

    def put(self, a: np.ndarray) -> Any:
        """A copy of `a` in the engine's memory, to pass to `call`: the caller
        can then free `a` before the call (loading keeps one array at a time)."""
        a = np.ascontiguousarray(a)
        try:
            if self.backend == "pyopencl":
                import pyopencl.array as cl_array

                return cl_array.to_device(self._fut.queue, a)
            ffi = self._fut.ffi
            kind = ffi.typeof(f"struct futhark_{ELEMENTS[a.dtype]}_{a.ndim}d *")
            return self._fut.to_futhark(self._fut.types[kind], a)
        except Exception as e:
            oom = _out_of_memory(e, f"taking an array of {a.nbytes / 2**20:.1f} MiB")
            if oom is None:
                raise
            raise oom from None

    def array(self, value: Any) -> np.ndarray:
        """A result array as NumPy."""
        try:
            if self.backend == "pyopencl":
                return np.asarray(value.get())
            return np.asarray(self._fut.from_futhark(value))
        except Exception as e:
            oom = _out_of_memory(e, "returning a result")
            if oom is None:
                raise
            raise oom from None
