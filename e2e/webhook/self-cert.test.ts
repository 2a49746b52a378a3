// Certificate mode "self" against a real kube-apiserver + etcd: the chart rendered with
// certificates.mode=self (no key material, no caBundle) is applied — its ServiceAccount, its RBAC
// and its registrations (pointed at loopback, caBundle left empty) — and two real webhook
// processes start together with the chart's own config. They must converge on one CA in one
// Secret, set the caBundle of every registration, be called by the API server through that CA
// (a labelled pod is injected), repair a blanked caBundle and re-issue a serving certificate near
// expiry from the same CA. The webhook acts with the chart's RBAC only, through a real token.
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { Agent, request } from 'undici';
import { parse as parseYaml } from 'yaml';
import { issueCA, issueServing } from '../../webhook/src/self-cert.ts';
import { template } from '../../charts/test/support/helm.ts';
import type { K8sObject } from '../../charts/test/support/helm.ts';
import { eventually, pointWebhooksAt } from '../support/kube/admission.ts';
import type { Manifest } from '../support/kube/admission.ts';
import { KubeCluster } from '../support/kube/cluster.ts';
import { serviceAccountToken, tokenKubeconfig } from '../support/kube/tokens.ts';
import { startWebhookProcess } from './webhook-process.ts';
import type { WebhookProcess } from './webhook-process.ts';

jest.setTimeout(60_000);

const NS = 'sluice-system';
const SECRET = 'sluice-webhook-certs';
const SECRET_PATH = `/api/v1/namespaces/${NS}/secrets/${SECRET}`;
const ADM = '/apis/admissionregistration.k8s.io/v1';

interface Hook {
  name: string;
  clientConfig: { url?: string; caBundle?: string; service?: unknown };
}
type Registration = Manifest & { webhooks: Hook[] };
interface SecretObj {
  metadata: { uid: string; resourceVersion: string };
  data: Record<string, string>;
}

let cluster: KubeCluster;
let rendered: K8sObject[];
let registrations: Registration[];
let webhooks: WebhookProcess[] = [];
let token = '';
let kubeconfig = '';
let serviceAccount = '';
/** The chart's webhook config, with this test's kubeconfig and loopback names. */
let base: Record<string, unknown> = {};
const hosts = () => (base.selfCert as { hosts: string[] }).hosts;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** The certificate a process serves, as a TLS client that trusts only `caPem` sees it. */
function servedCert(port: number, caPem: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: caPem }, () => {
      const raw = socket.getPeerCertificate().raw;
      socket.end();
      resolve(new X509Certificate(raw));
    });
    socket.once('error', reject);
  });
}

async function readSecret(): Promise<SecretObj> {
  const res = await cluster.request<SecretObj>('admin', 'GET', SECRET_PATH);
  expect(res.status).toBe(200);
  return res.body;
}

const pem = (s: SecretObj, key: string) => Buffer.from(s.data[key]!, 'base64').toString('utf8');

async function caBundles(): Promise<(string | undefined)[]> {
  const all: (string | undefined)[] = [];
  for (const r of registrations) {
    const plural = r.kind === 'MutatingWebhookConfiguration' ? 'mutatingwebhookconfigurations' : 'validatingwebhookconfigurations';
    const got = await cluster.request<Registration>('admin', 'GET', `${ADM}/${plural}/${r.metadata.name}`);
    for (const h of got.body.webhooks) all.push(h.clientConfig.caBundle);
  }
  return all;
}

let counter = 0;
function labelledPod() {
  counter += 1;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `agent-${counter}`, namespace: 'team', labels: { 'sluice.io/inject': 'true' } },
    spec: { securityContext: { runAsUser: 1000, runAsNonRoot: true }, containers: [{ name: 'agent', image: 'ghcr.io/example/agent:1' }] },
  };
}

/** Creates a labelled pod (dry run); its sidecar when injected, else the refusal's message. */
async function tryInject(): Promise<{ injected: boolean; message?: string }> {
  const res = await cluster.create<{ spec?: { initContainers?: { name: string }[] }; message?: string }>('admin', labelledPod(), 'dryRun=All');
  return res.status === 201 ? { injected: res.body.spec?.initContainers?.some((c) => c.name === 'sluice-proxy') ?? false } : { injected: false, message: res.body.message };
}

beforeAll(async () => {
  cluster = await KubeCluster.start({ namespaces: [{ name: 'team' }] });
  rendered = await template({ certificates: { mode: 'self' } });
  await cluster.createNamespace(NS);
  // The webhook's identity exactly as the chart makes it: its ServiceAccount and every RBAC object.
  for (const o of rendered.filter((x) => ['ServiceAccount', 'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding'].includes(x.kind) && x.metadata.labels?.['app.kubernetes.io/component'] === 'webhook')) {
    const res = await cluster.create('admin', o);
    if (res.status !== 201) throw new Error(`applying ${o.kind} ${o.metadata.name}: ${res.status} ${JSON.stringify(res.body)}`);
    if (o.kind === 'ServiceAccount') serviceAccount = o.metadata.name;
  }
  token = await serviceAccountToken(cluster, NS, serviceAccount);
  kubeconfig = join(cluster.dir, 'kubeconfig-sluice-webhook-self.yaml');
  writeFileSync(kubeconfig, tokenKubeconfig(cluster, token), { mode: 0o600 });
  await eventually('the chart RBAC to apply to the webhook', async () => ((await asWebhook('GET', SECRET_PATH)).status === 404 ? true : undefined));
}, 120_000);

afterAll(async () => {
  await Promise.all(webhooks.map((w) => w.stop()));
  await cluster?.stop();
}, 60_000);

async function asWebhook(method: string, path: string): Promise<{ status: number }> {
  const dispatcher = new Agent({ connect: { ca: cluster.ca.certPem } });
  try {
    const res = await request(`${cluster.server}${path}`, { method: method as 'GET', dispatcher, headers: { authorization: `Bearer ${token}` } });
    await res.body.dump();
    return { status: res.statusCode };
  } finally {
    await dispatcher.close();
  }
}

describe('the chart in certificate mode self', () => {
  test('renders no key material and no caBundle', () => {
    expect(rendered.filter((o) => o.kind === 'Secret')).toEqual([]);
    const regs = rendered.filter((o) => o.kind.endsWith('WebhookConfiguration')) as Registration[];
    expect(regs.length).toBeGreaterThanOrEqual(3);
    for (const r of regs) for (const h of r.webhooks) expect(h.clientConfig.caBundle).toBeUndefined();
  });
});

describe('the webhook manages its own serving certificate', () => {
  let port: number;

  test('until the webhook has set the caBundle, a labelled pod is refused (failurePolicy Fail)', async () => {
    port = await freePort();
    registrations = (rendered.filter((o) => o.kind.endsWith('WebhookConfiguration')) as Registration[]).map((r) => {
      const pointed = pointWebhooksAt(r, `https://127.0.0.1:${port}`, '') as Registration;
      for (const h of pointed.webhooks) delete h.clientConfig.caBundle;
      return pointed;
    });
    for (const r of registrations) expect((await cluster.create('admin', r)).status).toBe(201);
    const refused = await eventually('the registrations to take effect', async () => {
      const r = await tryInject();
      return r.message?.includes('failed calling webhook') ? r : undefined;
    });
    expect(refused.injected).toBe(false);
  });

  test('two replicas starting together create one Secret, serve its CA and set every caBundle', async () => {
    const configMap = rendered.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'sluice-webhook') as K8sObject & { data: Record<string, string> };
    const config = parseYaml(configMap.data['config.yaml']!) as Record<string, unknown> & { selfCert: { hosts: string[] } };
    const selfCert = { ...config.selfCert, hosts: [...config.selfCert.hosts, '127.0.0.1'], resyncSeconds: 1 };
    const other = await freePort();
    base = { ...config, kube: { kubeconfig }, selfCert };
    webhooks = await Promise.all([
      startWebhookProcess(cluster.ca, { ...base, server: { port } }, 30_000),
      startWebhookProcess(cluster.ca, { ...base, server: { port: other } }, 30_000),
    ]);
    const messages = webhooks.flatMap((w) => w.logs).map((l) => {
      try {
        return (JSON.parse(l) as { msg?: string }).msg ?? '';
      } catch {
        return '';
      }
    });
    // One create wins; a replica that raced it (its create answered AlreadyExists) adopts the winner's Secret.
    expect(messages.filter((m) => m === 'created the webhook CA and serving certificate').length).toBe(1);
    expect(messages.filter((m) => m.startsWith('another replica created the webhook CA first')).length).toBeLessThanOrEqual(1);
    const secret = await readSecret();
    const ca = pem(secret, 'ca.crt');
    expect(new X509Certificate(ca).ca).toBe(true);
    // Both replicas serve the Secret's serving certificate, which verifies against the Secret's CA.
    for (const w of webhooks) {
      const served = await servedCert(w.port, ca);
      expect(served.fingerprint256).toBe(new X509Certificate(pem(secret, 'tls.crt')).fingerprint256);
      expect(served.checkIP('127.0.0.1')).toBe('127.0.0.1');
      expect(served.checkHost('sluice-webhook.sluice-system.svc')).toBe('sluice-webhook.sluice-system.svc');
    }
    expect(new Set(await caBundles())).toEqual(new Set([secret.data['ca.crt']]));
  });

  test('the API server calls the webhook through that CA: a labelled pod is injected', async () => {
    await eventually('a labelled pod to be injected', async () => ((await tryInject()).injected ? true : undefined));
  });

  test('a caBundle blanked by an apply of the chart is set again', async () => {
    const injector = registrations.find((r) => r.kind === 'MutatingWebhookConfiguration' && r.metadata.name === 'sluice-injector')!;
    const blanked = await cluster.request('admin', 'PATCH', `${ADM}/mutatingwebhookconfigurations/${injector.metadata.name}`, injector.webhooks.map((_, i) => ({ op: 'remove', path: `/webhooks/${i}/clientConfig/caBundle` })), 'application/json-patch+json');
    expect(blanked.status).toBe(200);
    const secret = await readSecret();
    await eventually('the caBundle to be repaired', async () => ((await caBundles()).every((b) => b === secret.data['ca.crt']) ? true : undefined));
    await eventually('a labelled pod to be injected again', async () => ((await tryInject()).injected ? true : undefined));
    expect(webhooks.flatMap((w) => w.logs).some((l) => l.includes('set the caBundle') && l.includes('sluice-injector'))).toBe(true);
  });

  test('a server-side apply of the chart’s registrations (Argo CD, Flux, Helm 4) leaves the caBundle the webhook set', async () => {
    const secret = await readSecret();
    for (const r of registrations) {
      const plural = r.kind === 'MutatingWebhookConfiguration' ? 'mutatingwebhookconfigurations' : 'validatingwebhookconfigurations';
      // The rendered registration (no caBundle) applied by another field manager, without forcing conflicts.
      const applied = await cluster.request<Registration>('admin', 'PATCH', `${ADM}/${plural}/${r.metadata.name}?fieldManager=argocd-controller`, r, 'application/apply-patch+yaml');
      expect(applied.status).toBe(200);
      // The answer is the object right after the apply: no re-check of the webhook could have run in between.
      for (const h of applied.body.webhooks) expect(h.clientConfig.caBundle).toBe(secret.data['ca.crt']);
    }
  });

  test('a serving certificate near expiry is re-issued from the same CA and served without a restart', async () => {
    const secret = await readSecret();
    const ca = { caCert: pem(secret, 'ca.crt'), caKey: pem(secret, 'ca.key') };
    // A pair from the same CA that expires in two days: inside renewBeforeDays (30).
    const short = await issueServing(ca, hosts(), 2);
    const put = await cluster.request('admin', 'PUT', SECRET_PATH, {
      ...secret,
      data: { ...secret.data, 'tls.crt': Buffer.from(short.cert).toString('base64'), 'tls.key': Buffer.from(short.key).toString('base64') },
    });
    expect(put.status).toBe(200);
    const renewed = await eventually('the serving certificate to be re-issued', async () => {
      const s = await readSecret();
      const leaf = new X509Certificate(pem(s, 'tls.crt'));
      return new Date(leaf.validTo).getTime() > Date.now() + 300 * 86_400_000 ? s : undefined;
    });
    expect(pem(renewed, 'ca.crt')).toBe(ca.caCert);
    expect(renewed.metadata.uid).toBe(secret.metadata.uid);
    for (const w of webhooks) {
      await eventually('the replica to serve the re-issued certificate', async () =>
        (await servedCert(w.port, ca.caCert)).fingerprint256 === new X509Certificate(pem(renewed, 'tls.crt')).fingerprint256 ? true : undefined,
      );
    }
    await eventually('a labelled pod to be injected', async () => ((await tryInject()).injected ? true : undefined));
  });

  test('a replica serves, and its /readyz passes, only once every registration holds the CA', async () => {
    const approvals = registrations.find((r) => r.kind === 'ValidatingWebhookConfiguration' && r.metadata.name === 'sluice-approvals')!;
    expect((await cluster.delete('admin', approvals)).status).toBe(200);
    const [port3, metrics3] = await Promise.all([freePort(), freePort()]);
    const logs: string[] = [];
    const starting = startWebhookProcess(cluster.ca, { ...base, server: { port: port3, metricsPort: metrics3 } }, 30_000, logs);
    starting.catch(() => undefined); // awaited below
    await eventually('the replica to find a registration missing', () => Promise.resolve(logs.some((l) => l.includes('webhook configurations not found') && l.includes('validating/sluice-approvals')) ? true : undefined));
    const probe = () => request(`http://127.0.0.1:${metrics3}/readyz`).then(async (r) => (await r.body.dump(), r.statusCode), (err: Error & { code?: string }) => err.code);
    expect(await probe()).toBe('ECONNREFUSED');
    const created = await cluster.create('admin', approvals);
    expect(created.status).toBe(201);
    const third = await starting;
    webhooks.push(third);
    expect(await probe()).toBe(200);
    const secret = await readSecret();
    const got = await cluster.request<Registration>('admin', 'GET', `${ADM}/validatingwebhookconfigurations/sluice-approvals`);
    for (const h of got.body.webhooks) expect(h.clientConfig.caBundle).toBe(secret.data['ca.crt']);
  });

  test('a CA two thirds through its life is rotated: trusted next to the old one first, then serving certificates move to it', async () => {
    const secret = await readSecret();
    // 40 of 150 days left: the CA is due; its serving certificate (clamped to the CA's end) is not.
    const ageing = await issueCA('ageing CA', 150, new Date(Date.now() - 110 * 86_400_000));
    const leaf = await issueServing(ageing, hosts(), 365);
    const enc = (x: string) => Buffer.from(x).toString('base64');
    const put = await cluster.request('admin', 'PUT', SECRET_PATH, { ...secret, data: { 'ca.crt': enc(ageing.caCert), 'ca.key': enc(ageing.caKey), 'tls.crt': enc(leaf.cert), 'tls.key': enc(leaf.key) } });
    expect(put.status).toBe(200);
    const rotated = await eventually('the CA to be rotated and the serving certificate moved to it', async () => {
      const s = await readSecret();
      if (!s.data['ca-previous.crt'] || pem(s, 'ca.crt') === ageing.caCert) return undefined;
      return new X509Certificate(pem(s, 'tls.crt')).verify(new X509Certificate(pem(s, 'ca.crt')).publicKey) ? s : undefined;
    });
    expect(pem(rotated, 'ca-previous.crt')).toBe(ageing.caCert);
    expect(new Date(new X509Certificate(pem(rotated, 'ca.crt')).validTo).getTime()).toBeGreaterThan(Date.now() + 3000 * 86_400_000);
    const both = enc(`${pem(rotated, 'ca.crt').trim()}\n${ageing.caCert.trim()}\n`);
    await eventually('every registration to trust both CAs', async () => ((await caBundles()).every((b) => b === both) ? true : undefined));
    for (const w of webhooks) {
      await eventually('the replica to serve the certificate of the new CA', async () =>
        (await servedCert(w.port, pem(rotated, 'ca.crt'))).fingerprint256 === new X509Certificate(pem(rotated, 'tls.crt')).fingerprint256 ? true : undefined,
      );
    }
    // The order: the serving certificate moved only after the registrations trusted the new CA.
    const messages = webhooks.flatMap((w) => w.logs);
    expect(messages.some((l) => l.includes('rotating the webhook CA'))).toBe(true);
    expect(messages.some((l) => l.includes('signed by the previous CA, and every registration now trusts the new one'))).toBe(true);
    await eventually('a labelled pod to be injected', async () => ((await tryInject()).injected ? true : undefined));
  });

  test("the webhook's RBAC reaches only its own Secret and sluice's registrations", async () => {
    expect((await asWebhook('GET', `/api/v1/namespaces/${NS}/secrets/someone-elses`)).status).toBe(403);
    expect((await asWebhook('GET', `/api/v1/namespaces/${NS}/secrets`)).status).toBe(403);
    expect((await asWebhook('DELETE', SECRET_PATH)).status).toBe(403);
    expect((await asWebhook('GET', `${ADM}/mutatingwebhookconfigurations/not-sluice`)).status).toBe(403);
    expect((await asWebhook('GET', `${ADM}/mutatingwebhookconfigurations`)).status).toBe(403);
    expect((await asWebhook('DELETE', `${ADM}/mutatingwebhookconfigurations/sluice-injector`)).status).toBe(403);
  });
});
