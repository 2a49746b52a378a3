// The injector's decisions beyond the golden files: when it refuses, which pods it never touches,
// and the corner cases of building on an existing pod.
import { describe, expect, test } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import fastJsonPatch from 'fast-json-patch';
import { ANNOTATION_CREATOR } from '../../api/src/index.ts';
import { creatorStamp, parseCreatorStamp } from '../src/creator.ts';
import { planInjection } from '../src/inject.ts';
import type { MutationContext } from '../src/inject.ts';
import { pointer } from '../src/json-patch.ts';
import { renderInjection } from '../src/render.ts';
import { alice, loadPod, testConfig } from '../../testkit/webhook/fixtures.ts';

const config = testConfig();
const ctx: MutationContext = { namespace: 'agents', namespaceOptedIn: false, userInfo: alice };
const violations = (pod: V1Pod, c: MutationContext = ctx) => {
  const plan = planInjection(pod, c, config);
  return plan.kind === 'deny' ? plan.violations.map((v) => `${v.rule} ${v.field}`) : plan.kind;
};

describe('planInjection refuses', () => {
  test('a user-supplied creator annotation', () => {
    const pod = loadPod('plain-pod.yaml');
    pod.metadata!.annotations = { [ANNOTATION_CREATOR]: creatorStamp({ username: 'ceo@example.com', groups: ['sluice-approvers'] }) };
    expect(violations(pod)).toEqual([`guard.creator_forged metadata.annotations[${ANNOTATION_CREATOR}]`]);
  });

  test('a creator annotation equal to the real stamp is accepted (it is the truth)', () => {
    const pod = loadPod('plain-pod.yaml');
    pod.metadata!.annotations = { [ANNOTATION_CREATOR]: creatorStamp(alice) };
    expect(violations(pod)).toBe('patch');
  });

  test('containers, volumes and mount paths that use sluice names', () => {
    const pod = loadPod('plain-pod.yaml');
    pod.spec!.containers.push({ name: 'sluice-proxy', image: 'fake' });
    pod.spec!.volumes!.push({ name: 'sluice-tokens', emptyDir: {} });
    pod.spec!.containers[0]!.volumeMounts!.push({ name: 'x', mountPath: '/var/run/sluice/trust' });
    expect(violations(pod)).toEqual([
      'guard.reserved_name spec.containers[0].volumeMounts[1].mountPath',
      'guard.reserved_name spec.containers[1].name',
      'guard.reserved_name spec.volumes[1]',
    ]);
  });

  test('a pre-placed sidecar that differs from the rendering', () => {
    const pod = loadPod('already-injected.yaml');
    pod.spec!.initContainers![1]!.image = 'ghcr.io/attacker/noop:1';
    expect(violations(pod)).toEqual(['guard.sidecar_modified spec.initContainers[1].image']);
  });
});

describe('planInjection selection', () => {
  test('kube-system and sluice’s own namespace are never injected, whatever the labels', () => {
    const pod = loadPod('plain-pod.yaml');
    expect(planInjection(pod, { ...ctx, namespace: 'kube-system' }, config)).toEqual({ kind: 'skip', reason: 'excluded-namespace' });
    expect(planInjection(pod, { ...ctx, namespace: 'sluice-system' }, config)).toEqual({ kind: 'skip', reason: 'excluded-namespace' });
  });

  test('opting out can be disabled by config', () => {
    const pod = loadPod('pod-opt-out.yaml');
    const strict = testConfig({ guard: { allowPodOptOut: false } });
    expect(planInjection(pod, { ...ctx, namespaceOptedIn: true }, config).kind).toBe('skip');
    expect(planInjection(pod, { ...ctx, namespaceOptedIn: true }, strict).kind).toBe('patch');
    // Outside an opted-in namespace the label still just means "not selected".
    expect(planInjection(pod, ctx, strict)).toEqual({ kind: 'skip', reason: 'opted-out' });
  });
});

describe('planInjection builds on partial state', () => {
  test('only the interception container present: the sidecar is added after it', () => {
    const pod = loadPod('minimal-no-lists.yaml');
    pod.spec!.initContainers = [structuredClone(renderInjection(config).initContainer)];
    const plan = planInjection(pod, ctx, config);
    if (plan.kind !== 'patch') throw new Error(plan.kind);
    const patched = fastJsonPatch.applyPatch(structuredClone(pod), plan.patch as fastJsonPatch.Operation[], true, false).newDocument;
    expect(patched.spec!.initContainers!.map((c) => c.name)).toEqual(['sluice-init', 'sluice-proxy']);
  });

  test('only the sidecar present: the interception container goes in front of it', () => {
    const pod = loadPod('minimal-no-lists.yaml');
    pod.spec!.initContainers = [structuredClone(renderInjection(config).sidecar), { name: 'setup', image: 'busybox' }];
    const plan = planInjection(pod, ctx, config);
    if (plan.kind !== 'patch') throw new Error(plan.kind);
    const patched = fastJsonPatch.applyPatch(structuredClone(pod), plan.patch as fastJsonPatch.Operation[], true, false).newDocument;
    expect(patched.spec!.initContainers!.map((c) => c.name)).toEqual(['sluice-init', 'sluice-proxy', 'setup']);
  });
});

describe('helpers', () => {
  test('JSON pointers escape "~" and "/"', () => {
    expect(pointer('metadata', 'annotations', 'sluice.io/creator')).toBe('/metadata/annotations/sluice.io~1creator');
    expect(pointer('a~b', 0, '-')).toBe('/a~0b/0/-');
  });

  test('the creator stamp has a fixed shape and reads back', () => {
    const stamp = creatorStamp({ groups: ['b', 'a'], username: 'u', uid: 'x' });
    expect(stamp).toBe('{"username":"u","uid":"x","groups":["b","a"]}');
    expect(parseCreatorStamp(stamp)).toEqual({ username: 'u', uid: 'x', groups: ['b', 'a'] });
    expect(creatorStamp({ username: 'sa' })).toBe('{"username":"sa","groups":[]}');
    expect(parseCreatorStamp('not json')).toBeUndefined();
    expect(parseCreatorStamp('{"user":"x"}')).toBeUndefined();
    expect(parseCreatorStamp(undefined)).toBeUndefined();
  });
});
