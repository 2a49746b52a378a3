// patchJson (json-patch.ts) writes exactly what JSON.stringify writes for every patch the injector
// plans — over every test pod, under configs that render differently, the first time and again
// from its cache of frozen values — and for values JSON.stringify treats specially.
import { readdirSync } from 'node:fs';
import { describe, expect, test } from '@jest/globals';
import { deepFreeze } from '../../api/src/index.ts';
import { planInjection } from '../src/inject.ts';
import { patchJson } from '../src/json-patch.ts';
import type { JsonPatchOp } from '../src/json-patch.ts';
import { TESTDATA, alice, baseConfigInput, loadPod, testConfig } from '../../testkit/webhook/fixtures.ts';

const configs = {
  default: testConfig(),
  cni: testConfig({ interception: { mode: 'cni' } }),
  pullSecrets: testConfig({ sidecar: { ...baseConfigInput.sidecar, imagePullSecrets: [{ name: 'corp-registry' }, { name: 'sluice-pull' }], extraEnv: [{ name: 'TZ', value: 'UTC' }] } }),
};
const pods = readdirSync(TESTDATA).filter((f) => f.endsWith('.yaml') && !f.endsWith('.patched.yaml'));

describe('patchJson is JSON.stringify, byte for byte', () => {
  test.each(Object.entries(configs))('every test pod under the %s config, twice', (_name, config) => {
    let patches = 0;
    for (const file of pods) {
      for (const namespaceOptedIn of [false, true]) {
        const plan = planInjection(loadPod(file), { namespace: 'agents', namespaceOptedIn, userInfo: alice }, config);
        if (plan.kind !== 'patch') continue;
        patches++;
        expect(patchJson(plan.patch)).toBe(JSON.stringify(plan.patch));
        expect(patchJson(plan.patch)).toBe(JSON.stringify(plan.patch));
      }
    }
    expect(patches).toBeGreaterThan(10);
  });

  test('values JSON.stringify treats specially', () => {
    const frozen = deepFreeze({ name: 'x', list: [1, 'a', null, { deep: true }] });
    const ops = [
      { op: 'add', path: '/a', value: { u: undefined, f: () => 1, s: Symbol('s'), n: null, nan: Number.NaN, inf: -Infinity, neg: -0, list: [undefined, () => 1, 1.5e300] } },
      { op: 'add', path: '/b', value: new Date(0) },
      { op: 'add', path: '/c', value: { toJSON: () => 'replaced' } },
      { op: 'add', path: '/d', value: Object.assign(Object.create(null), { k: 1 }) },
      { op: 'add', path: '/e', value: [frozen, frozen, { nested: frozen }] },
      { op: 'remove', path: '/f~1g\u2028"\\', value: undefined },
      { path: '/h', op: 'replace', value: '\ud800 unpaired' },
      { op: 'add', path: '/i', value: [frozen, { x: 1 }] },
      { op: 'add', path: '/j', value: frozen, extra: [frozen] },
      { op: 'add', path: '/k', value: deepFreeze([frozen, 'text', 2]) },
      { op: 'add', value: frozen, path: '/l' },
      { op: 'add', path: '/m', value: deepFreeze({ toJSON: (key: string) => `under ${key}` }) },
    ] as unknown as JsonPatchOp[];
    expect(patchJson(ops)).toBe(JSON.stringify(ops));
    expect(patchJson(ops)).toBe(JSON.stringify(ops));
    expect(patchJson([])).toBe('[]');
  });
});
