// The admission webhook against a real kube-apiserver + etcd: the shipped webhook configurations
// and ValidatingAdmissionPolicy are registered (pointed at the webhook process on loopback), pods
// are created through the API as an authenticated user, and the stored objects are asserted.
// There is no kubelet: every pod stays Pending, so these tests stop at what the API server stores
// and refuses; exec/attach are checked at admission (after it, the server answers that the pod has
// no node, which proves admission let the request through).
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { ANNOTATION_CREATOR, ANNOTATION_KILL, LABEL_INJECTED } from '../../api/src/index.ts';
import { parseWebhookConfig } from '../../webhook/src/config.ts';
import { renderInjection } from '../../webhook/src/render.ts';
import { firstDifference } from '../../webhook/src/spec-equality.ts';
import { eventually, pointWebhooksAt, readManifests } from '../support/kube/admission.ts';
import type { Manifest } from '../support/kube/admission.ts';
import { KubeCluster } from '../support/kube/cluster.ts';
import { TYPICAL_AGENT_RULES, serviceAccountClient, webhookReaderKubeconfig } from './service-account.ts';
import type { ServiceAccountClient } from './service-account.ts';
import { startWebhookProcess } from './webhook-process.ts';
import type { WebhookProcess } from './webhook-process.ts';

// A real API server under a loaded CI machine: generous per-test limit (each test is ~10-500 ms here).
jest.setTimeout(30_000);

const MANIFESTS = join(import.meta.dirname, '..', '..', 'webhook', 'manifests');
const webhookConfig = {
  injectorVersion: 'e2e',
  sidecar: {
    image: 'ghcr.io/sluice-dev/sluice:e2e',
    tokenAudiences: [{ audience: 'sts.amazonaws.com', path: 'aws' }],
    // A Secret for the sidecar alone (static credentials, extra roots): agents may not touch it.
    mounts: [{ name: 'github', secret: 'github-app-token', optional: true }],
  },
  guard: { staticCredentialSecrets: ['aws-static-keys', 'legacy-*'] },
};
const rendered = renderInjection(parseWebhookConfig(webhookConfig));

interface Pod {
  apiVersion: 'v1';
  kind: 'Pod';
  metadata: { name: string; namespace: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: Record<string, unknown> & { containers: Record<string, unknown>[] };
}
interface Status {
  message?: string;
  reason?: string;
}
type StoredPod = Pod & { spec: { initContainers?: { name: string; restartPolicy?: string; image?: string }[]; containers: { name: string; env?: { name: string; value?: string }[]; volumeMounts?: { name: string }[] }[]; volumes?: { name: string }[]; automountServiceAccountToken?: boolean } };

let cluster: KubeCluster;
let webhook: WebhookProcess;
let configs: Manifest[];
let counter = 0;
let injectedName = '';
/** The agent: a ServiceAccount token per namespace with typical agent RBAC (TYPICAL_AGENT_RULES). */
const agentSa: Record<string, ServiceAccountClient> = {};

function pod(namespace: string, overrides: { labels?: Record<string, string>; annotations?: Record<string, string>; spec?: Record<string, unknown>; container?: Record<string, unknown> } = {}): Pod {
  counter += 1;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `agent-${counter}`,
      namespace,
      labels: overrides.labels ?? { 'sluice.io/inject': 'true' },
      ...(overrides.annotations ? { annotations: overrides.annotations } : {}),
    },
    // An explicit non-root UID, as sluice requires of agent pods (the image's USER could be 1337).
    spec: { securityContext: { runAsUser: 1000, runAsNonRoot: true }, containers: [{ name: 'agent', image: 'ghcr.io/example/agent:1', ...overrides.container }], ...overrides.spec },
  };
}

async function createAs(user: string, p: Pod, query = '') {
  return cluster.create<StoredPod & Status>(user, p, query);
}

/** Three updates of a stored injected pod: swap the sidecar image, rewrite the creator, set the kill switch. */
async function tryUpdates(url: string) {
  const get = async () => (await cluster.request<StoredPod>('creator', 'GET', url)).body;
  const swapped = await get();
  swapped.spec.initContainers![1]!.image = 'ghcr.io/attacker/noop:1';
  const swap = await cluster.request<Status>('creator', 'PUT', url, swapped);
  const relabelled = await get();
  relabelled.metadata.annotations![ANNOTATION_CREATOR] = '{"username":"someone-else","groups":[]}';
  const forge = await cluster.request<Status>('creator', 'PUT', url, relabelled);
  const killed = await get();
  killed.metadata.annotations![ANNOTATION_KILL] = 'true';
  const kill = await cluster.request<Status>('creator', 'PUT', url, killed);
  return { swap, forge, kill };
}

async function registerWebhooks(): Promise<void> {
  for (const c of configs) expect((await cluster.create('admin', pointWebhooksAt(c, webhook.baseUrl, cluster.ca.certPem))).status).toBe(201);
  // The API server applies registrations asynchronously: wait until a dry-run pod comes back injected.
  await eventually('the injector registration to take effect', async () => {
    const res = await createAs('admin', pod('team'), 'dryRun=All');
    return res.status === 201 && res.body.spec.initContainers?.[1]?.name === 'sluice-proxy' ? true : undefined;
  });
}

async function unregisterWebhooks(): Promise<void> {
  for (const c of configs) expect((await cluster.delete('admin', c)).status).toBe(200);
  // Until the API server drops the registration it still calls the (stopped) webhook and fails.
  await eventually('the webhook registrations to be gone', async () => {
    const res = await createAs('admin', pod('plain'), 'dryRun=All');
    return res.body.message?.includes('failed calling webhook') ? undefined : true;
  });
}

beforeAll(async () => {
  cluster = await KubeCluster.start({
    namespaces: [{ name: 'agents', labels: { 'sluice.io/inject': 'true' } }, { name: 'team' }, { name: 'plain' }],
  });
  const rules = [
    { apiGroups: [''], resources: ['pods', 'pods/exec', 'pods/attach', 'pods/ephemeralcontainers'], verbs: ['create', 'get', 'list', 'update', 'patch', 'delete'] },
  ];
  for (const ns of ['agents', 'team', 'plain']) await cluster.grant('creator', ns, 'pod-author', rules);
  // Approvers may update pods (the kill switch) and port-forward; the developer also manages Deployments and Secrets.
  for (const ns of ['agents', 'team']) {
    await cluster.grant('approver', ns, 'approver-pods', [{ apiGroups: [''], resources: ['pods', 'pods/portforward', 'pods/proxy'], verbs: ['get', 'update', 'patch', 'create'] }]);
    await cluster.grant('creator', ns, 'developer-extra', [
      { apiGroups: ['apps'], resources: ['deployments'], verbs: ['create', 'get', 'update', 'patch'] },
      { apiGroups: [''], resources: ['secrets', 'configmaps', 'pods/portforward', 'pods/proxy', 'pods/resize'], verbs: ['create', 'get', 'update', 'patch', 'delete'] },
    ]);
    agentSa[ns] = await serviceAccountClient(cluster, ns, 'coder', TYPICAL_AGENT_RULES);
  }
  // The webhook reads target pods (port-forward outside opted-in namespaces) with its own reader identity.
  webhook = await startWebhookProcess(cluster.ca, { ...webhookConfig, kube: { kubeconfig: await webhookReaderKubeconfig(cluster, MANIFESTS) } });
  configs = [...readManifests(join(MANIFESTS, 'mutating-webhook.yaml')), ...readManifests(join(MANIFESTS, 'validating-webhook.yaml'))];
  await registerWebhooks();
  console.log(`kube harness start: ${JSON.stringify(cluster.timings)}`);
}, 120_000);

afterAll(async () => {
  for (const sa of Object.values(agentSa)) await sa.close();
  await webhook?.stop();
  await cluster?.stop();
}, 60_000);

describe('injection through the API server', () => {
  test('a labelled pod is stored with the native sidecar, trust env, volumes and the creator stamp', async () => {
    const res = await createAs('creator', pod('team'));
    expect(res.status).toBe(201);
    const stored = (await cluster.request<StoredPod>('admin', 'GET', `/api/v1/namespaces/team/pods/${res.body.metadata.name}`)).body;
    const init = stored.spec.initContainers!;
    expect(init.map((c) => c.name)).toEqual(['sluice-init', 'sluice-proxy']);
    // The stored containers are exactly the rendering: the server's defaulting added nothing we did not set.
    expect(firstDifference(init[0], rendered.initContainer)).toBeUndefined();
    expect(firstDifference(init[1], rendered.sidecar)).toBeUndefined();
    expect(init[1]!.restartPolicy).toBe('Always');
    const agent = stored.spec.containers[0]!;
    expect(Object.fromEntries(agent.env!.map((e) => [e.name, e.value]))).toMatchObject({
      SSL_CERT_FILE: '/var/run/sluice/trust/ca-bundle.crt',
      NODE_EXTRA_CA_CERTS: '/var/run/sluice/trust/ca.crt',
      HTTPS_PROXY: 'http://127.0.0.1:15080',
      AWS_ACCESS_KEY_ID: 'SLUICEPLACEHOLDER',
    });
    // The ServiceAccount plugin's token is gone from the agent; only sluice's trust mount is there.
    expect(agent.volumeMounts!.map((m) => m.name)).toEqual(['sluice-trust']);
    expect(stored.spec.automountServiceAccountToken).toBe(false);
    expect(stored.spec.volumes!.map((v) => v.name)).toEqual(rendered.volumes.map((v) => v.name));
    // The configured Secret is the sidecar's alone, read-only (an optional mount: the pod starts without it).
    expect(stored.spec.volumes).toContainEqual({ name: 'sluice-mount-github', secret: { secretName: 'github-app-token', defaultMode: 420, optional: true } });
    expect((init[1] as { volumeMounts?: unknown[] }).volumeMounts).toContainEqual({ name: 'sluice-mount-github', mountPath: '/etc/sluice/mounts/github', readOnly: true });
    const creator = JSON.parse(stored.metadata.annotations![ANNOTATION_CREATOR]!) as { username: string; uid: string; groups: string[] };
    expect(creator).toEqual({ username: 'alice@example.com', uid: 'uid-creator', groups: ['developers', 'system:authenticated'] });
  });

  test('namespace opt-in injects an unlabelled pod; "false" on the pod opts out', async () => {
    const inNs = await createAs('creator', pod('agents', { labels: {} }));
    expect(inNs.status).toBe(201);
    expect(inNs.body.spec.initContainers?.map((c) => c.name)).toEqual(['sluice-init', 'sluice-proxy']);
    const optOut = await createAs('creator', pod('agents', { labels: { 'sluice.io/inject': 'false' } }));
    expect(optOut.status).toBe(201);
    expect(optOut.body.spec.initContainers).toBeUndefined();
  });

  test('an unlabelled pod in an unlabelled namespace is not touched', async () => {
    const res = await createAs('creator', pod('team', { labels: { app: 'web' } }));
    expect(res.status).toBe(201);
    expect(res.body.spec.initContainers).toBeUndefined();
    expect(res.body.metadata.annotations?.[ANNOTATION_CREATOR]).toBeUndefined();
  });
});

describe('the guard refuses every way around the sidecar', () => {
  const forbidden: [string, Parameters<typeof pod>[1], string, string][] = [
    ['hostNetwork', { spec: { hostNetwork: true } }, 'guard.host_namespace', 'spec.hostNetwork'],
    ['hostPID', { spec: { hostPID: true } }, 'guard.host_namespace', 'spec.hostPID'],
    ['shareProcessNamespace', { spec: { shareProcessNamespace: true } }, 'guard.share_process_namespace', 'spec.shareProcessNamespace'],
    ['a privileged agent', { container: { securityContext: { privileged: true } } }, 'guard.privileged', 'spec.containers[0].securityContext.privileged'],
    ['NET_ADMIN', { container: { securityContext: { capabilities: { add: ['NET_ADMIN'] } } } }, 'guard.capability', 'spec.containers[0].securityContext.capabilities.add[0]'],
    ['NET_RAW in an init container', { spec: { initContainers: [{ name: 'setup', image: 'busybox', securityContext: { capabilities: { add: ['NET_RAW'] } } }] } }, 'guard.capability', 'spec.initContainers[2].securityContext.capabilities.add[0]'],
    ["the sidecar's UID on the container", { container: { securityContext: { runAsUser: 1337 } } }, 'guard.proxy_uid', 'spec.containers[0].securityContext.runAsUser'],
    ["the sidecar's UID on the pod", { spec: { securityContext: { runAsUser: 1337 } } }, 'guard.proxy_uid', 'spec.securityContext.runAsUser'],
    ["the sidecar's GID as fsGroup", { spec: { securityContext: { fsGroup: 1337 } } }, 'guard.proxy_gid', 'spec.securityContext.fsGroup'],
    ['a static-credential Secret volume', { spec: { volumes: [{ name: 'creds', secret: { secretName: 'aws-static-keys' } }] } }, 'guard.static_credential', 'spec.volumes[0].secret.secretName'],
    ['a static-credential Secret in envFrom', { container: { envFrom: [{ secretRef: { name: 'legacy-db' } }] } }, 'guard.static_credential', 'spec.containers[0].envFrom[0].secretRef.name'],
    ["a Secret mounted into the sidecar, read by an agent", { container: { env: [{ name: 'GH', valueFrom: { secretKeyRef: { name: 'github-app-token', key: 'token' } } }] } }, 'guard.static_credential', 'spec.containers[0].env[0].valueFrom.secretKeyRef.name'],
    ["a mount of the sidecar's Secret volume", { container: { volumeMounts: [{ name: 'sluice-mount-github', mountPath: '/steal', readOnly: true }] } }, 'guard.sluice_volume', 'spec.containers[0].volumeMounts'],
    ['a hostPath volume (the node holds the sidecar\'s mounted Secrets)', { spec: { volumes: [{ name: 'node', hostPath: { path: '/var/lib/kubelet/pods' } }] } }, 'guard.host_path', 'spec.volumes[0].hostPath'],
    ["the sidecar's settings ConfigMap read by an agent", { container: { envFrom: [{ configMapRef: { name: 'sluice-sidecar' } }] } }, 'guard.sluice_settings', 'spec.containers[0].envFrom[0].configMapRef.name'],
    ["a mount of the sidecar's token volume", { container: { volumeMounts: [{ name: 'sluice-tokens', mountPath: '/steal' }] } }, 'guard.sluice_volume', 'spec.containers[0].volumeMounts'],
    ['its own service-account token', { spec: { volumes: [{ name: 'tok', projected: { sources: [{ serviceAccountToken: { path: 'token' } }] } }] }, container: { volumeMounts: [{ name: 'tok', mountPath: '/tok' }] } }, 'guard.service_account_token', 'spec.containers[0].volumeMounts'],
    ['a container named sluice-proxy', { spec: { containers: [{ name: 'sluice-proxy', image: 'evil' }] } }, 'guard.reserved_name', 'spec.containers[0].name'],
    ['a user-supplied creator', { annotations: { [ANNOTATION_CREATOR]: '{"username":"ceo@example.com","groups":["sluice-approvers"]}' } }, 'guard.creator_forged', `metadata.annotations[${ANNOTATION_CREATOR}]`],
    // Issue 15: no way into the sidecar's UID exemption, reserved ports, legacy tokens, capability spellings.
    ['no explicit UID (an image whose USER is 1337 would run as the sidecar)', { spec: { securityContext: { runAsNonRoot: true } } }, 'guard.uid_unset', 'spec.containers[0].securityContext.runAsUser'],
    ['privilege escalation left on', { container: { securityContext: { allowPrivilegeEscalation: true } } }, 'guard.privilege_escalation', 'spec.containers[0].securityContext.allowPrivilegeEscalation'],
    ['a root agent that keeps CAP_SETUID', { container: { securityContext: { runAsUser: 0 } } }, 'guard.uid_change', 'spec.containers[0].securityContext.capabilities.drop'],
    ['SETUID added', { container: { securityContext: { capabilities: { add: ['SETUID'] } } } }, 'guard.uid_change', 'spec.containers[0].securityContext.capabilities.add[0]'],
    ['NET_ADMIN spelled " cap_net_admin"', { container: { securityContext: { capabilities: { add: [' cap_net_admin'] } } } }, 'guard.capability', 'spec.containers[0].securityContext.capabilities.add[0]'],
    ['an agent port numbered as the sidecar admin port', { container: { ports: [{ containerPort: 15090 }] } }, 'guard.reserved_port', 'spec.containers[0].ports[0].containerPort'],
    ['an agent port named like the metrics port', { container: { ports: [{ name: 'sluice-admin', containerPort: 9000 }] } }, 'guard.reserved_port', 'spec.containers[0].ports[0].name'],
    ['a legacy service-account token Secret', { spec: { volumes: [{ name: 'tok', secret: { secretName: 'default-token-x7k2q' } }] }, container: { volumeMounts: [{ name: 'tok', mountPath: '/tok' }] } }, 'guard.legacy_token_secret', 'spec.volumes[0].secret.secretName'],
  ];
  test.each(forbidden)('%s is refused', async (_what, overrides, rule, field) => {
    const res = await createAs('creator', pod('team', overrides));
    expect(res.status).toBe(403);
    expect(res.body.message).toContain(`sluice ${rule}: ${field}`);
    expect(res.body.message).toMatch(/admission webhook "(pod|namespace)\.(guard|inject)\.sluice\.io" denied the request/);
  });

  test('exec and attach into the sidecar are refused; into the agent they pass admission', async () => {
    const created = await createAs('creator', pod('team'));
    const base = `/api/v1/namespaces/team/pods/${created.body.metadata.name}`;
    const exec = await cluster.request<Status>('creator', 'POST', `${base}/exec?container=sluice-proxy&command=cat&command=/proc/1/environ&stdout=true`);
    expect(exec.status).toBe(403);
    expect(exec.body.message).toContain('sluice guard.exec_sidecar: exec.container');
    const attach = await cluster.request<Status>('creator', 'POST', `${base}/attach?container=sluice-proxy&stdout=true`);
    expect(attach.status).toBe(403);
    expect(attach.body.message).toContain('sluice guard.exec_sidecar: attach.container');
    // Admission passes for the agent; the request then fails only because no kubelet runs the pod.
    const agentExec = await cluster.request<Status>('creator', 'POST', `${base}/exec?container=agent&command=true&stdout=true`);
    expect(agentExec.status).toBe(400);
    expect(agentExec.body.message).toMatch(/host/);
  });

  test('ephemeral containers: targeting the sidecar or running as its UID is refused, a plain debug container is stored', async () => {
    const created = await createAs('creator', pod('team'));
    const path = `/api/v1/namespaces/team/pods/${created.body.metadata.name}/ephemeralcontainers`;
    const withEphemeral = async (ephemeral: Record<string, unknown>) => {
      const current = (await cluster.request<StoredPod>('creator', 'GET', `/api/v1/namespaces/team/pods/${created.body.metadata.name}`)).body;
      return cluster.request<Status & StoredPod>('creator', 'PUT', path, { ...current, spec: { ...current.spec, ephemeralContainers: [ephemeral] } });
    };
    const targeted = await withEphemeral({ name: 'peek', image: 'busybox', targetContainerName: 'sluice-proxy' });
    expect(targeted.status).toBe(403);
    expect(targeted.body.message).toContain('sluice guard.ephemeral_target: spec.ephemeralContainers[0].targetContainerName');
    const asProxy = await withEphemeral({ name: 'peek', image: 'busybox', securityContext: { runAsUser: 1337, allowPrivilegeEscalation: false } });
    expect(asProxy.status).toBe(403);
    expect(asProxy.body.message).toContain('sluice guard.proxy_uid: spec.ephemeralContainers[0].securityContext.runAsUser');
    // `kubectl debug --profile=restricted`: non-root (the pod's UID), no privilege escalation, no capabilities.
    const plain = await withEphemeral({
      name: 'debug',
      image: 'busybox',
      targetContainerName: 'agent',
      securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } },
    });
    expect(plain.status).toBe(200);
  });

  test('updates: the sidecar and the creator stamp cannot change; the kill switch can be set', async () => {
    const created = await createAs('creator', pod('team'));
    const { swap, forge, kill } = await tryUpdates(`/api/v1/namespaces/team/pods/${created.body.metadata.name}`);
    expect([swap.status, forge.status, kill.status]).toEqual([403, 403, 200]);
    expect(swap.body.message).toContain('sluice guard.sidecar_modified: spec.initContainers');
    expect(forge.body.message).toContain('sluice guard.creator_changed');
  });

  test('the webhook counts reviews and denials by rule', async () => {
    const res = await fetch(`http://127.0.0.1:${webhook.metricsPort}/metrics`);
    const text = await res.text();
    expect(text).toMatch(/sluice_webhook_reviews_total\{endpoint="mutate",operation="CREATE",result="patched"\} [1-9]/);
    expect(text).toMatch(/sluice_webhook_denials_total\{endpoint="validate",rule="guard.host_namespace"\} [1-9]/);
    expect(text).toMatch(/sluice_webhook_review_duration_seconds_count\{endpoint="validate"\} [1-9]/);
  });
});

const MERGE = 'application/merge-patch+json';

/** A pod created by the developer and stored injected; returns its URL. */
async function injectedPod(namespace: string, overrides: Parameters<typeof pod>[1] = {}): Promise<string> {
  const res = await createAs('creator', pod(namespace, overrides));
  expect(res.status).toBe(201);
  expect(res.body.metadata.labels?.[LABEL_INJECTED]).toBe('true');
  return `/api/v1/namespaces/${namespace}/pods/${res.body.metadata.name}`;
}

/** The agent's ServiceAccount adds one ephemeral container (what `kubectl debug` does). */
async function addEphemeral(sa: ServiceAccountClient, url: string, ephemeral: Record<string, unknown>) {
  const current = (await sa.request<StoredPod>('GET', url)).body;
  const existing = (current.spec as { ephemeralContainers?: unknown[] }).ephemeralContainers ?? [];
  return sa.request<Status>('PUT', `${url}/ephemeralcontainers`, { ...current, spec: { ...current.spec, ephemeralContainers: [...existing, ephemeral] } });
}

describe('issue 15: injected means injected (the agent ServiceAccount against the webhook)', () => {
  test.each([
    ['team', 'pod label'],
    ['agents', 'namespace opt-in'],
  ])('in %s (%s): the inject label and the markers cannot be flipped or removed', async (ns) => {
    const sa = agentSa[ns]!;
    const url = await injectedPod(ns, ns === 'agents' ? { labels: {} } : {});
    const flip = await sa.request<Status>('PATCH', url, { metadata: { labels: { 'sluice.io/inject': 'false' } } }, MERGE);
    expect(flip.status).toBe(403);
    expect(flip.body.message).toContain('admission webhook "injected.guard.sluice.io" denied the request');
    expect(flip.body.message).toContain('sluice guard.injection_marker: metadata.labels[sluice.io/inject]');
    const removeInjected = await sa.request<Status>('PATCH', url, { metadata: { labels: { [LABEL_INJECTED]: null } } }, MERGE);
    expect(removeInjected.status).toBe(403);
    expect(removeInjected.body.message).toContain(`sluice guard.injection_marker: metadata.labels[${LABEL_INJECTED}]`);
    const removeStatus = await sa.request<Status>('PATCH', url, { metadata: { annotations: { 'sluice.io/status': null } } }, MERGE);
    expect(removeStatus.status).toBe(403);
    expect(removeStatus.body.message).toContain('sluice guard.injection_marker: metadata.annotations[sluice.io/status]');
    if (ns === 'team') {
      const remove = await sa.request<Status>('PATCH', url, { metadata: { labels: { 'sluice.io/inject': null } } }, MERGE);
      expect(remove.status).toBe(403);
      expect(remove.body.message).toContain('sluice guard.injection_marker: metadata.labels[sluice.io/inject]');
    }
    const stored = (await cluster.request<StoredPod>('admin', 'GET', url)).body;
    expect(stored.metadata.labels?.[LABEL_INJECTED]).toBe('true');
  });

  test('a pod sluice did not inject cannot claim the injected label', async () => {
    const res = await createAs('creator', pod('plain', { labels: {} }));
    expect(res.status).toBe(201);
    const url = `/api/v1/namespaces/plain/pods/${res.body.metadata.name}`;
    const claim = await cluster.request<Status>('creator', 'PATCH', url, { metadata: { labels: { [LABEL_INJECTED]: 'true' } } }, MERGE);
    expect(claim.status).toBe(403);
    expect(claim.body.message).toContain(`sluice guard.injection_marker: metadata.labels[${LABEL_INJECTED}]`);
  });

  const ephemeralAttacks: [string, Record<string, unknown>, string][] = [
    ['privileged', { securityContext: { privileged: true } }, 'guard.privileged: spec.ephemeralContainers[0].securityContext.privileged'],
    ['NET_ADMIN', { securityContext: { allowPrivilegeEscalation: false, capabilities: { add: ['NET_ADMIN'] } } }, 'guard.capability: spec.ephemeralContainers[0].securityContext.capabilities.add[0]'],
    ['net_raw with CAP_ and spaces', { securityContext: { allowPrivilegeEscalation: false, capabilities: { add: ['  CAP_net_raw '] } } }, 'guard.capability: spec.ephemeralContainers[0].securityContext.capabilities.add[0]'],
    ["the sidecar's UID", { securityContext: { runAsUser: 1337, allowPrivilegeEscalation: false } }, 'guard.proxy_uid: spec.ephemeralContainers[0].securityContext.runAsUser'],
    ['root keeping CAP_SETUID', { securityContext: { runAsUser: 0, allowPrivilegeEscalation: false } }, 'guard.uid_change: spec.ephemeralContainers[0].securityContext.capabilities.drop'],
    ['SETUID added', { securityContext: { allowPrivilegeEscalation: false, capabilities: { add: ['SETUID'] } } }, 'guard.uid_change: spec.ephemeralContainers[0].securityContext.capabilities.add[0]'],
    ['privilege escalation left on', {}, 'guard.privilege_escalation: spec.ephemeralContainers[0].securityContext.allowPrivilegeEscalation'],
    ["the sidecar's API token", { securityContext: { allowPrivilegeEscalation: false }, volumeMounts: [{ name: 'sluice-kube-api-access', mountPath: '/t' }] }, 'guard.sluice_volume: spec.ephemeralContainers[0].volumeMounts[0].name'],
    ["the sidecar's projected tokens", { securityContext: { allowPrivilegeEscalation: false }, volumeMounts: [{ name: 'sluice-tokens', mountPath: '/t' }] }, 'guard.sluice_volume: spec.ephemeralContainers[0].volumeMounts[0].name'],
    ["the sidecar's audit spool", { securityContext: { allowPrivilegeEscalation: false }, volumeMounts: [{ name: 'sluice-spool', mountPath: '/t' }] }, 'guard.sluice_volume: spec.ephemeralContainers[0].volumeMounts[0].name'],
    ['the trust bundle writable (the CA)', { securityContext: { allowPrivilegeEscalation: false }, volumeMounts: [{ name: 'sluice-trust', mountPath: '/t' }] }, 'guard.sluice_volume: spec.ephemeralContainers[0].volumeMounts[0].name'],
  ];
  test.each(ephemeralAttacks)('after a refused label flip, an ephemeral container that is %s is refused', async (_what, spec, expected) => {
    const sa = agentSa.agents!;
    const url = await injectedPod('agents', { labels: {} });
    expect((await sa.request('PATCH', url, { metadata: { labels: { 'sluice.io/inject': 'false' } } }, MERGE)).status).toBe(403);
    const res = await addEphemeral(sa, url, { name: 'x', image: 'busybox', ...spec });
    expect(res.status).toBe(403);
    expect(res.body.message).toContain(`sluice ${expected}`);
  });

  test("an ephemeral container without a UID on a pod that sets none is refused (the image's USER decides)", async () => {
    const url = await injectedPod('agents', { labels: {}, spec: { securityContext: {} }, container: { securityContext: { runAsUser: 1000 } } });
    const res = await addEphemeral(agentSa.agents!, url, { name: 'x', image: 'busybox', securityContext: { allowPrivilegeEscalation: false, runAsNonRoot: true } });
    expect(res.status).toBe(403);
    expect(res.body.message).toContain('sluice guard.uid_unset: spec.ephemeralContainers[0].securityContext.runAsUser');
  });

  test('the kill switch: anyone may engage it, only an approver may clear it', async () => {
    const url = await injectedPod('agents', { labels: {} });
    const kill = (who: 'creator' | 'approver' | 'agent', value: string | null) =>
      who === 'agent'
        ? agentSa.agents!.request<Status>('PATCH', url, { metadata: { annotations: { [ANNOTATION_KILL]: value } } }, MERGE)
        : cluster.request<Status>(who, 'PATCH', url, { metadata: { annotations: { [ANNOTATION_KILL]: value } } }, MERGE);
    expect((await kill('creator', 'true')).status).toBe(200);
    const cleared = await kill('agent', null);
    expect(cleared.status).toBe(403);
    expect(cleared.body.message).toContain(`sluice guard.kill_switch: metadata.annotations[${ANNOTATION_KILL}]`);
    expect((await kill('agent', 'false')).status).toBe(403);
    expect((await kill('creator', null)).status).toBe(403);
    expect((await kill('approver', null)).status).toBe(200);
    expect((await kill('agent', 'true')).status).toBe(200);
    const stored = (await cluster.request<StoredPod>('admin', 'GET', url)).body;
    expect(stored.metadata.annotations?.[ANNOTATION_KILL]).toBe('true');
  });

  test('pods/resize may not shrink the sidecar', async () => {
    const url = await injectedPod('team');
    const current = (await cluster.request<StoredPod>('creator', 'GET', url)).body;
    const shrunk = structuredClone(current) as StoredPod & { spec: { initContainers: { resources?: unknown }[] } };
    shrunk.spec.initContainers[1]!.resources = { requests: { cpu: '1m', memory: '64Mi' }, limits: { memory: '256Mi' } };
    const res = await agentSa.team!.request<Status>('PUT', `${url}/resize`, shrunk);
    expect(res.status).toBe(403);
    expect(res.body.message).toContain('sluice guard.sidecar_resize: spec.initContainers');
  });

  test('port-forward in an opted-in namespace: only approvers, and never to the sidecar ports; proxy never to them', async () => {
    const url = await injectedPod('agents', { labels: {} });
    const agentForward = await agentSa.agents!.request<Status>('POST', `${url}/portforward`);
    expect(agentForward.status).toBe(403);
    expect(agentForward.body.message).toContain('sluice guard.port_forward: portforward');
    const developerForward = await cluster.request<Status>('creator', 'POST', `${url}/portforward?ports=8080`);
    expect(developerForward.status).toBe(403);
    // An approver passes admission (the request then fails only because no kubelet runs the pod)…
    const approverForward = await cluster.request<Status>('approver', 'POST', `${url}/portforward?ports=8080`);
    expect(approverForward.status).not.toBe(403);
    // …but not to the sidecar's ports.
    const approverToSidecar = await cluster.request<Status>('approver', 'POST', `${url}/portforward?ports=15090`);
    expect(approverToSidecar.status).toBe(403);
    expect(approverToSidecar.body.message).toContain('sluice guard.port_forward: portforward.ports[0]');
    const proxy = await agentSa.agents!.request<Status>('GET', `${url}:15090/proxy/metrics`);
    expect(proxy.status).toBe(403);
    expect(proxy.body.message).toContain('sluice guard.port_forward: proxy.port');
    const named = await agentSa.agents!.request<Status>('GET', `${url}:sluice-admin/proxy/readyz`);
    expect(named.status).toBe(403);
    const agentPort = await agentSa.agents!.request<Status>('GET', `${url}:8080/proxy/`);
    expect(agentPort.status).not.toBe(403);
  });

  test('port-forward outside opted-in namespaces: the webhook reads the pod; to an injected one only approvers', async () => {
    const url = await injectedPod('team');
    const agentForward = await agentSa.team!.request<Status>('POST', `${url}/portforward`);
    expect(agentForward.status).toBe(403);
    expect(agentForward.body.message).toContain('admission webhook "connect.guard.sluice.io" denied the request');
    expect(agentForward.body.message).toContain('sluice guard.port_forward: portforward');
    expect((await cluster.request<Status>('creator', 'POST', `${url}/portforward`)).status).toBe(403);
    // An approver, and anyone to a pod sluice did not inject, pass admission (then fail: no kubelet).
    expect((await cluster.request<Status>('approver', 'POST', `${url}/portforward`)).status).not.toBe(403);
    const plain = await createAs('creator', pod('team', { labels: { app: 'web' } }));
    expect(plain.status).toBe(201);
    const toPlain = await agentSa.team!.request<Status>('POST', `/api/v1/namespaces/team/pods/${plain.body.metadata.name}/portforward`);
    expect(toPlain.status).not.toBe(403);
    const proxy = await agentSa.team!.request<Status>('GET', `${url}:15080/proxy/`);
    expect(proxy.status).toBe(403);
    expect(proxy.body.message).toContain('sluice guard.port_forward: proxy.port');
  });

  test('legitimate work goes on: a developer updates an injected pod and a Deployment image', async () => {
    const url = await injectedPod('team');
    const image = await cluster.request<StoredPod & Status>('creator', 'PATCH', url, { spec: { containers: [{ name: 'agent', image: 'ghcr.io/example/agent:2' }] } }, 'application/strategic-merge-patch+json');
    expect(image.status).toBe(200);
    expect(image.body.spec.containers[0]!.name).toBe('agent');
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: `coder-${++counter}`, namespace: 'team' },
      spec: {
        selector: { matchLabels: { app: 'coder' } },
        template: { metadata: { labels: { app: 'coder', 'sluice.io/inject': 'true' } }, spec: { securityContext: { runAsUser: 1000 }, containers: [{ name: 'agent', image: 'ghcr.io/example/agent:1' }] } },
      },
    };
    expect((await cluster.create('creator', deployment)).status).toBe(201);
    const updated = await cluster.request<Status>(
      'creator',
      'PATCH',
      `/apis/apps/v1/namespaces/team/deployments/${deployment.metadata.name}`,
      { spec: { template: { spec: { containers: [{ name: 'agent', image: 'ghcr.io/example/agent:2' }] } } } },
      'application/strategic-merge-patch+json',
    );
    expect(updated.status).toBe(200);
  });
});

describe('defence in depth: the ValidatingAdmissionPolicy', () => {
  beforeAll(async () => {
    for (const m of readManifests(join(MANIFESTS, 'validating-admission-policy.yaml'))) expect((await cluster.create('admin', m)).status).toBe(201);
  });

  test('an injected pod passes the policy', async () => {
    // The webhook and the policy both run; a correctly injected pod must get through both.
    await eventually('the policy to be active', async () => {
      const res = await createAs('creator', pod('team', { spec: { hostPID: true } }), 'dryRun=All');
      return res.body.message?.includes("ValidatingAdmissionPolicy 'sluice-guard.sluice.io' with binding 'sluice-guard.sluice.io' denied request: sluice guard.host_namespace")
        ? true
        : undefined;
    });
    const res = await createAs('creator', pod('agents', { labels: {} }));
    expect(res.status).toBe(201);
    injectedName = res.body.metadata.name;
    // The exec policy comes up on its own; it answers before the webhook once it is active.
    await eventually('the exec policy to be active', async () => {
      const exec = await cluster.request<Status>('creator', 'POST', `/api/v1/namespaces/agents/pods/${injectedName}/exec?container=sluice-proxy&command=sh&stdout=true`);
      return exec.body.message?.includes("ValidatingAdmissionPolicy 'sluice-exec-guard.sluice.io'") ? true : undefined;
    });
  });

  test('with the webhook process down, failurePolicy Fail refuses labelled pods', async () => {
    await webhook.stop();
    const res = await createAs('creator', pod('team'));
    expect(res.status).toBe(500);
    expect(res.body.message).toMatch(/failed calling webhook "pod.inject.sluice.io"/);
    // exec is not taken away cluster-wide (that webhook fails open) and the policy still guards the sidecar.
    const base = `/api/v1/namespaces/agents/pods/${injectedName}`;
    const agentExec = await cluster.request<Status>('creator', 'POST', `${base}/exec?container=agent&command=true&stdout=true`);
    expect(agentExec.status).toBe(400);
    expect(agentExec.body.message).toMatch(/host/);
    const sidecarExec = await cluster.request<Status>('creator', 'POST', `${base}/exec?container=sluice-proxy&command=sh&stdout=true`);
    expect(sidecarExec.status).toBe(403);
    expect(sidecarExec.body.message).toContain("ValidatingAdmissionPolicy 'sluice-exec-guard.sluice.io'");
    // The emergency stop still works (the update webhook is not called for engaging it alone)…
    const engage = await cluster.request<Status>('creator', 'PATCH', base, { metadata: { annotations: { [ANNOTATION_KILL]: 'true' } } }, MERGE);
    expect(engage.status).toBe(200);
    // …but any other change to an injected pod waits for the webhook (failurePolicy Fail).
    const relabel = await cluster.request<Status>('creator', 'PATCH', base, { metadata: { labels: { app: 'other' } } }, MERGE);
    expect(relabel.status).toBe(500);
    expect(relabel.body.message).toMatch(/failed calling webhook "injected.guard.sluice.io"/);
    const engageAndMore = await cluster.request<Status>('creator', 'PATCH', base, { metadata: { annotations: { [ANNOTATION_KILL]: 'true', note: 'x' } } }, MERGE);
    expect(engageAndMore.status).toBe(500);
  });

  test('with the webhooks unregistered, the API server itself refuses a labelled pod without its sidecar', async () => {
    await unregisterWebhooks();
    for (const p of [pod('team'), pod('agents', { labels: {} })]) {
      const res = await createAs('creator', p);
      expect(res.status).toBe(403);
      expect(res.body.message).toContain("ValidatingAdmissionPolicy 'sluice-guard.sluice.io' with binding 'sluice-guard.sluice.io' denied request: sluice guard.sidecar_missing");
    }
    // A hand-copied sidecar does not help a privileged agent.
    const copied = pod('team', {
      annotations: { [ANNOTATION_CREATOR]: '{"username":"alice@example.com","groups":[]}' },
      spec: { initContainers: [rendered.initContainer, rendered.sidecar], volumes: rendered.volumes },
      container: { securityContext: { privileged: true } },
    });
    const res = await createAs('creator', copied);
    expect(res.status).toBe(403);
    expect(res.body.message).toContain('sluice guard.privileged');
    // Nor one reading a legacy service-account token Secret (issue 15).
    const copiedWithToken = pod('team', {
      annotations: { [ANNOTATION_CREATOR]: '{"username":"alice@example.com","groups":[]}' },
      spec: { securityContext: { runAsUser: 1000 }, initContainers: [rendered.initContainer, rendered.sidecar], volumes: rendered.volumes },
      container: { securityContext: { allowPrivilegeEscalation: false }, envFrom: [{ secretRef: { name: 'builder-token-4bz9p' } }] },
    });
    const withToken = await createAs('creator', copiedWithToken);
    expect(withToken.status).toBe(403);
    expect(withToken.body.message).toContain('denied request: sluice guard.legacy_token_secret: env/envFrom');
    // Pods that did not ask for sluice are unaffected.
    expect((await createAs('creator', pod('plain', { labels: {} }))).status).toBe(201);
  });

  test('with the webhooks unregistered, the policy still guards updates, ephemeral containers and exec', async () => {
    const url = `/api/v1/namespaces/agents/pods/${injectedName}`;
    const { swap, forge, kill } = await tryUpdates(url);
    expect([swap.status, forge.status, kill.status]).toEqual([403, 403, 200]);
    expect(swap.body.message).toContain('denied request: sluice guard.sidecar_modified');
    expect(forge.body.message).toContain('denied request: sluice guard.creator_changed');
    const current = (await cluster.request<StoredPod>('creator', 'GET', url)).body;
    const ephemeral = await cluster.request<Status>('creator', 'PUT', `${url}/ephemeralcontainers`, {
      ...current,
      // Otherwise unobjectionable (the policy reports the first rule a request breaks).
      spec: { ...current.spec, ephemeralContainers: [{ name: 'peek', image: 'busybox', targetContainerName: 'sluice-proxy', securityContext: { allowPrivilegeEscalation: false } }] },
    });
    expect(ephemeral.status).toBe(403);
    expect(ephemeral.body.message).toContain('denied request: sluice guard.ephemeral_target');
    const exec = await cluster.request<Status>('creator', 'POST', `${url}/exec?container=sluice-proxy&command=sh&stdout=true`);
    expect(exec.status).toBe(403);
    expect(exec.body.message).toContain("ValidatingAdmissionPolicy 'sluice-exec-guard.sluice.io' with binding 'sluice-exec-guard.sluice.io' denied request: sluice guard.exec_sidecar");
  });

  test('with the webhooks unregistered, the policy keys on the markers: a label flip and what it was for are refused', async () => {
    const url = `/api/v1/namespaces/agents/pods/${injectedName}`;
    const sa = agentSa.agents!;
    const flip = await sa.request<Status>('PATCH', url, { metadata: { labels: { 'sluice.io/inject': 'false' } } }, MERGE);
    expect(flip.status).toBe(403);
    expect(flip.body.message).toContain("ValidatingAdmissionPolicy 'sluice-guard.sluice.io' with binding 'sluice-guard.sluice.io' denied request: sluice guard.injection_marker");
    // Through the status subresource (no webhook is registered there): refused by the policy, or at least never stored.
    const viaStatus = await cluster.request<Status>('admin', 'PATCH', `${url}/status`, { metadata: { labels: { 'sluice.io/inject': 'false', [LABEL_INJECTED]: null } } }, MERGE);
    expect(viaStatus.status).toBe(403);
    expect(viaStatus.body.message).toContain('denied request: sluice guard.injection_marker');
    expect((await cluster.request<StoredPod>('admin', 'GET', url)).body.metadata.labels?.[LABEL_INJECTED]).toBe('true');
    const unmark = await sa.request<Status>('PATCH', url, { metadata: { labels: { [LABEL_INJECTED]: null }, annotations: { 'sluice.io/status': null } } }, MERGE);
    expect(unmark.status).toBe(403);
    expect(unmark.body.message).toContain('denied request: sluice guard.injection_marker');
    for (const [spec, rule] of [
      [{ securityContext: { privileged: true } }, 'guard.privileged'],
      [{ securityContext: { allowPrivilegeEscalation: false, capabilities: { add: [' cap_net_admin'] } } }, 'guard.capability'],
      [{ securityContext: { allowPrivilegeEscalation: false, runAsUser: 1337 } }, 'guard.proxy_uid'],
      [{ securityContext: { allowPrivilegeEscalation: false, runAsUser: 0 } }, 'guard.uid_change'],
      [{ securityContext: { runAsUser: 2000 } }, 'guard.privilege_escalation'],
    ] as const) {
      const res = await addEphemeral(sa, url, { name: `x${++counter}`, image: 'busybox', ...spec });
      expect(res.status).toBe(403);
      expect(res.body.message).toContain(`denied request: sluice ${rule}`);
    }
    const plain = await addEphemeral(sa, url, { name: 'debug', image: 'busybox', securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } });
    expect(plain.status).toBe(200);
  });

  test('with the webhooks unregistered, the policy still lets only approvers clear the kill switch', async () => {
    const url = `/api/v1/namespaces/agents/pods/${injectedName}`;
    const kill = (value: string | null) => ({ metadata: { annotations: { [ANNOTATION_KILL]: value } } });
    expect((await cluster.request<Status>('creator', 'PATCH', url, kill('true'), MERGE)).status).toBe(200);
    for (const clear of [() => agentSa.agents!.request<Status>('PATCH', url, kill(null), MERGE), () => cluster.request<Status>('creator', 'PATCH', url, kill('false'), MERGE)]) {
      const res = await clear();
      expect(res.status).toBe(403);
      expect(res.body.message).toContain("ValidatingAdmissionPolicy 'sluice-guard.sluice.io' with binding 'sluice-guard.sluice.io' denied request: sluice guard.kill_switch");
    }
    expect((await cluster.request<Status>('approver', 'PATCH', url, kill(null), MERGE)).status).toBe(200);
    expect((await agentSa.agents!.request<Status>('PATCH', url, kill('true'), MERGE)).status).toBe(200);
  });

  test("the sidecar settings and policy bundle ConfigMaps: agents and developers cannot write or delete them; cluster admins can", async () => {
    const cm = (data: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'sluice-sidecar', namespace: 'agents' }, data: { 'sidecar.yaml': data } });
    expect((await cluster.create('admin', cm('approvals: {}\n'))).status).toBe(201);
    const path = '/api/v1/namespaces/agents/configmaps/sluice-sidecar';
    // This policy comes up on its own, like the exec policy: wait until it answers (a dry run changes nothing).
    await eventually('the settings policy to be active', async () => {
      const probe = await agentSa.agents!.request<Status>('PUT', `${path}?dryRun=All`, cm('audit: { sink: none }\n'));
      return probe.status === 403 ? true : undefined;
    });
    const rewrite = await agentSa.agents!.request<Status>('PUT', path, cm('audit: { sink: none }\n'));
    expect(rewrite.status).toBe(403);
    expect(rewrite.body.message).toContain('sluice guard.sluice_settings_write: configmaps/sluice-sidecar: system:serviceaccount:agents:coder may not update');
    const remove = await agentSa.agents!.request<Status>('DELETE', path);
    expect(remove.status).toBe(403);
    expect((await cluster.request<Status>('creator', 'DELETE', path)).status).toBe(403);
    const elsewhere = await agentSa.team!.request<Status>('POST', '/api/v1/namespaces/team/configmaps', { ...cm('{}\n'), metadata: { name: 'sluice-sidecar', namespace: 'team' } });
    expect(elsewhere.status).toBe(403);
    // The custom policy bundle ConfigMap likewise: an agent that may write ConfigMaps cannot swap in
    // a policy of its own (a passthrough host, 0.0.0.0/0), create it, or delete it.
    const bundle = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'sluice-policy', namespace: 'agents' }, data: { 'data.json': '{"passthrough":["*"]}' } };
    const planted = await agentSa.agents!.request<Status>('POST', '/api/v1/namespaces/agents/configmaps', bundle);
    expect(planted.status).toBe(403);
    expect(planted.body.message).toContain('sluice guard.sluice_settings_write: configmaps/sluice-policy: system:serviceaccount:agents:coder may not create the sluice sidecar settings or policy bundle');
    expect((await cluster.create('admin', bundle)).status).toBe(201);
    expect((await agentSa.agents!.request<Status>('PUT', '/api/v1/namespaces/agents/configmaps/sluice-policy', bundle)).status).toBe(403);
    expect((await agentSa.agents!.request<Status>('DELETE', '/api/v1/namespaces/agents/configmaps/sluice-policy')).status).toBe(403);
    // Other ConfigMaps stay the agent's to write; an admin may change the settings.
    expect((await agentSa.agents!.request('POST', '/api/v1/namespaces/agents/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'scratch' }, data: {} })).status).toBe(201);
    expect((await cluster.request('admin', 'PUT', path, cm('approvals: { timeout: 60s }\n'))).status).toBe(200);
  });

  test('legacy service-account token Secrets are not created in opted-in namespaces', async () => {
    const secret = (namespace: string) => ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: `coder-token-${++counter}`, namespace, annotations: { 'kubernetes.io/service-account.name': 'coder' } },
      type: 'kubernetes.io/service-account-token',
    });
    await eventually('the token-Secret policy to be active', async () => ((await cluster.create('creator', secret('agents'), 'dryRun=All')).status === 403 ? true : undefined));
    const developer = await cluster.create<Status>('creator', secret('agents'));
    expect(developer.status).toBe(403);
    expect(developer.body.message).toContain('sluice guard.legacy_token_secret: type');
    expect((await cluster.create('admin', secret('agents'))).status).toBe(201);
    const ordinary = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'ordinary', namespace: 'agents' }, stringData: { a: 'b' } };
    expect((await cluster.create('creator', ordinary)).status).toBe(201);
  });

  test('proxy and port-forward to the sidecar ports are refused by the API server in every namespace', async () => {
    const url = `/api/v1/namespaces/agents/pods/${injectedName}`;
    for (const port of ['15090', '15080', '15001', 'sluice-admin']) {
      const res = await cluster.request<Status>('creator', 'GET', `${url}:${port}/proxy/`);
      expect(res.status).toBe(403);
      expect(res.body.message).toContain("ValidatingAdmissionPolicy 'sluice-connect-guard.sluice.io' with binding 'sluice-connect-guard.sluice.io' denied request: sluice guard.port_forward");
    }
    const forward = await cluster.request<Status>('creator', 'POST', `${url}/portforward?ports=8080&ports=15090`);
    expect(forward.status).toBe(403);
    expect(forward.body.message).toContain('denied request: sluice guard.port_forward: portforward.ports');
    expect((await cluster.request<Status>('creator', 'GET', `${url}:8080/proxy/`)).status).not.toBe(403);
  });
});
