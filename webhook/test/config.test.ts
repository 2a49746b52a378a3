// Config is validated once: defaults applied, the result frozen, a bad value named by its field.
import { describe, expect, test } from '@jest/globals';
import { SchemaError } from '../../api/src/index.ts';
import { parseWebhookConfig, tokenFileName } from '../src/config.ts';
import { quantityValue, firstDifference } from '../src/spec-equality.ts';

describe('webhook config', () => {
  test('defaults follow the runtime contract', () => {
    const c = parseWebhookConfig({ sidecar: { image: 'img' } });
    expect(c.sidecar.proxyUID).toBe(1337);
    expect(c.sidecar.ports).toEqual({ transparent: 15001, proxy: 15080, dns: 15053, admin: 15090 });
    expect(c.server.port).toBe(8443);
    expect(c.guard.forbiddenCapabilities).toEqual(expect.arrayContaining(['NET_ADMIN', 'NET_RAW', 'SYS_ADMIN']));
    expect(Object.isFrozen(c.sidecar.ports)).toBe(true);
    expect(() => {
      (c.sidecar as { image: string }).image = 'other';
    }).toThrow(TypeError);
  });

  test.each([
    [{ sidecar: {} }, 'sidecar.image'],
    [{ sidecar: { image: 'i', ports: { admin: 70000 } } }, 'sidecar.ports.admin'],
    [{ sidecar: { image: 'i', ports: { proxy: 15001 } } }, 'the four ports must differ'],
    [{ sidecar: { image: 'i', resources: { requests: { cpu: 'lots' } } } }, 'sidecar.resources.requests.cpu'],
    [{ sidecar: { image: 'i', tokenAudiences: [{ audience: 'a', path: '../x' }] } }, 'sidecar.tokenAudiences.0.path'],
    [{ sidecar: { image: 'i', tokenAudiences: [{ audience: 'a', path: '..' }] } }, 'sidecar.tokenAudiences.0.path'],
    [{ sidecar: { image: 'i', tokenAudiences: [{ audience: 'a', path: '.' }] } }, 'sidecar.tokenAudiences.0.path'],
    [{ sidecar: { image: 'i', tokenAudiences: [{ audience: 'a/b' }, { audience: 'a:b' }] } }, 'distinct file names'],
    [{ sidecar: { image: 'i', proxyUID: 0 } }, 'sidecar.proxyUID'],
    [{ sidecar: { image: 'i', mounts: [{ name: 'a', secret: 's', configMap: 'c' }] } }, 'sidecar.mounts.0'],
    [{ sidecar: { image: 'i', mounts: [{ name: 'a' }] } }, 'sidecar.mounts.0'],
    [{ sidecar: { image: 'i', mounts: [{ name: 'Tokens', secret: 's' }] } }, 'sidecar.mounts.0'],
    [{ sidecar: { image: 'i', mounts: [{ name: 'a', secret: 's', items: [{ key: 'k', path: '../k' }] }] } }, 'sidecar.mounts.0'],
    [{ sidecar: { image: 'i', mounts: [{ name: 'a', secret: 's' }, { name: 'a', configMap: 'c' }] } }, 'mount names must be unique'],
    [{ sidecar: { image: 'i' }, guard: { forbidRoot: true } }, 'guard'],
  ])('rejects %j naming %s', (input, field) => {
    expect(() => parseWebhookConfig(input)).toThrow(SchemaError);
    expect(() => parseWebhookConfig(input)).toThrow(field);
  });

  test('token file names default to the audience made safe', () => {
    expect(tokenFileName({ audience: 'https://sts.example.com/x' })).toBe('https___sts.example.com_x');
    expect(tokenFileName({ audience: 'a', path: 'aws' })).toBe('aws');
  });
});

describe('spec equality', () => {
  test('quantities compare by value, everything else exactly', () => {
    expect(quantityValue('500m')).toBe(0.5);
    expect(quantityValue('1Gi')).toBe(2 ** 30);
    expect(quantityValue('1e3')).toBe(1000);
    expect(quantityValue('lots')).toBeUndefined();
    expect(firstDifference({ resources: { limits: { cpu: '0.5' } } }, { resources: { limits: { cpu: '500m' } } })).toBeUndefined();
    expect(firstDifference({ resources: { limits: { cpu: '1' } } }, { resources: { limits: { cpu: '500m' } } })).toBe('resources.limits.cpu');
    expect(firstDifference({ image: '0.5' }, { image: '500m' })).toBe('image');
    expect(firstDifference({ env: [{ a: 1 }, { a: 2 }] }, { env: [{ a: 1 }, { a: 3 }] })).toBe('env[1].a');
    expect(firstDifference({ x: [1] }, { x: [1, 2] })).toBe('x');
    expect(firstDifference({ x: 1, extra: true }, { x: 1 })).toBe('extra');
  });
});
