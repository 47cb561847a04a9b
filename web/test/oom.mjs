// For tests/test_browser.py: the compiled module in Node asked for more
// memory than WebAssembly has (a cache of `SLOTS` sequences), and what the
// error says; then a pass in a small cache, to show the context still works.
//   node oom.mjs MODULE_DIR MODEL.gguf SLOTS
// prints {name, message} of the error, then {after: the logits' length}.
import { withErrors } from "../src/futhark.js";
import { futharkContext, modelOf, nodeEngine } from "./node.mjs";

const [dir, model, slots] = process.argv.slice(2);
const ctx = await futharkContext(dir, 2, withErrors);
const m = modelOf(model);
const engine = nodeEngine(ctx, m);
try {
  ctx[`llama_${m.storage}_cache`](engine.params, BigInt(slots), BigInt(m.context));
  console.log(JSON.stringify({ name: "none" }));
} catch (err) {
  console.log(JSON.stringify({ name: err.constructor.name, message: String(err.message ?? err) }));
}
console.log(JSON.stringify({ after: engine.run(engine.cache(16), [1, 2, 3], 0).length }));
process.exit(0);
