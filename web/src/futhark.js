// What a failure inside the engine says.  Futhark 0.25's generated class
// (llm.mjs) reads a failure's message through a `HEAP8` outside its scope,
// so every failure surfaced as "HEAP8 is not defined"; `withErrors` gives
// its contexts a reader of the module's memory as it is now, and the
// message as an EngineError: an internal error of llaf, not the user's.

export class EngineError extends Error {}

export function withErrors(FutharkContext) {
  FutharkContext.prototype.get_error = function getError() {
    const ptr = this.wasm._futhark_context_get_error(this.ctx);
    const heap = new Uint8Array(this.wasm.wasmMemory.buffer);
    const end = heap.indexOf(0, ptr);
    const text = new TextDecoder().decode(heap.slice(ptr, end < 0 ? ptr : end)).trim();
    this.wasm._free(ptr);
    return new EngineError(`internal error in the engine: ${text.split("\n")[0].replace(/^Error: /, "")}`);
  };
  return FutharkContext;
}
