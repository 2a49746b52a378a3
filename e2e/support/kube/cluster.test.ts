// The kube harness itself, for the issues that build on it (approvals, credentials, chart): each
// test user is authenticated as who it claims, RBAC applies, kubeconfig files work with
// @kubernetes/client-node, service-account tokens can be minted for an audience, and stop()
// leaves nothing behind.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { CoreV1Api } from '@kubernetes/client-node';
import { KubeCluster, STANDARD_USERS } from './cluster.ts';

let cluster: KubeCluster;

beforeAll(async () => {
  cluster = await KubeCluster.start({ namespaces: [{ name: 'work', labels: { team: 'a' } }] });
  console.log(`kube harness start: ${JSON.stringify(cluster.timings)}`);
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
}, 60_000);

describe('kube harness', () => {
  test.each(Object.keys(STANDARD_USERS))('%s is authenticated with its name, uid and groups', async (handle) => {
    const res = await cluster.request<{ status: { userInfo: { username: string; uid: string; groups: string[] } } }>(handle, 'POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'SelfSubjectReview',
    });
    expect(res.status).toBe(201);
    const spec = STANDARD_USERS[handle as keyof typeof STANDARD_USERS];
    expect(res.body.status.userInfo).toEqual({ username: spec.name, uid: `uid-${handle}`, groups: [...spec.groups, 'system:authenticated'] });
  });

  test('RBAC applies: the outsider cannot create pods until granted', async () => {
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p1', namespace: 'work' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } };
    expect((await cluster.create('outsider', pod)).status).toBe(403);
    await cluster.grant('group:developers', 'work', 'devs', [{ apiGroups: [''], resources: ['pods'], verbs: ['create'] }]);
    expect((await cluster.create('creator', pod)).status).toBe(201);
    expect((await cluster.create('outsider', { ...pod, metadata: { ...pod.metadata, name: 'p2' } })).status).toBe(403);
  });

  test('namespaces get their labels and a default ServiceAccount; kubeconfigs work with client-node', async () => {
    const core = cluster.kubeConfig('admin').makeApiClient(CoreV1Api);
    const ns = await core.readNamespace({ name: 'work' });
    expect(ns.metadata?.labels).toMatchObject({ team: 'a', 'kubernetes.io/metadata.name': 'work' });
    const sa = await core.readNamespacedServiceAccount({ name: 'default', namespace: 'work' });
    expect(sa.metadata?.name).toBe('default');
    expect(existsSync(cluster.kubeconfigPath('approver'))).toBe(true);
  });

  test('TokenRequest mints an audience-bound token for a pod identity (credential providers use this)', async () => {
    const res = await cluster.request<{ status: { token: string } }>('admin', 'POST', '/api/v1/namespaces/work/serviceaccounts/default/token', {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { audiences: ['sts.amazonaws.com'], expirationSeconds: 600 },
    });
    expect(res.status).toBe(201);
    const claims = JSON.parse(Buffer.from(res.body.status.token.split('.')[1]!, 'base64url').toString()) as { aud: string[]; sub: string };
    expect(claims).toMatchObject({ aud: ['sts.amazonaws.com'], sub: 'system:serviceaccount:work:default' });
    const jwks = await cluster.request<{ keys: unknown[] }>('admin', 'GET', '/openid/v1/jwks');
    expect(jwks.body.keys).toHaveLength(1);
  });
});
