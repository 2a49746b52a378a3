// The whole story on a real node, step by step as a platform team and a developer would live it:
// `helm install` the packaged chart (the webhook a real pod of the image `make image` builds,
// managing its own certificate: webhook.certificates.mode self), label a namespace, apply an agent
// Deployment, and watch the kubelet start it with the interception init container and the native
// sidecar.
//
// No kube-proxy and no cluster DNS here: the API server reaches the webhook's Service through
// `--enable-aggregator-routing=true` (Services resolved to endpoint IPs, for admission webhooks
// too), pods reach the API server on the bridge address (node.ts).
//
// Needs root and the node tools, like running-pod.test.ts. `make test-cluster` runs it.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { ensureImages } from '../../charts/images/build-images.ts';
import { HELM } from '../../charts/test/support/helm.ts';
import { packageChart } from '../../tools/release.ts';
import { eventually } from '../support/kube/admission.ts';
import { KubeNode } from './node.ts';
import { allContainersReady, containerStatus, waitPod } from './sluice-on-node.ts';
import type { PodView } from './sluice-on-node.ts';
import { ensureTestImages } from './test-images.ts';
import type { TestImage, TestImages } from './test-images.ts';

jest.setTimeout(240_000);

const ROOT = join(import.meta.dirname, '..', '..');
const SYSTEM = 'sluice-system';
const AGENTS = 'agents';
const PLAIN = 'plain';
const WEBHOOK_REPO = 'sluice.local/sluice-webhook';
const SIDECAR_REPO = 'sluice.local/sluice-sidecar';
const LOGS = join(tmpdir(), 'sluice-e2e-whole-story-logs');

let node: KubeNode;
let images: TestImages;
let version = '';
let helmEnv: NodeJS.ProcessEnv;
const figures: Record<string, unknown> = {};
const storyStarted = performance.now();

/** helm as the cluster admin; throws with helm's own words on failure. */
function helm(args: string[], timeoutMs = 240_000): string {
  try {
    return execFileSync(HELM, [...args, '--kubeconfig', node.cluster.kubeconfigPath('admin')], { env: helmEnv, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`helm ${args.join(' ')} failed: ${e.stderr || e.stdout || e.message}`, { cause: err });
  }
}

function kubectl(handle: string, args: string[], input?: string): string {
  return node.kubectl(handle, args, input);
}

/** The Deployment's one pod (bounded wait for the ReplicaSet to create it). */
async function deploymentPod(namespace: string, app: string): Promise<PodView> {
  return eventually(`a pod of deployment ${namespace}/${app}`, async () => {
    const res = await node.cluster.request<{ items: PodView[] }>('admin', 'GET', `/api/v1/namespaces/${namespace}/pods?labelSelector=app%3D${app}`);
    return res.body.items?.find((p) => !('deletionTimestamp' in p.metadata)) ?? undefined;
  });
}

function deployment(name: string, namespace: string, image: string, command: string): string {
  return JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          terminationGracePeriodSeconds: 1,
          securityContext: { runAsUser: 1000, runAsGroup: 1000 },
          containers: [{ name: 'agent', image, imagePullPolicy: 'Never', command: ['/bin/sh', '-c', command] }],
        },
      },
    },
  });
}

function sluiceImage(component: 'sidecar' | 'webhook', built: Awaited<ReturnType<typeof ensureImages>>['images']): TestImage {
  const img = built.images.find((i) => i.component === component);
  if (!img) throw new Error(`charts/images built no ${component} image`);
  return { name: `${component === 'sidecar' ? SIDECAR_REPO : WEBHOOK_REPO}:${built.version}`, archive: join(ROOT, img.archive) };
}

beforeAll(async () => {
  const t0 = performance.now();
  images = await ensureTestImages();
  const { images: built, built: rebuilt } = await ensureImages();
  version = built.version;
  figures.imagesMs = Math.round(performance.now() - t0);
  figures.sluiceImagesRebuilt = rebuilt;
  const home = mkdtempSync(join(tmpdir(), 'sluice-story-home-'));
  helmEnv = { PATH: process.env.PATH, HOME: home, HELM_CACHE_HOME: join(home, 'cache'), HELM_CONFIG_HOME: join(home, 'config'), HELM_DATA_HOME: join(home, 'data') };
  node = await KubeNode.start({
    images: [images.pause, images.agent, sluiceImage('sidecar', built), sluiceImage('webhook', built)],
    sandboxImage: images.pause.name,
    // No kube-proxy: the API server calls the webhook Service at its endpoints' pod IPs.
    apiserverArgs: ['--enable-aggregator-routing=true'],
  });
  figures.bringUp = Object.fromEntries(Object.entries(node.timings as unknown as Record<string, number>).map(([k, v]) => [k, Math.round(v)]));
}, 900_000);

afterAll(async () => {
  const left = await node?.stop({ keepLogsIn: LOGS });
  figures.hostLeftovers = left;
  figures.wholeStoryMs = Math.round(performance.now() - storyStarted);
  console.log(`e2e/cluster whole story figures (component logs in ${LOGS}): ${JSON.stringify(figures, null, 2)}`);
  expect(left ?? []).toEqual([]);
}, 120_000);

describe('the whole story on a real node', () => {
  test('1. helm install of the packaged chart: the webhook runs as pods and manages its own certificate (certificates.mode self)', async () => {
    const work = mkdtempSync(join(tmpdir(), 'sluice-story-chart-'));
    const chart = packageChart(work);
    kubectl('admin', ['create', 'namespace', AGENTS]);
    const values = join(work, 'values.json');
    writeFileSync(
      values,
      JSON.stringify({
        webhook: { image: { repository: WEBHOOK_REPO, tag: version, pullPolicy: 'Never' } },
        sidecar: { image: { repository: SIDECAR_REPO, tag: version, pullPolicy: 'Never' } },
        certificates: { mode: 'self', resyncSeconds: 5 },
        agents: { namespaces: [AGENTS] },
      }),
    );
    const started = performance.now();
    helm(['install', 'sluice', chart, '--namespace', SYSTEM, '--create-namespace', '--values', values, '--wait', '--timeout', '4m']);
    figures.helmInstallMs = Math.round(performance.now() - started);
    // Two webhook replicas on the node, both Ready (ready means: every registration trusts it).
    const pods = await node.cluster.request<{ items: PodView[] }>('admin', 'GET', `/api/v1/namespaces/${SYSTEM}/pods?labelSelector=app.kubernetes.io%2Fcomponent%3Dwebhook`);
    expect(pods.body.items).toHaveLength(2);
    for (const p of pods.body.items) {
      expect(p.status.phase).toBe('Running');
      expect(containerStatus(p, 'sluice-webhook').ready).toBe(true);
    }
    // The caBundle the chart rendered empty was set by the webhook itself, from its own Secret.
    const mwc = JSON.parse(kubectl('admin', ['get', 'mutatingwebhookconfigurations', '-o', 'json'])) as { items: { metadata: { name: string }; webhooks: { clientConfig: { caBundle?: string; service?: unknown } }[] }[] };
    const ours = mwc.items.filter((c) => c.metadata.name.startsWith('sluice'));
    expect(ours.length).toBeGreaterThan(0);
    for (const c of ours) for (const w of c.webhooks) {
      expect(w.clientConfig.service).toBeDefined();
      expect(w.clientConfig.caBundle ?? '').not.toBe('');
    }
    figures.webhookPodsReadyAfterInstallMs = figures.helmInstallMs;
  });

  test('2. label the namespace, apply an agent Deployment: the kubelet runs the init container, then the native sidecar, then the agent', async () => {
    kubectl('admin', ['label', 'namespace', AGENTS, 'sluice.io/inject=true']);
    await node.cluster.grant('creator', AGENTS, 'deployer', [{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['create', 'get', 'list', 'patch', 'delete'] }]);
    const started = performance.now();
    kubectl('creator', ['apply', '-f', '-'], deployment('coder', AGENTS, images.agent.name, 'exec sleep 100000'));
    const first = await deploymentPod(AGENTS, 'coder');
    const pod = await waitPod(node, AGENTS, first.metadata.name, 'ready', allContainersReady);
    figures.podStartInjectedMs = Math.round(performance.now() - started);
    expect(pod.spec.initContainers!.map((c) => [c.name, c.restartPolicy ?? null])).toEqual([
      ['sluice-init', null],
      ['sluice-proxy', 'Always'],
    ]);
    expect(pod.spec.initContainers![1]!.image).toBe(`${SIDECAR_REPO}:${version}`);
    const init = containerStatus(pod, 'sluice-init');
    const sidecar = containerStatus(pod, 'sluice-proxy');
    const agent = containerStatus(pod, 'agent');
    expect(init.state.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
    expect(sidecar).toMatchObject({ ready: true, started: true, restartCount: 0 });
    expect(Date.parse(sidecar.state.running!.startedAt)).toBeGreaterThanOrEqual(Date.parse(init.state.terminated!.finishedAt));
    expect(Date.parse(agent.state.running!.startedAt)).toBeGreaterThanOrEqual(Date.parse(sidecar.state.running!.startedAt));
    figures.sidecarShare = {
      initRanS: (Date.parse(init.state.terminated!.finishedAt) - Date.parse(init.state.terminated!.startedAt)) / 1000,
      sidecarStartToAgentStartS: (Date.parse(agent.state.running!.startedAt) - Date.parse(sidecar.state.running!.startedAt)) / 1000,
    };
    // The same Deployment in a namespace nobody labelled: no sidecar, the baseline start latency.
    kubectl('admin', ['create', 'namespace', PLAIN]);
    await eventually(`the default ServiceAccount in ${PLAIN}`, async () => ((await node.cluster.request('admin', 'GET', `/api/v1/namespaces/${PLAIN}/serviceaccounts/default`)).status === 200 ? true : undefined));
    const plainStarted = performance.now();
    kubectl('admin', ['apply', '-f', '-'], deployment('coder', PLAIN, images.agent.name, 'exec sleep 100000'));
    const plain = await deploymentPod(PLAIN, 'coder');
    const plainPod = await waitPod(node, PLAIN, plain.metadata.name, 'ready', allContainersReady);
    figures.podStartPlainMs = Math.round(performance.now() - plainStarted);
    expect(plainPod.spec.initContainers ?? []).toEqual([]);
  });
});
