// The default Rego library built with changed policy data, the way `make policy` builds it
// (same sources, same capabilities, tests excluded) — for tests that need the real rules with one
// setting different.
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const ROOT = join(import.meta.dirname, '..', '..');

/**
 * `config` replaces keys of data.config; `organisation` replaces keys within sections of
 * data.organisation (e.g. `{ aws: { buckets: ['b'] } }` sets only the organisation's buckets).
 */
export async function buildDefaultPolicyWith(config: Record<string, unknown>, organisation: Record<string, Record<string, unknown>> = {}): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-policy-'));
  cpSync(join(ROOT, 'policies', 'rego'), join(dir, 'rego'), { recursive: true, filter: (src) => !src.endsWith('_test.rego') });
  cpSync(join(ROOT, 'policies', 'data'), join(dir, 'data'), { recursive: true });
  const dataFile = join(dir, 'data', 'config', 'data.json');
  writeFileSync(dataFile, JSON.stringify({ ...(JSON.parse(readFileSync(dataFile, 'utf8')) as object), ...config }));
  const orgFile = join(dir, 'data', 'organisation', 'data.json');
  const org = JSON.parse(readFileSync(orgFile, 'utf8')) as Record<string, Record<string, unknown>>;
  for (const [section, values] of Object.entries(organisation)) org[section] = { ...org[section], ...values };
  writeFileSync(orgFile, JSON.stringify(org));
  const out = join(dir, 'bundle.tar.gz');
  await promisify(execFile)(join(ROOT, '.tools', 'bin', 'opa'), [
    'build', '-t', 'wasm', '-e', 'sluice/decision',
    '--capabilities', join(ROOT, 'policies', 'build', 'capabilities.json'),
    '-r', 'credentials-e2e', '-o', out, join(dir, 'rego'), join(dir, 'data'),
  ]);
  return out;
}
