// The Kubernetes API as a relay, against the real kube-apiserver with the default policy: the
// agent's account is given the RBAC an over-generous platform team might grant (cluster-wide
// reads, pods/services proxy, impersonation), and every way of using the allowed API server to
// reach other namespaces, other endpoints or other identities is refused by sluice before the API
// server sees it: reads across all namespaces (list and watch, Secrets included), the legacy proxy
// verb, an aggregated API's console, exec as a WebSocket upgrade, impersonation headers. The
// agent's own-namespace reads keep working (the control). (pods/services/nodes proxy, exec,
// attach and portforward by path, foreign-namespace watches and encoded slashes were refused
// before; the policy and facts tests pin them.)
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { Agent } from '../credentials/agent.ts';
import { KubeCluster } from '../support/kube/cluster.ts';
import { startTestSidecar } from '../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../testkit/sidecar/test-sidecar.ts';
import { mintToken } from '../support/sts/sts-world.ts';

jest.setTimeout(60_000);

const NS = 'agents';
const API = 'https://kubernetes.default.svc';
let cluster: KubeCluster;
let sidecar: TestSidecar;
let agent: Agent;

async function admin(method: string, path: string, body: unknown): Promise<void> {
  const res = await cluster.request('admin', method, path, body);
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
}

beforeAll(async () => {
  cluster = await KubeCluster.start({ namespaces: [{ name: NS }, { name: 'payments' }] });
  for (const sa of ['coder', 'agent-reader']) await admin('POST', `/api/v1/namespaces/${NS}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa } });
  await cluster.grant('serviceaccount:coder', NS, 'mint-agent-reader', [{ apiGroups: [''], resources: ['serviceaccounts/token'], resourceNames: ['agent-reader'], verbs: ['create'] }]);
  // Far more than an agent should have: RBAC would let every request below through.
  await admin('POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: 'too-generous' },
    rules: [
      { apiGroups: [''], resources: ['pods', 'secrets', 'configmaps', 'services', 'pods/proxy', 'services/proxy', 'pods/exec'], verbs: ['get', 'list', 'watch', 'create'] },
      { apiGroups: [''], resources: ['users', 'groups', 'serviceaccounts'], verbs: ['impersonate'] },
    ],
  });
  await admin('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'too-generous' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'too-generous' },
    subjects: [{ kind: 'ServiceAccount', name: 'agent-reader', namespace: NS }],
  });
  await admin('POST', '/api/v1/namespaces/payments/secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'card-processor' }, stringData: { key: 'not-for-agents' } });
  await admin('POST', '/api/v1/namespaces/payments/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings' }, data: { a: 'b' } });
  const dir = mkdtempSync(join(tmpdir(), 'sluice-k8s-channels-'));
  const caFile = join(dir, 'ca.crt');
  writeFileSync(caFile, cluster.ca.certPem);
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, await mintToken(cluster, NS, 'coder', [], 3600));
  sidecar = await startTestSidecar({
    resolve: { 'kubernetes.default.svc': `127.0.0.1:${new URL(cluster.server).port}` },
    extraRootsFiles: [caFile],
    config: { credentials: { kubernetes: { apiServer: cluster.server, caFile, tokenFile, serviceAccount: 'agent-reader' } } },
  });
  agent = new Agent({});
}, 120_000);

afterAll(async () => {
  await sidecar?.stop();
  await cluster?.stop();
});

/** curl through the sidecar: the status line, the decision header and the body. */
async function curl(path: string, extra: string[] = []): Promise<{ status: number; decision: string; body: string }> {
  const run = await agent.run('curl', ['-sS', '--http1.1', '-D', '-', '--max-time', '20', '--proxy', sidecar.proxyUrl, '--cacert', sidecar.trust.bundleFile, ...extra, `${API}${path}`]);
  // The last status line: the first is the proxy's answer to CONNECT.
  const statuses = [...run.stdout.matchAll(/^HTTP\/[\d.]+ (\d{3})/gm)].map((m) => Number(m[1]));
  const status = statuses.at(-1) ?? 0;
  const decision = /^x-sluice-decision: (.*)$/im.exec(run.stdout)?.[1]?.trim() ?? '';
  return { status, decision, body: run.stdout };
}

describe('the control: the agent reads its own namespace', () => {
  test('configmaps in its own namespace are listed with the minted token', async () => {
    const r = await curl(`/api/v1/namespaces/${NS}/configmaps`);
    expect(r.status).toBe(200);
    expect(r.body).toContain('ConfigMapList');
  });
});

describe('reads across all namespaces', () => {
  test.each([
    ['/api/v1/configmaps', 'k8s.all_namespaces_denied'],
    ['/api/v1/pods', 'k8s.all_namespaces_denied'],
    ['/api/v1/secrets?watch=1', 'k8s.all_namespaces_denied'],
    ['/api/v1/watch/secrets', 'k8s.all_namespaces_denied'],
  ])('%s is refused (%s)', async (path, code) => {
    const r = await curl(path);
    expect(r.status).toBe(403);
    expect(r.decision).toBe(`deny; code=${code}`);
    expect(r.body).not.toContain('card-processor');
  });
});

describe('channels through the API server', () => {
  test.each([
    ['the legacy proxy verb', `/api/v1/proxy/namespaces/${NS}/services/web:80/`],
    ['an aggregated API console', `/apis/subresources.kubevirt.io/v1/namespaces/${NS}/virtualmachineinstances/vm/console`],
  ])('%s is refused', async (_what, path) => {
    const r = await curl(path);
    expect(r.status).toBe(403);
    expect(r.decision).toBe('deny; code=k8s.channel_denied');
  });

  test('exec as a WebSocket upgrade is refused as a channel, decided on its facts', async () => {
    const r = await curl(`/api/v1/namespaces/${NS}/pods/victim/exec?command=sh&stdin=true`, [
      '-H', 'Connection: Upgrade', '-H', 'Upgrade: websocket', '-H', 'Sec-WebSocket-Version: 13',
      '-H', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', '-H', 'Sec-WebSocket-Protocol: v5.channel.k8s.io',
    ]);
    expect(r.status).toBe(403);
    expect(r.decision).toBe('deny; code=k8s.channel_denied');
  });

  test('SPDY (kubectl exec and port-forward before WebSocket) is refused as an upgrade protocol', async () => {
    const r = await curl(`/api/v1/namespaces/${NS}/pods/victim/portforward?ports=8080`, ['-X', 'POST', '-H', 'Connection: Upgrade', '-H', 'Upgrade: SPDY/3.1']);
    expect(r.status).toBe(403);
    expect(r.decision).toBe('deny; code=http.upgrade_protocol');
  });

  test('impersonation headers are refused', async () => {
    const r = await curl(`/api/v1/namespaces/${NS}/configmaps`, ['-H', 'Impersonate-User: system:admin']);
    expect(r.status).toBe(403);
    expect(r.decision).toBe('deny; code=k8s.impersonation_denied');
  });
});
