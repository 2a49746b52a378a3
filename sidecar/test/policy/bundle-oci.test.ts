// The pure parts of the OCI bundle client: which registry and repository a reference names (a host
// is required; Docker Hub's short names normalised), the registry's 401 challenge, and which pull
// secret entry belongs to the registry. Pulling itself runs against a real registry in
// e2e/policy/oci-bundle.test.ts.
import { describe, expect, test } from '@jest/globals';
import { dockerCredentials, parseChallenge, parseOciReference } from '../../../lib/src/policy/bundle-oci.ts';

describe('OCI references', () => {
  test('registry, repository, tag and digest', () => {
    expect(parseOciReference('registry.example.com:5000/acme/policy:prod')).toEqual({ registry: 'registry.example.com:5000', repository: 'acme/policy', tag: 'prod' });
    const digest = `sha256:${'a'.repeat(64)}`;
    expect(parseOciReference(`ghcr.io/acme/policy@${digest}`)).toEqual({ registry: 'ghcr.io', repository: 'acme/policy', digest });
    expect(parseOciReference('ghcr.io/acme/policy')).toEqual({ registry: 'ghcr.io', repository: 'acme/policy', tag: 'latest' });
    expect(parseOciReference('docker.io/opa-bundle:1')).toEqual({ registry: 'registry-1.docker.io', repository: 'library/opa-bundle', tag: '1' });
    expect(parseOciReference('localhost:5000/p:1').registry).toBe('localhost:5000');
  });

  test('a reference without a registry host, a bad digest or a bad path is refused naming the setting', () => {
    for (const bad of ['acme/policy:prod', 'policy', `ghcr.io/acme/policy@sha256:abc`, 'ghcr.io/Acme/Policy:1', 'ghcr.io/acme/../x:1', 'ghcr.io/acme/policy:bad tag']) {
      expect(() => parseOciReference(bad)).toThrow(/policy\.oci\.reference/);
    }
  });
});

describe('registry challenges and pull secrets', () => {
  test('a Bearer challenge with quoted and unquoted parameters', () => {
    expect(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:acme/policy:pull"')).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:acme/policy:pull' },
    });
    expect(parseChallenge('Basic realm=registry')).toEqual({ scheme: 'basic', params: { realm: 'registry' } });
  });

  test('the entry for the registry only, from auth or username/password; Docker Hub under its aliases', () => {
    const doc = JSON.stringify({
      auths: {
        'other.example': { auth: Buffer.from('x:y').toString('base64') },
        'https://registry.example.com/v1/': { auth: Buffer.from('robot:p:ss').toString('base64') },
        'https://index.docker.io/v1/': { username: 'hub', password: 'h' },
      },
    });
    expect(dockerCredentials(doc, 'registry.example.com')).toEqual({ username: 'robot', password: 'p:ss' });
    expect(dockerCredentials(doc, 'registry-1.docker.io')).toEqual({ username: 'hub', password: 'h' });
    expect(dockerCredentials(doc, 'ghcr.io')).toBeUndefined();
    expect(() => dockerCredentials('not json', 'ghcr.io')).toThrow(/pullSecretFile/);
  });
});
