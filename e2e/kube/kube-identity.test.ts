// lib/src/approvals/kube-identity.ts against a real kube-apiserver + etcd (e2e/support/kube): the
// sidecar's own reading of who it is — a token kubeconfig, a token file the kubelet rotates, the
// pod's service-account mount — authenticates exactly as @kubernetes/client-node did (same user,
// same refusals), a kubeconfig only client-node understands (an exec plugin) still works through
// it, and the sidecar's approvals path never loads client-node (its ~75 MB and start-up share).
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { ApprovalApiError } from '../../lib/src/approvals/errors.ts';
import { KubeClient } from '../../lib/src/approvals/kube-client.ts';
import { inClusterIdentity, kubeconfigIdentity, loadKubeIdentity } from '../../lib/src/approvals/kube-identity.ts';
import { KubeRest, loadKubeConfig } from '../../lib/src/approvals/kube-rest.ts';
import { KubeCluster } from '../support/kube/cluster.ts';
import { serviceAccountToken } from '../support/kube/tokens.ts';

jest.setTimeout(90_000);

const NS = 'identity';
let cluster: KubeCluster;
let dir: string;

interface Review {
  status: { userInfo: { username: string } };
}
const whoami = async (client: KubeClient) =>
  (await client.call<Review>('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } })).status.userInfo.username;

function kubeconfig(name: string, user: Record<string, unknown>, cluster_: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): string {
  const file = join(dir, name);
  writeFileSync(
    file,
    toYaml({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'e2e', cluster: { server: cluster.server, 'certificate-authority-data': Buffer.from(cluster.ca.certPem).toString('base64'), ...cluster_ } }],
      users: [{ name: 'me', user }],
      contexts: [{ name: 'main', context: { cluster: 'e2e', user: 'me', namespace: NS } }],
      'current-context': 'main',
      ...extra,
    }),
  );
  return file;
}

beforeAll(async () => {
  cluster = await KubeCluster.start({ namespaces: [{ name: NS }] });
  dir = mkdtempSync(join(tmpdir(), 'sluice-kube-identity-'));
});

afterAll(async () => {
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('kubeconfig read without client-node', () => {
  test('a token user is who the API server says, the same as through client-node; the context namespace is read', async () => {
    const file = kubeconfig('token.yaml', { token: cluster.user('creator').token });
    const identity = kubeconfigIdentity(file, undefined)!;
    expect(identity).toBeDefined();
    expect(identity.namespace).toBe(NS);
    await expect(whoami(new KubeClient(identity))).resolves.toBe('alice@example.com');
    await expect(whoami(new KubeRest(loadKubeConfig({ kubeconfig: file })))).resolves.toBe('alice@example.com');
  });

  test('RBAC refusals and missing objects keep their codes', async () => {
    const client = new KubeClient(await loadKubeIdentity({ kubeconfig: kubeconfig('outsider.yaml', { token: cluster.user('outsider').token }) }));
    await expect(client.call('GET', `/api/v1/namespaces/${NS}/secrets`)).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_API_FORBIDDEN', status: 403 });
    const admin = new KubeClient(await loadKubeIdentity({ kubeconfig: kubeconfig('admin.yaml', { token: cluster.user('admin').token }) }));
    await expect(admin.call('GET', `/api/v1/namespaces/${NS}/configmaps/none`)).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_API_NOT_FOUND' });
  });

  test('a tokenFile is read again after a minute (rotation), not on every call', async () => {
    const tokenFile = join(dir, 'rotating-token');
    writeFileSync(tokenFile, `${cluster.user('creator').token}\n`);
    let now = 1_000_000;
    const client = new KubeClient(kubeconfigIdentity(kubeconfig('token-file.yaml', { tokenFile }), undefined, () => now)!);
    await expect(whoami(client)).resolves.toBe('alice@example.com');
    writeFileSync(tokenFile, cluster.user('approver').token);
    now += 30_000;
    await expect(whoami(client)).resolves.toBe('alice@example.com');
    now += 31_000;
    await expect(whoami(client)).resolves.toBe('bob@example.com');
  });

  test('a CA the server certificate does not chain to is refused; insecure-skip-tls-verify is honoured', async () => {
    const wrongCa = join(dir, 'wrong-ca.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'wrong-ca.key'), '-out', wrongCa, '-days', '1', '-subj', '/CN=not the cluster CA'], { stdio: 'ignore' });
    const file = kubeconfig('wrong-ca.yaml', { token: cluster.user('admin').token }, { 'certificate-authority-data': undefined, 'certificate-authority': wrongCa });
    await expect(whoami(new KubeClient((await loadKubeIdentity({ kubeconfig: file }))))).rejects.toMatchObject({ code: 'SLUICE_APPROVAL_API_UNREACHABLE' });
    const insecure = kubeconfig('insecure.yaml', { token: cluster.user('admin').token }, { 'certificate-authority-data': undefined, 'insecure-skip-tls-verify': true });
    await expect(whoami(new KubeClient(await loadKubeIdentity({ kubeconfig: insecure })))).resolves.toBe('admin@example.com');
  });

  test('refusals as client-node words them: an unknown context, no current cluster, plain http without insecure-skip-tls-verify', async () => {
    const file = kubeconfig('ctx.yaml', { token: 'x' });
    await expect(loadKubeIdentity({ kubeconfig: file, context: 'nope' })).rejects.toThrow(new ApprovalApiError('SLUICE_APPROVAL_API_REJECTED', 'context "nope" is not in the kubeconfig'));
    expect(() => loadKubeConfig({ kubeconfig: file, context: 'nope' })).toThrow('context "nope" is not in the kubeconfig');
    const none = kubeconfig('none.yaml', { token: 'x' }, {}, { 'current-context': 'gone' });
    await expect(loadKubeIdentity({ kubeconfig: none })).rejects.toThrow('the kubeconfig has no current cluster');
    const http = kubeconfig('http.yaml', { token: 'x' }, { server: 'http://127.0.0.1:1', 'certificate-authority-data': undefined });
    await expect(loadKubeIdentity({ kubeconfig: http })).rejects.toThrow(/plain http/);
  });

  test('an exec plugin (only client-node runs it) still authenticates, through client-node', async () => {
    const plugin = join(dir, 'exec-plugin.sh');
    writeFileSync(plugin, `#!/bin/sh\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"${cluster.user('approver').token}"}}'\n`);
    chmodSync(plugin, 0o755);
    const file = kubeconfig('exec.yaml', { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: plugin, interactiveMode: 'Never' } });
    expect(kubeconfigIdentity(file, undefined)).toBeUndefined();
    await expect(whoami(new KubeClient(await loadKubeIdentity({ kubeconfig: file })))).resolves.toBe('bob@example.com');
  });
});

describe("the pod's service account", () => {
  test('token, CA and namespace from the mount; server from KUBERNETES_SERVICE_HOST/PORT (IPv4 and [IPv6] forms)', async () => {
    const mount = join(dir, 'serviceaccount');
    mkdirSync(mount, { recursive: true });
    writeFileSync(join(mount, 'token'), await serviceAccountToken(cluster, NS, 'default'));
    writeFileSync(join(mount, 'ca.crt'), cluster.ca.certPem);
    writeFileSync(join(mount, 'namespace'), NS);
    const url = new URL(cluster.server);
    const identity = inClusterIdentity({ KUBERNETES_SERVICE_HOST: url.hostname, KUBERNETES_SERVICE_PORT: url.port }, mount);
    expect(identity.namespace).toBe(NS);
    await expect(whoami(new KubeClient(identity))).resolves.toBe(`system:serviceaccount:${NS}:default`);
    expect(inClusterIdentity({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, mount).server).toBe('https://[fd00::1]:443');
    expect(() => inClusterIdentity({}, mount)).toThrow(/not running in a pod/);
  });
});

test("the sidecar's approvals path with a token kubeconfig never loads @kubernetes/client-node", () => {
  const root = join(import.meta.dirname, '..', '..');
  const file = kubeconfig('footprint.yaml', { token: cluster.user('admin').token });
  const code = `
    import { registerHooks } from 'node:module';
    const seen = [];
    registerHooks({ load(url, c, next) { seen.push(url); return next(url, c); } });
    const { KubeClient } = await import(${JSON.stringify(join(root, 'lib/src/approvals/kube-client.ts'))});
    const { loadKubeIdentity } = await import(${JSON.stringify(join(root, 'lib/src/approvals/kube-identity.ts'))});
    const client = new KubeClient(await loadKubeIdentity({ kubeconfig: ${JSON.stringify(file)} }));
    await client.call('GET', '/api/v1/namespaces/${NS}/configmaps');
    console.log(JSON.stringify(seen.filter((u) => u.includes('@kubernetes'))));`;
  expect(JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' }))).toEqual([]);
});
