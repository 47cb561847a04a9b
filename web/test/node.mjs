// The compiled module and a model file in Node, for the scripts beside this
// one (failure.mjs, bench.mjs, bits.mjs): what emscripten's module expects of its
// host, which Node 20 lacks, then the context, the page glue's model,
// init's arguments and the engine's passes.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, resolve } from "node:path";
import { readGGUF } from "../src/gguf.js";
import { futharkArray, slotPass } from "../src/futhark.js";
import { initArgument, llamaModel } from "../src/model.js";
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

// init's arguments for model `m` in context `ctx`: i64 scalars as BigInt,
// arrays as Futhark arrays.
export function initArgs(ctx, m) {
  return m.args.map((a, i) => initArgument(typeof a === "number" ? a : futharkArray(ctx, a), i));
}

// Model `m`'s engine in `ctx`: `cache(capacity)` a cache of one sequence,
// `run(state, ids, start)` one pass of it (web/src/futhark.js `slotPass`).
export function nodeEngine(ctx, m) {
  const prefix = `llama_${m.storage}`;
  const params = ctx[`${prefix}_init`](...initArgs(ctx, m));
  return {
    params,
    cache: (capacity) => ({ cache: ctx[`${prefix}_cache`](params, 1n, BigInt(capacity)) }),
    run: (state, ids, start) => slotPass(ctx, prefix, params, state, ids, start, m.vocab),
  };
}
