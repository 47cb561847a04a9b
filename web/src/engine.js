// The engine's thread: loads a GGUF model into src/llm.fut's WebAssembly
// module and generates, so that the page stays responsive.  Messages:
//   in:  {type: "load", url, threads?} | {type: "load", file}   (threads: the first load's)
//        {type: "generate", id, prompt | messages, options}
//   out: {type: "progress", what, done, total}   while loading
//        {type: "ready", model}                  {type: "error", message, id?}
//        {type: "token", id, token, text}        one per new token, `text` the new text
//        {type: "done", id, ids, text, stats}    the prompt's and new ids, the new text

import loadWASM, { FutharkContext as Generated } from "./llm.mjs";
import { futharkArray, slotPass, withErrors } from "./futhark.js";
import { readGGUF } from "./gguf.js";
import { initArgument, llamaModel } from "./model.js";
import { ModelTokenizer } from "./tokenizer.js";
import { sampler } from "./sampling.js";
import tables from "llaf-tables";

let engine = null; // {ctx, params, prefix, tokenizer, vocab, context, name, kept}
let busy = Promise.resolve();
let context = null; // the Futhark context: one WebAssembly instance and its threads, made once

const FutharkContext = withErrors(Generated);
const post = (message) => self.postMessage(message);

// The bytes of `source` (a URL or a File), reporting progress as they come.
async function readAll(source) {
  const stream = source.url ? await fetch(source.url).then((r) => {
    if (!r.ok) throw new Error(`cannot fetch the model: ${r.status} ${r.statusText}`);
    // `llaf web` names the file it serves at /model.gguf.
    const named = /filename="([^"]+)"/.exec(r.headers.get("Content-Disposition") ?? "");
    return { body: r.body, total: Number(r.headers.get("Content-Length")) || 0,
      name: named ? decodeURIComponent(named[1]) : new URL(r.url).pathname.split("/").pop() };
  }) : { body: source.file.stream(), total: source.file.size, name: source.file.name };
  const bytes = new Uint8Array(stream.total);
  const chunks = [];
  let done = 0;
  const reader = stream.body.getReader();
  for (;;) {
    const { value, done: end } = await reader.read();
    if (end) break;
    if (done + value.length <= bytes.length) bytes.set(value, done);
    else chunks.push(value);
    done += value.length;
    post({ type: "progress", what: "reading the model", done, total: stream.total });
  }
  if (done === bytes.length && !chunks.length) return { bytes, name: stream.name };
  const all = new Uint8Array(done); // no or a wrong Content-Length
  all.set(bytes.subarray(0, Math.min(done, bytes.length)));
  let at = bytes.length;
  for (const c of chunks) { all.set(c, at); at += c.length; }
  return { bytes: all.subarray(0, done), name: stream.name };
}

// Load a model; the one loaded before stays in use until this one is ready
// (a damaged file picked from disk leaves the chat as it was).
async function load(source) {
  const { bytes, name } = await readAll(source);
  post({ type: "progress", what: "reading the tokenizer", done: 0, total: 1 });
  const g = readGGUF(bytes, name);
  const tokenizer = new ModelTokenizer(g);
  post({ type: "progress", what: "laying out the weights", done: 0, total: 1 });
  const model = llamaModel(g, tables.DEFAULT_CONTEXT);
  // The engine's threads: source.threads, else one a core (Futhark's default);
  // no more than the pool that `make web` has the module start (one a core).
  context ??= new FutharkContext(await loadWASM(), Math.min(source.threads ?? 0, navigator.hardwareConcurrency));
  const ctx = context;
  const prefix = `llama_${model.storage}`;
  const args = [];
  try {
    const arrays = model.args.filter((a) => typeof a !== "number").length;
    for (const a of model.args) {
      if (typeof a === "number") {
        args.push(a);
        continue;
      }
      args.push(futharkArray(ctx, a));
      post({ type: "progress", what: "loading the weights into the engine", done: args.length, total: arrays });
    }
    const params = ctx[`${prefix}_init`](...args.map((a, i) => initArgument(a, i)));
    engine?.params.free();
    engine?.kept?.cache.free();
    engine = { ctx, params, prefix, tokenizer, vocab: model.vocab, context: model.context, name, kept: null };
  } finally {
    for (const a of args) if (typeof a === "object" && a) a.free();
  }
  post({ type: "ready", model: { name, storage: model.storage, context: model.context, vocab: model.vocab } });
}

// One pass of the engine for slot 0 of `state.cache` (web/src/futhark.js).
const run = (e, state, ids, start) => slotPass(e.ctx, e.prefix, e.params, state, ids, start, e.vocab);

// A cache of one slot for `ids` and `maxNew` tokens after them: the one
// the last generation left, holding `held` (the ids fed to it), cut to the
// beginning it shares with `ids` (all of it but the last, whose logits are
// wanted), so that a chat's next turn computes only its new messages; its
// keys and values are those a fresh pass gives, bit for bit. A cache is made
// or grown with room for twice what is asked, up to the context, so that a
// conversation grows it only now and then.
function cacheFor(e, ids, maxNew) {
  const needed = ids.length + maxNew;
  const capacity = Math.min(e.context, 2 * needed);
  const kept = e.kept;
  e.kept = null;
  if (!kept) return { cache: e.ctx[`${e.prefix}_cache`](e.params, 1n, BigInt(capacity)), capacity, held: [] };
  if (kept.capacity < needed) {
    const grown = e.ctx.cache_grow(kept.cache, BigInt(capacity));
    kept.cache.free();
    kept.cache = grown;
    kept.capacity = capacity;
  }
  let n = 0;
  while (n < kept.held.length && n < ids.length - 1 && kept.held[n] === ids[n]) n++;
  kept.held.length = n;
  return kept;
}

function generate({ id, prompt, messages, options = {} }) {
  const e = engine;
  if (!e) throw new Error("no model is loaded");
  const maxNew = options.max_new_tokens ?? 128;
  if (!(Number.isInteger(maxNew) && maxNew >= 0)) throw new Error(`max_new_tokens must be a whole number >= 0, got ${maxNew}`);
  const pick = sampler(options);
  const ids = messages ? e.tokenizer.chat(messages) : e.tokenizer.encode(prompt);
  if (!ids.length) throw new Error("the prompt is empty");
  const outside = ids.findIndex((t) => t >= e.vocab); // a tokenizer larger than the model's vocabulary (llaf/checks.py)
  if (outside >= 0) throw new Error(`token id ${ids[outside]} at position ${outside} is outside the vocabulary [0, ${e.vocab})`);
  if (ids.length + maxNew > e.context) {
    throw new Error(`the prompt (${ids.length} tokens) and ${maxNew} new tokens exceed the context of ${e.context}`);
  }
  const state = cacheFor(e, ids, maxNew);
  const kept = state.held.length;
  const out = [...ids];
  const stats = { prompt_tokens: ids.length, cached_tokens: kept, prefill_ms: 0, decode_tokens: 0, decode_ms: 0,
    engine_ms: 0 };
  const reply = e.tokenizer.textStream();
  try {
    let t0 = performance.now();
    let logits = run(e, state, ids.slice(kept), kept);
    state.held = [...ids];
    stats.prefill_ms = performance.now() - t0;
    t0 = performance.now();
    let t1;
    for (let i = 0; i < maxNew; i++) {
      const token = pick(logits);
      if (e.tokenizer.eosIds.has(token)) break; // the end of the text or turn, as in `llaf generate`
      out.push(token);
      post({ type: "token", id, token, text: reply.push(token) });
      if (i + 1 < maxNew) {
        t1 = performance.now();
        logits = run(e, state, [token], out.length - 1);
        state.held.push(token);
        stats.engine_ms += performance.now() - t1;
        stats.decode_tokens += 1;
      }
    }
    stats.decode_ms = performance.now() - t0;
  } catch (err) {
    state.cache.free(); // (after a failure the engine's cache may be lost)
    throw err;
  }
  e.kept = state;
  const text = e.tokenizer.decode(out.slice(ids.length));
  post({ type: "done", id, ids: out, text, stats });
}

self.onmessage = ({ data }) => {
  // One thing at a time: the engine holds one model and runs one pass at once.
  busy = busy.then(async () => {
    try {
      if (data.type === "load") await load(data);
      else if (data.type === "generate") await generate(data);
    } catch (err) {
      post({ type: "error", id: data.id, message: String(err && err.message ? err.message : err) });
    }
  });
};
