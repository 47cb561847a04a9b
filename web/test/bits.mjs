// For tests/test_browser.py: the compiled module's logits, bit for bit, for
// the same passes run first and again and with 1, 2 and 3 threads (the
// multicore scheduler's choices must not change a sum's order:
// scripts/patch-runtime.py, patch 8).
//   node bits.mjs MODULE_DIR MODEL.gguf OUT
// writes OUT/threads-T.bin for T = 1, 2, 3: three rounds, each a fresh cache
// given one token, then 20, then one, so nine rows of logits (f32).
import { writeFileSync } from "node:fs";
import { futharkContext, modelOf, nodeEngine } from "./node.mjs";

const [dir, model, out] = process.argv.slice(2);
const m = modelOf(model);
const passes = [[5], Array.from({ length: 20 }, (_, i) => 100 + i), [7]];
for (const threads of [1, 2, 3]) {
  const engine = nodeEngine(await futharkContext(dir, threads), m);
  const rows = new Float32Array(3 * passes.length * m.vocab);
  let row = 0;
  for (let round = 0; round < 3; round++) {
    const cache = engine.cache(64);
    let start = 0;
    for (const ids of passes) {
      rows.set(engine.run(cache, ids, start), row++ * m.vocab);
      start += ids.length;
    }
  }
  writeFileSync(`${out}/threads-${threads}.bin`, new Uint8Array(rows.buffer));
}
process.exit(0);
