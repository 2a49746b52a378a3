// sluice_build_info: one series per process saying which sluice runs (package version, git
// revision baked into the image as SLUICE_REVISION, Node version), value 1 — the usual *_build_info
// convention, so dashboards can show versions and alerts can join on them during an upgrade.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Gauge } from 'prom-client';
import type { Registry } from 'prom-client';

export const BUILD_INFO_METRIC = 'sluice_build_info';

export interface BuildInfo {
  component: 'sidecar' | 'webhook';
  version: string;
  revision: string;
  node_version: string;
}

let packageVersion: string | undefined;

/** The version in package.json (the image carries the repo's), read once. */
export function sluiceVersion(): string {
  if (packageVersion === undefined) {
    try {
      const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version?: unknown };
      packageVersion = typeof pkg.version === 'string' && pkg.version ? pkg.version : 'dev';
    } catch {
      packageVersion = 'dev';
    }
  }
  return packageVersion;
}

export function buildInfo(component: BuildInfo['component'], env: NodeJS.ProcessEnv = process.env): BuildInfo {
  return { component, version: sluiceVersion(), revision: env.SLUICE_REVISION || 'unknown', node_version: process.version };
}

export function registerBuildInfo(registry: Registry, info: BuildInfo): Gauge<keyof BuildInfo> {
  const gauge = new Gauge({
    name: BUILD_INFO_METRIC,
    help: 'Which sluice is running: 1, labelled with component, version, git revision and Node version',
    labelNames: ['component', 'version', 'revision', 'node_version'] as const,
    registers: [registry],
  });
  gauge.set({ ...info }, 1);
  return gauge;
}
