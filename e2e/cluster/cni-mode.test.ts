// interception.mode cni on a real node (issue 19, docs/cni.md): the sluice node agent (cni/src/main.ts,
// here a host process as the DaemonSet's container would run it, with the chart's RBAC) installs its
// chained CNI plugin into the node's conflist; the webhook injects pods with no privileges at all;
// an agent namespace enforcing Pod Security "restricted" admits them; the plugin installs the one
// renderer's rules in each injected pod's network namespace before any container starts, and the
// unprivileged sluice-init check proves them. Fail closed: with the agent killed the sandbox is not
// created (the kubelet's event says why); with the plugin gone from the conflist the check refuses
// and the agent never starts. A pod sluice did not inject is left alone.
//
// Needs root and the node tools, like running-pod.test.ts; run it under `flock /tmp/sl/node.lock`.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { template } from '../../charts/test/support/helm.ts';
import type { K8sObject } from '../../charts/test/support/helm.ts';
import { PLUGIN_TYPE } from '../../cni/src/conflist.ts';
import { KubeNode } from './node.ts';
import { RecordingUpstream, allContainersReady, containerStatus, getPod, installSluice, probeLines, sidecarImage, waitPod } from './sluice-on-node.ts';
import type { PodView, SluiceInstall } from './sluice-on-node.ts';
import { ensureTestImages } from './test-images.ts';
import type { TestImages } from './test-images.ts';

jest.setTimeout(240_000);

const ROOT = join(import.meta.dirname, '..', '..');
const AGENTS = 'agents';
const PLAIN = 'plain';
const CHART_NS = 'sluice-system';
const LOGS = join(tmpdir(), 'sluice-e2e-cni-logs');

let node: KubeNode;
let sluice: SluiceInstall;
let upstream: RecordingUpstream;
let images: TestImages;
let confFile = '';
let agent: ChildProcess | undefined;
let agentLog = '';
let socketDir = '';
let sidecarImageName = '';
let chartObjects: K8sObject[] = [];
const figures: Record<string, unknown> = {};

/** What Pod Security "restricted" asks of the agent's own containers (sluice's already comply). */
const RESTRICTED_POD = { runAsUser: 1000, runAsGroup: 1000, runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } };
const RESTRICTED_CONTAINER = { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } };

function pod(name: string, namespace: string, command: string): Record<string, unknown> & { apiVersion: string; kind: string } {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace },
    spec: {
      terminationGracePeriodSeconds: 1,
      securityContext: RESTRICTED_POD,
      containers: [{ name: 'agent', image: images.agent.name, imagePullPolicy: 'Never', command: ['/bin/sh', '-c', command], securityContext: RESTRICTED_CONTAINER }],
    },
  };
}

async function create(name: string, namespace: string, command = 'sluice-probe id; exec sleep 100000'): Promise<void> {
  const res = await node.cluster.create<{ message?: string }>('creator', pod(name, namespace, command));
  if (res.status !== 201) throw new Error(`creating pod ${namespace}/${name}: ${res.status} ${JSON.stringify(res.body)}`);
}

function conflistTypes(): string[] {
  return (JSON.parse(readFileSync(confFile, 'utf8')) as { plugins: { type: string }[] }).plugins.map((p) => p.type);
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The node agent as the DaemonSet runs it: cni/src/main.ts with the node's CNI directories. */
async function startAgent(): Promise<void> {
  const child = spawn(process.execPath, [
    '--no-warnings',
    join(ROOT, 'cni', 'src', 'main.ts'),
    `--cni-conf-dir=${join(node.dir, 'cni', 'net.d')}`,
    `--cni-bin-dir=${join(node.dir, 'cni', 'bin')}`,
    `--socket=${join(socketDir, 'agent.sock')}`,
    `--kubeconfig=${node.cluster.kubeconfigPath('cniAgent')}`,
    `--exempt-namespaces=kube-system,${CHART_NS}`,
    '--resync-seconds=1',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (b: Buffer) => (agentLog += b.toString()));
  child.stderr.on('data', (b: Buffer) => (agentLog += b.toString()));
  agent = child;
  await until('the plugin in the conflist', () => (conflistTypes().at(-1) === PLUGIN_TYPE ? true : undefined));
}

async function stopAgent(signal: NodeJS.Signals): Promise<void> {
  const child = agent!;
  agent = undefined;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  await exited;
}

interface Event {
  reason: string;
  message: string;
}
async function eventsOf(namespace: string, name: string): Promise<Event[]> {
  const res = await node.cluster.request<{ items: Event[] }>('admin', 'GET', `/api/v1/namespaces/${namespace}/events?fieldSelector=involvedObject.name%3D${name}`);
  return res.body.items;
}

function podIptables(p: PodView): string {
  const id = containerStatus(p, 'agent').containerID!.replace(/^containerd:\/\//, '');
  return execFileSync('nsenter', ['-t', String(node.containerPid(id)), '-n', 'iptables-save'], { encoding: 'utf8' });
}

async function deletePod(namespace: string, name: string): Promise<void> {
  await node.cluster.request('admin', 'DELETE', `/api/v1/namespaces/${namespace}/pods/${name}?gracePeriodSeconds=0`);
}

beforeAll(async () => {
  images = await ensureTestImages();
  const sidecar = await sidecarImage();
  sidecarImageName = sidecar.name;
  node = await KubeNode.start({ images: [images.pause, images.agent, sidecar], sandboxImage: images.pause.name, users: { cniAgent: { name: 'sluice-cni-agent' } } });
  confFile = join(node.dir, 'cni', 'net.d', '10-sluice-e2e.conflist');
  sluice = await installSluice(node, { sidecarImageName: sidecar.name, agentNamespaces: [AGENTS], plainNamespaces: [PLAIN], webhookConfig: { interception: { mode: 'cni' } } });
  // The agent namespace enforces "restricted" (after the install's own dry-run probe pod).
  const labelled = await node.cluster.request('admin', 'PATCH', `/api/v1/namespaces/${AGENTS}`, { metadata: { labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } }, 'application/merge-patch+json');
  expect(labelled.status).toBe(200);
  // The chart's node agent objects, rendered for this node's paths and image (charts/sluice/templates/cni-node-agent.yaml).
  const [repository, tag] = sidecarImageName.split(/:(?=[^:/]+$)/);
  const podSocketDir = mkdtempSync(join(tmpdir(), 'sluice-cni-ds-'));
  chartObjects = (
    await template({
      sidecar: { image: { repository, tag, pullPolicy: 'Never' } },
      interception: { mode: 'cni', cni: { confDir: join(node.dir, 'cni', 'net.d'), binDir: join(node.dir, 'cni', 'bin'), socketDir: podSocketDir } },
    })
  ).filter((o) => o.metadata.name === 'sluice-cni');
  // The host-process agent gets the chart's ClusterRole (get pods, get the settings ConfigMap by name), bound to its user.
  const role = chartObjects.find((o) => o.kind === 'ClusterRole')!;
  expect((await node.cluster.create('admin', role)).status).toBe(201);
  await node.cluster.request('admin', 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'sluice-cni-host-agent' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'sluice-cni' },
    subjects: [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: 'sluice-cni-agent' }],
  });
  socketDir = mkdtempSync(join(tmpdir(), 'sluice-cni-sock-'));
  await startAgent();
  upstream = await RecordingUpstream.start(node.address);
}, 600_000);

afterAll(async () => {
  if (agent) await stopAgent('SIGTERM');
  await upstream?.stop();
  await sluice?.stop();
  const left = await node?.stop({ keepLogsIn: LOGS });
  writeFileSync(join(tmpdir(), 'sluice-e2e-cni-agent.log'), agentLog);
  console.log(`e2e/cluster cni-mode figures: ${JSON.stringify(figures, null, 2)}`);
  expect(left ?? []).toEqual([]);
}, 120_000);

describe('interception.mode cni on a real node', () => {
  test('the agent installed its plugin last in the node conflist, and its launcher runs on this host', () => {
    expect(conflistTypes()).toEqual(['bridge', PLUGIN_TYPE]);
    const version = execFileSync(join(node.dir, 'cni', 'bin', PLUGIN_TYPE), [], { env: { CNI_COMMAND: 'VERSION' }, encoding: 'utf8' });
    expect(JSON.parse(version)).toMatchObject({ supportedVersions: expect.arrayContaining(['1.0.0']) });
  });

  test('a pod sluice does not inject starts and is left alone', async () => {
    const started = performance.now();
    await create('plain', PLAIN);
    const p = await waitPod(node, PLAIN, 'plain', 'ready', allContainersReady);
    figures.podStartPlainMs = Math.round(performance.now() - started);
    expect(p.spec.initContainers ?? []).toEqual([]);
    expect(podIptables(p)).not.toContain('SLUICE');
  });

  let injected: PodView;
  test('an injected pod is admitted under Pod Security "restricted", its rules are installed by the node, the unprivileged check passes, and its traffic goes through the sidecar', async () => {
    const started = performance.now();
    await create('agent', AGENTS);
    injected = await waitPod(node, AGENTS, 'agent', 'ready', allContainersReady);
    figures.podStartInjectedCniMs = Math.round(performance.now() - started);
    const init = containerStatus(injected, 'sluice-init');
    const sidecar = containerStatus(injected, 'sluice-proxy');
    const app = containerStatus(injected, 'agent');
    expect(init.state.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
    figures.checkRanS = (Date.parse(init.state.terminated!.finishedAt) - Date.parse(init.state.terminated!.startedAt)) / 1000;
    figures.sidecarStartToAgentStartS = (Date.parse(app.state.running!.startedAt) - Date.parse(sidecar.state.running!.startedAt)) / 1000;
    const full = (await node.cluster.request<{ spec: { initContainers: { name: string; command: string[]; securityContext: Record<string, unknown> }[] } }>('admin', 'GET', `/api/v1/namespaces/${AGENTS}/pods/agent`)).body;
    expect(full.spec.initContainers[0]!.command.at(-1)).toBe('check-network');
    for (const c of full.spec.initContainers) expect(c.securityContext).toMatchObject({ runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(JSON.stringify(full.spec)).not.toMatch(/NET_ADMIN|NET_RAW|"runAsUser":0/);
    const rules = podIptables(injected);
    expect(rules).toContain('-A SLUICE_NAT -m owner --uid-owner 1337 -j RETURN');
    expect(rules).toContain('-A SLUICE_OUT -j DROP');
    expect(agentLog).toMatch(/"pod":"agents\/agent".*interception rules installed/);

    const out = node.kubectl('admin', ['-n', AGENTS, 'exec', 'agent', '-c', 'agent', '--', '/bin/sh', '-c', `sluice-probe http ${upstream.address} ${upstream.port} /direct-from-agent`]);
    const [res] = probeLines(out);
    expect(res).toMatchObject({ what: 'http', result: 'response' });
    expect(res!.fields.marker).toMatch(/^x-sluice-decision/i);
    expect(upstream.hitsFor('/direct-from-agent').filter((h) => h.remoteAddress.endsWith(injected.status.podIP ?? '-'))).toEqual([]);
  });

  test('the conflist rewritten by the primary plugin: the agent puts its plugin back', async () => {
    const rewritten = JSON.parse(readFileSync(confFile, 'utf8')) as { plugins: { type: string }[] };
    rewritten.plugins = rewritten.plugins.filter((p) => p.type !== PLUGIN_TYPE);
    const at = performance.now();
    writeFileSync(confFile, JSON.stringify(rewritten, null, 2));
    await until('the plugin back in the conflist', () => (conflistTypes().at(-1) === PLUGIN_TYPE ? true : undefined));
    figures.conflistRestoredMs = Math.round(performance.now() - at);
  });

  test('node agent killed: a new injected pod gets no sandbox (the event says why), and starts once the agent is back', async () => {
    await stopAgent('SIGKILL');
    expect(conflistTypes().at(-1)).toBe(PLUGIN_TYPE); // a crash leaves the entry: fail closed
    await create('while-agent-down', AGENTS);
    const event = await until('a FailedCreatePodSandBox event', async () => (await eventsOf(AGENTS, 'while-agent-down')).find((e) => e.reason === 'FailedCreatePodSandBox'), 60_000);
    expect(event.message).toMatch(/sluice: pod agents\/while-agent-down not started: the sluice node agent is unreachable/);
    const p = await getPod(node, AGENTS, 'while-agent-down');
    expect(p.status.podIP).toBeUndefined();
    expect((p.status.containerStatuses ?? []).every((c) => c.state.running === undefined)).toBe(true);
    await startAgent();
    const started = performance.now();
    const back = await waitPod(node, AGENTS, 'while-agent-down', 'ready after the agent is back', allContainersReady, 120_000);
    figures.recoveredAfterAgentRestartMs = Math.round(performance.now() - started);
    expect(podIptables(back)).toContain('SLUICE_NAT');
  });

  test('plugin gone from the conflist (agent stopped, or the file rewritten while no agent runs): the check refuses and the agent never starts unprotected', async () => {
    await stopAgent('SIGTERM');
    // SIGTERM takes the plugin out cleanly: the entry and the executables.
    expect(conflistTypes()).toEqual(['bridge']);
    expect(existsSync(join(node.dir, 'cni', 'bin', PLUGIN_TYPE))).toBe(false);
    await create('no-plugin', AGENTS);
    const p = await waitPod(node, AGENTS, 'no-plugin', 'sluice-init to have failed', (v) => (v.status.initContainerStatuses ?? []).some((c) => c.name === 'sluice-init' && (c.state.terminated?.exitCode ?? c.lastState?.terminated?.exitCode ?? 0) !== 0), 120_000);
    const init = containerStatus(p, 'sluice-init');
    expect(init.state.terminated?.exitCode ?? init.lastState?.terminated?.exitCode).toBe(1);
    expect(containerStatus(p, 'sluice-proxy').state.running).toBeUndefined();
    const app = containerStatus(p, 'agent');
    expect(app.state.running).toBeUndefined();
    expect(app.state.waiting?.reason).toBe('PodInitializing');
    // The kubelet restarts the failed check (restartPolicy Always): its output is the current or the previous run's.
    const said = await until('the check to say why', () => {
      const out = ['--previous', ''].map((flag) => {
        try {
          return node.kubectl('admin', ['-n', AGENTS, 'logs', 'no-plugin', '-c', 'sluice-init', ...(flag ? [flag] : [])]);
        } catch {
          return '';
        }
      });
      return out.find((o) => o.includes('interception.not_in_place'));
    }, 30_000);
    expect(said).toContain('interception.not_in_place');
    await deletePod(AGENTS, 'no-plugin');
    await startAgent();
  });

  test('the node agent as the chart deploys it: a privileged DaemonSet pod in the release namespace installs the plugin, intercepts, and removes the plugin when deleted', async () => {
    if (agent) await stopAgent('SIGTERM');
    expect(conflistTypes()).toEqual(['bridge']);
    const mine = chartObjects;
    expect(mine.map((o) => o.kind).sort()).toEqual(['ClusterRole', 'ClusterRoleBinding', 'DaemonSet', 'ServiceAccount']);
    await node.cluster.request('admin', 'POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: CHART_NS, labels: { 'pod-security.kubernetes.io/enforce': 'privileged' } } });
    const at = performance.now();
    for (const o of mine.filter((x) => x.kind !== 'ClusterRole')) {
      const res = await node.cluster.create('admin', o);
      if (res.status !== 201) throw new Error(`creating ${o.kind} ${o.metadata.name}: ${res.status} ${JSON.stringify(res.body)}`);
    }
    await until('the DaemonSet pod to put the plugin in the conflist', () => (conflistTypes().at(-1) === PLUGIN_TYPE ? true : undefined), 120_000);
    figures.daemonSetPluginInstalledMs = Math.round(performance.now() - at);
    const started = performance.now();
    await create('via-daemonset', AGENTS);
    const p = await waitPod(node, AGENTS, 'via-daemonset', 'ready', allContainersReady);
    figures.podStartInjectedCniDaemonSetMs = Math.round(performance.now() - started);
    expect(podIptables(p)).toContain('-A SLUICE_NAT -p tcp -j REDIRECT --to-ports 15001');
    const agents = (await node.cluster.request<{ items: { metadata: { name: string } }[] }>('admin', 'GET', `/api/v1/namespaces/${CHART_NS}/pods?labelSelector=app.kubernetes.io%2Fcomponent%3Dcni`)).body.items;
    expect(agents).toHaveLength(1);
    const agentLogs = node.kubectl('admin', ['-n', CHART_NS, 'logs', agents[0]!.metadata.name]);
    expect(agentLogs).toMatch(/"pod":"agents\/via-daemonset".*interception rules installed/);
    // Uninstall: the DaemonSet's pod gets SIGTERM and takes the plugin out of the node's configuration.
    await node.cluster.request('admin', 'DELETE', `/apis/apps/v1/namespaces/${CHART_NS}/daemonsets/sluice-cni`);
    await until('the plugin out of the conflist after the DaemonSet is deleted', () => (conflistTypes().includes(PLUGIN_TYPE) ? undefined : true), 60_000);
    await until('the plugin files removed', () => (existsSync(join(node.dir, 'cni', 'bin', PLUGIN_TYPE)) ? undefined : true), 30_000);
    await startAgent();
  });
});
