// For tests/test_browser.py: draws of web/src/sampling.js's sampler, in Node.
//   node sampling.mjs CASE.json
// CASE.json: {logits, options, draws}; prints how often each id was drawn.
import { readFileSync } from "node:fs";
import { sampler } from "../src/sampling.js";

const { logits, options, draws } = JSON.parse(readFileSync(process.argv[2], "utf8"));
const xs = Float32Array.from(logits);
const draw = sampler(options);
const counts = new Array(xs.length).fill(0);
for (let i = 0; i < draws; i++) counts[draw(xs)]++;
console.log(JSON.stringify(counts));
