// The pieces of `make release` that are plain data: the images' CycloneDX SBOMs (production npm
// packages from the lockfile exactly as `npm ci --omit=dev` installs them, Debian packages at the
// versions apt chose, the Node runtime) and the krew plugin manifest. The packaged chart and the
// CLI bundle are exercised end to end in e2e/release.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { parse as parseYaml } from 'yaml';
import { aptCandidates, cycloneDx, productionPackages } from '../charts/images/sbom.ts';
import type { Lockfile } from '../charts/images/sbom.ts';
import { krewManifest } from './release.ts';

const REPO = join(import.meta.dirname, '..');
const lock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as Lockfile;
const info = { version: '0.1.0', revision: 'abc', created: 1_700_000_000, source: 'https://github.com/sluice-dev/sluice' };

describe('SBOM', () => {
  test('production packages only: runtime dependencies in, dev tools out, platform-specific ones for linux/x64', () => {
    const paths = productionPackages(lock).map(([p]) => p);
    for (const dep of ['node_modules/commander', 'node_modules/@kubernetes/client-node', 'node_modules/@open-policy-agent/opa-wasm', 'node_modules/undici']) expect(paths).toContain(dep);
    for (const dev of ['node_modules/jest', 'node_modules/esbuild', 'node_modules/typescript', 'node_modules/eslint']) expect(paths).not.toContain(dev);
    expect(paths.filter((p) => p.startsWith('node_modules/@esbuild/'))).toEqual([]);
    const fake: Lockfile = {
      lockfileVersion: 3,
      packages: {
        '': {},
        'node_modules/a': { version: '1.0.0' },
        'node_modules/b': { version: '1.0.0', dev: true },
        'node_modules/c-darwin': { version: '1.0.0', optional: true, os: ['darwin'] },
        'node_modules/c-linux': { version: '1.0.0', optional: true, os: ['linux'], cpu: ['x64'] },
        'node_modules/a/node_modules/d': { version: '2.0.0' },
      },
    };
    expect(productionPackages(fake).map(([p]) => p)).toEqual(['node_modules/a', 'node_modules/a/node_modules/d', 'node_modules/c-linux']);
  });

  test('CycloneDX 1.5: the image, Node, the Debian packages and every npm package with its lockfile hash', () => {
    const debs = [{ name: 'libc6', version: '2.36-9+deb12u10', arch: 'amd64' }];
    const bom = cycloneDx({ component: 'webhook', info, lock, nodeVersion: 'v24.21.0', debs, digest: 'sha256:00' }) as {
      bomFormat: string;
      specVersion: string;
      serialNumber: string;
      metadata: { component: { name: string; type: string } };
      components: { name: string; version: string; purl: string; hashes?: { alg: string; content: string }[] }[];
    };
    expect([bom.bomFormat, bom.specVersion, bom.metadata.component]).toEqual(['CycloneDX', '1.5', expect.objectContaining({ name: 'sluice-webhook', type: 'container' })]);
    expect(bom.serialNumber).toMatch(/^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(cycloneDx({ component: 'webhook', info, lock, nodeVersion: 'v24.21.0', debs, digest: 'sha256:00' })).toEqual(bom);
    expect(bom.components).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'node', version: '24.21.0' }), expect.objectContaining({ name: 'libc6', purl: 'pkg:deb/debian/libc6@2.36-9%2Bdeb12u10?arch=amd64&distro=debian-12' })]));
    const commander = bom.components.find((c) => c.purl === `pkg:npm/commander@${lock.packages['node_modules/commander']!.version}`);
    const sri = lock.packages['node_modules/commander']!.integrity!;
    expect(commander?.hashes).toEqual([{ alg: 'SHA-512', content: Buffer.from(sri.slice('sha512-'.length), 'base64').toString('hex') }]);
    expect(bom.components.find((c) => c.purl.startsWith('pkg:npm/%40kubernetes/client-node@'))).toBeDefined();
  });

  test('apt candidates read from `apt-cache policy`', () => {
    const text = 'libc6:\n  Installed: (none)\n  Candidate: 2.36-9+deb12u10\n  Version table:\ngone:\n  Installed: (none)\n  Candidate: (none)\n';
    expect([...aptCandidates(text)]).toEqual([['libc6', '2.36-9+deb12u10']]);
  });
});

describe('krew manifest', () => {
  test('a Plugin with one platform per archive: selector, uri, sha256, bin', () => {
    const m = parseYaml(krewManifest('0.1.0', [{ os: 'linux', arch: 'amd64', uri: 'https://example.test/v0.1.0/a.tar.gz', sha256: 'f'.repeat(64) }])) as {
      apiVersion: string;
      kind: string;
      metadata: { name: string };
      spec: { version: string; shortDescription: string; platforms: { selector: unknown; uri: string; sha256: string; bin: string }[] };
    };
    expect([m.apiVersion, m.kind, m.metadata.name, m.spec.version]).toEqual(['krew.googlecontainertools.github.com/v1alpha2', 'Plugin', 'sluice', 'v0.1.0']);
    expect(m.spec.shortDescription.length).toBeLessThanOrEqual(60);
    expect(m.spec.platforms).toEqual([expect.objectContaining({ selector: { matchLabels: { os: 'linux', arch: 'amd64' } }, uri: 'https://example.test/v0.1.0/a.tar.gz', sha256: 'f'.repeat(64), bin: 'kubectl-sluice' })]);
  });
});
