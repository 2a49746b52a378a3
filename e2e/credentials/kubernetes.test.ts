// kubernetes provider end to end against the real kube-apiserver: the agent (curl, with a bogus
// bearer of its own) lists pods through the sidecar; the sidecar mints a short-lived token for
// the configured service account with TokenRequest (authenticated by its own token) and injects
// it. The API server's answers prove which identity was used; the agent never holds a token.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { KubeCluster } from '../support/kube/cluster.ts';
import { startTestSidecar } from '../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../testkit/sidecar/test-sidecar.ts';
import { mintToken } from '../support/sts/sts-world.ts';
import { Agent } from './agent.ts';

// Real clients (the AWS CLI starts Python each time) on a shared, busy machine.
jest.setTimeout(60_000);

const NS = 'agents';
const API = 'https://kubernetes.default.svc';
let cluster: KubeCluster;
let sidecar: TestSidecar;
let agent: Agent;
let caFile: string;
let ownTokenFile: string;

async function admin(method: string, path: string, body: unknown): Promise<void> {
  const res = await cluster.request('admin', method, path, body);
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
}

function sidecarFor(serviceAccount: string, s?: { tokenFile?: string }): Promise<TestSidecar> {
  const port = new URL(cluster.server).port;
  return startTestSidecar({
    resolve: { 'kubernetes.default.svc': `127.0.0.1:${port}` },
    extraRootsFiles: [caFile],
    config: { credentials: { kubernetes: { apiServer: cluster.server, caFile, tokenFile: s?.tokenFile ?? ownTokenFile, serviceAccount } } },
  });
}

function curl(path: string, s: TestSidecar = sidecar) {
  return agent.run('curl', ['-sS', '-w', '\n%{http_code}', '--proxy', s.proxyUrl, '--cacert', s.trust.bundleFile, '-H', 'Authorization: Bearer agent-own-made-up-token', `${API}${path}`]);
}

function split(out: string): { status: number; body: string } {
  const nl = out.lastIndexOf('\n');
  return { status: Number(out.slice(nl + 1)), body: out.slice(0, nl) };
}

beforeAll(async () => {
  cluster = await KubeCluster.start({ namespaces: [{ name: NS }] });
  for (const sa of ['coder', 'agent-reader', 'other-sa']) await admin('POST', `/api/v1/namespaces/${NS}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa } });
  // The pod's own account may mint tokens for agent-reader only; agent-reader may read pods only.
  await cluster.grant('serviceaccount:coder', NS, 'mint-agent-reader', [{ apiGroups: [''], resources: ['serviceaccounts/token'], resourceNames: ['agent-reader'], verbs: ['create'] }]);
  await cluster.grant('serviceaccount:agent-reader', NS, 'read-pods', [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }]);
  await admin('POST', `/api/v1/namespaces/${NS}/pods`, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'victim' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } });
  const dir = mkdtempSync(join(tmpdir(), 'sluice-k8s-'));
  caFile = join(dir, 'ca.crt');
  writeFileSync(caFile, cluster.ca.certPem);
  ownTokenFile = join(dir, 'token');
  writeFileSync(ownTokenFile, await mintToken(cluster, NS, 'coder', [], 3600));
  sidecar = await sidecarFor('agent-reader');
  agent = new Agent({});
}, 120_000);

afterAll(async () => {
  await sidecar?.stop();
  await cluster?.stop();
});

describe('the agent talks to the Kubernetes API with a minted token', () => {
  test('it lists pods; its own bearer is replaced by agent-reader\'s', async () => {
    const res = split((await curl(`/api/v1/namespaces/${NS}/pods`)).stdout);
    expect(res.status).toBe(200);
    const list = JSON.parse(res.body) as { kind: string; items: { metadata: { name: string } }[] };
    expect(list.kind).toBe('PodList');
    expect(list.items.map((p) => p.metadata.name)).toContain('victim');
  });

  test('the minted token carries agent-reader\'s RBAC and nothing more', async () => {
    const res = split((await curl(`/api/v1/namespaces/${NS}/configmaps`)).stdout);
    expect(res.status).toBe(403);
    expect(res.body).toContain(`User \\"system:serviceaccount:${NS}:agent-reader\\" cannot list resource \\"configmaps\\"`);
  });

  test('policy still decides first: Secret reads are held, exec is denied, nothing is minted for them', async () => {
    const before = await sidecar.registry.getSingleMetricAsString('sluice_credentials_issued_total');
    const secrets = await agent.run('curl', ['-sS', '-D', '-', '--proxy', sidecar.proxyUrl, '--cacert', sidecar.trust.bundleFile, `${API}/api/v1/namespaces/${NS}/secrets`]);
    expect(secrets.stdout).toMatch(/x-sluice-decision: hold; code=k8s.secret_read_held/i);
    const exec = await agent.run('curl', ['-sS', '-D', '-', '-X', 'POST', '--proxy', sidecar.proxyUrl, '--cacert', sidecar.trust.bundleFile, `${API}/api/v1/namespaces/${NS}/pods/victim/exec?command=sh`]);
    expect(exec.stdout).toMatch(/x-sluice-decision: deny; code=k8s.channel_denied/i);
    expect(await sidecar.registry.getSingleMetricAsString('sluice_credentials_issued_total')).toBe(before);
  });

  test('one TokenRequest served every call', async () => {
    const text = await sidecar.registry.metrics();
    expect(text).toMatch(/sluice_credentials_issued_total\{provider="kubernetes",jit="true"\} 1\n/);
    expect(text).toMatch(/sluice_credentials_cache_hits_total\{provider="kubernetes"\} [1-9]/);
    expect(text).toMatch(/sluice_credentials_time_to_expiry_seconds\{provider="kubernetes"\} (5[0-9]{2}|600)/);
  });

  test('an account the sidecar may not mint for fails closed with 502 naming the provider', async () => {
    const other = await sidecarFor('other-sa');
    try {
      const run = await agent.run('curl', ['-sS', '-D', '-', '--proxy', other.proxyUrl, '--cacert', other.trust.bundleFile, `${API}/api/v1/namespaces/${NS}/pods`]);
      expect(run.stdout).toMatch(/^HTTP\/(1\.1|2) 502/m);
      expect(run.stdout).toMatch(/x-sluice-decision: error; code=credentials.provider_rejected/i);
      expect(run.stdout).toContain('kubernetes: https://127.0.0.1:');
      expect(run.stdout).toContain('answered 403 (Forbidden)');
    } finally {
      await other.stop();
    }
  });

  test('the sidecar\'s own token missing is a 503 (subject token unavailable)', async () => {
    const broken = await sidecarFor('agent-reader', { tokenFile: '/nonexistent/token' });
    try {
      const run = await agent.run('curl', ['-sS', '-D', '-', '--proxy', broken.proxyUrl, '--cacert', broken.trust.bundleFile, `${API}/api/v1/namespaces/${NS}/pods`]);
      expect(run.stdout).toMatch(/^HTTP\/(1\.1|2) 503/m);
      expect(run.stdout).toMatch(/code=credentials.subject_token_unavailable/);
    } finally {
      await broken.stop();
    }
  });
});

describe('no-secret proof', () => {
  test('no token of any kind reached the agent', () => {
    const seen = [...agent.transcript, JSON.stringify(agent.env)].join('\n');
    // Service-account tokens are JWTs (eyJ…): none in anything the agent received or holds.
    expect(seen).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.eyJ/);
    expect(seen.length).toBeGreaterThan(1000);
  });
});
