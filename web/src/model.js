// A GGUF model's hyper-parameters and the arguments of src/llm.fut's
// `llama_<storage>_init` (Llama and the descendants src/llama.fut runs:
// Qwen2, Qwen3, Phi-3, Gemma), made from the file's bytes as llaf/gguf_file.py
// and llaf/storage.py make them in Python: the file's blocks re-laid-out in
// panels, never re-quantized.  The browser runs the block storages (q4:
// Q4_0/Q4_1 layers with a Q8_0 embedding, as SmolLM2's Q4_1 file; q8) and,
// for every other file (K-quants, F16, F32, mixes), the mixed storage: each
// matrix in the format its type keeps in Python (`KEPT`), in that format's
// pool of panel blocks.
//
// The names, orders and sizes shared with Python (init's scalars and arrays,
// which matrices are per-layer, GGUF tensor names, the panel and block
// sizes) come from tables.json, which `make web` writes from llaf's own
// tables (llaf/web.py), so that they live in one place.

import tables from "llaf-tables";
import { GGUFError } from "./gguf.js";

const { PANEL, BLOCK } = tables;
// GGUF type name -> [values a block, bytes a block]
const TYPE_SIZES = Object.fromEntries(Object.values(tables.GGUF_TYPES).map(([name, ...sizes]) => [name, sizes]));

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
  if (a === Infinity) return sign | 0x7c00;
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

// The storage the browser runs for a file of these GGUF types (llaf/storage.py
// `choose`): a one-format storage when the layers' types all keep its layers'
// format and its head's holds the head's types, else each matrix in its own
// format (the mixed storage).
function chooseStorage(layerTypes, headTypes) {
  for (const storage of tables.BROWSER_STORAGES) {
    if (storage === tables.MIXED) continue;
    const [layers, head] = tables.STORAGES[storage];
    if ([...layerTypes].every((t) => tables.KEPT[t] === layers) && [...headTypes].every((t) => tables.EXACT[head].includes(t))) {
      return storage;
    }
  }
  return tables.MIXED;
}

// The f32 values of an F32 tensor (a norm's weights).
function f32Tensor(g, t) {
  if (t.type !== "F32") throw new GGUFError(`${g.name}: tensor ${t.name} has type ${t.type}, expected F32`);
  const out = new Float32Array(t.nBytes / 4);
  new Uint8Array(out.buffer).set(g.bytes.subarray(t.start, t.start + t.nBytes));
  return out;
}

const ARRAY = { u8: Uint8Array, u16: Uint16Array, f32: Float32Array };
const half = (b, at) => b[at] | (b[at + 1] << 8);

// Format `fmt`'s arrays (llaf/storage.py `FORMATS`, codes first) for `count`
// panel blocks (`PANEL` rows by `BLOCK` columns), zeros: each a block's
// values `per` ([...per][PANEL] after the block's index).
function panelArrays(fmt, count) {
  return tables.FORMATS[fmt].map(([, type, per]) => {
    const n = per.reduce((a, b) => a * b, 1);
    return { data: new ARRAY[type](count * n * PANEL), per, n, type };
  });
}

// The half bits of `factor` times half `bits`, or a GGUFError when a half
// cannot hold it (llaf/storage.py `_scaled_half`).
function scaledHalf(g, t, bits, factor) {
  const h = exactHalf(factor * halfToNumber(bits));
  if (h < 0) throw new GGUFError(`${g.name}: tensor ${t.name} has a block scale too large to store its offset as a half`);
  return h;
}

// The unsigned code j of a 4-bit block whose nibbles start at `at`: value j
// in the low nibble of byte j, value j + 16 in the high one.
const nibble = (b, at, j) => (j < 16 ? b[at + j] & 15 : b[at + j - 16] >> 4);

// A K-quant super-block of 256 values at `at` as k8 holds it (llaf/storage.py
// `_k8_blocks`): `k.codes` (bytes; a signed code wraps), the super-block's
// half `d` and `dmin`, and `k.sc` (a byte, signed) and `k.mn` for each half
// block of 16 values ([8 blocks][2 halves]); value = d·sc·code - dmin·mn.
function kBlocks(kind, b, at, k) {
  const { codes, sc, mn } = k;
  if (kind === "Q2_K") { // scales 16 (a 4-bit scale and minimum per 16 values), qs 64 (2-bit), d, dmin
    for (let i = 0; i < 16; i++) { sc[i] = b[at + i] & 15; mn[i] = b[at + i] >> 4; }
    for (let blk = 0; blk < 8; blk++) {
      const qs = at + 16 + (blk >> 2) * 32;
      const shift = 2 * (blk & 3);
      for (let j = 0; j < 32; j++) codes[blk * 32 + j] = (b[qs + j] >> shift) & 3;
    }
    k.d = half(b, at + 80);
    k.dmin = half(b, at + 82);
  } else if (kind === "Q3_K") { // hmask 32, qs 64, 12 bytes of 6-bit scales (less 32: signed), d
    const s = at + 96;
    for (let i = 0; i < 16; i++) {
      const low = i < 8 ? b[s + i] & 15 : b[s + i - 8] >> 4;
      const high = (b[s + 8 + (i & 3)] >> (2 * (i >> 2))) & 3;
      sc[i] = ((low | (high << 4)) - 32) & 255;
      mn[i] = 0;
    }
    for (let blk = 0; blk < 8; blk++) {
      const qs = at + 32 + (blk >> 2) * 32;
      const shift = 2 * (blk & 3);
      for (let j = 0; j < 32; j++) {
        codes[blk * 32 + j] = ((((b[qs + j] >> shift) & 3) | (((b[at + j] >> blk) & 1) << 2)) - 4) & 255;
      }
    }
    k.d = half(b, at + 108);
    k.dmin = 0;
  } else if (kind === "Q6_K") { // ql 128, qh 64, scales 16 (signed, one per 16 values), d
    for (let blk = 0; blk < 8; blk++) {
      const half128 = blk >> 2;
      const ql = at + half128 * 64 + (blk & 1) * 32;
      const lowShift = 4 * ((blk & 3) >> 1);
      const qh = at + 128 + half128 * 32;
      const highShift = 2 * (blk & 3);
      for (let j = 0; j < 32; j++) {
        const low = (b[ql + j] >> lowShift) & 15;
        const high = (b[qh + j] >> highShift) & 3;
        codes[blk * 32 + j] = ((low | (high << 4)) - 32) & 255;
      }
    }
    for (let i = 0; i < 16; i++) { sc[i] = b[at + 192 + i]; mn[i] = 0; }
    k.d = half(b, at + 208);
    k.dmin = 0;
  } else { // Q4_K, Q5_K: d, dmin, 12 bytes of 6-bit scales and minima (one per 32 values), [qh 32,] qs 128
    k.d = half(b, at);
    k.dmin = half(b, at + 2);
    const s = at + 4;
    for (let blk = 0; blk < 8; blk++) { // gguf-py's Q4_K.get_scale_min
      const [scale, min] = blk < 4 ? [b[s + blk] & 63, b[s + 4 + blk] & 63]
        : [(b[s + 4 + blk] & 15) | ((b[s + blk - 4] >> 2) & 0x30), (b[s + 4 + blk] >> 4) | ((b[s + blk] >> 2) & 0x30)];
      sc[2 * blk] = sc[2 * blk + 1] = scale;
      mn[2 * blk] = mn[2 * blk + 1] = min;
    }
    const qs = at + (kind === "Q5_K" ? 48 : 16);
    for (let blk = 0; blk < 8; blk++) {
      const q = qs + (blk >> 1) * 32;
      const shift = 4 * (blk & 1);
      for (let j = 0; j < 32; j++) {
        const fifth = kind === "Q5_K" ? ((b[at + 16 + j] >> blk) & 1) << 4 : 0;
        codes[blk * 32 + j] = ((b[q + j] >> shift) & 15) | fifth;
      }
    }
  }
}

// How a GGUF block of each type becomes the blocks of 32 values of a
// format, keyed "TYPE>format": encode(b, at, parts, k, n) writes the parts
// (the format's arrays, codes first) of the GGUF block at byte `at` (F32,
// F16, BF16: of `n` values, at most 32, from `at`); `k` is scratch.  Each as
// llaf/storage.py `encode_gguf` makes them, never re-quantized.
function blockEncoders(g, t) {
  const scales = (b, at, s, o, factor, offsetAt) => {
    s[0] = half(b, at);
    o[0] = offsetAt ? half(b, at + offsetAt) : scaledHalf(g, t, s[0], factor);
  };
  const fourBit = { Q4_0: [2, -8, 0], Q4_1: [4, 0, 2], Q5_0: [6, -16, 0], Q5_1: [8, 0, 2] }; // codes at, factor, offset at
  const code = (kind, b, at, j) => {
    const [data] = fourBit[kind];
    const q = nibble(b, at + data, j);
    if (kind === "Q4_0" || kind === "Q4_1") return q;
    const qh = at + data - 4; // Q5: the fifth bits, bit j of a little-endian word value j's
    return q | (((b[qh + (j >> 3)] >> (j & 7)) & 1) << 4);
  };
  const floats = (bytes) => (b, at, [w], k, n) => {
    w.data8.fill(0);
    w.data8.set(b.subarray(at, at + n * bytes));
  };
  const k8 = (b, at, [q, d, dmin, sc, mn], k) => {
    kBlocks(t.type, b, at, k);
    q.set(k.codes);
    d.fill(k.d);
    dmin.fill(k.dmin);
    sc.set(k.sc);
    mn.set(k.mn);
  };
  const enc = {
    "F32>f32": floats(4),
    "F16>f16": floats(2),
    "BF16>f32": (b, at, [w], k, n) => {
      w.data32.fill(0);
      for (let c = 0; c < n; c++) w.data32[c] = half(b, at + 2 * c) << 16;
    },
    "Q8_0>q8": (b, at, [q, s, o]) => { // a signed byte q: code q + 128
      scales(b, at, s, o, -128, 0);
      for (let c = 0; c < 32; c++) q[c] = b[at + 2 + c] ^ 0x80;
    },
    "Q4_K>q4k": (b, at, [q, d, dmin, sc, mn], k) => { // q4's nibbles, a scale and minimum a block
      kBlocks("Q4_K", b, at, k);
      for (let blk = 0; blk < 8; blk++) {
        for (let j = 0; j < 16; j++) q[blk * 16 + j] = k.codes[blk * 32 + j] | (k.codes[blk * 32 + j + 16] << 4);
        sc[blk] = k.sc[2 * blk];
        mn[blk] = k.mn[2 * blk];
      }
      d.fill(k.d);
      dmin.fill(k.dmin);
    },
  };
  for (const kind of ["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]) enc[`${kind}>k8`] = k8;
  for (const [kind, [data, factor, offsetAt]] of Object.entries(fourBit)) {
    enc[`${kind}>q8`] = (b, at, [q, s, o]) => {
      scales(b, at, s, o, factor, offsetAt);
      for (let j = 0; j < 32; j++) q[j] = code(kind, b, at, j);
    };
    if (kind === "Q4_0" || kind === "Q4_1") { // two codes a byte, as the file packs them
      enc[`${kind}>q4`] = (b, at, [q, s, o]) => {
        scales(b, at, s, o, factor, offsetAt);
        q.set(b.subarray(at + data, at + data + 16));
      };
    }
  }
  return enc;
}

// The `rows` rows of a matrix held by tensor `t` ([rows][cols], a GGUF
// type) in format `fmt`, written in panels into `arrays` (panelArrays) from
// panel block `at` on; rows past the matrix's (padding) stay zero.
// `rowOf(r)`: the tensor's row that is the engine's row `r` (the query/key
// unpermutation, a part of a fused tensor).
function putMatrix(g, t, fmt, arrays, at, rows, rowOf) {
  const encode = blockEncoders(g, t)[`${t.type}>${fmt}`];
  if (!encode) throw new GGUFError(`${g.name}: tensor ${t.name} of type ${t.type} cannot be stored as ${fmt} in the browser`);
  const [cols] = t.dims;
  const [block, size] = TYPE_SIZES[t.type];
  const group = Math.max(block, BLOCK); // values encoded at once: a GGUF block, or 32 floats
  const sub = group / BLOCK;
  const kb = Math.ceil(cols / BLOCK);
  const rowBytes = (cols / block) * size;
  const parts = arrays.map((a) => {
    const v = new ARRAY[a.type](sub * a.n);
    return Object.assign(v, { data8: new Uint8Array(v.buffer), data32: new Uint32Array(v.buffer.byteLength % 4 ? 0 : v.buffer) });
  });
  const k = { codes: new Uint8Array(256), sc: new Uint8Array(16), mn: new Uint8Array(16), d: 0, dmin: 0 };
  const b = g.bytes;
  for (let r = 0; r < rows; r++) {
    const src = t.start + rowOf(r) * rowBytes;
    const tile = at + Math.floor(r / PANEL) * kb;
    const lane = r % PANEL;
    for (let k0 = 0; k0 * group < cols; k0++) {
      encode(b, src + (k0 * group / block) * size, parts, k, Math.min(group, cols - k0 * group));
      for (let p = 0; p < parts.length; p++) {
        const { data, n, type } = arrays[p];
        const v = parts[p];
        if (type === "u16" ? v.some(notFinite) : type === "f32" && !v.every(Number.isFinite)) {
          throw new GGUFError(`${g.name}: tensor ${t.name} holds values that are not finite (NaN or infinity)`);
        }
        for (let s = 0; s < sub; s++) {
          const base = ((tile + k0 * sub + s) * n) * PANEL + lane;
          for (let c = 0; c < n; c++) data[base + c * PANEL] = v[s * n + c];
        }
      }
    }
  }
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

// init's argument `a` (the `i`th) as its Futhark type where it is a number:
// i64 as BigInt, f32 as a number; an array as it is.
export function initArgument(a, i) {
  if (typeof a !== "number") return a;
  return tables.SCALARS[i][1] === "int64" ? BigInt(a) : a;
}

// The model of GGUF file `g` (readGGUF) of any architecture llaf reads
// (llaf/gguf_file.py `LAYOUTS`: the Llama family, all run by src/llama.fut):
// {storage, hparams, vocab, args}, `args` being init's arguments in order:
// numbers, and arrays as {data, shape, type} (type: "f32", "u16", "u8",
// "i64").  `maxContext` caps the context, as `llaf generate --context` does.
export function llamaModel(g, maxContext) {
  const arch = g.fields["general.architecture"];
  const layout = tables.LAYOUTS[arch];
  if (!layout) {
    throw new GGUFError(`${g.name}: GGUF architecture ${arch} is not supported (llaf reads ${Object.keys(tables.LAYOUTS).join(", ")})`);
  }
  const field = (key) => `${arch}.${key}`;
  const name = (key, i = 0) => tables.TENSORS[key].replace("{bid}", i);
  const layers = integer(g, field("block_count"), undefined, Object.keys(g.tensors).length);
  const heads = integer(g, field("attention.head_count"));
  const kvHeads = integer(g, field("attention.head_count_kv"), heads);
  const context = Math.min(integer(g, field("context_length"), undefined, 1 << 24), maxContext);
  const eps = g.fields[field("attention.layer_norm_rms_epsilon")];
  const theta = g.fields[field("rope.freq_base")] ?? 10000;
  if (!(eps > 0 && Number.isFinite(Math.fround(eps)))) throw new GGUFError(`${g.name}: GGUF field ${field("attention.layer_norm_rms_epsilon")} is ${eps}; it must be positive`);
  if (!(theta > 1 && Number.isFinite(Math.fround(theta)))) throw new GGUFError(`${g.name}: GGUF field ${field("rope.freq_base")} is ${theta}; it must be above 1`);
  const [d, vocab] = tensor(g, name("embed")).dims;
  // the MLP's width from its gate (Phi-3's is fused with the up projection: from the down projection)
  const ff = layout.fused ? tensor(g, name("w_down")).dims[0] : tensor(g, name("w_gate")).dims[1];
  // heads of their own size (Qwen3, Gemma), else the width's share
  const hd = field("attention.key_length") in g.fields ? integer(g, field("attention.key_length")) : d / heads;
  if (!Number.isInteger(hd) || heads % kvHeads || (g.fields[field("attention.value_length")] ?? hd) !== hd) {
    throw new GGUFError(`${g.name}: heads=${heads}, kv_heads=${kvHeads} do not fit the model width ${d}`);
  }
  const rotated = integer(g, field("rope.dimension_count"), hd);
  if (rotated % 2 || rotated > hd) {
    throw new GGUFError(`${g.name}: GGUF field ${field("rope.dimension_count")} is ${rotated}: rotary embedding needs an even number of features, at most the head size ${hd}`);
  }
  const window = g.fields[field("attention.sliding_window")] ?? 0;
  if (!Number.isInteger(window) || window < 0) {
    throw new GGUFError(`${g.name}: GGUF field ${field("attention.sliding_window")} is ${window}; it must be a whole number, 0 for none`);
  }
  const qd = heads * hd;
  const kvd = kvHeads * hd;
  const rows = { wq: qd, wk: kvd, wv: kvd, wo: d, w_gate: ff, w_up: ff, w_down: d };
  const cols = { wq: d, wk: d, wv: d, wo: qd, w_gate: d, w_up: d, w_down: ff };
  const tied = !(name("lm_head") in g.tensors);
  const used = new Set();

  // The engine's row r of a query/key matrix is the file's row `unpermute(r)`
  // in llama files: llama.cpp interleaves each head's two halves
  // (llaf/gguf_file.py `unpermute`).
  const unpermute = (r) => {
    const h = Math.floor(r / hd);
    const i = Math.floor((r % hd) / (hd / 2));
    const j = r % (hd / 2);
    return h * hd + 2 * j + i;
  };
  // Layer i's tensor holding matrix `key` and the engine's row r's row in it
  // (a fused tensor holds several matrices one after the other by rows).
  const source = (key, i) => {
    for (const [fused, parts] of Object.entries(tables.FUSED)) {
      if (layout.fused && parts.includes(key)) {
        const start = parts.slice(0, parts.indexOf(key)).reduce((a, p) => a + rows[p], 0);
        const all = parts.reduce((a, p) => a + rows[p], 0);
        return { t: tensor(g, name(fused, i), [cols[key], all]), rowOf: (r) => start + r };
      }
    }
    const t = tensor(g, name(key, i), [cols[key], rows[key]]);
    return { t, rowOf: layout.permuted && (key === "wq" || key === "wk") ? unpermute : (r) => r };
  };

  // Each matrix (stack) of init's: its tensors (a layer's each, one, or none
  // for a head tied to the embedding), its rows and columns.
  const matrices = Object.entries(tables.MATRICES).map(([key, role]) => {
    if (role === "layers") {
      const sources = Array.from({ length: layers }, (_, i) => source(key, i));
      return { key, role, sources, rows: rows[key], cols: cols[key] };
    }
    const none = key === "lm_head" && tied;
    return { key, role, sources: none ? [] : [{ t: tensor(g, name(key), [d, vocab]), rowOf: (r) => r }],
             rows: none ? 0 : vocab, cols: d };
  });
  for (const m of matrices) for (const { t } of m.sources) used.add(t.name);
  const types = (role) => new Set(matrices.filter((m) => m.role === role).flatMap((m) => m.sources.map(({ t }) => t.type)));
  const storage = chooseStorage(types("layers"), types("head"));
  const [layerFmt, headFmt] = tables.STORAGES[storage] ?? [];

  const panels = (m) => [Math.ceil(m.rows / PANEL), Math.ceil(m.cols / BLOCK)];
  const blocks = (m) => panels(m)[0] * panels(m)[1];
  const arrays = {};
  const pools = [];
  if (storage === tables.MIXED) {
    // Each matrix in the format its type keeps, at its first panel block in
    // that format's pool (llaf/storage.py `places` and `pools`), the pools
    // after init's other arrays.
    const count = Object.fromEntries(tables.CODES.map((f) => [f, 0]));
    const placed = matrices.map((m) => m.sources.map(({ t }) => {
      const f = tables.KEPT[t.type];
      count[f] += blocks(m);
      return [f, count[f] - blocks(m)];
    }));
    const pool = Object.fromEntries(tables.CODES.map((f) => [f, panelArrays(f, count[f])]));
    matrices.forEach((m, i) => {
      m.sources.forEach(({ t, rowOf }, l) => {
        const [f, at] = placed[i][l];
        putMatrix(g, t, f, pool[f], at, m.rows, rowOf);
      });
      const n = m.sources.length;
      arrays[m.key] = [
        { data: Uint8Array.from(placed[i], ([f]) => tables.CODES.indexOf(f)), shape: [n], type: "u8" },
        { data: BigInt64Array.from(placed[i], ([, at]) => BigInt(at)), shape: [n], type: "i64" }];
    });
    for (const f of tables.CODES) {
      for (const a of pool[f]) pools.push({ data: a.data, shape: [count[f], ...a.per, PANEL], type: a.type });
    }
  } else {
    for (const m of matrices) {
      const fmt = m.role === "layers" ? layerFmt : headFmt;
      const lead = m.role === "layers" ? [layers] : [];
      const a = panelArrays(fmt, (lead[0] ?? 1) * blocks(m));
      m.sources.forEach(({ t, rowOf }, l) => putMatrix(g, t, fmt, a, l * blocks(m), m.rows, rowOf));
      arrays[m.key] = a.map((p) => ({ data: p.data, shape: [...lead, ...panels(m), ...p.per, PANEL], type: p.type }));
    }
  }
  // The per-layer vectors: the norms, and the variations some of the family
  // have (biases, query/key norms), empty where the file has none.
  const vectors = { attn_norm: d, mlp_norm: d, bq: qd, bk: kvd, bv: kvd, q_norm: hd, k_norm: hd };
  for (const [key, n] of Object.entries(vectors)) {
    const present = !tables.VARIATIONS.includes(key) || name(key) in g.tensors;
    const data = new Float32Array(present ? layers * n : 0);
    for (let i = 0; present && i < layers; i++) {
      const t = tensor(g, name(key, i), [n]);
      data.set(f32Tensor(g, t), i * n);
      used.add(t.name);
    }
    arrays[key] = [{ data, shape: [layers, present ? n : 0], type: "f32" }];
  }
  arrays.final_norm = [{ data: f32Tensor(g, tensor(g, name("final_norm"), [d])), shape: [d], type: "f32" }];
  used.add(name("final_norm"));
  const freq = invFreq(rotated, theta);
  if (name("inv_freq") in g.tensors) {
    // Llama 3.1's long-context scaling, as per-frequency divisors (llaf/gguf_file.py `read`)
    const t = tensor(g, name("inv_freq"), [rotated / 2]);
    const divisors = f32Tensor(g, t);
    for (let i = 0; i < freq.length; i++) freq[i] /= divisors[i];
    if (!freq.every(Number.isFinite)) {
      throw new GGUFError(`${g.name}: tensor ${t.name} holds zeros or values that are not finite: the rotary frequencies it gives are not finite`);
    }
    used.add(t.name);
  }
  arrays.inv_freq = [{ data: freq, shape: [rotated / 2], type: "f32" }];
  for (const tname of Object.keys(g.tensors)) {
    if (!used.has(tname)) throw new GGUFError(`${g.name}: tensor ${tname} is not one of a ${arch} model's`);
  }

  const scalars = { heads, kv_heads: kvHeads, context, eps, window, activation: layout.activation, vocab, ff,
                    embedding_scale: layout.scaled ? Math.fround(Math.sqrt(d)) : 1, head_dim: hd };
  const args = [];
  for (const [key] of tables.SCALARS) args.push(scalars[key]);
  for (const key of tables.ARRAYS) args.push(...arrays[key]);
  args.push(...pools);
  return { storage, hparams: scalars, vocab, context, args };
}
