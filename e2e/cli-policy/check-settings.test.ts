// `kubectl sluice check` against a real kube-apiserver finds the log store where the sidecars find
// their settings: with the webhook's settingsSource cluster (the chart's choice, no sluice-sidecar
// ConfigMap in agent namespaces) in the SluicePolicy objects merged per agent namespace — the
// default's VictoriaLogs (a real one, probed ✔) and a label-selected binding's Loki that is not
// there (✖, naming both objects) — and with settingsSource configMap in the namespace's ConfigMap.
// Each probe says which source it read.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { SLUICE_POLICY_API_VERSION, SLUICE_POLICY_KIND, SLUICE_POLICY_PATH } from '../../api/src/index.ts';
import type { CheckResult } from '../../cli/src/commands/check.ts';
import { runCli } from '../../cli/src/main.ts';
import { readClusterPolicy } from '../../cli/src/policy/cluster-source.ts';
import type { ClusterReader } from '../../cli/src/policy/cluster-source.ts';
import { eventually } from '../support/kube/admission.ts';
import { KubeCluster, freePort } from '../support/kube/cluster.ts';
import { VictoriaLogsServer } from '../support/logstore/victoria-logs.ts';
import { repoRoot } from './support.ts';

let cluster: KubeCluster;
let vlogs: VictoriaLogsServer;
let deadLoki: string;
const ORG = JSON.parse(readFileSync(join(repoRoot, 'policies', 'data', 'organisation', 'data.json'), 'utf8')) as unknown;
const WEBHOOK_LABELS = { 'app.kubernetes.io/part-of': 'sluice', 'app.kubernetes.io/component': 'webhook' };

async function mustCreate(path: string, body: unknown): Promise<void> {
  const res = await cluster.request('admin', 'POST', path, body);
  if (res.status !== 201) throw new Error(`POST ${path}: ${res.status} ${JSON.stringify(res.body)}`);
}

async function logStore(): Promise<CheckResult[]> {
  let out = '';
  await runCli(['check', '-o', 'json', '--kubeconfig', cluster.kubeconfigPath('admin')], { out: (s) => (out += s), err: () => undefined });
  return (JSON.parse(out) as { results: CheckResult[] }).results.filter((r) => r.category === 'log-store');
}

/** The cluster view `policy eval|explain --cluster` reads, as the admin. */
const reader = (): ClusterReader => ({
  async get<T>(path: string, query?: Record<string, string>): Promise<T | undefined> {
    const res = await cluster.request<T>('admin', 'GET', query ? `${path}?${new URLSearchParams(query).toString()}` : path);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw new Error(`GET ${path}: ${res.status}`);
    return res.body;
  },
  proxyText: () => Promise.resolve(undefined),
});

async function webhookConfig(settingsSource: 'cluster' | 'configMap'): Promise<void> {
  const body = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'sluice-webhook', namespace: 'sluice-system' }, data: { 'config.yaml': `namespace: sluice-system\nsidecar:\n  settingsSource: ${settingsSource}\n  sidecarConfigMap: sluice-sidecar\n` } };
  let res = await cluster.request('admin', 'PUT', '/api/v1/namespaces/sluice-system/configmaps/sluice-webhook', body);
  if (res.status === 404) res = await cluster.request('admin', 'POST', '/api/v1/namespaces/sluice-system/configmaps', body);
  if (res.status !== 200 && res.status !== 201) throw new Error(`webhook ConfigMap: ${res.status} ${JSON.stringify(res.body)}`);
}

beforeAll(async () => {
  vlogs = await VictoriaLogsServer.start();
  deadLoki = `http://127.0.0.1:${await freePort()}`;
  cluster = await KubeCluster.start({ namespaces: [{ name: 'sluice-system' }, { name: 'agents-a', labels: { 'sluice.io/inject': 'true', team: 'a' } }, { name: 'agents-b', labels: { 'sluice.io/inject': 'true' } }] });
  await mustCreate('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', parseYaml(readFileSync(join(repoRoot, 'api', 'crds', 'sluicepolicies.sluice.io.yaml'), 'utf8')));
  await eventually('the SluicePolicy API is served', async () => ((await cluster.request('admin', 'GET', SLUICE_POLICY_PATH)).status === 200 ? true : undefined));
  await mustCreate(SLUICE_POLICY_PATH, { apiVersion: SLUICE_POLICY_API_VERSION, kind: SLUICE_POLICY_KIND, metadata: { name: 'default' }, spec: { organisation: ORG, sidecar: { audit: { store: { type: 'victorialogs', url: vlogs.url } } } } });
  await mustCreate(SLUICE_POLICY_PATH, { apiVersion: SLUICE_POLICY_API_VERSION, kind: SLUICE_POLICY_KIND, metadata: { name: 'team-a' }, spec: { appliesTo: { namespaceSelector: { matchLabels: { team: 'a' } } }, sidecar: { audit: { store: { type: 'loki', url: deadLoki } } } } });
  // The webhook as the chart installs it (no kubelet here: its Deployment only exists).
  await mustCreate('/apis/apps/v1/namespaces/sluice-system/deployments', {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'sluice-webhook', labels: WEBHOOK_LABELS },
    spec: { replicas: 1, selector: { matchLabels: WEBHOOK_LABELS }, template: { metadata: { labels: WEBHOOK_LABELS }, spec: { containers: [{ name: 'webhook', image: 'sluice-webhook' }] } } },
  });
  await webhookConfig('cluster');
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
  await vlogs?.stop();
});

describe('check: the log store from the settings the sidecars run with', () => {
  test('settingsSource cluster: each agent namespace\u2019s SluicePolicy merge, the source named', async () => {
    const results = await logStore();
    expect(results).toContainEqual({ category: 'log-store', status: 'ok', message: 'sidecar settings from the SluicePolicy objects (webhook settingsSource cluster)' });
    expect(results).toContainEqual({ category: 'log-store', status: 'ok', message: `victorialogs at ${vlogs.url} is ready (from SluicePolicy default, namespace agents-b)` });
    expect(results).toContainEqual(expect.objectContaining({ status: 'fail', message: expect.stringMatching(new RegExp(`^loki at ${deadLoki} not reachable \\(ECONNREFUSED, from SluicePolicy default\\+team-a, namespace agents-a\\)$`)) }));
    expect(results.filter((r) => r.status === 'skip')).toEqual([]);
  });

  test('policy eval --cluster follows the same source: the SluicePolicy merge while the webhook says cluster', async () => {
    const view = await readClusterPolicy(reader(), 'agents-a');
    expect(view).toMatchObject({ source: 'SluicePolicy', organisation: { objects: ['default', 'team-a'] }, settings: { audit: { store: { type: 'loki', url: deadLoki } } } });
  });

  test('settingsSource configMap: the namespace\u2019s sluice-sidecar ConfigMap, the source named', async () => {
    await webhookConfig('configMap');
    await mustCreate('/api/v1/namespaces/agents-b/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'sluice-sidecar' }, data: { 'sidecar.yaml': 'audit:\n  store: none\n' } });
    const results = await logStore();
    expect(results).toEqual([
      { category: 'log-store', status: 'ok', message: "sidecar settings from each namespace's sluice-sidecar ConfigMap (webhook settingsSource configMap)" },
      expect.objectContaining({ status: 'warn', message: 'namespace agents-b: audit.store is none in ConfigMap agents-b/sluice-sidecar (events stay in a bounded local ring, nothing is shipped)' }),
      { category: 'log-store', status: 'skip', message: 'no log store to probe (give --loki URL or --victorialogs URL)' },
    ]);
    // The sidecars of such a webhook read no SluicePolicy (the CRD is served, but not for them).
    const view = await readClusterPolicy(reader(), 'agents-b');
    expect(view).toMatchObject({ source: 'ConfigMap', settings: { audit: { store: 'none' } } });
    expect(view.organisation).toBeUndefined();
    expect(view.notes).toContain("the webhook's settingsSource is configMap: the organisation is the bundle's own data, the settings the sluice-sidecar ConfigMap's");
  });
});
