// The RemoteBundleInstaller every remote source (ConfigMap, OCI) hands archives to, with real
// `opa build --signing-key` bundles: an archive is verified before it is compiled, the same bytes
// are handled once (a re-listed object or an unchanged manifest costs nothing, and a refused one is
// recorded once), a burst of updates compiles at most the first and the newest, a problem without
// an archive is recorded once per distinct problem, and without a key nothing remote is loaded.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, test } from '@jest/globals';
import { BundleError } from '../../../lib/src/policy/bundle-error.ts';
import { RemoteBundleInstaller, requireVerification } from '../../src/policy/bundle-remote.ts';
import type { RemoteBundleEvents } from '../../src/policy/bundle-remote.ts';
import { PolicyEngine } from '../../../lib/src/policy/engine.ts';
import { buildBundle, rsaKeyPair } from '../../../e2e/policy/signed-bundles.ts';
import type { KeyPair } from '../../../e2e/policy/signed-bundles.ts';
import { scratchDir } from '../../../testkit/policy/opa-build.ts';

const dir = scratchDir('sluice-remote-');
let key: KeyPair;
const b: Record<string, Buffer> = {};

function recorder(): { events: string[]; handlers: RemoteBundleEvents } {
  const events: string[] = [];
  return {
    events,
    handlers: {
      loaded: (meta, origin) => events.push(`loaded ${meta.revision} ${origin.version}`),
      failed: (err, origin) => events.push(`failed ${err.code}${origin ? ` ${origin.version}` : ''}`),
    },
  };
}

const verification = () => ({ algorithm: 'RS256' as const, publicKey: () => Promise.resolve(readFileSync(key.pub, 'utf8')) });

beforeAll(() => {
  key = rsaKeyPair(dir, 'k');
  for (const r of ['r-1', 'r-2', 'r-3', 'r-4']) b[r] = buildBundle(dir, r, true, key);
  b.unsigned = buildBundle(dir, 'u-1', true);
}, 60_000);

describe('RemoteBundleInstaller', () => {
  test('the same archive is handled once; a refused one is recorded once; the last good one stays', async () => {
    const engine = new PolicyEngine();
    const r = recorder();
    const installer = new RemoteBundleInstaller(engine, verification(), r.handlers);
    await installer.offer(b['r-1']!, { source: 's', version: 'v1' });
    await installer.offer(b['r-1']!, { source: 's', version: 'v1-relisted' });
    await installer.offer(b.unsigned!, { source: 's', version: 'v2' });
    await installer.offer(b.unsigned!, { source: 's', version: 'v3' });
    expect(r.events).toEqual(['loaded r-1 v1', 'failed bundle.unsigned v2']);
    expect(engine.revision).toBe('r-1');
    expect(installer.current?.version).toBe('v1');
    expect(installer.current?.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  test('a burst of updates compiles the first and the newest only', async () => {
    const r = recorder();
    const installer = new RemoteBundleInstaller(new PolicyEngine(), verification(), r.handlers);
    await Promise.all([installer.offer(b['r-1']!, { source: 's', version: '1' }), installer.offer(b['r-2']!, { source: 's', version: '2' }), installer.offer(b['r-3']!, { source: 's', version: '3' }), installer.offer(b['r-4']!, { source: 's', version: '4' })]);
    expect(r.events).toEqual(['loaded r-1 1', 'loaded r-4 4']);
  });

  test('a problem without an archive is recorded once until an archive comes; it never unloads the bundle', async () => {
    const engine = new PolicyEngine();
    const r = recorder();
    const installer = new RemoteBundleInstaller(engine, verification(), r.handlers);
    const gone = () => new BundleError('bundle.object_missing', 'gone');
    await installer.absent(gone());
    await installer.absent(gone());
    expect(engine.ready).toBe(false);
    await installer.offer(b['r-1']!, { source: 's', version: '1' });
    await installer.absent(gone());
    await installer.absent(gone());
    expect(engine.revision).toBe('r-1');
    expect(r.events).toEqual(['failed bundle.object_missing', 'loaded r-1 1', 'failed bundle.object_missing']);
  });

  test('no key, no remote bundle: a configuration error naming the setting', () => {
    expect(() => requireVerification(undefined, 'policy.configMap (a/b)')).toThrow(/policy\.verification: required with policy\.configMap/);
  });
});
