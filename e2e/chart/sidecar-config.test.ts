// The sidecar's runtime settings from `helm install` to the sidecar, against a real kube-apiserver +
// etcd (e2e/support/kube): the chart writes `sidecar.config` into spec.sidecar of the cluster-scoped
// SluicePolicy named default (no ConfigMap in the agent namespace); the real webhook, started from
// the installed config and called by the API server through the installed registrations, injects a
// pod that mounts no settings and is told to read the SluicePolicy objects; and the sidecar's
// loadSidecarConfig, given the stored container's env and what effectiveSluicePolicy makes of the
// stored objects for the pod's namespace, reads the settings back. `helm upgrade --set` changes
// them in place. There is no kubelet: the test plays the sidecar's read (e2e/policy does it live).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { SLUICE_POLICY_PATH, effectiveSluicePolicy } from '../../api/src/index.ts';
import type { SluicePolicy } from '../../api/src/index.ts';
import { loadSidecarConfig } from '../../sidecar/src/config/sidecar-config.ts';
import type { SidecarConfig } from '../../sidecar/src/config/sidecar-config.ts';
import { containerEnv } from '../../testkit/config/settings-volume.ts';
import type { PodFields } from '../../testkit/config/settings-volume.ts';
import { CHART, helm as runHelm, valuesFile } from '../../charts/test/support/helm.ts';
import { eventually, pointWebhooksAt } from '../support/kube/admission.ts';
import type { Manifest } from '../support/kube/admission.ts';
import { KubeCluster } from '../support/kube/cluster.ts';
import { startWebhookProcess } from '../webhook/webhook-process.ts';
import type { WebhookProcess } from '../webhook/webhook-process.ts';
import { agentPod } from './agent-pod.ts';

jest.setTimeout(120_000);

const NS = 'sluice-system';
const ROLE_ARN = 'arn:aws:iam::123456789012:role/agent-coder';
/** As docs/install.md shows it: an AWS role for the agents' service account, and approval settings. */
const SETTINGS = {
  credentials: { aws: { region: 'eu-west-1', roles: [{ namespace: 'agents', serviceAccount: 'default', roleArn: ROLE_ARN }] } },
  approvals: { maxWaitMs: 120_000, notify: { url: 'https://hooks.slack.example.com/services/T0/B0/x' } },
  masking: { passTypes: ['application/zip', 'image/png'] },
};

interface ConfigMap {
  data: Record<string, string>;
}

let cluster: KubeCluster;
let webhook: WebhookProcess;
let helmEnv: NodeJS.ProcessEnv;
let counter = 0;

const helm = (args: string[]) => runHelm([...args, '--kubeconfig', cluster.kubeconfigPath('admin')], helmEnv);
const policies = async () => (await cluster.request<{ items: SluicePolicy[] }>('admin', 'GET', SLUICE_POLICY_PATH)).body.items;
const defaultSettings = async () => (await policies()).find((p) => p.metadata.name === 'default')?.spec.sidecar;

/** loadSidecarConfig as the stored sidecar runs it: its env, and the settings the stored SluicePolicy objects give its namespace. */
async function loadInPod(sidecar: V1Container, fields: PodFields): Promise<SidecarConfig> {
  const effective = effectiveSluicePolicy(await policies(), { name: fields['metadata.namespace']! });
  if (!effective.ok) throw new Error(JSON.stringify(effective.problems));
  return loadSidecarConfig(containerEnv(sidecar, fields), effective.policy.sidecar);
}

const REGISTRATIONS = ['/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/sluice-injector', '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/sluice-guard'];
type Registration = Manifest & { webhooks: { clientConfig: unknown }[] };
/** clientConfig of each installed webhook, as Helm wrote it, by registration path. */
const installedClients = new Map<string, unknown[]>();

async function putClients(path: string, clients: (r: Registration) => unknown[]): Promise<void> {
  const current = (await cluster.request<Registration>('admin', 'GET', path)).body;
  const next = clients(current);
  const res = await cluster.request('admin', 'PUT', path, { ...current, webhooks: current.webhooks.map((w, i) => ({ ...w, clientConfig: next[i] })) });
  if (res.status !== 200) throw new Error(`updating ${path} failed: ${res.status} ${JSON.stringify(res.body)}`);
}

/** Points the installed registrations at the webhook process (the in-cluster Service has no pods here). */
async function pointInstalledWebhooks(): Promise<void> {
  for (const path of REGISTRATIONS) {
    await putClients(path, (r) => {
      if (!installedClients.has(path)) installedClients.set(path, r.webhooks.map((w) => w.clientConfig));
      return (pointWebhooksAt(r, webhook.baseUrl, cluster.ca.certPem) as Registration).webhooks.map((w) => w.clientConfig);
    });
  }
  await eventually('the installed registrations to call the webhook', async () => {
    const r = await cluster.create<V1Pod>('creator', agentPod('agents', 'probe', {}), 'dryRun=All');
    return r.status === 201 && r.body.spec?.initContainers?.[1]?.name === 'sluice-proxy' ? true : undefined;
  });
}

/** Puts back what Helm installed, so an upgrade's three-way merge applies cleanly. */
async function restoreInstalledWebhooks(): Promise<void> {
  for (const path of REGISTRATIONS) await putClients(path, () => installedClients.get(path)!);
}

async function createAgentPod(): Promise<V1Pod> {
  const res = await cluster.create<V1Pod & { message?: string }>('creator', agentPod('agents', `coder-${++counter}`, {}));
  if (res.status !== 201) throw new Error(`pod creation refused: ${res.status} ${res.body.message}`);
  return res.body;
}

/** The stored sidecar, and the downward API fields a kubelet would fill in from the stored pod. */
function storedSidecar(pod: V1Pod) {
  const fields: PodFields = {
    'metadata.name': pod.metadata?.name,
    'metadata.namespace': pod.metadata?.namespace,
    'metadata.uid': pod.metadata?.uid,
    'spec.serviceAccountName': pod.spec?.serviceAccountName,
  };
  return { sidecar: pod.spec!.initContainers!.find((c) => c.name === 'sluice-proxy')!, fields };
}

beforeAll(async () => {
  cluster = await KubeCluster.start({ namespaces: [{ name: 'agents' }] });
  const home = mkdtempSync(join(tmpdir(), 'sluice-helm-'));
  helmEnv = { HELM_CACHE_HOME: join(home, 'cache'), HELM_CONFIG_HOME: join(home, 'config'), HELM_DATA_HOME: join(home, 'data') };
  // certificates.mode helm (not the default, self): the webhook runs here as a process from the
  // rendered config, outside any pod, so it cannot manage its own certificate through the API.
  const res = await helm(['install', 'sluice', CHART, '-n', NS, '--create-namespace', '--set', 'agents.namespaces={agents}', '--set', 'certificates.mode=helm', '-f', valuesFile({ sidecar: { config: SETTINGS } })]);
  if (res.code !== 0) throw new Error(`helm install failed:\n${res.stderr}`);
  const label = await cluster.request('admin', 'PATCH', '/api/v1/namespaces/agents', { metadata: { labels: { 'sluice.io/inject': 'true' } } }, 'application/merge-patch+json');
  if (label.status !== 200) throw new Error(`labelling the namespace failed: ${JSON.stringify(label.body)}`);
  await cluster.grant('creator', 'agents', 'pod-author', [{ apiGroups: [''], resources: ['pods'], verbs: ['create', 'get'] }]);
  const installed = (await cluster.request<ConfigMap>('admin', 'GET', `/api/v1/namespaces/${NS}/configmaps/sluice-webhook`)).body;
  webhook = await startWebhookProcess(cluster.ca, parseYaml(installed.data['config.yaml']!) as Record<string, unknown>);
  await pointInstalledWebhooks();
}, 180_000);

afterAll(async () => {
  await webhook?.stop();
  await cluster?.stop();
}, 60_000);

describe('sidecar.config from helm install to the sidecar', () => {
  test('the SluicePolicy named default holds exactly those settings; the agent namespace holds no settings ConfigMap', async () => {
    // The chart's own default (an explicit `audit.store: none`) is merged under the user's settings.
    expect(await defaultSettings()).toEqual({ ...SETTINGS, audit: { store: 'none' } });
    expect((await cluster.request('admin', 'GET', '/api/v1/namespaces/agents/configmaps/sluice-sidecar')).status).toBe(404);
  });

  test('a pod created in the labelled namespace mounts no settings and reads the SluicePolicy; the sidecar loads those settings', async () => {
    const pod = await createAgentPod();
    expect(pod.spec!.volumes!.filter((v) => v.configMap?.name === 'sluice-sidecar')).toEqual([]);
    for (const name of ['sluice-init', 'sluice-proxy']) {
      const c = pod.spec!.initContainers!.find((x) => x.name === name)!;
      expect((c.env ?? []).map((e) => e.name)).not.toContain('SLUICE_CONFIG_FILE');
    }
    const { sidecar, fields } = storedSidecar(pod);
    expect(sidecar.env).toContainEqual({ name: 'SLUICE_POLICY_SOURCE', value: 'cluster' });
    const config = await loadInPod(sidecar, fields);
    expect(config.policy.cluster.enabled).toBe(true);
    expect(config.credentials.aws.region).toBe('eu-west-1');
    expect(config.credentials.aws.roles).toEqual([{ namespace: 'agents', serviceAccount: 'default', name: 'default', roleArn: ROLE_ARN }]);
    expect(config.approvals).toMatchObject({ maxWaitMs: 120_000, notify: { url: SETTINGS.approvals.notify.url } });
    expect(config.pod).toEqual({ namespace: 'agents', name: pod.metadata!.name, uid: pod.metadata!.uid, serviceAccount: 'default' });
  });

  test('helm upgrade --set changes the settings in place; a pod (re)started then reads the new ones', async () => {
    await restoreInstalledWebhooks();
    const res = await helm(['upgrade', 'sluice', CHART, '-n', NS, '--reuse-values', '--set', 'sidecar.config.approvals.maxWaitMs=30000']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    await pointInstalledWebhooks();
    expect(await defaultSettings()).toEqual({ ...SETTINGS, audit: { store: 'none' }, approvals: { ...SETTINGS.approvals, maxWaitMs: 30_000 } });
    const pod = await createAgentPod();
    const { sidecar, fields } = storedSidecar(pod);
    expect((await loadInPod(sidecar, fields)).approvals.maxWaitMs).toBe(30_000);
  });

  test('a typo in the settings fails the upgrade naming the field, and the SluicePolicy stays as it was', async () => {
    const before = await defaultSettings();
    const res = await helm(['upgrade', 'sluice', CHART, '-n', NS, '--reuse-values', '--set', 'sidecar.config.credentials.aws.regoin=us-east-1']);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/sidecar\/config\/credentials\/aws.*regoin/);
    expect(await defaultSettings()).toEqual(before);
  });
});
