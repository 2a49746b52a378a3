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

/**
 * `signingKey` (a PEM private key file): signed with RS256 by opa, which needs one bundle root, so
 * the data directories sit at the root beside rego/ (the layout docs/policy.md gives for signing).
 */
export function buildBundle(o: { extraRego?: string; revision?: string; signingKey?: string } = {}): BuiltBundle {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-lib-'));
  const src = join(dir, 'src');
  mkdirSync(join(src, 'rego'), { recursive: true });
  for (const f of readdirSync(join(repoRoot, 'policies', 'rego'))) {
    if (f.endsWith('.rego') && !f.endsWith('_test.rego')) cpSync(join(repoRoot, 'policies', 'rego', f), join(src, 'rego', f));
  }
  if (o.extraRego) writeFileSync(join(src, 'rego', 'extra.rego'), o.extraRego);
  const revision = o.revision ?? `e2e${process.pid.toString(16)}${(counter++).toString(16)}`.slice(0, 12).padEnd(12, '0');
  const path = join(dir, 'bundle.tar.gz');
  const common = ['-t', 'wasm', '-e', 'sluice/decision', '--capabilities', join(repoRoot, 'policies', 'build', 'capabilities.json'), '-r', revision, '-o', path];
  if (o.signingKey) {
    cpSync(join(repoRoot, 'policies', 'data'), src, { recursive: true });
    execFileSync(opa, ['build', '-b', ...common, '--signing-key', o.signingKey, '--signing-alg', 'RS256', '.'], { stdio: 'pipe', cwd: src });
  } else {
    cpSync(join(repoRoot, 'policies', 'data'), join(src, 'data'), { recursive: true });
    execFileSync(opa, ['build', ...common, join(src, 'rego'), join(src, 'data')], { stdio: 'pipe' });
  }
  return { path, revision, dir };
}

/** An RSA key pair (openssl), as PEM files. */
export function rsaKeyPair(): { priv: string; pub: string } {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-key-'));
  const priv = join(dir, 'signing.key');
  const pub = join(dir, 'signing.pub');
  execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', priv], { stdio: 'pipe' });
  execFileSync('openssl', ['pkey', '-in', priv, '-pubout', '-out', pub], { stdio: 'pipe' });
  return { priv, pub };
}
