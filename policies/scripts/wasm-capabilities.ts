// Prints OPA capabilities for the WASM target: the language features of the pinned opa (so v1
// Rego parses) with only the builtins the JS SDK's capabilities.json lists, so `opa build`
// refuses a policy that would call a builtin the sidecar's runtime cannot provide.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

interface Capabilities {
  builtins: { name: string }[];
  [key: string]: unknown;
}

const opa = process.argv[2] ?? 'opa';
const current = JSON.parse(execFileSync(opa, ['capabilities', '--current'], { encoding: 'utf8' })) as Capabilities;
const sdkDir = dirname(createRequire(import.meta.url).resolve('@open-policy-agent/opa-wasm'));
const sdk = JSON.parse(readFileSync(join(sdkDir, '..', 'capabilities.json'), 'utf8')) as Capabilities;
const supported = new Set(sdk.builtins.map((b) => b.name));
process.stdout.write(JSON.stringify({ ...current, builtins: current.builtins.filter((b) => supported.has(b.name)) }));
