// The compiled module and a model file in Node, for the scripts beside this
// one (failure.mjs, bench.mjs, bits.mjs): what emscripten's module expects of its
// host, which Node 20 lacks, then the context, the page glue's model,
// init's arguments and the engine's passes.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, resolve } from "node:path";
import { readGGUF } from "../src/gguf.js";
import { f32Values, futharkArray } from "../src/futhark.js";
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
// `run(cache, ids, start)` one pass feeding `ids` at positions start.. and
// giving the logits after the last of them (the cache updated).
export function nodeEngine(ctx, m) {
  const prefix = `llama_${m.storage}`;
  const params = ctx[`${prefix}_init`](...initArgs(ctx, m));
  const i64 = (v) => futharkArray(ctx, { data: BigInt64Array.from(v, BigInt), shape: [v.length], type: "i64" });
  return {
    params,
    cache: (capacity) => ({ state: ctx[`${prefix}_cache`](params, 1n, BigInt(capacity)) }),
    run(cache, ids, start) {
      const inputs = [i64(ids), i64(ids.map(() => 0)), i64(ids.map((_, i) => start + i)), i64([ids.length - 1])];
      const [logits, state] = ctx[`${prefix}_run`](params, cache.state, ...inputs);
      cache.state.free();
      cache.state = state;
      for (const a of inputs) a.free();
      const values = f32Values(ctx, logits, m.vocab);
      logits.free();
      return values;
    },
  };
}
