// For a profile of the engine outside the browser (docs/PERFORMANCE.md, "In
// the browser"): the page's glue and the compiled module in Node, greedy
// decode of a prompt's ids, timed.  Bundled as tests/test_browser.py bundles
// dump.mjs (llaf-tables from `python -m llaf.web tables T.json`):
//   node_modules/.bin/esbuild test/bench.mjs --bundle --platform=node --format=esm \
//     --outfile=/tmp/bench.mjs --alias:llaf-tables=T.json
//   node --cpu-prof /tmp/bench.mjs MODULE_DIR MODEL.gguf THREADS TOKENS ID...
// MODULE_DIR: a `futhark wasm-multicore` build (add --profiling-funcs to
// EMCFLAGS for function names in the profile).
import { futharkContext, modelOf, nodeEngine } from "./node.mjs";

const [dir, model, threads, tokens, ...prompt] = process.argv.slice(2);
const ctx = await futharkContext(dir, Number(threads));
const engine = nodeEngine(ctx, modelOf(model));
const ids = prompt.map(Number);
const cache = engine.cache(ids.length + Number(tokens));
const run = (xs, start) => {
  const v = engine.run(cache, xs, start);
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
