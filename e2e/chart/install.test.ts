// `helm install` of charts/sluice into a real kube-apiserver + etcd (e2e/support/kube): every
// object is accepted, the CRD becomes Established, the webhook registrations and admission
// policies are live (a labelled namespace is guarded at once, kube-system and sluice's own
// namespace never are), the RBAC does what it should and nothing more (SubjectAccessReviews), the
// real webhook starts from the installed ConfigMap and Secret and serves the Service name with the
// CA the registrations trust, and `helm upgrade` keeps that CA (re-issuing only the serving
// certificate when it nears expiry). The install steps are exactly the documented ones.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { Agent, request } from 'undici';
import { parse as parseYaml } from 'yaml';
import { CHART, HELM, REPO } from '../../charts/test/support/helm.ts';
import { eventually } from '../support/kube/admission.ts';
import { KubeCluster } from '../support/kube/cluster.ts';
import { agentPod, podCreateReview } from './agent-pod.ts';

jest.setTimeout(120_000);

const RELEASE = 'sluice';
const NS = 'sluice-system';
const SERVICE_HOST = `sluice-webhook.${NS}.svc`;

let cluster: KubeCluster;
let helmEnv: NodeJS.ProcessEnv;
let installOutput = '';

interface Secret {
  data: Record<string, string>;
  metadata: { annotations?: Record<string, string> };
}
interface Registration {
  webhooks: { name: string; clientConfig: { caBundle?: string } }[];
}
interface Status {
  status?: string;
  message?: string;
}

function helm(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(HELM, [...args, '--kubeconfig', cluster.kubeconfigPath('admin')], { env: helmEnv });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr: stderr.split('\n').filter((l) => !l.includes('symbolic link')).join('\n') }));
  });
}

async function get<T>(path: string, user = 'admin'): Promise<{ status: number; body: T }> {
  return cluster.request<T>(user, 'GET', path);
}

const secret = async (name: string) => (await get<Secret>(`/api/v1/namespaces/${NS}/secrets/${name}`)).body;
const registration = async (kind: 'mutating' | 'validating', name: string) =>
  (await get<Registration>(`/apis/admissionregistration.k8s.io/v1/${kind}webhookconfigurations/${name}`)).body;

/** Asks the API server whether `user` (with `groups`) may do `verb` on `resource`. */
async function allowed(user: string, groups: string[], verb: string, resource: string, namespace: string, group = '', subresource = ''): Promise<boolean> {
  const res = await cluster.request<{ status: { allowed: boolean } }>('admin', 'POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SubjectAccessReview',
    spec: { user, groups, resourceAttributes: { verb, resource, namespace, group, subresource } },
  });
  return res.body.status.allowed;
}

beforeAll(async () => {
  cluster = await KubeCluster.start({ namespaces: [{ name: 'agents' }, { name: 'team-b' }] });
  const home = mkdtempSync(join(tmpdir(), 'sluice-helm-'));
  helmEnv = { ...process.env, HELM_CACHE_HOME: join(home, 'cache'), HELM_CONFIG_HOME: join(home, 'config'), HELM_DATA_HOME: join(home, 'data') };
  // kube-system has no default ServiceAccount without a controller-manager: add it for the
  // pod the exclusion test creates there.
  await cluster.request('admin', 'POST', '/api/v1/namespaces/kube-system/serviceaccounts', { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default' } });
  // The documented install: helm install, then label a namespace.
  // certificates.mode helm (not the default, self): this harness has no kubelet, so no webhook pod
  // runs to create its Secret and set the caBundle; these tests need the chart's own CA to start the
  // real webhook below and to pin that helm upgrade keeps it. Mode self as real pods: e2e/cluster/whole-story.
  const res = await helm(['install', RELEASE, CHART, '-n', NS, '--create-namespace', '--set', 'agents.namespaces={agents}', '--set', 'certificates.mode=helm']);
  if (res.code !== 0) throw new Error(`helm install failed:\n${res.stderr}`);
  installOutput = res.stdout;
  await cluster.request('admin', 'POST', `/api/v1/namespaces/${NS}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default' } });
  const label = await cluster.request('admin', 'PATCH', '/api/v1/namespaces/agents', { metadata: { labels: { 'sluice.io/inject': 'true' } } }, 'application/merge-patch+json');
  if (label.status !== 200) throw new Error(`labelling the namespace failed: ${JSON.stringify(label.body)}`);
});

afterAll(async () => {
  await cluster?.stop();
});

describe('helm install', () => {
  test('the release is deployed and NOTES tell the user to label their namespace', async () => {
    expect(installOutput).toContain('STATUS: deployed');
    expect(installOutput).toContain('kubectl label namespace agents sluice.io/inject=true');
    const status = await helm(['status', RELEASE, '-n', NS, '-o', 'json']);
    expect((JSON.parse(status.stdout) as { info: { status: string } }).info.status).toBe('deployed');
  });

  test('every object the chart renders is stored', async () => {
    const manifest = await helm(['get', 'manifest', RELEASE, '-n', NS]);
    const objects = manifest.stdout.split(/^---$/m).map((d) => parseYaml(d) as { kind?: string; apiVersion: string; metadata: { name: string; namespace?: string } } | null).filter((o) => o?.kind);
    expect(objects.length).toBeGreaterThan(20);
    for (const o of objects) {
      const path = `${await cluster.collectionPath({ apiVersion: o!.apiVersion, kind: o!.kind!, metadata: { namespace: o!.metadata.namespace ?? NS } })}/${o!.metadata.name}`;
      const got = await get(path);
      expect([o!.kind, o!.metadata.name, got.status]).toEqual([o!.kind, o!.metadata.name, 200]);
    }
  });

  test('the SluicePolicy named default holds the organisation and settings; every ServiceAccount may read it, none may write it', async () => {
    const policy = await get<{ spec: { organisation: { name: string }; sidecar: { audit: { store: string } } } }>('/apis/sluice.io/v1alpha1/sluicepolicies/default');
    expect(policy.status).toBe(200);
    expect(policy.body.spec.organisation.name).toBe('acme');
    expect(policy.body.spec.sidecar).toEqual({ audit: { store: 'none' } });
    const sa = (ns: string): [string, string[]] => [`system:serviceaccount:${ns}:coder`, ['system:serviceaccounts', `system:serviceaccounts:${ns}`]];
    // A namespace the chart never listed: its sidecars read their policy all the same.
    for (const verb of ['get', 'list', 'watch']) expect(await allowed(...sa('never-listed'), verb, 'sluicepolicies', '', 'sluice.io')).toBe(true);
    expect(await allowed(...sa('never-listed'), 'update', 'sluicepolicies', '', 'sluice.io')).toBe(false);
    expect(await allowed(...sa('agents'), 'get', 'namespaces', '', '')).toBe(true);
    expect(await allowed(...sa('agents'), 'list', 'namespaces', '', '')).toBe(false);
  });

  test('the ApprovalRequest CRD is Established and served', async () => {
    const crd = await eventually('the CRD to be established', async () => {
      const res = await get<{ status?: { conditions?: { type: string; status: string }[] } }>('/apis/apiextensions.k8s.io/v1/customresourcedefinitions/approvalrequests.sluice.io');
      return res.body.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? res.body : undefined;
    });
    expect(crd).toBeDefined();
    // Established can precede the first served list by a moment (the server answers 429 meanwhile).
    const served = await eventually('ApprovalRequests to be served', async () => {
      const res = await get('/apis/sluice.io/v1alpha1/namespaces/agents/approvalrequests');
      return res.status === 429 ? undefined : res.status;
    });
    expect(served).toBe(200);
  });

  test('the registrations trust the CA the chart generated, and it signed the serving certificate', async () => {
    const ca = await secret('sluice-webhook-ca');
    const tls = await secret('sluice-webhook-tls');
    for (const [kind, name] of [['mutating', 'sluice-injector'], ['validating', 'sluice-guard'], ['mutating', 'sluice-approvals'], ['validating', 'sluice-approvals']] as const) {
      for (const w of (await registration(kind, name)).webhooks) expect(w.clientConfig.caBundle).toBe(ca.data['tls.crt']);
    }
    const leaf = new X509Certificate(Buffer.from(tls.data['tls.crt']!, 'base64'));
    expect(leaf.verify(new X509Certificate(Buffer.from(ca.data['tls.crt']!, 'base64')).publicKey)).toBe(true);
  });

  test('a labelled namespace is guarded at once: with no webhook reachable its agent pods are refused (fail closed)', async () => {
    const res = await eventually('the registrations to take effect', async () => {
      const r = await cluster.create<Status>('admin', agentPod('agents', `agent-${Date.now()}`, {}));
      return r.status === 201 ? undefined : r;
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.body.message).toMatch(/sluice/);
  });

  test('kube-system and sluice’s own namespace are never selected, even for labelled pods', async () => {
    for (const ns of ['kube-system', NS]) {
      const res = await cluster.create<Status>('admin', agentPod(ns, 'labelled-but-excluded'));
      expect([ns, res.status, res.body.message]).toEqual([ns, 201, undefined]);
    }
  });
});

describe('RBAC, as the API server authorizes it', () => {
  const sidecar = ['system:serviceaccount:agents:coder', ['system:serviceaccounts', 'system:serviceaccounts:agents', 'system:authenticated']] as const;

  test('an agent pod’s identity (held by its sidecar) may create and watch ApprovalRequests in its namespace only', async () => {
    const [user, groups] = sidecar;
    for (const verb of ['create', 'get', 'list', 'watch']) expect(await allowed(user, [...groups], verb, 'approvalrequests', 'agents', 'sluice.io')).toBe(true);
    expect(await allowed(user, [...groups], 'patch', 'approvalrequests', 'agents', 'sluice.io', 'status')).toBe(true);
    expect(await allowed(user, [...groups], 'update', 'approvalrequests', 'agents', 'sluice.io')).toBe(false);
    // Its own finished requests (the webhook refuses another pod's): docs/approvals.md "Expiry".
    expect(await allowed(user, [...groups], 'delete', 'approvalrequests', 'agents', 'sluice.io')).toBe(true);
    expect(await allowed(user, [...groups], 'get', 'secrets', 'agents')).toBe(false);
    expect(await allowed('system:serviceaccount:team-b:coder', ['system:serviceaccounts', 'system:serviceaccounts:team-b'], 'create', 'approvalrequests', 'team-b', 'sluice.io')).toBe(false);
  });

  test('approvers decide in agent namespaces; others may not', async () => {
    expect(await allowed('bob', ['sluice-approvers'], 'patch', 'approvalrequests', 'agents', 'sluice.io', 'status')).toBe(true);
    expect(await allowed('bob', ['sluice-approvers'], 'list', 'approvalrequests', 'agents', 'sluice.io')).toBe(true);
    expect(await allowed('bob', ['sluice-approvers'], 'patch', 'pods', 'agents')).toBe(true);
    expect(await allowed('bob', ['sluice-approvers'], 'patch', 'approvalrequests', 'team-b', 'sluice.io', 'status')).toBe(false);
    expect(await allowed('mallory', [], 'patch', 'approvalrequests', 'agents', 'sluice.io', 'status')).toBe(false);
  });

  test('the webhook’s service account only reads pods and workload owners (get), nothing else', async () => {
    const user = `system:serviceaccount:${NS}:sluice-webhook`;
    const groups = ['system:serviceaccounts', `system:serviceaccounts:${NS}`];
    expect(await allowed(user, groups, 'get', 'pods', 'agents')).toBe(true);
    expect(await allowed(user, groups, 'get', 'replicasets', 'team-b', 'apps')).toBe(true);
    expect(await allowed(user, groups, 'get', 'cronjobs', 'agents', 'batch')).toBe(true);
    for (const [verb, resource, group] of [['list', 'pods', ''], ['list', 'secrets', ''], ['get', 'secrets', ''], ['create', 'approvalrequests', 'sluice.io'], ['update', 'deployments', 'apps']] as const) {
      expect(await allowed(user, groups, verb, resource, 'agents', group)).toBe(false);
    }
  });
});

describe('the real webhook from the installed objects', () => {
  let child: ChildProcess | undefined;

  afterAll(() => {
    child?.kill('SIGKILL');
  });

  test('starts from the ConfigMap and Secret, serves the Service name with the registered CA, and injects', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-installed-webhook-'));
    const tlsDir = join(dir, 'tls');
    mkdirSync(tlsDir);
    const tls = await secret('sluice-webhook-tls');
    for (const f of ['tls.crt', 'tls.key']) writeFileSync(join(tlsDir, f), Buffer.from(tls.data[f]!, 'base64'), { mode: 0o600 });
    const cm = (await get<{ data: { 'config.yaml': string } }>(`/api/v1/namespaces/${NS}/configmaps/sluice-webhook`)).body;
    const config = parseYaml(cm.data['config.yaml']) as Record<string, unknown>;
    // Only where it listens changes: loopback instead of the pod's interfaces.
    writeFileSync(join(dir, 'config.yaml'), JSON.stringify({ ...config, server: { host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0, tlsDir } }));
    child = spawn(process.execPath, [join(REPO, 'webhook', 'src', 'main.ts'), '--config', join(dir, 'config.yaml')], { stdio: ['ignore', 'pipe', 'inherit'] });
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('webhook did not start')), 20_000);
      createInterface({ input: child!.stdout! }).on('line', (line) => {
        const entry = JSON.parse(line) as { msg?: string; port?: number };
        if (entry.msg === 'listening' && entry.port) {
          clearTimeout(timer);
          resolve(entry.port);
        }
      });
      child!.once('exit', (code) => reject(new Error(`webhook exited ${code}`)));
    });
    const caPem = Buffer.from((await registration('mutating', 'sluice-injector')).webhooks[0]!.clientConfig.caBundle!, 'base64').toString();
    const peer = await new Promise<X509Certificate>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, servername: SERVICE_HOST, ca: caPem, checkServerIdentity: () => undefined }, () => {
        const cert = socket.getPeerX509Certificate()!;
        socket.end();
        resolve(cert);
      });
      socket.on('error', reject);
    });
    expect(peer.checkHost(SERVICE_HOST)).toBe(SERVICE_HOST);
    const review = podCreateReview();
    const res = await request(`https://127.0.0.1:${port}/mutate/namespace`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(review),
      dispatcher: new Agent({ connect: { ca: caPem, servername: SERVICE_HOST } }),
    });
    const answer = (await res.body.json()) as { response: { allowed: boolean; patch?: string } };
    expect(answer.response.allowed).toBe(true);
    const patch = Buffer.from(answer.response.patch!, 'base64').toString();
    expect(patch).toContain('ghcr.io/sluice-dev/sluice-sidecar:0.1.0');
    expect(patch).toContain('sluice-proxy');
  });
});

describe('helm upgrade', () => {
  test('keeps the CA and the serving certificate, and provisions a new agent namespace', async () => {
    const before = { ca: await secret('sluice-webhook-ca'), tls: await secret('sluice-webhook-tls'), bundle: (await registration('mutating', 'sluice-injector')).webhooks[0]!.clientConfig.caBundle };
    const res = await helm(['upgrade', RELEASE, CHART, '-n', NS, '--reuse-values', '--set', 'agents.namespaces={agents,team-b}']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect((await secret('sluice-webhook-ca')).data).toEqual(before.ca.data);
    expect((await secret('sluice-webhook-tls')).data).toEqual(before.tls.data);
    expect((await registration('mutating', 'sluice-injector')).webhooks[0]!.clientConfig.caBundle).toBe(before.bundle);
    // Settings and organisation are the cluster-scoped SluicePolicy (re-applied by the upgrade hook),
    // and the policy is built into the sidecar image: nothing of either is copied into agent namespaces.
    expect((await get('/api/v1/namespaces/team-b/configmaps/sluice-sidecar')).status).toBe(404);
    expect((await get<{ spec: { organisation: { name: string } } }>('/apis/sluice.io/v1alpha1/sluicepolicies/default')).body.spec.organisation.name).toBe('acme');
    expect((await get('/api/v1/namespaces/team-b/configmaps/sluice-policy')).status).toBe(404);
    expect(await allowed('system:serviceaccount:team-b:coder', ['system:serviceaccounts', 'system:serviceaccounts:team-b'], 'create', 'approvalrequests', 'team-b', 'sluice.io')).toBe(true);
  });

  test('near expiry it re-issues the serving certificate from the same CA', async () => {
    const ca = await secret('sluice-webhook-ca');
    const old = await secret('sluice-webhook-tls');
    // Renewing 400 days ahead of a 365-day certificate: this upgrade is "near expiry".
    const res = await helm(['upgrade', RELEASE, CHART, '-n', NS, '--reuse-values', '--set', 'certificates.renewBeforeDays=400']);
    expect(res.code).toBe(0);
    const renewed = await secret('sluice-webhook-tls');
    expect(renewed.data['tls.crt']).not.toBe(old.data['tls.crt']);
    expect((await secret('sluice-webhook-ca')).data).toEqual(ca.data);
    const leaf = new X509Certificate(Buffer.from(renewed.data['tls.crt']!, 'base64'));
    expect(leaf.verify(new X509Certificate(Buffer.from(ca.data['tls.crt']!, 'base64')).publicKey)).toBe(true);
    for (const w of (await registration('validating', 'sluice-guard')).webhooks) expect(w.clientConfig.caBundle).toBe(ca.data['tls.crt']);
  });

  test('a typo in a value fails the upgrade naming the field, and changes nothing', async () => {
    const res = await helm(['upgrade', RELEASE, CHART, '-n', NS, '--reuse-values', '--set', 'webhook.replica=3']);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/replica/);
    const history = await helm(['history', RELEASE, '-n', NS, '-o', 'json']);
    expect((JSON.parse(history.stdout) as unknown[]).length).toBe(3);
  });

  test('uninstall keeps the CRD and the CA; a reinstall trusts the same CA', async () => {
    const ca = await secret('sluice-webhook-ca');
    expect((await helm(['uninstall', RELEASE, '-n', NS])).code).toBe(0);
    expect((await get('/apis/apiextensions.k8s.io/v1/customresourcedefinitions/approvalrequests.sluice.io')).status).toBe(200);
    expect((await get(`/api/v1/namespaces/${NS}/secrets/sluice-webhook-ca`)).status).toBe(200);
    expect((await get('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/sluice-injector')).status).toBe(404);
    const again = await helm(['install', RELEASE, CHART, '-n', NS, '--set', 'agents.namespaces={agents}', '--set', 'certificates.mode=helm']);
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    expect((await secret('sluice-webhook-ca')).data).toEqual(ca.data);
    expect((await registration('mutating', 'sluice-injector')).webhooks[0]!.clientConfig.caBundle).toBe(ca.data['tls.crt']);
  });
});
