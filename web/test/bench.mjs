// For a profile of the engine outside the browser (docs/PERFORMANCE.md, "In
// the browser"): the page's glue and the compiled module in Node, greedy
// decode of a prompt's ids, timed.  Bundled as tests/test_browser.py bundles
// dump.mjs (llaf-tables from `python -m llaf.web tables T.json`):
//   node_modules/.bin/esbuild test/bench.mjs --bundle --platform=node --format=esm \
//     --outfile=/tmp/bench.mjs --alias:llaf-tables=T.json
//   node --cpu-prof /tmp/bench.mjs MODULE_DIR MODEL.gguf THREADS TOKENS ID...
// MODULE_DIR: a `futhark wasm-multicore` build (add --profiling-funcs to
// EMCFLAGS for function names in the profile).
import { futharkContext, modelOf } from "./node.mjs";
import tables from "llaf-tables";

const [dir, model, threads, tokens, ...prompt] = process.argv.slice(2);
const ctx = await futharkContext(dir, Number(threads));
const m = modelOf(model);
const views = () => {
  const b = ctx.wasm.wasmMemory.buffer;
  if (ctx.wasm.HEAPU8.buffer !== b) {
    for (const [n, V] of Object.entries({ HEAP8: Int8Array, HEAPU8: Uint8Array, HEAP16: Int16Array, HEAPU16: Uint16Array,
      HEAP32: Int32Array, HEAPU32: Uint32Array, HEAPF32: Float32Array, HEAPF64: Float64Array, HEAP64: BigInt64Array,
      HEAPU64: BigUint64Array })) ctx.wasm[n] = new V(b);
  }
};
const arr = (a) => { views(); return ctx[`new_${a.type}_${a.shape.length}d`](a.data, ...a.shape.map(BigInt)); };
const args = m.args.map((a, i) => typeof a === "number" ? (tables.SCALARS[i][1] === "int64" ? BigInt(a) : a) : arr(a));
const p = `llama_${m.storage}`;
const params = ctx[`${p}_init`](...args);
const i64 = (v) => arr({ data: BigInt64Array.from(v, BigInt), shape: [v.length], type: "i64" });
const ids = prompt.map(Number);
let cache = ctx[`${p}_cache`](params, 1n, BigInt(ids.length + Number(tokens)));
const run = (xs, start) => {
  const [logits, c] = ctx[`${p}_run`](params, cache, i64(xs), i64(xs.map(() => 0)), i64(xs.map((_, i) => start + i)), i64([xs.length - 1]));
  cache = c;
  const v = new Float32Array(ctx.wasm.wasmMemory.buffer, logits.fvalues(ctx.ctx, logits.ptr), m.vocab).slice();
  logits.free();
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
};
let t = run(ids, 0);
const out = [t];
const t0 = performance.now();
for (let i = 1; i < Number(tokens); i++) out.push(t = run([t], ids.length + i - 1));
const ms = (performance.now() - t0) / (Number(tokens) - 1);
console.log(JSON.stringify({ ms_per_token: ms, ids: out }));
process.exit(0);
