// Builds the real default library (policies/rego + policies/data) into a throwaway bundle the way
// `make policy` does — WASM, entrypoint sluice/decision, tests excluded, the SDK's capabilities —
// with another revision and optionally more Rego, for the explain and --cluster tests.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const repoRoot = join(import.meta.dirname, '..', '..');
const opa = join(repoRoot, '.tools', 'bin', 'opa');

export interface BuiltBundle {
  path: string;
  revision: string;
  dir: string;
}

let counter = 0;

export function buildBundle(o: { extraRego?: string; revision?: string } = {}): BuiltBundle {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-lib-'));
  const src = join(dir, 'src');
  mkdirSync(join(src, 'rego'), { recursive: true });
  for (const f of readdirSync(join(repoRoot, 'policies', 'rego'))) {
    if (f.endsWith('.rego') && !f.endsWith('_test.rego')) cpSync(join(repoRoot, 'policies', 'rego', f), join(src, 'rego', f));
  }
  cpSync(join(repoRoot, 'policies', 'data'), join(src, 'data'), { recursive: true });
  if (o.extraRego) writeFileSync(join(src, 'rego', 'extra.rego'), o.extraRego);
  const revision = o.revision ?? `e2e${process.pid.toString(16)}${(counter++).toString(16)}`.slice(0, 12).padEnd(12, '0');
  const path = join(dir, 'bundle.tar.gz');
  execFileSync(opa, ['build', '-t', 'wasm', '-e', 'sluice/decision', '--capabilities', join(repoRoot, 'policies', 'build', 'capabilities.json'), '-r', revision, '-o', path, join(src, 'rego'), join(src, 'data')], { stdio: 'pipe' });
  return { path, revision, dir };
}
