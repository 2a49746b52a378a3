// The demo's in-process approvals backend answers as a cluster would, through the same client the
// sidecar and `kubectl sluice` use (KubeRest over HTTPS with kubeconfig identities): no token is
// 401, RBAC refuses an outsider, the webhook's rules refuse a token bound to another pod and an
// approval by the pod's creator, a decision on a stale resourceVersion is a 409, a decision is
// stamped with the decider, and a watch from a resourceVersion delivers what happened after it.
// The demo depends on each; a backend that let any of them through would show a round trip no
// cluster would allow.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { APPROVAL_API_VERSION, APPROVAL_KIND, LABEL_APPROVAL_POD, approvalLabelValue, approvalSummaryLine } from '../../api/src/index.ts';
import type { ApprovalRequest } from '../../api/src/index.ts';
import { ApprovalApi } from '../../lib/src/approvals/approval-api.ts';
import { KubeRest, loadKubeConfig } from '../../lib/src/approvals/kube-rest.ts';
import type { WatchEvent } from '../../lib/src/approvals/kube-rest.ts';
import { DemoApprovalsApi } from '../../demo/approvals-api.ts';
import type { DemoPod } from '../../demo/approvals-api.ts';
import { mintLeafCertificate } from '../../sidecar/src/tls/leaf-certificates.ts';
import { createTestCa } from '../../testkit/sidecar/upstreams.ts';

const ALICE = { username: 'alice@example.com', groups: ['sluice-approvers'] };
const pod: DemoPod = { namespace: 'agents', name: 'coder-0', uid: randomUUID(), serviceAccount: 'coder', creator: { username: ALICE.username, groups: ALICE.groups } };
const dir = mkdtempSync(join(tmpdir(), 'sluice-demo-api-'));
let backend: DemoApprovalsApi;
const client = (kubeconfig: string) => new ApprovalApi(new KubeRest(loadKubeConfig({ kubeconfig }), 5000));
let sidecar: ApprovalApi;
let alice: ApprovalApi;
let bob: ApprovalApi;
let mallory: ApprovalApi;

function held(name: string): ApprovalRequest {
  const request = { method: 'POST', host: 'github.com', path: '/acme/app.git/git-receive-pack' };
  return {
    apiVersion: APPROVAL_API_VERSION,
    kind: APPROVAL_KIND,
    metadata: { name, namespace: pod.namespace, labels: { [LABEL_APPROVAL_POD]: approvalLabelValue(pod.name) } },
    spec: {
      pod: { namespace: pod.namespace, name: pod.name, uid: pod.uid },
      serviceAccount: pod.serviceAccount,
      session: 's-1',
      request: { ...request, summary: approvalSummaryLine(request) },
      code: 'git.push_requires_approval',
      reason: 'git push needs approval',
      requestedScope: 'once',
      fingerprint: name,
      expiresAt: new Date(Date.now() + 60_000).toISOString(),
    },
  };
}

beforeAll(async () => {
  const ca = await createTestCa();
  const cert = (await mintLeafCertificate(ca.ca, '127.0.0.1')).toString('pem');
  backend = await new DemoApprovalsApi(pod, { cert, key: ca.ca.leafKeyPem, caFile: ca.caFile }).start();
  sidecar = client(backend.sidecarKubeconfig(dir));
  alice = client(backend.userKubeconfig(dir, ALICE));
  bob = client(backend.userKubeconfig(dir, { username: 'bob@example.com', groups: ['sluice-approvers'] }));
  mallory = client(backend.userKubeconfig(dir, { username: 'mallory@example.com', groups: ['developers'] }));
});

afterAll(async () => {
  await backend.stop();
});

describe('the demo approvals backend', () => {
  test('no token is 401; an outsider is refused by RBAC; the sidecar may create in its namespace only', async () => {
    const anonymous = join(dir, 'anonymous.kubeconfig');
    writeFileSync(
      anonymous,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster: { server: backend.url, 'certificate-authority': loadKubeConfig({ kubeconfig: backend.userKubeconfig(dir, ALICE) }).getCurrentCluster()!.caFile } }],
        users: [{ name: 'u', user: { token: 'not-a-known-token' } }],
        contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'c',
      }),
    );
    await expect(client(anonymous).list(pod.namespace)).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_API_FORBIDDEN', status: 401 });
    await expect(mallory.list(pod.namespace)).rejects.toThrow('User "mallory@example.com" cannot list resource "approvalrequests" in API group "sluice.io" in the namespace "agents"');
    await expect(sidecar.create('team-b', { ...held('elsewhere'), metadata: { ...held('elsewhere').metadata, namespace: 'team-b' } })).rejects.toThrow('cannot create resource');
  });

  test('the webhook rules refuse a request the creating token is not bound to', async () => {
    const other = held('other-pod');
    other.spec.pod = { ...other.spec.pod, uid: randomUUID() };
    await expect(sidecar.create(pod.namespace, other)).rejects.toThrow(/admission webhook "approvals\.sluice\.io" denied the request: sluice approval\.pod_mismatch: spec\.pod\.uid/);
  });

  test('create stamps the pod’s creator and owner; the creator cannot approve; a stale version is a 409; the approver’s decision is stamped', async () => {
    const created = await sidecar.create(pod.namespace, held('push-1'));
    expect(created.spec.creator).toEqual(pod.creator);
    expect((created.metadata as { ownerReferences?: unknown[] }).ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Pod', name: pod.name, uid: pod.uid }]);
    const rv = created.metadata.resourceVersion as string;
    const pending = await sidecar.patchStatus(pod.namespace, 'push-1', { state: 'Pending' }, rv);
    await expect(alice.patchStatus(pod.namespace, 'push-1', { state: 'Approved' }, pending.metadata.resourceVersion as string)).rejects.toThrow(/approval\.self_approval/);
    await expect(bob.patchStatus(pod.namespace, 'push-1', { state: 'Approved' }, rv)).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_API_CONFLICT' });
    const approved = await bob.patchStatus(pod.namespace, 'push-1', { state: 'Approved', decidedBy: 'someone-else' }, pending.metadata.resourceVersion as string);
    expect(approved.status).toMatchObject({ state: 'Approved', decidedBy: 'bob@example.com', decidedByGroups: ['sluice-approvers', 'system:authenticated'], scope: 'once' });
    await expect(bob.patchStatus(pod.namespace, 'push-1', { state: 'Denied', reason: 'changed my mind' })).rejects.toThrow(/approval\.already_decided/);
  });

  test('a watch from a resourceVersion delivers what came after it, filtered by label selector', async () => {
    const start = (await sidecar.list(pod.namespace)).resourceVersion;
    const events: WatchEvent<ApprovalRequest>[] = [];
    await sidecar.create(pod.namespace, held('push-2'));
    const handle = await sidecar.watch(pod.namespace, { labelSelector: `${LABEL_APPROVAL_POD}=${approvalLabelValue(pod.name)}`, resourceVersion: start }, (e) => events.push(e));
    const none = await sidecar.watch(pod.namespace, { labelSelector: `${LABEL_APPROVAL_POD}=someone-else`, resourceVersion: start }, (e) => events.push(e));
    const latest = await sidecar.get(pod.namespace, 'push-2');
    await bob.patchStatus(pod.namespace, 'push-2', { state: 'Denied', reason: 'no' }, latest.metadata.resourceVersion as string);
    for (let i = 0; i < 50 && events.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    handle.abort();
    none.abort();
    expect(events.map((e) => `${e.type} ${e.object.metadata.name} ${e.object.status?.state ?? '-'}`)).toEqual(['ADDED push-2 -', 'MODIFIED push-2 Denied']);
  });
});
