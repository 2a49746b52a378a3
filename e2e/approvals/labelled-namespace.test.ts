// Approvals in a namespace that only carries the injection label (not in the chart's
// agents.namespaces), against the real kube-apiserver and the real webhook process: injecting the
// first pod makes the webhook create the namespace's RoleBindings to the sidecar and approver
// ClusterRoles — with its own ServiceAccount holding only what the chart grants it (create on
// rolebindings, get/update on the two names, bind on the two ClusterRoles) — then the pod's
// sidecar creates and watches its ApprovalRequest, an approver approves it, and a ServiceAccount of
// another namespace still cannot read it. Before the change the first create was refused (403).
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import type { ApprovalRequest } from '../../api/src/index.ts';
import { ApprovalApi } from '../../lib/src/approvals/approval-api.ts';
import { draftApproval } from '../../sidecar/src/approvals/approval-draft.ts';
import { KubeRest, loadKubeConfig } from '../../lib/src/approvals/kube-rest.ts';
import type { WatchHandle } from '../../lib/src/approvals/kube-rest.ts';
import { approvalLabelValue } from '../../lib/src/approvals/labels.ts';
import { eventually, pointWebhooksAt, readManifests } from '../support/kube/admission.ts';
import { KubeCluster } from '../support/kube/cluster.ts';
import { serviceAccountToken, tokenKubeconfig } from '../support/kube/tokens.ts';
import { startWebhookProcess } from '../webhook/webhook-process.ts';
import type { WebhookProcess } from '../webhook/webhook-process.ts';
import { AGENT_CONTAINER } from './approval-env.ts';

jest.setTimeout(90_000);

const ROOT = join(import.meta.dirname, '..', '..');
const MANIFESTS = join(ROOT, 'webhook', 'manifests');
const CLI = join(ROOT, 'cli', 'bin', 'kubectl-sluice.js');
const TEAM = 'team-unlisted';
const OTHER = 'elsewhere';
const WEBHOOK_NS = 'sluice-system';
const SA = 'coder';
const RBAC = '/apis/rbac.authorization.k8s.io/v1';
const REF = { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole' };

// The chart's ClusterRoles (templates/agent-rbac.yaml and approver-clusterrole.yaml), by name.
const SIDECAR_ROLE = { name: 'sluice-sidecar', rules: [
  { apiGroups: ['sluice.io'], resources: ['approvalrequests'], verbs: ['create', 'get', 'list', 'watch', 'delete'] },
  { apiGroups: ['sluice.io'], resources: ['approvalrequests/status'], verbs: ['get', 'patch'] },
] };
const APPROVER_ROLE = { name: 'sluice-approver', rules: [
  { apiGroups: ['sluice.io'], resources: ['approvalrequests'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['sluice.io'], resources: ['approvalrequests/status'], verbs: ['get', 'update', 'patch'] },
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] },
] };
const BINDINGS = { sidecar: 'sluice-sidecar-injected', approvers: 'sluice-approvers-injected' };
// What the chart grants the webhook for this (templates/webhook-rbac.yaml), and nothing more.
const WEBHOOK_AGENT_RBAC = [
  { apiGroups: ['rbac.authorization.k8s.io'], resources: ['rolebindings'], verbs: ['create'] },
  { apiGroups: ['rbac.authorization.k8s.io'], resources: ['rolebindings'], resourceNames: [BINDINGS.sidecar, BINDINGS.approvers], verbs: ['get', 'update', 'delete'] },
  { apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterroles'], resourceNames: [SIDECAR_ROLE.name, APPROVER_ROLE.name], verbs: ['bind'] },
  // The cleanup of namespaces that stop being agent namespaces (e2e/approvals/agent-rbac-cleanup.test.ts;
  // its per-namespace pod reader binding is not configured here).
  { apiGroups: ['rbac.authorization.k8s.io'], resources: ['rolebindings'], verbs: ['list'] },
  { apiGroups: [''], resources: ['namespaces'], verbs: ['get'] },
];

let cluster: KubeCluster;
let webhook: WebhookProcess;
const watches: WatchHandle[] = [];

async function must(path: string, body: unknown): Promise<void> {
  const res = await cluster.request('admin', 'POST', path, body);
  if (res.status !== 201) throw new Error(`POST ${path} refused: ${JSON.stringify(res.body)}`);
}

async function clusterRole(name: string, rules: unknown[]): Promise<void> {
  await must(`${RBAC}/clusterroles`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name }, rules });
}

async function clusterRoleBinding(name: string, role: string, subjects: unknown[]): Promise<void> {
  await must(`${RBAC}/clusterrolebindings`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name }, roleRef: { ...REF, name: role }, subjects });
}

function kubeconfigFile(name: string, token: string, namespace: string): string {
  const path = join(cluster.dir, `kubeconfig-${name}.yaml`);
  writeFileSync(path, tokenKubeconfig(cluster, token, namespace), { mode: 0o600 });
  return path;
}

const apiWith = (kubeconfig: string) => new ApprovalApi(new KubeRest(loadKubeConfig({ kubeconfig })));

async function refusal(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return 'allowed';
  } catch (err) {
    return (err as Error).message;
  }
}

function heldPush(pod: { name: string; uid: string }): ApprovalRequest {
  const draft = draftApproval({
    summary: { method: 'POST', scheme: 'https', host: 'github.com', port: 443, path: '/acme/app.git/git-receive-pack', query: {}, headers: {}, ip_literal: false },
    facts: { git: { service: 'git-receive-pack', operation: 'push', phase: 'rpc', repo: 'acme/app', refs: [{ ref: 'refs/heads/main', old: '0'.repeat(40), new: '1'.repeat(40) }] } },
    decision: { allow: true, code: 'git.push_requires_approval', reason: 'push needs approval', require_approval: { reason: 'push needs approval', scope: 'ttl', ttl: '8h' } },
    pod: { namespace: TEAM, name: pod.name, uid: pod.uid, serviceAccount: SA },
    session: `session-${pod.name}`,
    expiresAt: new Date(Date.now() + 10 * 60_000).toISOString(),
  });
  return {
    apiVersion: 'sluice.io/v1alpha1',
    kind: 'ApprovalRequest',
    metadata: { name: `${pod.name}-push`, labels: { 'sluice.io/pod': approvalLabelValue(pod.name), 'sluice.io/session': approvalLabelValue(`session-${pod.name}`) } },
    spec: draft.spec,
  };
}

function cli(user: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args, '--kubeconfig', cluster.kubeconfigPath(user)], { encoding: 'utf8', env: { ...process.env, KUBECONFIG: '' } }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  cluster = await KubeCluster.start({ namespaces: [{ name: TEAM, labels: { 'sluice.io/inject': 'true' } }, { name: OTHER }, { name: WEBHOOK_NS }] });
  for (const crd of readManifests(join(ROOT, 'api', 'crds', 'approvalrequests.sluice.io.yaml'))) {
    const res = await cluster.create('admin', crd);
    if (res.status !== 201) throw new Error(`CRD refused: ${JSON.stringify(res.body)}`);
  }
  await eventually('the ApprovalRequest CRD to be served', async () => ((await cluster.request('admin', 'GET', `/apis/sluice.io/v1alpha1/namespaces/${TEAM}/approvalrequests`)).status === 200 ? true : undefined));
  for (const [ns, name] of [[TEAM, SA], [OTHER, 'intruder'], [WEBHOOK_NS, 'sluice-webhook']] as const) {
    await must(`/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name } });
  }
  await cluster.grant('creator', TEAM, 'pod-author', [{ apiGroups: [''], resources: ['pods'], verbs: ['create', 'get'] }]);
  await clusterRole(SIDECAR_ROLE.name, SIDECAR_ROLE.rules);
  await clusterRole(APPROVER_ROLE.name, APPROVER_ROLE.rules);

  // The webhook's identity: the shipped reader ClusterRole plus the agent-RBAC rules, nothing else.
  const webhookSubject = [{ kind: 'ServiceAccount', name: 'sluice-webhook', namespace: WEBHOOK_NS }];
  const [reader] = readManifests(join(MANIFESTS, 'reader-clusterrole.yaml'));
  await must(`${RBAC}/clusterroles`, reader);
  await clusterRoleBinding(reader!.metadata.name, reader!.metadata.name, webhookSubject);
  await clusterRole('sluice-webhook-agent-rbac', WEBHOOK_AGENT_RBAC);
  await clusterRoleBinding('sluice-webhook-agent-rbac', 'sluice-webhook-agent-rbac', webhookSubject);
  const webhookKubeconfig = kubeconfigFile('sluice-webhook', await serviceAccountToken(cluster, WEBHOOK_NS, 'sluice-webhook'), WEBHOOK_NS);
  webhook = await startWebhookProcess(cluster.ca, {
    injectorVersion: 'e2e',
    namespace: WEBHOOK_NS,
    sidecar: { image: 'ghcr.io/sluice-dev/sluice:e2e' },
    approvals: { approverGroups: ['sluice-approvers'], maxTTL: '8h' },
    agentRbac: { sidecar: { clusterRole: SIDECAR_ROLE.name, bindingName: BINDINGS.sidecar }, approvers: { clusterRole: APPROVER_ROLE.name, bindingName: BINDINGS.approvers } },
    kube: { kubeconfig: webhookKubeconfig },
  });
  for (const c of ['mutating-webhook.yaml', 'validating-webhook.yaml', 'approvals-webhook.yaml', 'workloads-webhook.yaml'].flatMap((f) => readManifests(join(MANIFESTS, f)))) {
    const res = await cluster.create('admin', pointWebhooksAt(c, webhook.baseUrl, cluster.ca.certPem));
    if (res.status !== 201) throw new Error(`webhook registration refused: ${JSON.stringify(res.body)}`);
  }
}, 120_000);

afterAll(async () => {
  for (const w of watches) w.abort();
  await webhook?.stop();
  await cluster?.stop();
});

describe('a labelled namespace that agents.namespaces does not list', () => {
  test('the first injected pod brings the approvals RoleBindings; its sidecar creates and watches its request, an approver approves, another namespace cannot read it', async () => {
    // Nothing binds the namespace's accounts yet: a plain token is refused by RBAC.
    const early = kubeconfigFile('coder-plain', await serviceAccountToken(cluster, TEAM, SA), TEAM);
    expect(await refusal(apiWith(early).list(TEAM))).toMatch(/forbidden/i);

    // A dry run injects but writes nothing.
    const podSpec = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'coder-0', namespace: TEAM, labels: { 'sluice.io/inject': 'true' } }, spec: { serviceAccountName: SA, containers: [AGENT_CONTAINER] } };
    const dry = await eventually('a dry-run pod to come back injected', async () => {
      const res = await cluster.create<{ spec: { initContainers?: { name: string }[] } }>('creator', podSpec, 'dryRun=All');
      return res.status === 201 && res.body.spec.initContainers?.some((c) => c.name === 'sluice-proxy') ? res : undefined;
    });
    expect(dry.status).toBe(201);
    expect((await cluster.request('admin', 'GET', `${RBAC}/namespaces/${TEAM}/rolebindings/${BINDINGS.sidecar}`)).status).toBe(404);

    const created = await cluster.create<{ metadata: { uid: string }; spec: { initContainers?: { name: string }[] } }>('creator', podSpec);
    expect(created.status).toBe(201);
    expect(created.body.spec.initContainers?.map((c) => c.name)).toContain('sluice-proxy');

    // The bindings exist, namespace-scoped, to the ClusterRoles, for this namespace's accounts and the approver group.
    const sidecarBinding = await cluster.request<{ roleRef: unknown; subjects: unknown }>('admin', 'GET', `${RBAC}/namespaces/${TEAM}/rolebindings/${BINDINGS.sidecar}`);
    expect(sidecarBinding.status).toBe(200);
    expect(sidecarBinding.body.roleRef).toEqual({ ...REF, name: SIDECAR_ROLE.name });
    expect(sidecarBinding.body.subjects).toEqual([{ kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: `system:serviceaccounts:${TEAM}` }]);
    const approverBinding = await cluster.request<{ roleRef: unknown; subjects: unknown }>('admin', 'GET', `${RBAC}/namespaces/${TEAM}/rolebindings/${BINDINGS.approvers}`);
    expect(approverBinding.body.roleRef).toEqual({ ...REF, name: APPROVER_ROLE.name });
    expect(approverBinding.body.subjects).toEqual([{ kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: 'sluice-approvers' }]);

    // The sidecar (pod-bound token) watches and creates its request; RBAC applies the binding a moment later.
    const pod = { name: 'coder-0', uid: created.body.metadata.uid };
    const sidecar = apiWith(kubeconfigFile('coder-0', await serviceAccountToken(cluster, TEAM, SA, pod), TEAM));
    const request = heldPush(pod);
    await eventually('the sidecar to create its ApprovalRequest', async () => ((await refusal(sidecar.create(TEAM, request))) === 'allowed' ? true : undefined));
    const phases: string[] = [];
    watches.push(await sidecar.watch(TEAM, { labelSelector: `sluice.io/pod=${approvalLabelValue(pod.name)}` }, (e) => {
      if (e.type === 'ADDED' || e.type === 'MODIFIED') phases.push(e.object.status?.state ?? '');
    }));

    const approved = await cli('approver', ['approve', request.metadata.name!, '-n', TEAM]);
    expect(approved.stderr).toBe('');
    expect(approved.code).toBe(0);
    await eventually('the sidecar to see the approval', () => Promise.resolve(phases.includes('Approved') ? true : undefined));

    // Another namespace's ServiceAccount has no window on it, and the namespace-wide group bound here is not cluster-wide.
    const intruder = apiWith(kubeconfigFile('intruder', await serviceAccountToken(cluster, OTHER, 'intruder'), OTHER));
    expect(await refusal(intruder.list(TEAM))).toMatch(/forbidden/i);
    expect(await refusal(intruder.get(TEAM, request.metadata.name!))).toMatch(/forbidden/i);
    expect(await refusal(intruder.list(undefined))).toMatch(/forbidden/i);
    expect(await refusal(sidecar.list(OTHER))).toMatch(/forbidden/i);
  });

  test('a binding of that name that someone widened is set back when the webhook checks the namespace again; one with another roleRef is left, the pod admitted and the conflict logged', async () => {
    // Widened by someone in the namespace with RoleBinding rights: restored on the next ensure
    // (a fresh webhook has no cache; recheckSeconds bounds it in a running one).
    const path = `${RBAC}/namespaces/${TEAM}/rolebindings/${BINDINGS.sidecar}`;
    const stored = await cluster.request<{ subjects: unknown[] }>('admin', 'GET', path);
    const widened = { ...stored.body, subjects: [...stored.body.subjects, { kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: 'system:authenticated' }] };
    expect((await cluster.request('admin', 'PUT', path, widened)).status).toBe(200);
    await must(`${RBAC}/namespaces/${OTHER}/rolebindings`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: BINDINGS.sidecar }, roleRef: { ...REF, name: APPROVER_ROLE.name }, subjects: [{ kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: 'nobody' }] });
    await webhook.stop();
    const kubeconfig = join(cluster.dir, 'kubeconfig-sluice-webhook.yaml');
    const again = await startWebhookProcess(cluster.ca, {
      injectorVersion: 'e2e',
      namespace: WEBHOOK_NS,
      sidecar: { image: 'ghcr.io/sluice-dev/sluice:e2e' },
      approvals: { approverGroups: ['sluice-approvers'], maxTTL: '8h' },
      agentRbac: { sidecar: { clusterRole: SIDECAR_ROLE.name, bindingName: BINDINGS.sidecar }, approvers: { clusterRole: APPROVER_ROLE.name, bindingName: BINDINGS.approvers } },
      kube: { kubeconfig },
      server: { port: webhook.port },
    });
    webhook = again;
    const res = await eventually('a second pod to be injected', async () => {
      const r = await cluster.request<{ spec: { initContainers?: { name: string }[] } }>('creator', 'POST', `/api/v1/namespaces/${TEAM}/pods`, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'coder-1', labels: { 'sluice.io/inject': 'true' } }, spec: { serviceAccountName: SA, containers: [AGENT_CONTAINER] } });
      return r.status === 201 ? r : undefined;
    });
    expect(res.body.spec.initContainers?.map((c) => c.name)).toContain('sluice-proxy');
    expect((await cluster.request<{ subjects: unknown[] }>('admin', 'GET', path)).body.subjects).toEqual([{ kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: `system:serviceaccounts:${TEAM}` }]);

    // In OTHER the name is taken by a binding to another role: the pod is admitted (the warning goes to its creator), the webhook logs the conflict, and the binding is untouched.
    await cluster.grant('creator', OTHER, 'pod-author', [{ apiGroups: [''], resources: ['pods'], verbs: ['create', 'get'] }]);
    const other = await cluster.request<{ spec: { initContainers?: { name: string }[] } }>('creator', 'POST', `/api/v1/namespaces/${OTHER}/pods`, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'coder-x', labels: { 'sluice.io/inject': 'true' } }, spec: { containers: [AGENT_CONTAINER] } });
    expect(other.status).toBe(201);
    expect(other.body.spec.initContainers?.map((c) => c.name)).toContain('sluice-proxy');
    expect(webhook.logs.join('\n')).toContain(`RoleBinding ${OTHER}/${BINDINGS.sidecar} exists and refers to ClusterRole sluice-approver, not ClusterRole sluice-sidecar`);
    expect((await cluster.request<{ roleRef: { name: string } }>('admin', 'GET', `${RBAC}/namespaces/${OTHER}/rolebindings/${BINDINGS.sidecar}`)).body.roleRef.name).toBe(APPROVER_ROLE.name);
  });
});
