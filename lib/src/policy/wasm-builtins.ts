// Which builtins a compiled policy imports from its host, and whether the JS SDK provides them.
// OPA compiles most builtins into the module itself; the rest (http.send, time.now_ns, ...) are
// imported and would only fail at evaluation time, so a bundle needing one is refused at load.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

/** Builtins the SDK implements in JavaScript, read from the SDK itself so upgrades carry over. */
export const sdkBuiltins: ReadonlySet<string> = (() => {
  const entry = require.resolve('@open-policy-agent/opa-wasm');
  const impls = require(join(dirname(entry), 'builtins', 'index.js')) as Record<string, unknown>;
  return new Set(Object.keys(impls));
})();

// Structural stand-ins for the WebAssembly types (not in the ES lib without DOM).
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
export interface WasmInstance {
  readonly exports: object;
}

interface OpaExports {
  builtins(): number;
  opa_json_dump(addr: number): number;
}

function readCString(memory: WasmMemory, addr: number): string {
  const bytes = new Uint8Array(memory.buffer);
  let end = addr;
  while (bytes[end] !== 0) end++;
  return new TextDecoder().decode(bytes.subarray(addr, end));
}

/** Names of the builtins the module imports from its host. */
export function importedBuiltins(instance: WasmInstance, memory: WasmMemory): string[] {
  const exports = instance.exports as OpaExports;
  const json = readCString(memory, exports.opa_json_dump(exports.builtins()));
  return Object.keys(JSON.parse(json) as Record<string, number>).sort();
}

export function unsupportedBuiltins(imported: readonly string[], custom: ReadonlySet<string> = new Set()): string[] {
  return imported.filter((name) => !sdkBuiltins.has(name) && !custom.has(name));
}
