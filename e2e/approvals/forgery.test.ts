// Forged approvals and laundered creators, tried as an attacker would against the real
// kube-apiserver with the shipped registrations: tokens are real TokenRequest tokens (bound to a pod
// as the kubelet's projected token is, or plain), users are the API server's own. Covers
// ApprovalRequests only from the sidecar of the pod they name (pod-bound token, pod, label, service
// account, creator copied from the pod, summary bound to the facts, only the owning sidecar
// expires), and the creator of a workload being the creator of its pods (Deployment → ReplicaSet →
// Pod made by a user standing for kube-controller-manager, as there is no controller-manager here).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import type { ApprovalRequest } from '../../api/src/index.ts';
import { ApprovalApi } from '../../lib/src/approvals/approval-api.ts';
import { draftApproval } from '../../sidecar/src/approvals/approval-draft.ts';
import { KubeRest, loadKubeConfig } from '../../lib/src/approvals/kube-rest.ts';
import { approvalLabelValue } from '../../lib/src/approvals/labels.ts';
import { eventually } from '../support/kube/admission.ts';
import { startTestSidecar } from '../../testkit/sidecar/test-sidecar.ts';
import { AGENT_CONTAINER, ApprovalEnv, NAMESPACE, SERVICE_ACCOUNT, serviceAccountToken, tokenKubeconfig } from './approval-env.ts';
import type { AgentPod } from './approval-env.ts';

jest.setTimeout(60_000);

const CONTROLLER = 'system:kube-controller-manager';
let env: ApprovalEnv;
let podA: AgentPod;
let podB: AgentPod;
let plainKubeconfig = '';
/** A plain token of another account of the namespace, which the chart's sidecar Role binds too (system:serviceaccounts:NS). */
let otherAccountKubeconfig = '';

/** What pod `p`'s sidecar would create for a held `git push` (draftApproval, the sidecar's own code). */
function heldPush(p: { name: string; uid: string }, over: { spec?: Partial<ApprovalRequest['spec']>; label?: string; name?: string } = {}): ApprovalRequest {
  const draft = draftApproval({
    summary: { method: 'POST', scheme: 'https', host: 'github.com', port: 443, path: '/acme/app.git/git-receive-pack', query: {}, headers: {}, ip_literal: false },
    facts: { git: { service: 'git-receive-pack', operation: 'push', phase: 'rpc', repo: 'acme/app', refs: [{ ref: 'refs/heads/main', old: '0'.repeat(40), new: '1'.repeat(40) }] } },
    decision: { allow: true, code: 'git.push_requires_approval', reason: 'push needs approval', require_approval: { reason: 'push needs approval', scope: 'ttl', ttl: '8h' } },
    pod: { namespace: NAMESPACE, name: p.name, uid: p.uid, serviceAccount: SERVICE_ACCOUNT },
    session: `session-${p.name}`,
    expiresAt: new Date(Date.now() + 10 * 60_000).toISOString(),
  });
  return {
    apiVersion: 'sluice.io/v1alpha1',
    kind: 'ApprovalRequest',
    metadata: { name: over.name ?? `${p.name}-${Math.random().toString(16).slice(2, 8)}`, labels: { 'sluice.io/pod': over.label ?? approvalLabelValue(p.name), 'sluice.io/session': approvalLabelValue(`session-${p.name}`) } },
    spec: { ...draft.spec, ...over.spec },
  };
}

function apiWith(kubeconfig: string): ApprovalApi {
  return new ApprovalApi(new KubeRest(loadKubeConfig({ kubeconfig })));
}

/** The refusal of a call: the API server's message (the webhook's, or RBAC's), or 'allowed'. */
async function refusal(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return 'allowed';
  } catch (err) {
    return (err as Error).message;
  }
}

beforeAll(async () => {
  env = await ApprovalEnv.start({
    users: {
      // An approver who is also a developer: she creates the Deployment.
      carol: { name: 'carol@example.com', groups: ['sluice-approvers', 'developers'] },
      // Stands for kube-controller-manager (there is none here): makes ReplicaSets, Jobs and pods.
      controller: { name: CONTROLLER, groups: ['system:masters'] },
    },
  });
  const workloads = { apiGroups: ['apps', 'batch'], resources: ['deployments', 'replicasets', 'jobs', 'cronjobs'], verbs: ['create', 'get', 'patch', 'update'] };
  await env.cluster.grant('carol', NAMESPACE, 'workload-author-carol', [workloads, { apiGroups: ['sluice.io'], resources: ['approvalrequests/status'], verbs: ['get', 'patch', 'update'] }, { apiGroups: ['sluice.io'], resources: ['approvalrequests'], verbs: ['get', 'list'] }]);
  await env.cluster.grant('creator', NAMESPACE, 'workload-author-alice', [workloads]);
  podA = await env.createAgentPod('coder-a');
  podB = await env.createAgentPod('coder-b');
  plainKubeconfig = join(env.cluster.dir, 'kubeconfig-plain-coder.yaml');
  writeFileSync(plainKubeconfig, tokenKubeconfig(env.cluster, await serviceAccountToken(env.cluster, NAMESPACE, SERVICE_ACCOUNT), NAMESPACE), { mode: 0o600 });
  await env.cluster.request('admin', 'POST', `/api/v1/namespaces/${NAMESPACE}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'builder' } });
  await env.cluster.grant('serviceaccount:builder', NAMESPACE, 'sluice-sidecar-builder', [{ apiGroups: ['sluice.io'], resources: ['approvalrequests'], verbs: ['create', 'get', 'list', 'watch', 'delete'] }]);
  otherAccountKubeconfig = join(env.cluster.dir, 'kubeconfig-plain-builder.yaml');
  writeFileSync(otherAccountKubeconfig, tokenKubeconfig(env.cluster, await serviceAccountToken(env.cluster, NAMESPACE, 'builder'), NAMESPACE), { mode: 0o600 });
}, 180_000);

afterAll(async () => {
  await env?.stop();
}, 60_000);

describe('the API server’s word for a pod-bound token', () => {
  test('a TokenRequest token bound to a pod authenticates with that pod’s name and uid in userInfo.extra; a plain one without', async () => {
    const whoami = async (kubeconfig: string) => new KubeRest(loadKubeConfig({ kubeconfig })).call<{ status: { userInfo: { username: string; extra?: Record<string, string[]> } } }>('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } });
    const bound = await whoami(podA.kubeconfig);
    expect(bound.status.userInfo.username).toBe(`system:serviceaccount:${NAMESPACE}:${SERVICE_ACCOUNT}`);
    expect(bound.status.userInfo.extra).toMatchObject({ 'authentication.kubernetes.io/pod-name': ['coder-a'], 'authentication.kubernetes.io/pod-uid': [podA.uid] });
    const plain = await whoami(plainKubeconfig);
    expect(plain.status.userInfo.extra?.['authentication.kubernetes.io/pod-name']).toBeUndefined();
  });
});

describe('ApprovalRequests only from the sidecar of the pod they name', () => {
  let real: ApprovalRequest;

  test('pod A’s sidecar asks for itself: admitted, creator copied from the pod, owned by the pod', async () => {
    real = await apiWith(podA.kubeconfig).create(NAMESPACE, heldPush(podA));
    expect(real.spec.creator).toMatchObject({ username: 'alice@example.com' });
    expect(real.metadata.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Pod', name: 'coder-a', uid: podA.uid }]);
  });

  test('a token bound to pod A cannot ask for pod B, by spec or by label', async () => {
    const a = apiWith(podA.kubeconfig);
    const forB = await refusal(a.create(NAMESPACE, heldPush(podB)));
    expect(forB).toContain('sluice approval.pod_mismatch: spec.pod.name: the creating token is bound to pod coder-a, not coder-b');
    const labelledForB = await refusal(a.create(NAMESPACE, heldPush(podA, { label: 'coder-b' })));
    expect(labelledForB).toContain(`sluice approval.pod_mismatch: metadata.labels[sluice.io/pod]`);
    expect((await env.api('admin').list(NAMESPACE, 'sluice.io/pod=coder-b')).items).toEqual([]);
  });

  test('a plain ServiceAccount token (not bound to a pod) cannot ask at all', async () => {
    const msg = await refusal(apiWith(plainKubeconfig).create(NAMESPACE, heldPush(podA)));
    expect(msg).toContain('sluice approval.not_pod_bound');
  });

  test('a forged spec.creator is overwritten with the pod’s stamp', async () => {
    const forged = heldPush(podA, { spec: { creator: { username: 'mallory@example.com', groups: ['sluice-approvers'] } } });
    const stored = await apiWith(podA.kubeconfig).create(NAMESPACE, forged);
    expect(stored.spec.creator?.username).toBe('alice@example.com');
    // So alice, the real creator, still cannot approve it.
    const alice = await refusal(env.api('creator').patchStatus(NAMESPACE, stored.metadata.name!, { state: 'Approved' }));
    expect(alice).toContain('sluice approval.self_approval');
  });

  test('a harmless summary over the facts of a push is refused', async () => {
    const push = heldPush(podA);
    const msg = await refusal(apiWith(podA.kubeconfig).create(NAMESPACE, { ...push, spec: { ...push.spec, request: { ...push.spec.request, summary: 'GET github.com/acme/app/info/refs' } } }));
    expect(msg).toContain('sluice approval.summary_mismatch');
  });

  test('pod B cannot expire (or mark) pod A’s request; pod A can; an approver still approves a real one', async () => {
    const b = apiWith(podB.kubeconfig);
    const expire = await refusal(b.patchStatus(NAMESPACE, real.metadata.name!, { state: 'Expired', reason: 'not yours' }));
    expect(expire).toContain('sluice approval.not_the_sidecar: status.state: only the sidecar of pod coder-a');
    expect(await refusal(b.patchStatus(NAMESPACE, real.metadata.name!, { state: 'Pending' }))).toContain('sluice approval.not_the_sidecar');
    expect(await refusal(apiWith(plainKubeconfig).patchStatus(NAMESPACE, real.metadata.name!, { state: 'Expired' }))).toContain('sluice approval.not_the_sidecar');
    expect((await env.api('admin').get(NAMESPACE, real.metadata.name!)).status?.state ?? 'Pending').toBe('Pending');

    const approved = await env.api('approver').patchStatus(NAMESPACE, real.metadata.name!, { state: 'Approved' });
    expect(approved.status).toMatchObject({ state: 'Approved', decidedBy: 'bob@example.com', scope: 'ttl', ttl: '8h' });

    const other = await apiWith(podA.kubeconfig).create(NAMESPACE, heldPush(podA));
    expect((await apiWith(podA.kubeconfig).patchStatus(NAMESPACE, other.metadata.name!, { state: 'Expired', reason: 'timeout' })).status?.state).toBe('Expired');
  });

  test('pod B (and a plain token of the account) cannot delete pod A’s request; pod A deletes its own', async () => {
    const own = await apiWith(podA.kubeconfig).create(NAMESPACE, heldPush(podA));
    const name = own.metadata.name!;
    expect(await refusal(apiWith(podB.kubeconfig).delete(NAMESPACE, name))).toContain('sluice approval.not_the_sidecar: metadata: only the sidecar of pod coder-a');
    expect(await refusal(apiWith(plainKubeconfig).delete(NAMESPACE, name))).toContain('sluice approval.not_the_sidecar');
    // Another account of the namespace (the sidecar Role binds them all), with a plain token: refused too.
    expect(await refusal(apiWith(otherAccountKubeconfig).delete(NAMESPACE, name))).toContain('sluice approval.not_the_sidecar');
    expect(await refusal(apiWith(podA.kubeconfig).delete(NAMESPACE, name, { uid: own.metadata.uid as string }))).toBe('allowed');
  });
});

describe('finished requests are cleaned up by their own sidecar', () => {
  test('the real sidecar of pod A deletes A’s finished requests after retainFinishedMs, keeps a live ttl grant and B’s', async () => {
    const a = apiWith(podA.kubeconfig);
    const denied = await a.create(NAMESPACE, heldPush(podA));
    await env.api('approver').patchStatus(NAMESPACE, denied.metadata.name!, { state: 'Denied', reason: 'no' });
    const granted = await a.create(NAMESPACE, heldPush(podA));
    await env.api('approver').patchStatus(NAMESPACE, granted.metadata.name!, { state: 'Approved' });
    const ofB = await apiWith(podB.kubeconfig).create(NAMESPACE, heldPush(podB));
    await apiWith(podB.kubeconfig).patchStatus(NAMESPACE, ofB.metadata.name!, { state: 'Expired' });
    const sidecar = await startTestSidecar({ config: { pod: { namespace: NAMESPACE, name: podA.name, uid: podA.uid, serviceAccount: SERVICE_ACCOUNT }, podInfoDir: podA.podInfoDir, approvals: { kubeconfig: podA.kubeconfig, retainFinishedMs: 500 } } });
    try {
      const admin = env.api('admin');
      await eventually('pod A’s denied request to be deleted', async () => ((await admin.list(NAMESPACE, 'sluice.io/pod=coder-a')).items.some((o) => o.metadata.name === denied.metadata.name) ? undefined : true));
      const left = (await admin.list(NAMESPACE, undefined)).items.map((o) => o.metadata.name);
      expect(left).toContain(granted.metadata.name);
      expect(left).toContain(ofB.metadata.name);
    } finally {
      await sidecar.stop();
    }
  });
});

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; uid: string; annotations?: Record<string, string>; labels?: Record<string, string>; ownerReferences?: unknown[] };
  spec: Record<string, unknown>;
}

const podTemplate = (image: string) => ({ metadata: { labels: { app: 'agent', 'sluice.io/inject': 'true' } }, spec: { serviceAccountName: SERVICE_ACCOUNT, containers: [{ ...AGENT_CONTAINER, image }] } });
const ownerRef = (o: Obj) => ({ apiVersion: o.apiVersion, kind: o.kind, name: o.metadata.name, uid: o.metadata.uid, controller: true, blockOwnerDeletion: true });
const creatorOf = (o: { metadata: { annotations?: Record<string, string> } }) => JSON.parse(o.metadata.annotations?.['sluice.io/creator'] ?? 'null') as { username: string } | null;

/** Any object, as the API server takes it: the raw answer (status and body). */
function post<T = Record<string, unknown>>(user: string, obj: Record<string, unknown>): Promise<{ status: number; body: T }> {
  return env.cluster.create<T>(user, obj as unknown as { apiVersion: string; kind: string });
}

async function create<T = Obj>(user: string, obj: Record<string, unknown>): Promise<T> {
  const res = await post<T>(user, obj);
  if (res.status !== 201) throw new Error(`${user} creating failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** A strategic merge patch, as `kubectl set image` / `kubectl scale` / `kubectl annotate` send. */
async function patch(user: string, path: string, body: unknown): Promise<{ status: number; body: Obj & { message?: string } }> {
  return env.cluster.request<Obj & { message?: string }>(user, 'PATCH', path, body, 'application/strategic-merge-patch+json');
}

describe('the creator of a workload is the creator of its pods', () => {
  let deployment: Obj;
  let replicaSet: Obj;
  let pod: Obj;
  const deployPath = `/apis/apps/v1/namespaces/${NAMESPACE}/deployments/coder`;

  test('carol’s Deployment → the controller’s ReplicaSet → the controller’s pod all carry carol', async () => {
    deployment = await create('carol', { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'coder', namespace: NAMESPACE }, spec: { replicas: 1, selector: { matchLabels: { app: 'agent' } }, template: podTemplate('ghcr.io/example/agent:1') } });
    expect(creatorOf(deployment)?.username).toBe('carol@example.com');
    // As the deployment controller does: the template, a hash label, the owner, the Deployment's annotations.
    replicaSet = await create('controller', {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: { name: 'coder-5d4f', namespace: NAMESPACE, annotations: deployment.metadata.annotations, ownerReferences: [ownerRef(deployment)] },
      spec: { replicas: 1, selector: { matchLabels: { app: 'agent', 'pod-template-hash': '5d4f' } }, template: { ...podTemplate('ghcr.io/example/agent:1'), metadata: { labels: { app: 'agent', 'sluice.io/inject': 'true', 'pod-template-hash': '5d4f' } } } },
    });
    expect(creatorOf(replicaSet)?.username).toBe('carol@example.com');
    const podSpec = replicaSet.spec.template as { metadata: object; spec: object };
    pod = await create('controller', { apiVersion: 'v1', kind: 'Pod', metadata: { ...podSpec.metadata, name: 'coder-5d4f-x1', namespace: NAMESPACE, ownerReferences: [ownerRef(replicaSet)] }, spec: podSpec.spec });
    expect(creatorOf(pod)).toMatchObject({ username: 'carol@example.com', groups: ['sluice-approvers', 'developers', 'system:authenticated'] });
    expect((pod.spec.initContainers as { name: string }[]).map((c) => c.name)).toContain('sluice-proxy');
  });

  test('an approver who created the Deployment cannot approve its pod’s push; another approver can', async () => {
    const sidecar = await env.adoptPod(pod.metadata.name, pod);
    const held = await apiWith(sidecar.kubeconfig).create(NAMESPACE, heldPush({ name: pod.metadata.name, uid: pod.metadata.uid }));
    expect(held.spec.creator?.username).toBe('carol@example.com');
    const carol = await refusal(env.api('carol').patchStatus(NAMESPACE, held.metadata.name!, { state: 'Approved' }));
    expect(carol).toContain(`sluice approval.self_approval: status.state: carol@example.com created pod ${pod.metadata.name}`);
    expect((await env.api('approver').patchStatus(NAMESPACE, held.metadata.name!, { state: 'Approved' })).status?.decidedBy).toBe('bob@example.com');
  });

  test('a developer updating the image changes the stamp; scaling does not', async () => {
    const updated = await patch('creator', deployPath, { spec: { template: { spec: { containers: [{ name: 'agent', image: 'ghcr.io/example/agent:2' }] } } } });
    expect(updated.status).toBe(200);
    expect(creatorOf(updated.body)?.username).toBe('alice@example.com');
    const scaled = await patch('carol', deployPath, { spec: { replicas: 2 } });
    expect(scaled.status).toBe(200);
    expect(creatorOf(scaled.body)?.username).toBe('alice@example.com');
  });

  test('nobody writes the stamp: not on the workload, not in its pod template', async () => {
    const forged = JSON.stringify({ username: 'mallory@example.com', groups: [] });
    const onWorkload = await patch('carol', deployPath, { metadata: { annotations: { 'sluice.io/creator': forged } } });
    expect(onWorkload.status).toBe(403);
    expect(onWorkload.body.message).toContain('sluice creator.forged: metadata.annotations[sluice.io/creator]');
    const inTemplate = await post('carol', { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'forged', namespace: NAMESPACE }, spec: { template: { metadata: { annotations: { 'sluice.io/creator': forged } }, spec: { restartPolicy: 'Never', containers: [AGENT_CONTAINER] } } } });
    expect(inTemplate.status).toBe(403);
    expect(JSON.stringify(inTemplate.body)).toContain('sluice creator.forged: spec.template.metadata.annotations[sluice.io/creator]');
  });

  test('CronJob → Job → pod: the controller’s Job and pod carry the CronJob’s creator', async () => {
    const cron = await create('carol', { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'nightly', namespace: NAMESPACE }, spec: { schedule: '0 3 * * *', jobTemplate: { spec: { template: { ...podTemplate('ghcr.io/example/agent:1'), spec: { ...podTemplate('x').spec, containers: [AGENT_CONTAINER], restartPolicy: 'Never' } } } } } });
    expect(creatorOf(cron)?.username).toBe('carol@example.com');
    const job = await create('controller', { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'nightly-1', namespace: NAMESPACE, ownerReferences: [ownerRef(cron)] }, spec: { template: { ...podTemplate('x'), spec: { ...podTemplate('x').spec, containers: [AGENT_CONTAINER], restartPolicy: 'Never' } } } });
    expect(creatorOf(job)?.username).toBe('carol@example.com');
    const jobPod = await create('controller', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'nightly-1-abc', namespace: NAMESPACE, labels: { 'sluice.io/inject': 'true' }, ownerReferences: [ownerRef(job)] }, spec: { serviceAccountName: SERVICE_ACCOUNT, restartPolicy: 'Never', containers: [AGENT_CONTAINER] } });
    expect(creatorOf(jobPod)?.username).toBe('carol@example.com');
  });

  test('StatefulSet → pod and DaemonSet → pod: the controller’s pod carries the workload’s creator', async () => {
    const selector = { matchLabels: { app: 'agent' } };
    const sts = await create('admin', { apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'sts', namespace: NAMESPACE }, spec: { serviceName: 'sts', selector, template: podTemplate('ghcr.io/example/agent:1') } });
    const ds = await create('admin', { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'ds', namespace: NAMESPACE }, spec: { selector, template: podTemplate('ghcr.io/example/agent:1') } });
    for (const [owner, name] of [[sts, 'sts-0'], [ds, 'ds-abcde']] as const) {
      expect(creatorOf(owner)?.username).toBe('admin@example.com');
      const p = await create('controller', { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: NAMESPACE, labels: { app: 'agent', 'sluice.io/inject': 'true' }, ownerReferences: [ownerRef(owner)] }, spec: { serviceAccountName: SERVICE_ACCOUNT, containers: [AGENT_CONTAINER] } });
      expect(creatorOf(p)?.username).toBe('admin@example.com');
    }
  });

  test('an ownerReference written by a user launders nothing: the user is the creator', async () => {
    const p = await create('creator', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'adopted', namespace: NAMESPACE, labels: { 'sluice.io/inject': 'true' }, ownerReferences: [ownerRef(replicaSet)] }, spec: { serviceAccountName: SERVICE_ACCOUNT, containers: [AGENT_CONTAINER] } });
    expect(creatorOf(p)?.username).toBe('alice@example.com');
  });

  test('a ReplicaSet a user made, adopted and written by the Deployment’s controller, keeps the user’s stamp', async () => {
    const rsPath = `/apis/apps/v1/namespaces/${NAMESPACE}/replicasets/alices`;
    const mine = await create('creator', { apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'alices', namespace: NAMESPACE, ownerReferences: [ownerRef(deployment)] }, spec: { replicas: 1, selector: { matchLabels: { app: 'agent', own: 'alice' } }, template: { ...podTemplate('ghcr.io/example/evil:1'), metadata: { labels: { app: 'agent', own: 'alice', 'sluice.io/inject': 'true' } } } } });
    expect(creatorOf(mine)?.username).toBe('alice@example.com');
    // The deployment controller copies the Deployment's annotations (carol's stamp) and scales it.
    const written = await patch('controller', rsPath, { metadata: { annotations: deployment.metadata.annotations }, spec: { replicas: 0 } });
    expect(written.status).toBe(200);
    expect(creatorOf(written.body)?.username).toBe('alice@example.com');
    const p = await create('controller', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'alices-x', namespace: NAMESPACE, labels: { app: 'agent', own: 'alice', 'sluice.io/inject': 'true' }, ownerReferences: [ownerRef(mine)] }, spec: { serviceAccountName: SERVICE_ACCOUNT, containers: [AGENT_CONTAINER] } });
    expect(creatorOf(p)?.username).toBe('alice@example.com');
  });

  test('a controller’s pod whose owner cannot be found is refused, not stamped with the controller', async () => {
    const ghost = { ...ownerRef(replicaSet), name: 'ghost', uid: '00000000-0000-0000-0000-000000000000' };
    const res = await post('controller', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'orphan', namespace: NAMESPACE, labels: { 'sluice.io/inject': 'true' }, ownerReferences: [ghost] }, spec: { serviceAccountName: SERVICE_ACCOUNT, containers: [AGENT_CONTAINER] } });
    expect(res.status).toBe(403);
    expect(JSON.stringify(res.body)).toContain('sluice creator.unresolved');
    const stale = { ...ownerRef(replicaSet), uid: '00000000-0000-0000-0000-000000000001' };
    const res2 = await post('controller', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'orphan2', namespace: NAMESPACE, labels: { 'sluice.io/inject': 'true' }, ownerReferences: [stale] }, spec: { serviceAccountName: SERVICE_ACCOUNT, containers: [AGENT_CONTAINER] } });
    expect(JSON.stringify(res2.body)).toContain('sluice creator.unresolved');
  });

  test('what an agent pod’s token creates belongs to whoever made the agent', async () => {
    // The agent's service account may create pods (the RBAC a platform typically gives an agent).
    await env.cluster.grant(`serviceaccount:${SERVICE_ACCOUNT}`, NAMESPACE, 'agent-pods', [{ apiGroups: [''], resources: ['pods'], verbs: ['create'] }]);
    const agent = new KubeRest(loadKubeConfig({ kubeconfig: podA.kubeconfig }));
    const made = await eventually('the agent pod to create a pod', async () => {
      try {
        return await agent.call<Obj>('POST', `/api/v1/namespaces/${NAMESPACE}/pods`, { body: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'spawned', labels: { 'sluice.io/inject': 'true' } }, spec: { serviceAccountName: SERVICE_ACCOUNT, containers: [AGENT_CONTAINER] } } });
      } catch (err) {
        if ((err as { code?: string }).code === 'SLUICE_APPROVAL_API_FORBIDDEN' && String(err).includes('cannot create')) return undefined;
        throw err;
      }
    });
    expect(creatorOf(made)?.username).toBe('alice@example.com');
  });
});

// Last: applies the API server's own policy, then unregisters the sluice approvals webhooks.
describe('with the approvals webhooks unregistered, the API server’s policy still refuses', () => {
  beforeAll(async () => {
    await env.applyApprovalsPolicy();
    // The policy answers before any webhook once the API server has compiled it.
    await eventually('the approvals policy to be in force', async () => {
      const msg = await refusal(apiWith(plainKubeconfig).create(NAMESPACE, heldPush(podA)));
      return msg.includes('ValidatingAdmissionPolicy') ? true : undefined;
    });
    for (const kind of ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations']) {
      const res = await env.cluster.request('admin', 'DELETE', `/apis/admissionregistration.k8s.io/v1/${kind}/sluice-approvals`);
      if (res.status !== 200) throw new Error(`unregistering ${kind} failed: ${res.status}`);
    }
  });

  test('a token bound to pod A asking for pod B, a plain token, a wrong label; and without the webhook’s owner stamp, even pod A itself', async () => {
    const a = apiWith(podA.kubeconfig);
    // Once the webhooks are gone, the only refusal left is the policy's own message.
    const own = await eventually('the webhooks to be gone and the policy alone to answer', async () => {
      const msg = await refusal(a.create(NAMESPACE, heldPush(podA)));
      return msg.includes('ValidatingAdmissionPolicy') ? msg : undefined;
    });
    expect(own).toContain('sluice approval.owner_missing');
    expect(await refusal(a.create(NAMESPACE, heldPush(podB)))).toContain('sluice approval.pod_mismatch: spec.pod');
    expect(await refusal(apiWith(plainKubeconfig).create(NAMESPACE, heldPush(podA)))).toContain('sluice approval.not_pod_bound');
    const labelled = heldPush(podA, { label: 'coder-b' });
    const withOwner = { ...labelled, metadata: { ...labelled.metadata, ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: podA.name, uid: podA.uid }] } };
    expect(await refusal(a.create(NAMESPACE, withOwner))).toContain('sluice approval.pod_mismatch: metadata.labels[sluice.io/pod]');
  });

  test('pod B can still neither expire nor delete pod A’s requests; pod A asks and expires its own', async () => {
    // Pod A's own request, with the owner reference the webhook would have added: the policy admits it.
    const push = heldPush(podA);
    const ofA = await apiWith(podA.kubeconfig).create(NAMESPACE, { ...push, metadata: { ...push.metadata, ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: podA.name, uid: podA.uid }] } });
    const b = apiWith(podB.kubeconfig);
    expect(await refusal(b.patchStatus(NAMESPACE, ofA.metadata.name!, { state: 'Expired' }))).toContain('sluice approval.not_the_sidecar');
    expect(await refusal(b.delete(NAMESPACE, ofA.metadata.name!))).toContain('sluice approval.not_the_sidecar');
    expect(await refusal(apiWith(plainKubeconfig).delete(NAMESPACE, ofA.metadata.name!))).toContain('sluice approval.not_the_sidecar');
    expect(await refusal(apiWith(otherAccountKubeconfig).delete(NAMESPACE, ofA.metadata.name!))).toContain('sluice approval.not_the_sidecar');
    expect(await refusal(apiWith(podA.kubeconfig).patchStatus(NAMESPACE, ofA.metadata.name!, { state: 'Expired' }))).toBe('allowed');
  });
});
