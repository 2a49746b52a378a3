// Which kubectl-sluice this is: the package version and the git revision it was built from. A
// release bundle has both baked in at bundle time (cli/scripts/bundle.ts defines the two
// process.env names below as literals); run from a checkout, they are read from package.json and git.
// Never fails: an unknown revision is reported as "unknown".
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ClientBuild {
  version: string;
  revision: string;
  /** "bundle" (a release artefact), "sea" (single executable) or "source" (run from a checkout) */
  build: string;
  node: string;
  platform: string;
}

function fromCheckout(): { version: string; revision: string } {
  const root = join(import.meta.dirname, '..', '..');
  let version = 'dev';
  try {
    version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: string }).version ?? 'dev';
  } catch {
    // not beside its package.json
  }
  const git = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 });
  const revision = git.status === 0 ? git.stdout.trim() : 'unknown';
  return { version, revision };
}

export function clientBuild(): ClientBuild {
  // Replaced by literals in a bundle (esbuild `define`); undefined when run from source.
  const bundled = process.env.SLUICE_BUILD_VERSION;
  const revision = process.env.SLUICE_BUILD_REVISION;
  const kind = process.env.SLUICE_BUILD_KIND;
  const base = bundled !== undefined && kind !== undefined ? { version: bundled, revision: revision ?? 'unknown' } : fromCheckout();
  return { ...base, build: kind ?? 'source', node: process.version, platform: `${process.platform}/${process.arch}` };
}
