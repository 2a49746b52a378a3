// Starts a real sidecar in-process for tests: explicit proxy, transparent and admin ports on
// free loopback ports, the built default policy (or another bundle), upstream names resolved to
// test servers and trusted through the test CA. Agents reach it with HTTPS_PROXY or, inside a
// network namespace, through the interception rules.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { parseSidecarConfig } from '../../sidecar/src/config/sidecar-config.ts';
import type { SidecarConfigInput } from '../../sidecar/src/config/sidecar-config.ts';
import { startSidecar } from '../../sidecar/src/sidecar.ts';
import type { RunningSidecar, StartOptions } from '../../sidecar/src/sidecar.ts';

export const repoRoot = join(import.meta.dirname, '..', '..');
export const defaultBundlePath = join(repoRoot, 'policies', 'build', 'bundle.tar.gz');

export interface TestSidecarOptions extends StartOptions {
  /** name[:port] → host:port of a test upstream */
  resolve?: Record<string, string>;
  extraRootsFiles?: string[];
  bundle?: string;
  config?: Partial<SidecarConfigInput>;
}

export interface TestSidecar extends RunningSidecar {
  proxyUrl: string;
  adminUrl: string;
}

export async function startTestSidecar(o: TestSidecarOptions = {}): Promise<TestSidecar> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-sidecar-'));
  const config = parseSidecarConfig({
    pod: { namespace: 'agents', name: 'coder-0', serviceAccount: 'coder' },
    policy: { path: o.bundle ?? defaultBundlePath, pollIntervalMs: 500 },
    trustDir: join(dir, 'trust'),
    ports: { proxy: 0, transparent: 0, admin: 0, dns: 0 },
    bind: { proxy: '127.0.0.1', transparent: '127.0.0.1', admin: '127.0.0.1', dns: ['127.0.0.1'] },
    upstream: { resolve: o.resolve ?? {}, extraRootsFiles: o.extraRootsFiles ?? [] },
    // A private spool per test sidecar; tests that care about durability set their own audit.
    audit: { spoolDir: join(dir, 'spool'), spool: { fsync: 'none' } },
    ...o.config,
  });
  const sidecar = await startSidecar(config, { logger: pino({ level: process.env.SLUICE_TEST_LOG ?? 'silent' }), dns: false, ...o });
  return {
    ...sidecar,
    proxyUrl: `http://127.0.0.1:${sidecar.addresses.proxy!.port}`,
    adminUrl: `http://127.0.0.1:${sidecar.addresses.admin.port}`,
  };
}
