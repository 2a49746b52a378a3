// With no policy.path the sidecar runs the default library built into its image (the same file
// `make policy` writes, at /app/policies/build/bundle.tar.gz there); a configured path never falls
// back to it, and a signing key without a path is a configuration error, not a silent default.
import { afterEach, describe, expect, test } from '@jest/globals';
import { join } from 'node:path';
import { SchemaError } from '../../../api/src/index.ts';
import { BUILTIN_BUNDLE, policySource } from '../../src/policy/builtin-bundle.ts';
import { startTestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import { defaultBundle, scratchDir } from '../../../testkit/policy/opa-build.ts';
import { POLICY_BUNDLE_FILE } from '../../../charts/images/image-spec.ts';

describe('where the policy comes from', () => {
  test('no path: the built-in bundle, which is the file the image ships', () => {
    expect(policySource({})).toEqual({ path: BUILTIN_BUNDLE, builtin: true, verification: undefined });
    expect(BUILTIN_BUNDLE).toBe(defaultBundle);
    expect(BUILTIN_BUNDLE.endsWith(`/${POLICY_BUNDLE_FILE}`)).toBe(true);
  });

  test('a path is used as given, with its key', () => {
    const s = policySource({ path: '/etc/sluice/policy/bundle.tar.gz', verification: { algorithm: 'ES256', publicKey: 'pem' } });
    expect(s).toMatchObject({ path: '/etc/sluice/policy/bundle.tar.gz', builtin: false, verification: { algorithm: 'ES256' } });
  });

  test('a key without a path is refused', () => {
    expect(() => policySource({ verification: { algorithm: 'RS256', publicKeyFile: '/k.pem' } })).toThrow(SchemaError);
  });
});

describe('a running sidecar', () => {
  let sidecar: TestSidecar | undefined;
  afterEach(async () => {
    await sidecar?.stop();
    sidecar = undefined;
  });

  test('without policy.path it is ready on the built-in default library', async () => {
    sidecar = await startTestSidecar({ config: { policy: { pollIntervalMs: 500 } } });
    expect(sidecar.engine.ready).toBe(true);
    expect(sidecar.engine.loaded?.source).toBe(BUILTIN_BUNDLE);
    expect((await fetch(`${sidecar.adminUrl}/readyz`)).status).toBe(200);
  });

  test('a configured path that has no bundle stays not ready; it never falls back to the built-in one', async () => {
    sidecar = await startTestSidecar({ bundle: join(scratchDir(), 'absent.tar.gz') });
    expect(sidecar.engine.ready).toBe(false);
    expect((await fetch(`${sidecar.adminUrl}/readyz`)).status).not.toBe(200);
  });
});
