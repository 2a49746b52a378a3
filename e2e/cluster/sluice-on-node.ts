// sluice installed on an e2e/cluster node the way a platform team would have it: the real webhook
// (webhook/src/main.ts) registered with the shipped webhook configurations (called by url, there
// is no Service routing on this node), the sidecar image built by `make image`, an agent namespace
// with the policy bundle and sidecar settings ConfigMaps. Plus what the attacks need: an upstream
// on the bridge address that records every connection it gets (a direct connection from a pod
// there is a bypass), and helpers to read a pod as the kubelet reports it.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureImages } from '../../charts/images/build-images.ts';
import { eventually, pointWebhooksAt, readManifests } from '../support/kube/admission.ts';
import { startWebhookProcess } from '../webhook/webhook-process.ts';
import type { WebhookProcess } from '../webhook/webhook-process.ts';
import type { KubeNode } from './node.ts';
import type { TestImage } from './test-images.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const MANIFESTS = join(ROOT, 'webhook', 'manifests');
const BUNDLE = join(ROOT, 'policies', 'build', 'bundle.tar.gz');
export const SIDECAR_REPO = 'sluice.local/sluice-sidecar';

/** The sidecar image of this tree (`make image`, rebuilt when its inputs changed). */
export async function sidecarImage(): Promise<TestImage & { built: boolean }> {
  const { built, images } = await ensureImages();
  const sidecar = images.images.find((i) => i.component === 'sidecar');
  if (!sidecar) throw new Error('charts/images built no sidecar image');
  return { name: `${SIDECAR_REPO}:${images.version}`, archive: join(ROOT, sidecar.archive), built };
}

export interface ContainerStatus {
  name: string;
  ready: boolean;
  started?: boolean;
  restartCount: number;
  containerID?: string;
  state: { running?: { startedAt: string }; terminated?: { exitCode: number; startedAt: string; finishedAt: string; reason?: string }; waiting?: { reason?: string } };
  lastState?: { terminated?: { exitCode: number; reason?: string } };
}

export interface PodView {
  metadata: { name: string; namespace: string; uid: string; creationTimestamp: string; labels?: Record<string, string> };
  spec: { initContainers?: { name: string; restartPolicy?: string; image: string; command?: string[]; securityContext?: Record<string, unknown> }[]; containers: { name: string; securityContext?: Record<string, unknown> }[]; securityContext?: Record<string, unknown> };
  status: { phase?: string; podIP?: string; conditions?: { type: string; status: string; lastTransitionTime: string }[]; initContainerStatuses?: ContainerStatus[]; containerStatuses?: ContainerStatus[] };
}

/** One connection that reached the upstream: who, what it asked for. */
export interface UpstreamHit {
  remoteAddress: string;
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

export class RecordingUpstream {
  readonly hits: UpstreamHit[];
  readonly #server: Server;
  readonly address: string;
  port = 0;

  private constructor(server: Server, address: string, hits: UpstreamHit[]) {
    this.#server = server;
    this.address = address;
    this.hits = hits;
  }

  /** An HTTP server on `address` (the node's bridge): answers "UPSTREAM-REACHED <path>" and records each request. */
  static async start(address: string): Promise<RecordingUpstream> {
    const hits: UpstreamHit[] = [];
    const server = createServer((req, res) => {
      hits.push({ remoteAddress: req.socket.remoteAddress ?? '', method: req.method ?? '', url: req.url ?? '', headers: req.headers });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`UPSTREAM-REACHED ${req.url}\n`);
    });
    const self = new RecordingUpstream(server, address, hits);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, address, () => resolve());
    });
    self.port = (server.address() as AddressInfo).port;
    return self;
  }

  /** Requests whose path starts with `prefix` (each probe uses its own path). */
  hitsFor(prefix: string): UpstreamHit[] {
    return this.hits.filter((h) => h.url.startsWith(prefix));
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}

export interface SluiceInstall {
  webhook: WebhookProcess;
  stop(): Promise<void>;
}

/** The bundle's files as a ConfigMap (what the chart's agents.yaml renders from the same bundle). */
function policyConfigMap(namespace: string): Record<string, unknown> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bundle-'));
  try {
    execFileSync('tar', ['-xzf', BUNDLE, '-C', dir], { stdio: 'ignore' });
    return {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'sluice-policy', namespace },
      data: { 'data.json': readFileSync(join(dir, 'data.json'), 'utf8'), '.manifest': readFileSync(join(dir, '.manifest'), 'utf8') },
      binaryData: { 'policy.wasm': readFileSync(join(dir, 'policy.wasm')).toString('base64') },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function mustCreate(node: KubeNode, obj: Record<string, unknown> & { apiVersion: string; kind: string }): Promise<void> {
  const res = await node.cluster.create('admin', obj);
  if (res.status !== 201 && res.status !== 409) throw new Error(`creating ${obj.kind}: ${res.status} ${JSON.stringify(res.body)}`);
}

/**
 * The webhook process with `sidecarImageName`, its shipped registrations pointed at it, and the
 * agent namespaces (opted in, with the policy and settings ConfigMaps the sidecar mounts).
 */
export async function installSluice(
  node: KubeNode,
  opts: { sidecarImageName: string; agentNamespaces: string[]; plainNamespaces: string[]; sidecarSettings?: string; webhookSidecar?: Record<string, unknown>; webhookConfig?: Record<string, unknown> },
): Promise<SluiceInstall> {
  const webhook = await startWebhookProcess(node.cluster.ca, {
    ...opts.webhookConfig,
    injectorVersion: 'e2e-cluster',
    sidecar: { image: opts.sidecarImageName, imagePullPolicy: 'Never', ...opts.webhookSidecar },
  });
  try {
    const configs = [...readManifests(join(MANIFESTS, 'mutating-webhook.yaml')), ...readManifests(join(MANIFESTS, 'validating-webhook.yaml'))];
    for (const c of configs) await mustCreate(node, pointWebhooksAt(c, webhook.baseUrl, node.cluster.ca.certPem));
    for (const ns of opts.agentNamespaces) {
      await mustCreate(node, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { 'sluice.io/inject': 'true' } } });
      await mustCreate(node, policyConfigMap(ns) as never);
      await mustCreate(node, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'sluice-sidecar', namespace: ns },
        data: { 'sidecar.yaml': opts.sidecarSettings ?? 'audit:\n  store: none\n' },
      });
    }
    for (const ns of opts.plainNamespaces) await mustCreate(node, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    for (const ns of [...opts.agentNamespaces, ...opts.plainNamespaces]) {
      // The controller-manager creates each namespace's default ServiceAccount; pods need it.
      await eventually(`the default ServiceAccount in ${ns}`, async () => ((await node.cluster.request('admin', 'GET', `/api/v1/namespaces/${ns}/serviceaccounts/default`)).status === 200 ? true : undefined));
      await node.cluster.grant('creator', ns, 'pod-author', [{ apiGroups: [''], resources: ['pods', 'pods/exec', 'pods/log'], verbs: ['create', 'get', 'list', 'delete'] }]);
    }
    // The API server applies registrations asynchronously: wait until a dry-run pod comes back injected.
    const ns = opts.agentNamespaces[0]!;
    await eventually('the injector registration to take effect', async () => {
      const res = await node.cluster.create<{ spec?: { initContainers?: { name: string }[] } }>(
        'creator',
        { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'dry-run', namespace: ns }, spec: { securityContext: { runAsUser: 1000 }, containers: [{ name: 'a', image: 'x' }] } } as never,
        'dryRun=All',
      );
      return res.status === 201 && res.body.spec?.initContainers?.some((c) => c.name === 'sluice-proxy') ? true : undefined;
    });
  } catch (err) {
    await webhook.stop();
    throw err;
  }
  return { webhook, stop: () => webhook.stop() };
}

/** The pod as the kubelet last reported it. */
export async function getPod(node: KubeNode, namespace: string, name: string): Promise<PodView> {
  const res = await node.cluster.request<PodView>('admin', 'GET', `/api/v1/namespaces/${namespace}/pods/${name}`);
  if (res.status !== 200) throw new Error(`GET pod ${namespace}/${name}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Polls (every 100 ms, bounded) until `ready(pod)`; the last view is in the error. */
export async function waitPod(node: KubeNode, namespace: string, name: string, what: string, ready: (p: PodView) => boolean, timeoutMs = 150_000): Promise<PodView> {
  const deadline = Date.now() + timeoutMs;
  let last: PodView | undefined;
  while (Date.now() < deadline) {
    last = await getPod(node, namespace, name);
    if (ready(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`pod ${namespace}/${name}: ${what} not reached in ${timeoutMs} ms; last status:\n${JSON.stringify(last?.status, null, 2)}`);
}

/**
 * Every app container ready, and every init container that still runs (a native sidecar) ready too:
 * the kubelet starts the agent once the sidecar's startup probe passes, and reports the sidecar
 * Ready only at its next readiness probe, so app readiness alone can come first.
 */
export const allContainersReady = (p: PodView) =>
  (p.status.containerStatuses ?? []).length > 0 &&
  (p.status.containerStatuses ?? []).every((c) => c.ready) &&
  (p.status.initContainerStatuses ?? []).every((c) => c.state.terminated !== undefined || c.ready);

export function containerStatus(p: PodView, name: string): ContainerStatus {
  const s = [...(p.status.initContainerStatuses ?? []), ...(p.status.containerStatuses ?? [])].find((c) => c.name === name);
  if (!s) throw new Error(`pod ${p.metadata.name} has no status for container ${name}: ${JSON.stringify(p.status)}`);
  return s;
}

/** `PROBE …` lines of a probe's output, parsed into key=value maps keyed by what was probed. */
export function probeLines(output: string): { what: string; result: string; fields: Record<string, string> }[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('PROBE '))
    .map((l) => {
      const [, what, ...rest] = l.split(' ');
      const fields: Record<string, string> = {};
      for (const m of rest.join(' ').matchAll(/(\w[\w-]*)=("[^"]*"|\S+)/g)) fields[m[1]!] = m[2]!.replace(/^"|"$/g, '');
      return { what: what!, result: rest[0] ?? '', fields };
    });
}
