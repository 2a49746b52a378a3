// Pod Security against the real API server (its PodSecurity admission plugin, no node needed): in
// CNI mode the pod sluice injects is admitted by a namespace that enforces "restricted"; in init
// mode the same agent pod is refused for sluice-init's root and NET_ADMIN/NET_RAW (issue 19).
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import fastJsonPatch from 'fast-json-patch';
import { planInjection } from '../../webhook/src/inject.ts';
import { alice, loadPod, testConfig } from '../../testkit/webhook/fixtures.ts';
import { KubeCluster } from '../support/kube/cluster.ts';

let cluster: KubeCluster;
beforeAll(async () => {
  cluster = await KubeCluster.start({ namespaces: [{ name: 'agents', labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } }] });
}, 120_000);
afterAll(async () => {
  await cluster?.stop();
});

function injected(mode: 'init' | 'cni'): V1Pod {
  const pod = loadPod('cni-mode.yaml');
  const plan = planInjection(pod, { namespace: 'agents', namespaceOptedIn: false, userInfo: alice }, testConfig({ interception: { mode } }));
  if (plan.kind !== 'patch') throw new Error(`expected a patch, got ${plan.kind}`);
  return fastJsonPatch.applyPatch(structuredClone(pod), structuredClone(plan.patch) as fastJsonPatch.Operation[], true, false).newDocument;
}

describe('Pod Security "restricted" in an agent namespace', () => {
  test('CNI mode: the injected pod is admitted', async () => {
    const res = await cluster.create('admin', { ...injected('cni'), apiVersion: 'v1', kind: 'Pod' }, 'dryRun=All');
    expect(res.body).toMatchObject({ kind: 'Pod' });
    expect(res.status).toBe(201);
  });

  test('init mode: the same pod is refused for sluice-init (root, NET_ADMIN, NET_RAW)', async () => {
    const res = await cluster.create<{ message: string }>('admin', { ...injected('init'), apiVersion: 'v1', kind: 'Pod' }, 'dryRun=All');
    expect(res.status).toBe(403);
    expect(res.body.message).toMatch(/violates PodSecurity "restricted:latest"/);
    expect(res.body.message).toMatch(/container "sluice-init" must not include "NET_ADMIN", "NET_RAW"/);
  });
});
