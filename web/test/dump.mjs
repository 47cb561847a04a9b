// For tests/test_browser.py: what the page's glue makes of a GGUF file, in
// Node, to compare with llaf's Python side without a browser.
//   node dump.mjs MODEL.gguf OUT [TEXTS.json]
// writes OUT/meta.json (the storage, init's scalars, each array's shape and
// type, but for a file of a tokenizer only, and, given TEXTS.json, the texts' ids, their texts decoded whole and
// streamed token by token, and the chat ids of each text as a user message) and OUT/argN.bin (init's array N, its raw bytes).
import { readFileSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import { readGGUF } from "../src/gguf.js";
import { llamaModel } from "../src/model.js";
import { ModelTokenizer } from "../src/tokenizer.js";
import tables from "llaf-tables";

const [model, out, texts] = process.argv.slice(2);
const g = readGGUF(new Uint8Array(readFileSync(model)), basename(model));
const meta = {};
if (Object.keys(g.tensors).length) { // (a file of a tokenizer only has none)
  const m = llamaModel(g, tables.DEFAULT_CONTEXT);
  meta.storage = m.storage;
  meta.args = m.args.map((a, i) => {
    if (typeof a === "number") return { scalar: a };
    writeFileSync(`${out}/arg${i}.bin`, new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength));
    return { shape: a.shape, type: a.type };
  });
}
if (texts) {
  const tokenizer = new ModelTokenizer(g);
  const inputs = JSON.parse(readFileSync(texts, "utf8"));
  Object.assign(meta, {
    ids: inputs.map((t) => tokenizer.encode(t)),
    chat: inputs.map((t) => {
      try {
        return tokenizer.chat([{ role: "user", content: t }]);
      } catch (err) {
        return { error: err.message };
      }
    }),
    decoded: inputs.map((t) => tokenizer.decode(tokenizer.encode(t))),
    streamed: inputs.map((t) => {
      const reply = tokenizer.textStream();
      return tokenizer.encode(t).map((id) => reply.push(id));
    }),
    eos: [...tokenizer.eosIds],
  });
}
writeFileSync(`${out}/meta.json`, JSON.stringify(meta));
