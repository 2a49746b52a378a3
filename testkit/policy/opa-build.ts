// Builds throwaway policy bundles with the real OPA compiler for engine tests (a corrupt, a
// malformed-decision or an unsupported-builtin bundle), exactly as `make policy` builds the real one.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const repoRoot = join(import.meta.dirname, '..', '..');
export const opaBin = join(repoRoot, '.tools', 'bin', 'opa');
export const defaultBundle = join(repoRoot, 'policies', 'build', 'bundle.tar.gz');

export function scratchDir(prefix = 'sluice-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Compiles `rego` (and optional data) to a bundle.tar.gz with the given revision; returns its path. */
export function buildBundle(rego: string, revision: string, data: object = {}, dir = scratchDir()): string {
  const src = join(dir, `src-${revision}`);
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, 'policy.rego'), rego);
  writeFileSync(join(src, 'data.json'), JSON.stringify(data));
  const out = join(dir, `bundle-${revision}.tar.gz`);
  execFileSync(opaBin, ['build', '-t', 'wasm', '-e', 'sluice/decision', '-r', revision, '-o', out, src], { stdio: 'pipe' });
  return out;
}

/** A minimal valid policy that allows everything with a code naming its revision. */
export function allowAllRego(code: string): string {
  return `package sluice\n\ndecision := {"allow": true, "code": "${code}", "reason": "test policy"}\n`;
}
