// A GGUF file's header, metadata and tensor table, read from its bytes.
//
// Written by hand rather than with @huggingface/gguf, whose reader fetches
// ranges of a URL: here the whole file is already in memory (fetched or
// picked from disk), and every count and length must be checked against the
// bytes there so that a damaged or truncated file gives a clear message (as
// llaf/gguf_file.py does) rather than a huge allocation or a hung tab.

import tables from "llaf-tables";

const MAGIC = 0x46554747; // "GGUF" read as a little-endian u32

// GGML tensor types llaf reads, by number: [name, values per block, bytes
// per block] (llaf/web.py, from gguf-py's table).
const TYPES = tables.GGUF_TYPES;
const READS = Object.values(TYPES).map(([name]) => name).join(", ");

export class GGUFError extends Error {}

class Reader {
  constructor(bytes, name) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
    this.name = name;
  }

  fail(what) {
    throw new GGUFError(`${this.name} is not a readable GGUF file: ${what}`);
  }

  take(n) {
    if (n > this.bytes.length - this.pos) this.fail("it ends inside its metadata (truncated)");
    const start = this.pos;
    this.pos += n;
    return start;
  }

  u32() { return this.view.getUint32(this.take(4), true); }

  u64() {
    const v = this.view.getBigUint64(this.take(8), true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`a count or offset of ${v} is beyond any file`);
    return Number(v);
  }

  string(what) {
    const start = this.take(this.u64());
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(this.bytes.subarray(start, this.pos));
    } catch {
      return this.fail(`${what} is not UTF-8`);
    }
  }

  // `count` items of at least `least` bytes each must fit in the rest of the file.
  fit(count, least) {
    if (count * least > this.bytes.length - this.pos) this.fail(`it ends before the ${count} items it announces (truncated or damaged)`);
  }

  // A metadata value of GGUFValueType `kind`.
  value(kind, key, depth = 0) {
    const v = this.view;
    switch (kind) {
      case 0: return v.getUint8(this.take(1));
      case 1: return v.getInt8(this.take(1));
      case 2: return v.getUint16(this.take(2), true);
      case 3: return v.getInt16(this.take(2), true);
      case 4: return v.getUint32(this.take(4), true);
      case 5: return v.getInt32(this.take(4), true);
      case 6: return v.getFloat32(this.take(4), true);
      case 7: return v.getUint8(this.take(1)) !== 0;
      case 8: return this.string(`metadata field ${key}`);
      case 10: return Number(v.getBigUint64(this.take(8), true));
      case 11: return Number(v.getBigInt64(this.take(8), true));
      case 12: return v.getFloat64(this.take(8), true);
      case 9: {
        if (depth > 8) this.fail(`metadata field ${key} nests arrays too deep`);
        const item = this.u32();
        const count = this.u64();
        this.fit(count, item === 8 ? 8 : 1);
        const out = new Array(count);
        for (let i = 0; i < count; i++) out[i] = this.value(item, key, depth + 1);
        return out;
      }
      default: return this.fail(`metadata field ${key} has unknown type ${kind}`);
    }
  }
}

// The fields and tensors of a GGUF file held in `bytes` (a Uint8Array).
// A tensor: {name, type, dims (GGUF order, fastest axis first), start, nBytes}.
export function readGGUF(bytes, name = "the file") {
  const r = new Reader(bytes, name);
  if (bytes.length < 4 || r.u32() !== MAGIC) r.fail("it does not start with the GGUF magic");
  const version = r.u32();
  if (version !== 2 && version !== 3) r.fail(`it is GGUF version ${version}; llaf reads versions 2 and 3`);
  const nTensors = r.u64();
  const nFields = r.u64();
  r.fit(nFields, 13);
  const fields = {};
  for (let i = 0; i < nFields; i++) {
    const key = r.string("a metadata key");
    if (key in fields) r.fail(`metadata field ${key} appears twice`);
    fields[key] = r.value(r.u32(), key);
  }
  r.fit(nTensors, 24);
  const infos = [];
  for (let i = 0; i < nTensors; i++) {
    const tname = r.string("a tensor name");
    const nDims = r.u32();
    if (nDims > 4) r.fail(`tensor ${tname} has ${nDims} dimensions (at most 4)`);
    const dims = [];
    for (let d = 0; d < nDims; d++) dims.push(r.u64());
    infos.push({ name: tname, dims, kind: r.u32(), offset: r.u64() });
  }
  const alignment = fields["general.alignment"] ?? 32;
  if (!Number.isInteger(alignment) || alignment <= 0 || alignment & (alignment - 1)) {
    r.fail("general.alignment is not a power of two");
  }
  const dataStart = Math.ceil(r.pos / alignment) * alignment;
  const tensors = {};
  for (const { name: tname, dims, kind, offset } of infos) {
    if (tname in tensors) r.fail(`tensor ${tname} appears twice`);
    const type = TYPES[kind];
    if (!type) {
      throw new GGUFError(`${name}: tensor ${tname} has type ${kind}; llaf reads ${READS}`);
    }
    const [typeName, block, blockBytes] = type;
    if (block > 1 && (!dims.length || dims[0] % block)) {
      r.fail(`tensor ${tname} of type ${typeName} has rows of ${dims[0] ?? 0} values, not whole blocks of ${block}`);
    }
    const nBytes = (dims.reduce((a, b) => a * b, 1) / block) * blockBytes;
    const start = dataStart + offset;
    if (start + nBytes > bytes.length) throw new GGUFError(`${name} is truncated: tensor ${tname} ends past the end of the file`);
    tensors[tname] = { name: tname, type: typeName, dims, start, nBytes };
  }
  return { name, fields, tensors, bytes };
}
