// The generated class's JavaScript side (llm.mjs), as the engine uses it.
//
// What a failure inside the engine says.  Futhark 0.25's generated class
// (llm.mjs) reads a failure's message through a `HEAP8` outside its scope,
// so every failure surfaced as "HEAP8 is not defined"; `withErrors` gives
// its contexts a reader of the module's memory as it is now, and the
// message as an EngineError: an internal error of llaf, not the user's.

export class EngineError extends Error {}

// An allocation failed (the runtime's patched allocator says so, where the
// module used to write through a null pointer and hang: scripts/wasm/emcc):
// the tab's memory, which WebAssembly caps at 4 GB, is spent.
export class OutOfMemoryError extends Error {}

export function withErrors(FutharkContext) {
  FutharkContext.prototype.get_error = function getError() {
    const ptr = this.wasm._futhark_context_get_error(this.ctx);
    const heap = new Uint8Array(this.wasm.wasmMemory.buffer);
    const end = heap.indexOf(0, ptr);
    const text = new TextDecoder().decode(heap.slice(ptr, end < 0 ? ptr : end)).trim();
    this.wasm._free(ptr);
    const first = text.split("\n")[0].replace(/^Error: /, "");
    if (first.startsWith("Failed to allocate memory")) {
      const asked = /Attempted allocation: *(\d+) bytes/.exec(text);
      const more = asked ? ` (it asked for ${(Number(asked[1]) / 2 ** 20).toFixed(1)} MiB more)` : "";
      return new OutOfMemoryError(`the engine ran out of memory${more}: a tab's WebAssembly memory stops at 4 GB`);
    }
    return new EngineError(`internal error in the engine: ${first}`);
  };
  return FutharkContext;
}

// The module's views of its memory (HEAPU8, ...), which Futhark's wrapper
// copies arrays through, made anew when the memory has grown: growth in
// one of the engine's threads leaves this thread's views on the old, shorter
// buffer.
const VIEWS = { HEAP8: Int8Array, HEAPU8: Uint8Array, HEAP16: Int16Array, HEAPU16: Uint16Array, HEAP32: Int32Array,
  HEAPU32: Uint32Array, HEAPF32: Float32Array, HEAPF64: Float64Array, HEAP64: BigInt64Array, HEAPU64: BigUint64Array };
function freshViews(ctx) {
  const buffer = ctx.wasm.wasmMemory.buffer;
  if (ctx.wasm.HEAPU8.buffer === buffer) return;
  for (const [name, View] of Object.entries(VIEWS)) ctx.wasm[name] = new View(buffer);
}

// A Futhark array of `a` ({data, shape, type}).
export function futharkArray(ctx, a) {
  freshViews(ctx);
  return ctx[`new_${a.type}_${a.shape.length}d`](a.data, ...a.shape.map(BigInt));
}

// A copy of the `n` values of Futhark f32 array `a`, read from the memory as it is now.
export function f32Values(ctx, a, n) {
  return new Float32Array(ctx.wasm.wasmMemory.buffer, a.fvalues(ctx.ctx, a.ptr), n).slice();
}

const i64 = (ctx, values) => futharkArray(ctx, { data: BigInt64Array.from(values, BigInt), shape: [values.length], type: "i64" });

// One pass of the engine's entry `${prefix}_run` for slot 0 of the cache
// `state.cache`: feed `ids` at positions `start`.. and return the `vocab`
// logits after the last of them, the cache updated (consumed and replaced).
export function slotPass(ctx, prefix, params, state, ids, start, vocab) {
  const inputs = [i64(ctx, ids), i64(ctx, ids.map(() => 0)), i64(ctx, ids.map((_, i) => start + i)),
    i64(ctx, [ids.length - 1])];
  try {
    const [logits, cache] = ctx[`${prefix}_run`](params, state.cache, ...inputs);
    state.cache.free(); // consumed by the pass, but its handle is still ours to free
    state.cache = cache;
    const values = f32Values(ctx, logits, vocab);
    logits.free();
    return values;
  } finally {
    for (const a of inputs) a.free();
  }
}
