// The approvals RoleBindings the webhook creates in labelled namespaces the chart does not list are
// taken back when a namespace stops being an agent namespace, against the real kube-apiserver with
// exactly the chart's ClusterRoles and the webhook's grants (`helm template`): the ensurer and the
// cleaner run with the webhook ServiceAccount's token. Unlabelled → its two bindings deleted; still
// labelled, or unlabelled while a pod sluice injected still runs there → kept (until the pod is
// gone); a binding of the same name sluice did not make, the chart's own per-namespace bindings
// and anything else → never touched; a namespace labelled again gets its bindings back at the next
// injection, at once. With the chart's grants the webhook can delete no other RoleBinding, and lists
// pods only in the namespaces where it made bindings (its own third binding there).
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { AgentRbacCleaner, AgentRbacEnsurer } from '../../webhook/src/agent-rbac.ts';
import { parseWebhookConfig } from '../../webhook/src/config.ts';
import type { WebhookConfig } from '../../webhook/src/config.ts';
import { kubeAccess } from '../../webhook/src/kube-reader.ts';
import { template } from '../../charts/test/support/helm.ts';
import type { K8sObject } from '../../charts/test/support/helm.ts';
import { KubeCluster } from '../support/kube/cluster.ts';
import { serviceAccountToken, tokenKubeconfig } from '../support/kube/tokens.ts';

jest.setTimeout(90_000);

const RBAC = '/apis/rbac.authorization.k8s.io/v1';
const WEBHOOK_NS = 'sluice-system';
const LISTED = 'agents';
const OURS = ['sluice-approvers-injected', 'sluice-sidecar-injected', 'sluice-webhook-injected'];

let cluster: KubeCluster;
let config: WebhookConfig;
let ensurer: AgentRbacEnsurer;
let cleaner: AgentRbacCleaner;
let webhookToken: string;

const bindingsIn = async (ns: string): Promise<string[]> =>
  ((await cluster.request<{ items: { metadata: { name: string } }[] }>('admin', 'GET', `${RBAC}/namespaces/${ns}/rolebindings`)).body.items ?? []).map((b) => b.metadata.name).sort();

async function label(ns: string, value: string | null): Promise<void> {
  const res = await cluster.request('admin', 'PATCH', `/api/v1/namespaces/${ns}`, { metadata: { labels: { 'sluice.io/inject': value } } }, 'application/merge-patch+json');
  expect(res.status).toBe(200);
}

async function injectedPod(ns: string, name: string): Promise<void> {
  const res = await cluster.request('admin', 'POST', `/api/v1/namespaces/${ns}/pods`, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { 'sluice.io/injected': 'true' } },
    spec: { containers: [{ name: 'agent', image: 'busybox' }] },
  });
  expect(res.status).toBe(201);
}

beforeAll(async () => {
  const names = ['team-a', 'team-b', 'team-c', 'team-d', 'team-e'];
  cluster = await KubeCluster.start({ namespaces: [...names.map((name) => ({ name, labels: { 'sluice.io/inject': 'true' } })), { name: LISTED, labels: { 'sluice.io/inject': 'true' } }, { name: WEBHOOK_NS }] });
  const chart = await template({ agents: { namespaces: [LISTED] } });
  await cluster.request('admin', 'POST', `/api/v1/namespaces/${WEBHOOK_NS}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'sluice-webhook' } });
  // The chart's ClusterRoles for approvals and the webhook's agent-RBAC grants, and the listed namespace's own bindings.
  const wanted = (o: K8sObject) =>
    (['ClusterRole', 'ClusterRoleBinding'].includes(o.kind) && ['sluice-sidecar', 'sluice-approver', 'sluice-webhook-agent-rbac', 'sluice-webhook-pod-reader'].includes(o.metadata.name)) || (o.metadata.namespace === LISTED && ['Role', 'RoleBinding'].includes(o.kind));
  for (const o of chart.filter(wanted)) {
    const res = await cluster.create('admin', o);
    if (res.status !== 201) throw new Error(`${o.kind} ${o.metadata.name} refused: ${JSON.stringify(res.body)}`);
  }
  config = parseWebhookConfig(parseYaml((chart.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'sluice-webhook') as K8sObject & { data: { 'config.yaml': string } }).data['config.yaml']));
  webhookToken = await serviceAccountToken(cluster, WEBHOOK_NS, 'sluice-webhook');
  const kubeconfig = join(cluster.dir, 'kubeconfig-webhook.yaml');
  writeFileSync(kubeconfig, tokenKubeconfig(cluster, webhookToken, WEBHOOK_NS), { mode: 0o600 });
  const access = kubeAccess({ kubeconfig, timeoutMs: 2000 });
  ensurer = new AgentRbacEnsurer(config.agentRbac!, config.approvals, access);
  cleaner = new AgentRbacCleaner(config.agentRbac!, access, ensurer);
  // As the first injection in each namespace does (RBAC for a fresh binding applies a moment later: retry).
  for (const ns of names) {
    for (let i = 0; ; i++) {
      try {
        await ensurer.ensure(ns);
        break;
      } catch (err) {
        if (i > 50) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    expect(await bindingsIn(ns)).toEqual([...OURS].sort());
  }
});

afterAll(async () => {
  await cleaner?.stop();
  await cluster?.stop();
});

describe('approvals RoleBindings of namespaces that stop being agent namespaces', () => {
  test('nothing is removed while every namespace is labelled; the chart\u2019s own bindings are not the webhook\u2019s', async () => {
    const listedBefore = await bindingsIn(LISTED);
    expect(listedBefore.length).toBeGreaterThan(0);
    const report = await cleaner.sweep();
    expect(report.removed).toEqual([]);
    expect(await bindingsIn(LISTED)).toEqual(listedBefore);
  });

  test('the label removed: both bindings deleted; the label back: the next injection re-creates them at once', async () => {
    await label('team-a', null);
    await label('team-b', 'false');
    const report = await cleaner.sweep();
    expect(report.removed.sort()).toEqual([...OURS.map((n) => `team-a/${n}`), ...OURS.map((n) => `team-b/${n}`)]);
    expect(await bindingsIn('team-a')).toEqual([]);
    expect(await bindingsIn('team-b')).toEqual([]);
    expect(await bindingsIn('team-c')).toEqual([...OURS].sort());
    // The ensurer had team-a cached as ensured for recheckSeconds; the cleaner told it otherwise.
    await label('team-a', 'true');
    await ensurer.ensure('team-a');
    expect(await bindingsIn('team-a')).toEqual([...OURS].sort());
  });

  test('unlabelled while a pod sluice injected still runs there: kept, then removed once the pod is gone', async () => {
    await injectedPod('team-c', 'coder-0');
    await label('team-c', null);
    const kept = await cleaner.sweep();
    expect(kept.removed).toEqual([]);
    expect(kept.kept).toContainEqual({ namespace: 'team-c', reason: 'pods sluice injected still run there' });
    expect(await bindingsIn('team-c')).toEqual([...OURS].sort());
    expect((await cluster.request('admin', 'DELETE', '/api/v1/namespaces/team-c/pods/coder-0?gracePeriodSeconds=0')).status).toBe(200);
    const removed = await cleaner.sweep();
    expect(removed.removed.sort()).toEqual(OURS.map((n) => `team-c/${n}`));
  });

  test('only what the webhook made: a binding of the same name without its label, and every other binding, stay', async () => {
    // team-d: the webhook's sidecar binding replaced by someone's own of that name (no managed-by label); another binding beside it.
    expect((await cluster.request('admin', 'DELETE', `${RBAC}/namespaces/team-d/rolebindings/sluice-sidecar-injected`)).status).toBe(200);
    for (const name of ['sluice-sidecar-injected', 'team-own']) {
      const res = await cluster.request('admin', 'POST', `${RBAC}/namespaces/team-d/rolebindings`, {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name, labels: { 'app.kubernetes.io/part-of': 'sluice' } },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'sluice-sidecar' },
        subjects: [{ kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: 'system:serviceaccounts:team-d' }],
      });
      expect(res.status).toBe(201);
    }
    await label('team-d', null);
    const report = await cleaner.sweep();
    expect(report.removed.sort()).toEqual(['team-d/sluice-approvers-injected', 'team-d/sluice-webhook-injected']);
    expect(await bindingsIn('team-d')).toEqual(['sluice-sidecar-injected', 'team-own']);
    // And with the chart's grants the webhook could not have deleted them anyway (delete only by its names),
    // nor list pods anywhere but where its pod-reader binding is (gone from team-d now; still in team-e).
    const del = await cluster.requestWithToken(webhookToken, 'DELETE', `${RBAC}/namespaces/team-d/rolebindings/team-own`);
    expect(del.status).toBe(403);
    expect((await cluster.requestWithToken(webhookToken, 'GET', '/api/v1/pods')).status).toBe(403);
    expect((await cluster.requestWithToken(webhookToken, 'GET', '/api/v1/namespaces/team-d/pods')).status).toBe(403);
    expect((await cluster.requestWithToken(webhookToken, 'GET', `/api/v1/namespaces/${LISTED}/pods`)).status).toBe(403);
    expect((await cluster.requestWithToken(webhookToken, 'GET', '/api/v1/namespaces/team-e/pods')).status).toBe(200);
  });

  test('the periodic cleaner (what the webhook starts, every cleanupSeconds) removes them without being asked', async () => {
    const periodic = new AgentRbacCleaner({ ...config.agentRbac!, cleanupSeconds: 1 }, kubeAccess({ kubeconfig: join(cluster.dir, 'kubeconfig-webhook.yaml'), timeoutMs: 2000 }), ensurer);
    periodic.start();
    try {
      await label('team-e', null);
      const started = Date.now();
      while ((await bindingsIn('team-e')).length && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 200));
      expect(await bindingsIn('team-e')).toEqual([]);
    } finally {
      await periodic.stop();
    }
  });
});
