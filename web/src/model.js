// A llama GGUF model's hyper-parameters and the arguments of src/llm.fut's
// `llama_<storage>_init`, made from the file's bytes as llaf/gguf_file.py
// and llaf/storage.py make them in Python: the file's blocks re-laid-out in
// panels, never re-quantized.  The browser runs the block storages (q4:
// Q4_0/Q4_1 layers with a Q8_0 embedding, as SmolLM2's Q4_1 file; q8).
//
// The names, orders and sizes shared with Python (init's scalars and arrays,
// which matrices are per-layer, GGUF tensor names, the panel and block
// sizes) come from tables.json, which `make web` writes from llaf's own
// tables (llaf/web.py), so that they live in one place.

import tables from "llaf-tables";
import { GGUFError } from "./gguf.js";

const { PANEL, BLOCK } = tables;

// Half-precision bits <-> numbers, for the exact scaling of a block's scale
// into its offset (llaf/storage.py `_scaled_half`).
function halfToNumber(h) {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 31;
  const frac = h & 1023;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1024 + frac) * 2 ** (exp - 25);
}

// The half bits of `x` if a half holds it exactly, else -1.
function exactHalf(x) {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a === 0) return sign;
  if (a > 65504) return -1;
  if (a < 2 ** -14) { // subnormal: a multiple of 2^-24
    const m = a * 2 ** 24;
    return Number.isInteger(m) ? sign | m : -1;
  }
  const exp = Math.floor(Math.log2(a));
  const e = a >= 2 ** (exp + 1) ? exp + 1 : a < 2 ** exp ? exp - 1 : exp;
  const m = a * 2 ** (10 - e) - 1024;
  return Number.isInteger(m) ? sign | ((e + 15) << 10) | m : -1;
}

const notFinite = (bits) => (bits & 0x7c00) === 0x7c00;

// The smallest storage the browser runs that holds these GGUF types exactly
// (llaf/storage.py `choose`).
function chooseStorage(layerTypes, headTypes) {
  for (const storage of tables.BROWSER_STORAGES) {
    const [layers, head] = tables.STORAGES[storage];
    const fits = (types, fmt) => [...types].every((t) => tables.EXACT[fmt].includes(t));
    if (fits(layerTypes, layers) && fits(headTypes, head)) return storage;
  }
  const types = [...new Set([...layerTypes, ...headTypes])].join(", ");
  throw new GGUFError(`the browser runs block-quantized models (Q4_0, Q4_1, Q8_0); this file's matrices are ${types}`);
}

// The f32 values of an F32 tensor (a norm's weights).
function f32Tensor(g, t) {
  if (t.type !== "F32") throw new GGUFError(`${g.name}: tensor ${t.name} has type ${t.type}, expected F32`);
  const out = new Float32Array(t.nBytes / 4);
  new Uint8Array(out.buffer).set(g.bytes.subarray(t.start, t.start + t.nBytes));
  return out;
}

// Matrix `t` ([rows][cols], a GGUF block type) in format `fmt` ("q4" or
// "q8"), written in panels into `out` (its q, scale and offset arrays) at
// matrix index `layer`: out.q [..][T][kb][codes][P], scale and offset
// [..][T][kb][P]; rows past the matrix's (padding) stay zero.  `rowOf(r)`:
// the file's row that is the engine's row `r` (the query/key unpermutation).
function putBlocks(g, t, fmt, out, layer, rowOf) {
  const [cols, rows] = t.dims;
  const kb = cols / BLOCK;
  const T = Math.ceil(rows / PANEL);
  const codes = tables.CODE_BYTES[fmt];
  const size = { Q8_0: 34, Q4_0: 18, Q4_1: 20 }[t.type];
  if (!tables.EXACT[fmt].includes(t.type)) {
    throw new GGUFError(`${g.name}: tensor ${t.name} of type ${t.type} cannot be stored as ${fmt} exactly`);
  }
  const b = g.bytes;
  const qBase = layer * T * kb * codes * PANEL;
  const sBase = layer * T * kb * PANEL;
  for (let r = 0; r < rows; r++) {
    const src = rowOf(r);
    const tile = Math.floor(r / PANEL);
    const p = r % PANEL;
    for (let k = 0; k < kb; k++) {
      const at = t.start + (src * kb + k) * size;
      const scale = b[at] | (b[at + 1] << 8);
      let offset;
      if (t.type === "Q4_1") offset = b[at + 2] | (b[at + 3] << 8);
      else offset = exactHalf((t.type === "Q8_0" ? -128 : -8) * halfToNumber(scale));
      if (offset < 0) {
        throw new GGUFError(`${g.name}: tensor ${t.name} has a block scale too large to store its offset as a half`);
      }
      if (notFinite(scale) || notFinite(offset)) {
        throw new GGUFError(`${g.name}: tensor ${t.name} holds values that are not finite (NaN or infinity)`);
      }
      const s = sBase + (tile * kb + k) * PANEL + p;
      out.scale[s] = scale;
      out.offset[s] = offset;
      const q = qBase + (tile * kb + k) * codes * PANEL + p;
      const data = at + (t.type === "Q4_1" ? 4 : 2);
      if (t.type === "Q8_0") { // a signed byte q: code q + 128
        for (let c = 0; c < 32; c++) out.q[q + c * PANEL] = b[data + c] ^ 0x80;
      } else if (fmt === "q4") { // two codes a byte, as the file packs them
        for (let c = 0; c < 16; c++) out.q[q + c * PANEL] = b[data + c];
      } else { // q8 from 4-bit blocks: the low nibbles, then the high ones
        for (let c = 0; c < 16; c++) {
          out.q[q + c * PANEL] = b[data + c] & 15;
          out.q[q + (c + 16) * PANEL] = b[data + c] >> 4;
        }
      }
    }
  }
}

// Empty q, scale and offset arrays for `count` matrices of `rows` x `cols` in `fmt`.
function blockArrays(fmt, count, rows, cols) {
  const T = Math.ceil(rows / PANEL);
  const kb = cols / BLOCK;
  const codes = tables.CODE_BYTES[fmt];
  return {
    q: new Uint8Array(count * T * kb * codes * PANEL),
    scale: new Uint16Array(count * T * kb * PANEL),
    offset: new Uint16Array(count * T * kb * PANEL),
    shapes: [[T, kb, codes, PANEL], [T, kb, PANEL], [T, kb, PANEL]],
  };
}

// Rotary frequencies θ^(-2i/hd) in float32, as llaf/llama.py `inv_freq`
// computes them, but for the power: this one is correctly rounded, numpy's
// float32 power (SIMD code on some CPUs) can be a unit or two off in the
// last place of a few frequencies, as it was for 5 of SmolLM2's 32 here.
// Every other array this file makes equals the Python side's bit for bit.
function invFreq(hd, theta) {
  const f = Math.fround;
  const out = new Float32Array(hd / 2);
  for (let i = 0; i < hd / 2; i++) out[i] = f(1 / f(f(theta) ** f(f(2 * i) / hd)));
  return out;
}

// A whole number from 1 to `most`, else a GGUFError naming the field.
function integer(g, key, fallback, most = Infinity) {
  const v = g.fields[key] ?? fallback;
  if (v === undefined) throw new GGUFError(`${g.name}: GGUF metadata lacks field ${key}`);
  if (!Number.isInteger(v) || v < 1 || v > most) {
    throw new GGUFError(`${g.name}: GGUF field ${key} is ${v}; it must be a whole number from 1 to ${most}`);
  }
  return v;
}

function tensor(g, name, dims) {
  const t = g.tensors[name];
  if (!t) throw new GGUFError(`${g.name}: GGUF file lacks tensor ${name}`);
  if (dims && (t.dims.length !== dims.length || t.dims.some((d, i) => d !== dims[i]))) {
    throw new GGUFError(`${g.name}: tensor ${name} has shape [${[...t.dims].reverse()}], expected [${[...dims].reverse()}]`);
  }
  return t;
}

// The model of GGUF file `g` (readGGUF): {storage, hparams, vocab, args},
// `args` being init's arguments in order: numbers, and arrays as
// {data, shape, type} (type: "f32", "u16", "u8").  `maxContext` caps the
// context, as `llaf generate --context` does.
export function llamaModel(g, maxContext) {
  const arch = g.fields["general.architecture"];
  if (arch !== "llama") throw new GGUFError(`${g.name}: GGUF architecture ${arch} is not supported (llaf reads llama)`);
  const layers = integer(g, "llama.block_count", undefined, Object.keys(g.tensors).length);
  const heads = integer(g, "llama.attention.head_count");
  const kvHeads = integer(g, "llama.attention.head_count_kv", heads);
  const context = Math.min(integer(g, "llama.context_length", undefined, 1 << 24), maxContext);
  const eps = g.fields["llama.attention.layer_norm_rms_epsilon"];
  const theta = g.fields["llama.rope.freq_base"] ?? 10000;
  if (!(eps > 0 && Number.isFinite(Math.fround(eps)))) throw new GGUFError(`${g.name}: GGUF field llama.attention.layer_norm_rms_epsilon is ${eps}; it must be positive`);
  if (!(theta > 1 && Number.isFinite(Math.fround(theta)))) throw new GGUFError(`${g.name}: GGUF field llama.rope.freq_base is ${theta}; it must be above 1`);
  const [d, vocab] = tensor(g, tables.GLOBAL.embed).dims;
  const ff = tensor(g, `blk.0.${tables.PER_LAYER.w_gate}.weight`).dims[1];
  if (d % heads || heads % kvHeads || (d / heads) % 2) {
    throw new GGUFError(`${g.name}: heads=${heads}, kv_heads=${kvHeads} do not fit the model width ${d}`);
  }
  const hd = d / heads;
  const kvd = kvHeads * hd;
  const rows = { wq: d, wk: kvd, wv: kvd, wo: d, w_gate: ff, w_up: ff, w_down: d };
  const cols = { wq: d, wk: d, wv: d, wo: d, w_gate: d, w_up: d, w_down: ff };
  const layerName = (key, i) => `blk.${i}.${tables.PER_LAYER[key]}.weight`;
  const tied = !(tables.GLOBAL.lm_head in g.tensors);

  const layerTypes = new Set();
  for (const key of Object.keys(rows)) {
    for (let i = 0; i < layers; i++) layerTypes.add(tensor(g, layerName(key, i), [cols[key], rows[key]]).type);
  }
  const headTypes = new Set([g.tensors[tables.GLOBAL.embed].type]);
  if (!tied) headTypes.add(tensor(g, tables.GLOBAL.lm_head, [d, vocab]).type);
  const storage = chooseStorage(layerTypes, headTypes);
  const [layerFmt, headFmt] = tables.STORAGES[storage];

  // The engine's row r of a query/key matrix is the file's row `unpermute(r)`:
  // llama.cpp interleaves each head's two halves (llaf/gguf_file.py `unpermute`).
  const unpermute = (r) => {
    const h = Math.floor(r / hd);
    const i = Math.floor((r % hd) / (hd / 2));
    const j = r % (hd / 2);
    return h * hd + 2 * j + i;
  };
  const same = (r) => r;

  const arrays = {};
  const parts = (key, fmt, a) => {
    const lead = tables.MATRICES[key] === "layers" ? [layers] : [];
    return [
      { data: a.q, shape: [...lead, ...a.shapes[0]], type: "u8" },
      { data: a.scale, shape: [...lead, ...a.shapes[1]], type: "u16" },
      { data: a.offset, shape: [...lead, ...a.shapes[2]], type: "u16" },
    ];
  };
  for (const key of Object.keys(rows)) {
    const a = blockArrays(layerFmt, layers, rows[key], cols[key]);
    for (let i = 0; i < layers; i++) {
      putBlocks(g, g.tensors[layerName(key, i)], layerFmt, a, i, key === "wq" || key === "wk" ? unpermute : same);
    }
    arrays[key] = parts(key, layerFmt, a);
  }
  for (const key of ["attn_norm", "mlp_norm"]) {
    const data = new Float32Array(layers * d);
    for (let i = 0; i < layers; i++) data.set(f32Tensor(g, tensor(g, layerName(key, i), [d])), i * d);
    arrays[key] = [{ data, shape: [layers, d], type: "f32" }];
  }
  arrays.final_norm = [{ data: f32Tensor(g, tensor(g, tables.GLOBAL.final_norm, [d])), shape: [d], type: "f32" }];
  for (const key of ["embed", "lm_head"]) {
    const n = key === "lm_head" && tied ? 0 : vocab;
    const a = blockArrays(headFmt, 1, n, d);
    if (n) putBlocks(g, g.tensors[tables.GLOBAL[key]], headFmt, a, 0, same);
    arrays[key] = parts(key, headFmt, a);
  }
  if (tables.GLOBAL.inv_freq in g.tensors) {
    throw new GGUFError(`${g.name}: long-context rope scaling (rope_freqs.weight) is not supported in the browser`);
  }
  arrays.inv_freq = [{ data: invFreq(hd, theta), shape: [hd / 2], type: "f32" }];
  const known = new Set([...Object.values(tables.GLOBAL)]);
  for (let i = 0; i < layers; i++) for (const key of Object.keys(tables.PER_LAYER)) known.add(layerName(key, i));
  for (const name of Object.keys(g.tensors)) {
    if (!known.has(name)) throw new GGUFError(`${g.name}: tensor ${name} is not one of a llama model's`);
  }

  // A llama file has none of the variations of src/llama.fut: no biases or
  // query/key norms (empty arrays), no window, no embedding scale, SiLU gating.
  for (const key of ["bq", "bk", "bv", "q_norm", "k_norm"]) {
    arrays[key] = [{ data: new Float32Array(0), shape: [layers, 0], type: "f32" }];
  }
  const scalars = { heads, kv_heads: kvHeads, context, eps, window: 0, embedding_scale: 1, activation: 0, vocab, ff,
                    head_dim: hd };
  const args = [];
  for (const [name] of tables.SCALARS) args.push(scalars[name]);
  for (const name of tables.ARRAYS) args.push(...arrays[name]);
  return { storage, hparams: scalars, vocab, context, args };
}
