// The compiled module and a model file in Node, for the scripts beside this
// one (failure.mjs, bench.mjs): what emscripten's module expects of its
// host, which Node 20 lacks, then the context and the page glue's model.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, resolve } from "node:path";
import { readGGUF } from "../src/gguf.js";
import { llamaModel } from "../src/model.js";
import tables from "llaf-tables";

// A Futhark context of the module in `dir` (a `futhark wasm-multicore`
// build) with `threads` threads; `prepare` gets the context's class first.
export async function futharkContext(dir, threads, prepare = () => {}) {
  globalThis.require = createRequire(import.meta.url);
  globalThis.__dirname = resolve(dir);
  globalThis.navigator ??= { hardwareConcurrency: 2 }; // the module sizes its pool with it
  const { default: loadWASM, FutharkContext } = await import(resolve(dir, "llm.mjs"));
  prepare(FutharkContext);
  const wasm = await loadWASM({ locateFile: (p) => resolve(dir, p), wasmBinary: readFileSync(resolve(dir, "llm.wasm")) });
  return new FutharkContext(wasm, threads);
}

// The model in GGUF file `path` as the page lays it out.
export function modelOf(path) {
  return llamaModel(readGGUF(new Uint8Array(readFileSync(path)), basename(path)), tables.DEFAULT_CONTEXT);
}
