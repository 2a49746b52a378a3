// Upgrading a release installed while certificates.mode defaulted to helm, into the real
// kube-apiserver + etcd (e2e/support/kube), as docs/upgrading.md "Certificates: mode self is the
// default" describes it: `helm upgrade --reuse-values` keeps mode helm (Helm reuses the old chart's
// defaults) and changes no certificate; `--reset-then-reuse-values` switches to self, Helm removes
// the caBundle it had rendered and the helm-mode serving Secret and keeps the CA Secret; the real
// webhook process, as the chart's ServiceAccount and from the installed ConfigMap, then creates its
// own Secret with a new CA, sets every caBundle to it, and neither adopts nor touches the old CA.
// The "old chart" is this chart packaged with `certificates.mode: helm` as its default.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { parse as parseYaml } from 'yaml';
import { CHART, HELM } from '../../charts/test/support/helm.ts';
import { eventually } from '../support/kube/admission.ts';
import { KubeCluster } from '../support/kube/cluster.ts';
import { serviceAccountToken, tokenKubeconfig } from '../support/kube/tokens.ts';
import { startWebhookProcess } from '../webhook/webhook-process.ts';
import type { WebhookProcess } from '../webhook/webhook-process.ts';

jest.setTimeout(120_000);

const RELEASE = 'sluice';
const NS = 'sluice-system';
const ADM = '/apis/admissionregistration.k8s.io/v1';

interface Secret {
  data: Record<string, string>;
}
interface Registration {
  metadata: { name: string };
  webhooks: { clientConfig: { caBundle?: string } }[];
}

let cluster: KubeCluster;
let helmEnv: NodeJS.ProcessEnv;
let oldChart = '';
let webhook: WebhookProcess | undefined;

function helm(args: string[]): { code: number; out: string } {
  try {
    return { code: 0, out: execFileSync(HELM, [...args, '--kubeconfig', cluster.kubeconfigPath('admin')], { env: helmEnv, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
  } catch (err) {
    const e = err as { status?: number; stderr?: string };
    return { code: e.status ?? 1, out: e.stderr ?? '' };
  }
}

async function secretStatus(name: string): Promise<number> {
  return (await cluster.request('admin', 'GET', `/api/v1/namespaces/${NS}/secrets/${name}`)).status;
}
async function secret(name: string): Promise<Secret> {
  const res = await cluster.request<Secret>('admin', 'GET', `/api/v1/namespaces/${NS}/secrets/${name}`);
  expect(res.status).toBe(200);
  return res.body;
}

/** Every caBundle of the release's registrations (undefined where none is set). */
async function caBundles(): Promise<(string | undefined)[]> {
  const all: (string | undefined)[] = [];
  for (const plural of ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations']) {
    const list = await cluster.request<{ items: Registration[] }>('admin', 'GET', `${ADM}/${plural}?labelSelector=app.kubernetes.io%2Finstance%3D${RELEASE}`);
    for (const r of list.body.items) for (const w of r.webhooks) all.push(w.clientConfig.caBundle);
  }
  return all;
}

beforeAll(async () => {
  cluster = await KubeCluster.start({ namespaces: [{ name: 'agents' }] });
  const home = mkdtempSync(join(tmpdir(), 'sluice-helm-upgrade-'));
  helmEnv = { ...process.env, HELM_CACHE_HOME: join(home, 'cache'), HELM_CONFIG_HOME: join(home, 'config'), HELM_DATA_HOME: join(home, 'data') };
  // The chart as released before self became the default: the same chart, values.yaml saying helm.
  execFileSync(HELM, ['package', CHART, '-d', home], { env: helmEnv, stdio: 'ignore' });
  execFileSync('tar', ['-xzf', join(home, 'sluice-0.1.0.tgz'), '-C', home]);
  oldChart = join(home, 'sluice');
  const values = readFileSync(join(oldChart, 'values.yaml'), 'utf8');
  expect(values).toMatch(/^certificates:\n(?: {2}#.*\n)* {2}mode: self$/m);
  writeFileSync(join(oldChart, 'values.yaml'), values.replace(/^(certificates:\n(?: {2}#.*\n)*) {2}mode: self$/m, '$1  mode: helm'));
  // Installed without naming the mode, as most releases were.
  const res = helm(['install', RELEASE, oldChart, '-n', NS, '--create-namespace', '--set', 'agents.namespaces={agents}']);
  if (res.code !== 0) throw new Error(`helm install of the old chart failed:\n${res.out}`);
});

afterAll(async () => {
  await webhook?.stop();
  await cluster?.stop();
});

describe('a release installed with mode helm as the default', () => {
  let ca: Secret;

  test('was installed in mode helm: the chart’s CA in every caBundle', async () => {
    ca = await secret('sluice-webhook-ca');
    expect(new Set(await caBundles())).toEqual(new Set([ca.data['tls.crt']]));
    expect(await secretStatus('sluice-webhook-tls')).toBe(200);
  });

  test('helm upgrade --reuse-values keeps mode helm: same CA, same caBundle, no self Secret', async () => {
    const tls = await secret('sluice-webhook-tls');
    expect(helm(['upgrade', RELEASE, CHART, '-n', NS, '--reuse-values']).code).toBe(0);
    expect((await secret('sluice-webhook-ca')).data).toEqual(ca.data);
    expect((await secret('sluice-webhook-tls')).data).toEqual(tls.data);
    expect(new Set(await caBundles())).toEqual(new Set([ca.data['tls.crt']]));
    const values = parseYaml(helm(['get', 'values', RELEASE, '-n', NS, '--all', '-o', 'yaml']).out) as { certificates: { mode: string } };
    expect(values.certificates.mode).toBe('helm');
  });

  test('helm upgrade --reset-then-reuse-values switches to self: the rendered caBundle and the serving Secret go, the CA Secret stays', async () => {
    expect(helm(['upgrade', RELEASE, CHART, '-n', NS, '--reset-then-reuse-values']).code).toBe(0);
    // Until a webhook replica sets its own, no registration trusts any CA (calls are refused: failurePolicy Fail).
    expect((await caBundles()).every((b) => b === undefined)).toBe(true);
    expect(await secretStatus('sluice-webhook-tls')).toBe(404);
    expect((await secret('sluice-webhook-ca')).data).toEqual(ca.data);
    expect(await secretStatus('sluice-webhook-certs')).toBe(404);
  });

  test('the webhook, as its ServiceAccount from the installed config, creates a new CA, sets every caBundle, and leaves the old CA alone', async () => {
    const cm = await cluster.request<{ data: { 'config.yaml': string } }>('admin', 'GET', `/api/v1/namespaces/${NS}/configmaps/sluice-webhook`);
    const config = parseYaml(cm.body.data['config.yaml']) as Record<string, unknown> & { selfCert?: { secretName: string } };
    expect(config.selfCert?.secretName).toBe('sluice-webhook-certs');
    const token = await serviceAccountToken(cluster, NS, 'sluice-webhook');
    const kubeconfig = join(cluster.dir, 'kubeconfig-sluice-webhook-upgrade.yaml');
    writeFileSync(kubeconfig, tokenKubeconfig(cluster, token), { mode: 0o600 });
    // The chart's RBAC (created by the upgrade) is what lets it: eventually, as RBAC caches settle.
    webhook = await startWebhookProcess(cluster.ca, { ...config, kube: { kubeconfig } }, 60_000);
    const created = await secret('sluice-webhook-certs');
    const newCa = Buffer.from(created.data['ca.crt']!, 'base64').toString('utf8');
    expect(new X509Certificate(newCa).ca).toBe(true);
    expect(created.data['ca.crt']).not.toBe(ca.data['tls.crt']);
    await eventually('every caBundle to hold the new CA', async () => ((await caBundles()).every((b) => b === created.data['ca.crt']) ? true : undefined));
    expect((await secret('sluice-webhook-ca')).data).toEqual(ca.data);
    expect(webhook.logs.some((l) => l.includes('created the webhook CA and serving certificate'))).toBe(true);
  });
});
