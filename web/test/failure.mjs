// For tests/test_browser.py: a failure inside the engine, in Node: the
// compiled module's init given a model whose heads do not divide its width
// (the page's glue refuses such a file; here the number is changed after
// it), and what the error says.
//   node failure.mjs MODULE_DIR MODEL.gguf
// prints {name, message} of the error init throws.
import { withErrors } from "../src/futhark.js";
import { futharkContext, initArgs, modelOf } from "./node.mjs";
import tables from "llaf-tables";

const [dir, model] = process.argv.slice(2);
const ctx = await futharkContext(dir, 1, withErrors);
const m = modelOf(model);
const heads = tables.SCALARS.findIndex(([name]) => name === "heads");
m.args[heads] += 1;
const args = initArgs(ctx, m);
try {
  ctx[`llama_${m.storage}_init`](...args);
  console.log(JSON.stringify({ name: "none" }));
} catch (err) {
  console.log(JSON.stringify({ name: err.constructor.name, message: String(err.message ?? err) }));
}
process.exit(0);
