// Evaluates a compiled OPA policy by calling its WASM exports directly (ABI >= 1.2 opa_eval): the
// input JSON text is encoded straight into the module's linear memory and the result is read back
// as JSON text, with no intermediate copies and no per-call TextEncoder/TextDecoder. It keeps the
// SDK's heap discipline (every evaluation starts at the heap pointer left after the data was
// loaded), so memory stays flat. It must never skip an evaluation: every call runs the policy.
import type { LoadedPolicy } from '@open-policy-agent/opa-wasm';

interface OpaEvalExports {
  opa_eval(reserved: number, entrypoint: number, data: number, input: number, inputLen: number, heapPtr: number, format: number): number;
}

interface WasmMemoryLike {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}

/** The parts of the SDK's LoadedPolicy this evaluator reads; setData keeps dataAddr/dataHeapPtr current. */
interface PolicyInternals {
  minorVersion: number;
  mem: WasmMemoryLike;
  wasmInstance: { exports: object };
  dataAddr: number;
  dataHeapPtr: number;
}

const PAGE = 64 * 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
// One byte view of each module's memory, made again only when the memory grew (growing replaces
// its ArrayBuffer): two fewer allocations per evaluation.
const views = new WeakMap<object, Uint8Array>();

function bytesOf(memory: WasmMemoryLike): Uint8Array {
  const buffer = memory.buffer;
  let view = views.get(memory);
  if (view === undefined || view.buffer !== buffer) {
    view = new Uint8Array(buffer);
    views.set(memory, view);
  }
  return view;
}

/** Whether this policy's ABI has the single-call opa_eval the direct path needs (OPA >= 0.37 builds). */
export function hasFastEval(policy: LoadedPolicy): boolean {
  const internals = policy as unknown as PolicyInternals;
  return internals.minorVersion >= 2 && typeof (internals.wasmInstance.exports as Partial<OpaEvalExports>).opa_eval === 'function';
}

/**
 * Runs `entrypoint` on `inputJson` (well-formed JSON text) and returns the result set as JSON text
 * (`[{"result": …}]`). Throws what the module throws (a trap or an opa_abort) and an Error when
 * the module returns no result.
 */
export function evaluateJson(policy: LoadedPolicy, entrypoint: number, inputJson: string): string {
  const p = policy as unknown as PolicyInternals;
  const exports = p.wasmInstance.exports as OpaEvalExports;
  const inputAddr = p.dataHeapPtr;
  // UTF-8 takes at most 3 bytes per UTF-16 unit. Only when that might not fit is the exact size
  // counted, and memory grown by what is missing (linear memory never shrinks: grow no more).
  let room = p.mem.buffer.byteLength - inputAddr;
  if (inputJson.length * 3 > room) {
    const shortfall = Buffer.byteLength(inputJson, 'utf8') - room;
    if (shortfall > 0) p.mem.grow(Math.ceil(shortfall / PAGE));
    room = p.mem.buffer.byteLength - inputAddr;
  }
  const { written } = encoder.encodeInto(inputJson, bytesOf(p.mem).subarray(inputAddr, inputAddr + room));
  const resultAddr = exports.opa_eval(0, entrypoint, p.dataAddr, inputAddr, written, inputAddr + written, 0);
  if (resultAddr === 0) throw new Error('opa_eval returned no result');
  // The module may have grown its memory while evaluating: bytesOf sees that.
  const bytes = bytesOf(p.mem);
  const end = bytes.indexOf(0, resultAddr);
  if (end < 0) throw new Error('opa_eval result is not terminated');
  return decoder.decode(bytes.subarray(resultAddr, end));
}
