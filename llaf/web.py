"""llaf in the browser: `llaf web` serves the static app `make web` builds
(build/web: src/llm.fut compiled to WebAssembly, the page and its worker)
and a GGUF model file; every token is computed in the browser's tab.

The multicore WebAssembly module shares its memory between threads, which
a browser allows only to a page that is cross-origin isolated: every
response carries the two headers of `ISOLATION`.

For `make web`, `python -m llaf.web tables OUT` writes the facts the
JavaScript glue shares with llaf's Python side (init's arguments, the
storages, GGUF tensor names, the pre-tokenizer splits) as JSON, to bundle;
`python -m llaf.web fut OUT` writes the Futhark program compiled to
WebAssembly: the entry points of the storages the browser runs, and no
others, so that the compiler and emcc do a fraction of the work; written by
llaf/entries.py as src/llm.fut's are, over src/matrix.fut's WebAssembly
instances of the formats (their byte codes widened in a way LLVM's
WebAssembly backend vectorizes).
"""

from __future__ import annotations

import json
import os
import sys
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

from . import checks, entries, gguf_file, llama
from . import storage as storage_mod
from .backend import ELEMENTS, build_dir
from .errors import LlafError, cannot_listen
from .generation import DEFAULT_CONTEXT
from .tokenizer import END_OF_TURN, PRE_TOKENIZER_SPLITS
from .weights import resolve

ISOLATION = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}
# Where the page fetches the model from (web/src/page.js reads it from the page's URL).
MODEL_PATH = "/model.gguf"
# The storages (llaf/storage.py) the browser runs, laid out by
# web/src/model.js: the block-quantized ones of Q4_x/Q8_0 files, and the
# mixed one for every other file (K-quants, F16, F32, ...), each tensor in
# the format it keeps in Python (`storage.kept`).
STORAGES = ("q4", "q8", storage_mod.MIXED)
ENTRIES = ("init", "cache", "run")
# The products src/matrix.fut builds for WebAssembly (`X_wasm_matrix`).
VARIANT = "wasm"


def tables() -> dict[str, Any]:
    """What web/src/*.js needs of llaf's tables."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    types = [GGMLQuantizationType[t] for t in gguf_file.SUPPORTED_TYPES]
    return {
        "PANEL": storage_mod.PANEL, "BLOCK": storage_mod.BLOCK,
        # each format's arrays (codes first) of a panel block: [suffix, element type, shape before the panel's rows]
        "FORMATS": {name: [[p.rpartition(".")[2], ELEMENTS[a.dtype], list(a.shape[:-1])]
                           for p, a in zip(f.parts("m"), f.block_panels(), strict=True)]
                    for name, f in storage_mod.FORMATS.items()},
        "CODES": list(storage_mod.CODES), "MIXED": storage_mod.MIXED,
        "KEPT": {t: storage_mod.kept(t) for t in gguf_file.SUPPORTED_TYPES},
        # GGML tensor types llaf reads: type number -> [name, values a block, bytes a block]
        "GGUF_TYPES": {int(t): [t.name, *GGML_QUANT_SIZES[t]] for t in types},
        "STORAGES": storage_mod.STORAGES, "EXACT": {k: sorted(v) for k, v in storage_mod.EXACT.items()},
        "SCALARS": [[name, str(kind.__name__)] for name, kind in llama.SCALARS],
        "ARRAYS": list(llama.ARRAYS), "MATRICES": llama.MATRICES,
        # GGUF tensor names, "{bid}" standing for the layer; the variations'
        # (biases, query/key norms), the fused matrices and their parts
        "TENSORS": gguf_file.templates(), "VARIATIONS": list(gguf_file.VARIATIONS),
        "FUSED": {k: list(parts) for k, (_, parts) in gguf_file.FUSED.items()},
        # each architecture's layout (llaf/gguf_file.py), its activation as src/llama.fut numbers them
        "LAYOUTS": {arch: {"permuted": x.permuted, "fused": x.fused, "scaled": x.scaled,
                           "activation": llama.ACTIVATIONS[x.activation]} for arch, x in gguf_file.LAYOUTS.items()},
        "PRE_TOKENIZER_SPLITS": PRE_TOKENIZER_SPLITS, "END_OF_TURN": list(END_OF_TURN),
        "DEFAULT_CONTEXT": DEFAULT_CONTEXT, "BROWSER_STORAGES": list(STORAGES),
    }


def futhark_program(llm: str) -> str:
    """The browser's Futhark program, importing src/llm.fut from path `llm`
    (without .fut) for what its entry points share: the storages the browser
    runs, with the entry points it calls, over src/matrix.fut's WebAssembly
    instances of their formats (`wasm_codes`)."""
    src = llm.rpartition("/")[0] + "/" if "/" in llm else ""
    lines = ["-- Written by `python -m llaf.web fut` (make web): the entry points the browser calls.",
             *(f'import "{src}{name}"' for name in ("matrix", "llama")), f'import "{llm}"', ""]
    lines += [entries.mixed_section(VARIANT)]
    lines += [entries.llama_section(storage, variant=VARIANT, entries=ENTRIES) for storage in STORAGES]
    lines += ["-- | src/llm.fut's: a cache with more room, holding what `c` holds (a conversation",
              "-- that outgrows its cache keeps what it computed).",
              "entry cache_grow [n] (c: cache [n]) (capacity: i64) : cache [] = cache_grow c capacity", ""]
    return "\n".join(lines)


def app_dir() -> Path:
    """The built app, or a LlafError saying how to build it."""
    path = build_dir("web")
    if not (path / "index.html").is_file() or not (path / "llm.wasm").is_file():
        raise LlafError(f"no web app in {path}: build it with `make web`")
    return path


class Handler(SimpleHTTPRequestHandler):
    """Static files of the app, the model at MODEL_PATH, with ISOLATION headers."""

    def __init__(self, *args: Any, model: Path, **kwargs: Any) -> None:
        self.model = model
        super().__init__(*args, **kwargs)

    def translate_path(self, path: str) -> str:
        if path.split("?", 1)[0] == MODEL_PATH:
            return str(self.model)
        return super().translate_path(path)

    def send_head(self) -> Any:
        # (a NUL byte in the path, %00, made open() raise: the connection
        # dropped with a traceback on the server's stderr)
        if "\0" in self.translate_path(self.path):
            self.send_error(HTTPStatus.BAD_REQUEST, "the path holds a NUL byte")
            return None
        return super().send_head()

    def end_headers(self) -> None:
        for name, value in ISOLATION.items():
            self.send_header(name, value)
        if self.path.split("?", 1)[0] == MODEL_PATH:  # the file's own name, for the page to show
            self.send_header("Content-Disposition", f'inline; filename="{quote(self.model.name)}"')
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        if os.environ.get("LLAF_WEB_LOG"):
            super().log_message(format, *args)


Handler.extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                          ".js": "text/javascript", ".wasm": "application/wasm",
                          ".gguf": "application/octet-stream"}


def server(model: str | Path | None = None, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """A server of the app and `model` (a GGUF file; default llaf's default
    model), bound but not yet serving."""
    from .assets import default_model_path

    checks.port(port)
    path = Path(resolve(str(model))) if model is not None else default_model_path()
    if not path.exists():
        raise LlafError(f"no such file or directory: {model}")
    if not path.is_file() or not gguf_file.is_gguf(path):
        raise LlafError(f"{model}: the browser runs GGUF files; give one with --model")
    gguf_file.open_gguf(path)  # a truncated or damaged file said here, not only in the page
    handler = partial(Handler, directory=str(app_dir()), model=path.resolve())
    try:
        return ThreadingHTTPServer((host, port), handler)
    except OSError as e:
        raise cannot_listen(host, port, e) from None


def serve(model: str | Path | None = None, host: str = "127.0.0.1", port: int = 8000) -> None:
    httpd = server(model, host, port)
    print(f"llaf web: http://{host}:{httpd.server_address[1]}/ (the model runs in the browser; Ctrl-C stops)",
          file=sys.stderr, flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    if sys.argv[1:2] not in (["tables"], ["fut"]) or len(sys.argv) != 3:
        sys.exit("usage: python -m llaf.web tables OUT.json | fut OUT.fut")
    out = Path(sys.argv[2])
    if sys.argv[1] == "tables":
        out.write_text(json.dumps(tables(), indent=1) + "\n")
    else:  # src/llm.fut from OUT's folder; OUT left alone (its time too) when it already says that
        llm = Path(os.path.relpath(Path(__file__).resolve().parent.parent / "src" / "llm", out.resolve().parent))
        text = futhark_program(llm.as_posix())
        if not out.exists() or out.read_text() != text:
            out.write_text(text)
