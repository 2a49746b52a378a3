// The organisation and sidecar settings from SluicePolicy objects, against a real kube-apiserver +
// etcd (e2e/support/kube) with exactly what the chart renders (`helm template`: the CRD, the
// reader ClusterRole and its binding, the policy-guard admission policy, the default object): a
// running sidecar reading with its namespace's ServiceAccount token waits (not ready, nothing
// allowed) until a policy exists, picks up `kubectl apply` of a changed organisation without a
// restart (the latency is measured), applies namespaceSelector bindings to a labelled namespace the
// chart never listed, keeps its last good policy when an object the API server accepts is invalid
// for it, and an agent ServiceAccount with ConfigMap write and even RBAC on sluicepolicies cannot
// change its policy (refused at admission, by the API server itself).
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { pino } from 'pino';
import { ProxyAgent, request } from 'undici';
import { stringify as toYaml } from 'yaml';
import { SLUICE_POLICY_PATH } from '../../api/src/index.ts';
import { loadSidecarConfig, parseSidecarConfig } from '../../sidecar/src/config/sidecar-config.ts';
import { ClusterPolicyRuntime } from '../../sidecar/src/policy/cluster-runtime.ts';
import { template } from '../../charts/test/support/helm.ts';
import type { K8sObject } from '../../charts/test/support/helm.ts';
import { eventually } from '../support/kube/admission.ts';
import { KubeCluster } from '../support/kube/cluster.ts';
import { serviceAccountToken, tokenKubeconfig } from '../support/kube/tokens.ts';
import { startTestSidecar } from '../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../testkit/sidecar/test-sidecar.ts';
import { createTestCa, startHttpsUpstream } from '../../testkit/sidecar/upstreams.ts';
import type { TestCa, TestUpstream } from '../../testkit/sidecar/upstreams.ts';

jest.setTimeout(120_000);

const LISTED = 'agents';
const UNLISTED = 'team-b';
const PKG_HOST = 'pkgs.example.test';
const TEAM_HOST = 'team.example.test';

let cluster: KubeCluster;
let chart: K8sObject[];
let dir: string;
let ca: TestCa;
let upstream: TestUpstream;
const running: { sidecar: TestSidecar; runtime: ClusterPolicyRuntime; agent: ProxyAgent }[] = [];

type Obj = K8sObject & { spec?: Record<string, unknown> };

function kubectl(args: string[], user = 'admin'): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('kubectl', ['--kubeconfig', cluster.kubeconfigPath(user), ...args], { encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function apply(obj: unknown): Promise<void> {
  const file = join(dir, `apply-${Date.now()}-${Math.random().toString(16).slice(2)}.yaml`);
  writeFileSync(file, toYaml(obj));
  const res = await kubectl(['apply', '--server-side', '--force-conflicts', '-f', file]);
  if (res.code !== 0) throw new Error(`kubectl apply refused: ${res.stderr}`);
}

function defaultObject(): Obj {
  return structuredClone(chart.find((o) => o.kind === 'SluicePolicy' && o.metadata.name === 'default')!);
}

/** The chart's default object with `hosts` added to the organisation's registries.read. */
function withReadHosts(hosts: string[]): Obj {
  const obj = defaultObject();
  const org = obj.spec!.organisation as { registries: { read: string[] } };
  org.registries.read = [...org.registries.read, ...hosts];
  return obj;
}

async function sidecarFor(namespace: string, serviceAccount: string): Promise<{ sidecar: TestSidecar; runtime: ClusterPolicyRuntime; agent: ProxyAgent }> {
  const token = await serviceAccountToken(cluster, namespace, serviceAccount);
  const kubeconfig = join(dir, `kubeconfig-${namespace}-${serviceAccount}.yaml`);
  writeFileSync(kubeconfig, tokenKubeconfig(cluster, token, namespace), { mode: 0o600 });
  const base = {
    pod: { namespace, name: `coder-${namespace}`, serviceAccount },
    trustDir: join(dir, `trust-${namespace}`),
    policy: { cluster: { enabled: true, kubeconfig, namespaceResyncMs: 200 } },
  };
  const boot = parseSidecarConfig(base);
  const runtime = await ClusterPolicyRuntime.create(boot, (settings) => parseSidecarConfig({ ...settings, ...base }), pino({ level: 'silent' }));
  const first = await runtime.start();
  const sidecar = await startTestSidecar({
    resolve: { [`${PKG_HOST}:443`]: upstream.dial, [`${TEAM_HOST}:443`]: upstream.dial },
    extraRootsFiles: [ca.caFile],
    // The chart's sidecar.config said: no audit store (the test sidecar keeps its private spool).
    config: { pod: base.pod, audit: { store: first.config.audit.store, spoolDir: join(dir, `spool-${namespace}`), spool: { fsync: 'none' } } },
    clusterPolicy: runtime,
  });
  const agent = new ProxyAgent({ uri: sidecar.proxyUrl, requestTls: { ca: sidecar.ca.certPem } });
  const entry = { sidecar, runtime, agent };
  running.push(entry);
  return entry;
}

/** The answer to a package download through the sidecar; a refused CONNECT counts as its status. */
async function status(s: { agent: ProxyAgent }, host: string): Promise<number> {
  try {
    const res = await request(`https://${host}/pkg/left-pad/-/left-pad-1.3.0.tgz`, { dispatcher: s.agent });
    await res.body.dump();
    return res.statusCode;
  } catch (err) {
    const refused = /Proxy response \((\d+)\)/.exec((err as Error).message);
    if (refused) return Number(refused[1]);
    throw err;
  }
}

async function metric(s: { sidecar: TestSidecar }, name: string, labels: Record<string, string>): Promise<number> {
  const m = await s.sidecar.registry.getSingleMetric(name)?.get();
  const v = m?.values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
  return v?.value ?? 0;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-policy-e2e-'));
  ca = await createTestCa();
  upstream = await startHttpsUpstream(ca, [PKG_HOST, TEAM_HOST]);
  chart = await template({ agents: { namespaces: [LISTED] } });
  cluster = await KubeCluster.start({
    namespaces: [
      { name: LISTED, labels: { 'sluice.io/inject': 'true' } },
      { name: UNLISTED, labels: { 'sluice.io/inject': 'true', tier: 'gold' } },
      { name: 'sluice-system' },
    ],
  });
  for (const crd of chart.filter((o) => o.kind === 'CustomResourceDefinition')) {
    const res = await cluster.create('admin', crd);
    if (res.status !== 201) throw new Error(`CRD refused: ${JSON.stringify(res.body)}`);
  }
  await eventually('the SluicePolicy CRD to be served', async () => ((await cluster.request('admin', 'GET', SLUICE_POLICY_PATH)).status === 200 ? true : undefined));
  const wanted = (o: K8sObject) =>
    (o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding') ? o.metadata.name === 'sluice-policy-reader' : o.kind.startsWith('ValidatingAdmissionPolicy') && o.metadata.name === 'sluice-policy-guard.sluice.io';
  const picked = chart.filter(wanted);
  expect(picked.map((o) => o.kind).sort()).toEqual(['ClusterRole', 'ClusterRoleBinding', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);
  for (const o of picked) {
    const res = await cluster.create('admin', o);
    if (res.status !== 201) throw new Error(`${o.kind} refused: ${JSON.stringify(res.body)}`);
  }
  await cluster.request('admin', 'POST', `/api/v1/namespaces/${LISTED}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'coder' } });
});

afterAll(async () => {
  for (const r of running) {
    await r.agent.close();
    await r.sidecar.stop();
  }
  await upstream?.close();
  await cluster?.stop();
});

describe('SluicePolicy in the cluster', () => {
  test('no SluicePolicy yet: a sidecar lists, finds nothing and does not start serving', async () => {
    const token = await serviceAccountToken(cluster, UNLISTED, 'default');
    const kubeconfig = join(dir, 'kubeconfig-waiting.yaml');
    writeFileSync(kubeconfig, tokenKubeconfig(cluster, token, UNLISTED), { mode: 0o600 });
    const boot = parseSidecarConfig({ pod: { namespace: UNLISTED, name: 'waiting', serviceAccount: 'default' }, trustDir: join(dir, 'trust-waiting'), policy: { cluster: { enabled: true, kubeconfig } } });
    const runtime = await ClusterPolicyRuntime.create(boot, (s) => parseSidecarConfig({ ...s, pod: boot.pod, trustDir: boot.trustDir, policy: {} }), pino({ level: 'silent' }));
    let started = false;
    const first = runtime.start().then((p) => ((started = true), p));
    // Listed successfully (RBAC lets the namespace's ServiceAccount read), and nothing applies.
    await eventually('the watcher to have listed', () => Promise.resolve(runtime.watcher.healthy ? true : undefined));
    expect(runtime.watcher.current).toBeUndefined();
    expect(started).toBe(false);
    await apply(defaultObject());
    const policy = await first;
    expect(policy.policy.sources.map((s) => s.name)).toEqual(['default']);
    expect(policy.policy.organisation.name).toBe('acme');
    await runtime.stop();
  });

  test('kubectl apply of a changed organisation changes a running sidecar\u2019s decision without a restart', async () => {
    await apply(defaultObject());
    const s = await sidecarFor(LISTED, 'coder');
    expect(await status(s, PKG_HOST)).toBe(403);
    const session = s.sidecar.sessionId;
    const before = s.sidecar.engine.revision;

    // Three rounds (allow, take away, allow again): from the start of `kubectl apply` and from its return
    // to the new revision in service (polled in-process every 5 ms) and to the first request decided by it.
    const rounds: { fromApplyStart: number; inServiceAfterReturn: number; decidedAfterReturn: number }[] = [];
    for (const [hosts, expected] of [[[PKG_HOST], 200], [[], 403], [[PKG_HOST], 200]] as const) {
      const revision = s.sidecar.engine.revision;
      const started = performance.now();
      await apply(withReadHosts([...hosts]));
      const returned = performance.now();
      let inService = 0;
      for (let i = 0; i < 2000 && !inService; i++) {
        if (s.sidecar.engine.revision !== revision) inService = performance.now();
        else await new Promise((r) => setTimeout(r, 5));
      }
      expect(inService).toBeGreaterThan(0);
      expect(await status(s, PKG_HOST)).toBe(expected);
      const decided = performance.now();
      rounds.push({ fromApplyStart: Math.round(decided - started), inServiceAfterReturn: Math.round(inService - returned), decidedAfterReturn: Math.round(decided - returned) });
    }
    console.log(`reload latency (kubectl apply → new organisation in service / first request decided by it), ms: ${JSON.stringify(rounds)}`);
    // The reload alone: an update through the API (no kubectl process) → the new revision in service.
    const direct: number[] = [];
    for (const hosts of [[PKG_HOST, TEAM_HOST], [PKG_HOST], [PKG_HOST, TEAM_HOST], [PKG_HOST]]) {
      const revision = s.sidecar.engine.revision;
      const current = await cluster.request<Obj>('admin', 'GET', `${SLUICE_POLICY_PATH}/default`);
      const next = withReadHosts(hosts);
      const started = performance.now();
      const put = cluster.request('admin', 'PUT', `${SLUICE_POLICY_PATH}/default`, { ...next, metadata: { ...next.metadata, resourceVersion: (current.body.metadata as { resourceVersion?: string }).resourceVersion } });
      let inService = 0;
      for (let i = 0; i < 5000 && !inService; i++) {
        if (s.sidecar.engine.revision !== revision) inService = performance.now();
        else await new Promise((r) => setTimeout(r, 1));
      }
      expect((await put).status).toBe(200);
      expect(inService).toBeGreaterThan(0);
      direct.push(Math.round((inService - started) * 10) / 10);
    }
    console.log(`reload latency (API update sent → new organisation in service), ms: ${JSON.stringify(direct)}`);
    expect(s.sidecar.sessionId).toBe(session);
    expect(s.sidecar.engine.revision).not.toBe(before);
    expect(s.sidecar.engine.revision).toContain('+org.');
    expect(await metric(s, 'sluice_policy_cluster_loads_total', { result: 'success' })).toBeGreaterThanOrEqual(2);
  });

  test('a labelled namespace the chart did not list gets its policy, and a namespaceSelector binding applies to it alone', async () => {
    const b = await sidecarFor(UNLISTED, 'default');
    const a = running[0]!;
    expect(await status(b, PKG_HOST)).toBe(200);
    expect(await status(b, TEAM_HOST)).toBe(403);
    await apply({
      apiVersion: 'sluice.io/v1alpha1',
      kind: 'SluicePolicy',
      metadata: { name: 'gold-teams' },
      spec: { appliesTo: { namespaceSelector: { matchLabels: { tier: 'gold' } } }, namespace: { registries: { read: [TEAM_HOST] } } },
    });
    await eventually('the binding to apply to team-b', async () => ((await status(b, TEAM_HOST)) === 200 ? true : undefined));
    expect(await status(a, TEAM_HOST)).toBe(403);
    // Relabelling the namespace takes it out of the binding (re-read every namespaceResyncMs).
    await cluster.request('admin', 'PATCH', `/api/v1/namespaces/${UNLISTED}`, { metadata: { labels: { tier: 'silver' } } }, 'application/merge-patch+json');
    await eventually('the relabelled namespace to lose the binding', async () => ((await status(b, TEAM_HOST)) === 403 ? true : undefined));
  });

  test('an agent ServiceAccount with ConfigMap write and RBAC on sluicepolicies cannot change its policy', async () => {
    const s = running[0]!;
    await cluster.grant(`serviceaccount:coder`, LISTED, 'configmap-writer', [{ apiGroups: [''], resources: ['configmaps'], verbs: ['create', 'update', 'patch', 'delete', 'get'] }]);
    await cluster.request('admin', 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'too-broad' },
      rules: [{ apiGroups: ['sluice.io'], resources: ['sluicepolicies'], verbs: ['*'] }],
    });
    await cluster.request('admin', 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'too-broad' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'too-broad' },
      subjects: [{ kind: 'ServiceAccount', name: 'coder', namespace: LISTED }],
    });
    const token = await serviceAccountToken(cluster, LISTED, 'coder');
    const evil = withReadHosts(['exfil.example']);
    (evil.spec!.organisation as { kubernetes: { namespaces: string[] } }).kubernetes.namespaces = ['*'];
    const current = await cluster.request<Obj>('admin', 'GET', `${SLUICE_POLICY_PATH}/default`);
    // The API server picks admission policies up asynchronously; RBAC, too.
    const update = await eventually('the policy guard to answer', async () => {
      const res = await cluster.requestWithToken<{ message?: string }>(token, 'PUT', `${SLUICE_POLICY_PATH}/default`, { ...evil, metadata: { ...evil.metadata, resourceVersion: (current.body.metadata as { resourceVersion?: string }).resourceVersion } });
      if (res.status === 200) throw new Error('the agent rewrote the default SluicePolicy');
      return res.status === 403 && res.body.message?.includes('guard.sluice_policy_write') ? res : undefined;
    });
    const create = await cluster.requestWithToken<{ message?: string }>(token, 'POST', SLUICE_POLICY_PATH, {
      apiVersion: 'sluice.io/v1alpha1',
      kind: 'SluicePolicy',
      metadata: { name: 'mine' },
      spec: { appliesTo: { namespaces: [LISTED] }, namespace: { registries: { read: ['exfil.example'] } }, sidecar: { masking: { enabled: false } } },
    });
    const del = await cluster.requestWithToken<{ message?: string }>(token, 'DELETE', `${SLUICE_POLICY_PATH}/default`);
    for (const res of [update, create, del]) {
      expect(res.status).toBe(403);
      expect(res.body.message).toContain(`sluice guard.sluice_policy_write`);
      expect(res.body.message).toContain(`system:serviceaccount:${LISTED}:coder`);
    }
    // RBAC alone would have let it: the refusal is the admission policy's.
    const review = await cluster.request<{ status: { allowed: boolean } }>('admin', 'POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: { user: `system:serviceaccount:${LISTED}:coder`, groups: ['system:serviceaccounts', `system:serviceaccounts:${LISTED}`], resourceAttributes: { group: 'sluice.io', resource: 'sluicepolicies', verb: 'update', name: 'default' } },
    });
    expect(review.body.status.allowed).toBe(true);
    // The ConfigMaps it may write no longer mean anything to the sidecar.
    for (const name of ['sluice-sidecar', 'sluice-policy']) {
      const res = await cluster.requestWithToken(token, 'POST', `/api/v1/namespaces/${LISTED}/configmaps`, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name },
        data: { 'sidecar.yaml': 'masking:\n  enabled: false\n', 'data.json': '{"organisation":{"registries":{"read":["exfil.example"]}}}' },
      });
      expect(res.status).toBe(201);
    }
    const stored = await cluster.request<Obj>('admin', 'GET', `${SLUICE_POLICY_PATH}/default`);
    expect((stored.body.spec!.organisation as { registries: { read: string[] } }).registries.read).not.toContain('exfil.example');
    expect((await cluster.request('admin', 'GET', `${SLUICE_POLICY_PATH}/mine`)).status).toBe(404);
    expect(await status(s, PKG_HOST)).toBe(200);
  });

  test('a corrupt object is refused by the API server, or ignored by the sidecar with the last good policy kept', async () => {
    const s = running[0]!;
    // Refused at the door: the CRD's schema (an AWS account is 12 digits) and its role rules.
    for (const spec of [
      { appliesTo: { namespaces: [LISTED] }, namespace: { aws: { accounts: ['not-an-account'] } } },
      { appliesTo: { namespaces: [LISTED] }, organisation: defaultObject().spec!.organisation },
      { namespace: { registries: { read: ['x.example'] } } },
    ]) {
      const res = await cluster.request<{ message?: string }>('admin', 'POST', SLUICE_POLICY_PATH, { apiVersion: 'sluice.io/v1alpha1', kind: 'SluicePolicy', metadata: { name: 'broken' }, spec });
      expect(res.status).toBe(422);
    }
    // Accepted by the API server (settings are the sidecar's to validate), refused by the sidecar.
    const failuresBefore = await metric(s, 'sluice_policy_cluster_loads_total', { result: 'failure', code: 'sluicepolicy.invalid' });
    const revision = s.sidecar.engine.revision;
    await apply({
      apiVersion: 'sluice.io/v1alpha1',
      kind: 'SluicePolicy',
      metadata: { name: 'bad-settings' },
      spec: { appliesTo: { namespaces: [LISTED] }, priority: 10, namespace: { registries: { read: [TEAM_HOST] } }, sidecar: { approvals: { maxWaitMs: -1 } } },
    });
    await eventually('the sidecar to refuse the object', async () => ((await metric(s, 'sluice_policy_cluster_loads_total', { result: 'failure', code: 'sluicepolicy.invalid' })) > failuresBefore ? true : undefined));
    expect(s.sidecar.engine.revision).toBe(revision);
    expect(await status(s, TEAM_HOST)).toBe(403);
    expect(await status(s, PKG_HOST)).toBe(200);
    const ready = await request(`${s.sidecar.adminUrl}/readyz`);
    await ready.body.dump();
    expect(ready.statusCode).toBe(200);
    // Deleting it brings the namespace back to a valid policy (same as before: no new revision needed).
    expect((await kubectl(['delete', 'sluicepolicy', 'bad-settings'])).code).toBe(0);
  });
});

describe('the default object deleted', () => {
  test('running sidecars keep their last good policy (recorded as missing_default) until it is back', async () => {
    const s = running[0]!;
    const before = await metric(s, 'sluice_policy_cluster_loads_total', { result: 'failure', code: 'sluicepolicy.missing_default' });
    const kept = withReadHosts([PKG_HOST]);
    expect((await kubectl(['delete', 'sluicepolicy', 'default'])).code).toBe(0);
    await eventually('the sidecar to notice', async () => ((await metric(s, 'sluice_policy_cluster_loads_total', { result: 'failure', code: 'sluicepolicy.missing_default' })) > before ? true : undefined));
    expect(await status(s, PKG_HOST)).toBe(200);
    await apply(kept);
    await eventually('the policy to be back in service', async () => ((await metric(s, 'sluice_policy_cluster_loads_total', { result: 'success' })) > 0 && (await status(s, PKG_HOST)) === 200 ? true : undefined));
  });
});

describe('settings from the cluster', () => {
  test('what a SluicePolicy may not set is refused naming the field', () => {
    expect(() => loadSidecarConfig({ SLUICE_POD_NAMESPACE: 'a', SLUICE_POD_NAME: 'p', SLUICE_SERVICE_ACCOUNT: 's', SLUICE_TRUST_DIR: '/t' }, { ports: { proxy: 1 }, dns: { ipv4Cidr: '10.0.0.0/8' } })).toThrow(/sidecar\.ports.*sidecar\.dns\.ipv4Cidr/s);
  });
});
