// sluice on a real node (e2e/cluster): pods injected by the real webhook, run by a real kubelet
// and containerd with the sidecar image `make image` builds. What only a running pod can show:
// the kubelet runs the interception init container, then the native sidecar, and starts the
// agent only once the sidecar is Ready (and never while it is not); and the attacks the API
// server cannot judge — an image whose USER is the sidecar's UID, a root agent calling
// setuid(1337), raw sockets and iptables without capabilities, the sidecar killed — where the
// container runtime and the pod's interception rules decide. A connection that reaches the
// recording upstream on the bridge without passing the sidecar is a bypass.
//
// Needs root, the node tools (tools/install.sh kubenode containerd) and Debian's runc, CNI plugins
// and busybox-static (tools/apt.sh). `make test-cluster` runs it.
import { execFileSync, spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { KubeNode } from './node.ts';
import { RecordingUpstream, allContainersReady, containerStatus, getPod, installSluice, probeLines, sidecarImage, waitPod } from './sluice-on-node.ts';
import type { PodView, SluiceInstall } from './sluice-on-node.ts';
import { ensureTestImages } from './test-images.ts';
import type { TestImages } from './test-images.ts';

// A loaded CI machine (make test runs the other e2e suites beside this one); the interception init
// container took 9-16 s under the old 100m CPU limit.
jest.setTimeout(240_000);

const AGENTS = 'agents';
const PLAIN = 'plain';
const BROKEN = 'broken-settings';
const ADMIN_PORT = 15090;
const PROXY_PORT = 15080;
const LOGS = join(tmpdir(), 'sluice-e2e-cluster-logs');
const KUBECTL = join(import.meta.dirname, '..', '..', '.tools', 'bin', 'kubectl');

let node: KubeNode;
let sluice: SluiceInstall;
let upstream: RecordingUpstream;
let images: TestImages;
let sidecarImageName = '';
const figures: Record<string, unknown> = {};

interface PodOptions {
  namespace?: string;
  image?: string;
  command: string;
  podSecurity?: Record<string, unknown>;
  containerSecurity?: Record<string, unknown>;
  labels?: Record<string, string>;
  restartPolicy?: 'Always' | 'Never';
  extraContainers?: Record<string, unknown>[];
}

function podManifest(name: string, o: PodOptions): Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string; namespace: string } } {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: o.namespace ?? AGENTS, ...(o.labels ? { labels: o.labels } : {}) },
    spec: {
      terminationGracePeriodSeconds: 1,
      restartPolicy: o.restartPolicy ?? 'Always',
      ...(o.podSecurity ? { securityContext: o.podSecurity } : {}),
      containers: [
        {
          name: 'agent',
          image: o.image ?? images.agent.name,
          imagePullPolicy: 'Never',
          command: ['/bin/sh', '-c', o.command],
          ...(o.containerSecurity ? { securityContext: o.containerSecurity } : {}),
        },
        ...(o.extraContainers ?? []),
      ],
    },
  };
}

async function createPod(name: string, o: PodOptions, handle = 'creator'): Promise<{ status: number; body: { message?: string } }> {
  return node.cluster.create<{ message?: string }>(handle, podManifest(name, o));
}

async function mustCreatePod(name: string, o: PodOptions): Promise<void> {
  const res = await createPod(name, o);
  if (res.status !== 201) throw new Error(`creating pod ${name}: ${res.status} ${JSON.stringify(res.body)}`);
}

function exec(namespace: string, pod: string, container: string, command: string): string {
  return node.kubectl('admin', ['-n', namespace, 'exec', pod, '-c', container, '--', '/bin/sh', '-c', command]);
}

function logs(namespace: string, pod: string, container: string): string {
  return node.kubectl('admin', ['-n', namespace, 'logs', pod, '-c', container]);
}

/** The container's PROBE lines once it has printed `count` of them (its command runs on after Ready); bounded. */
async function probeLog(namespace: string, pod: string, container: string, count: number): Promise<ReturnType<typeof probeLines>> {
  const deadline = Date.now() + 30_000;
  let lines = probeLines(logs(namespace, pod, container));
  while (lines.length < count && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    lines = probeLines(logs(namespace, pod, container));
  }
  return lines;
}

/** The address:port an agent tries to reach directly, and the path that names the attempt. */
function target(path: string): string {
  return `${upstream.address} ${upstream.port} ${path}`;
}

/** Directly reached = the upstream saw the request and its answer came back without the sidecar. */
function directHits(path: string, pod: PodView): number {
  return upstream.hitsFor(path).filter((h) => h.remoteAddress.endsWith(pod.status.podIP ?? '-')).length;
}

function containerId(p: PodView, name: string): string {
  return containerStatus(p, name).containerID!.replace(/^containerd:\/\//, '');
}

/** The pod's own iptables rules, read from the host inside the pod's network namespace. */
function podIptables(p: PodView, anyRunningContainer: string): string {
  const pid = node.containerPid(containerId(p, anyRunningContainer));
  return execFileSync('nsenter', ['-t', String(pid), '-n', 'iptables-save'], { encoding: 'utf8' });
}

beforeAll(async () => {
  const t0 = performance.now();
  images = await ensureTestImages();
  const sidecar = await sidecarImage();
  sidecarImageName = sidecar.name;
  figures.imagesMs = Math.round(performance.now() - t0);
  figures.sidecarImageRebuilt = sidecar.built;
  node = await KubeNode.start({ images: [images.pause, images.agent, images.agentUid1337, sidecar], sandboxImage: images.pause.name });
  figures.bringUp = Object.fromEntries(Object.entries(node.timings as unknown as Record<string, number>).map(([k, v]) => [k, Math.round(v)]));
  sluice = await installSluice(node, {
    sidecarImageName,
    agentNamespaces: [AGENTS, BROKEN],
    plainNamespaces: [PLAIN],
    // The shipped resource defaults, as a user gets them: the old 64Mi limit on sluice-init was
    // OOMKilled here (init-network peaks at ~68Mi in a memory cgroup) and no agent ever started.
  });
  // The broken namespace's settings stop every sidecar there at start (an unknown audit store).
  const broken = await node.cluster.request('admin', 'PUT', `/api/v1/namespaces/${BROKEN}/configmaps/sluice-sidecar`, {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'sluice-sidecar', namespace: BROKEN },
    data: { 'sidecar.yaml': 'audit:\n  store: nowhere\n' },
  });
  expect(broken.status).toBe(200);
  upstream = await RecordingUpstream.start(node.address);
}, 600_000);

afterAll(async () => {
  await upstream?.stop();
  await sluice?.stop();
  // The components' logs outlive the node (overwritten by the next run): a failed run's evidence.
  const left = await node?.stop({ keepLogsIn: LOGS });
  figures.hostLeftovers = left;
  console.log(`e2e/cluster figures (component logs in ${LOGS}): ${JSON.stringify(figures, null, 2)}`);
  expect(left ?? []).toEqual([]);
}, 120_000);

describe('a pod of sluice shape on a real kubelet', () => {
  test('without sluice, a pod of the agent image starts (baseline latency)', async () => {
    const started = performance.now();
    await mustCreatePod('baseline', { namespace: PLAIN, command: 'sluice-probe id; exec sleep 100000', podSecurity: { runAsUser: 1000 } });
    const p = await waitPod(node, PLAIN, 'baseline', 'ready', allContainersReady);
    figures.podStartPlainMs = Math.round(performance.now() - started);
    expect(p.spec.initContainers ?? []).toEqual([]);
  });

  let injected: PodView;
  test('the kubelet runs the init container, then the native sidecar, and the agent only once the sidecar is Ready', async () => {
    const started = performance.now();
    // The agent's first actions, once each, no retry: a request to the sidecar's proxy port (it
    // answers: it was listening before the agent started), the pod CA the sidecar writes before it
    // reports Ready, and its admin port (refused to agents by the pod's rules).
    const firstActions = [
      `sluice-probe http 127.0.0.1 ${PROXY_PORT} /first-request`,
      '[ -s /var/run/sluice/trust/ca.crt ] && echo "PROBE trust present" || echo "PROBE trust missing"',
      `sluice-probe wait-ready ${ADMIN_PORT}`,
      'sluice-probe id',
      'exec sleep 100000',
    ];
    await mustCreatePod('agent', { command: firstActions.join('; '), podSecurity: { runAsUser: 1000, runAsGroup: 1000 } });
    injected = await waitPod(node, AGENTS, 'agent', 'ready', allContainersReady);
    figures.podStartInjectedMs = Math.round(performance.now() - started);
    expect(injected.spec.initContainers!.map((c) => [c.name, c.restartPolicy ?? null])).toEqual([
      ['sluice-init', null],
      ['sluice-proxy', 'Always'],
    ]);
    expect(injected.spec.initContainers![1]!.image).toBe(sidecarImageName);
    const init = containerStatus(injected, 'sluice-init');
    const sidecar = containerStatus(injected, 'sluice-proxy');
    const agent = containerStatus(injected, 'agent');
    expect(init.state.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
    expect(sidecar).toMatchObject({ ready: true, started: true, restartCount: 0 });
    expect(Date.parse(sidecar.state.running!.startedAt)).toBeGreaterThanOrEqual(Date.parse(init.state.terminated!.finishedAt));
    expect(Date.parse(agent.state.running!.startedAt)).toBeGreaterThanOrEqual(Date.parse(sidecar.state.running!.startedAt));
    const first = await probeLog(AGENTS, 'agent', 'agent', 4);
    figures.agentFirstActions = first;
    expect(first[0]).toMatchObject({ what: 'http', result: 'response' });
    expect(first[1]).toMatchObject({ what: 'trust', result: 'present' });
    expect(first[2]).toMatchObject({ what: 'readyz', result: 'connect-failed', fields: { errno: 'Connection refused' } });
    expect(first[3]).toMatchObject({ what: 'id', fields: { uid: '1000' } });
    figures.sidecarShare = {
      initRanS: (Date.parse(init.state.terminated!.finishedAt) - Date.parse(init.state.terminated!.startedAt)) / 1000,
      sidecarStartToAgentStartS: (Date.parse(agent.state.running!.startedAt) - Date.parse(sidecar.state.running!.startedAt)) / 1000,
    };
  });

  test("the agent's direct connection to the bridge goes to the sidecar, never straight out", () => {
    const out = exec(AGENTS, 'agent', 'agent', `sluice-probe http ${target('/direct-from-agent')}`);
    const [res] = probeLines(out);
    figures.directConnection = res;
    // The sidecar answered (its decision header), and the upstream never saw the pod.
    expect(res).toMatchObject({ what: 'http', result: 'response' });
    expect(res!.fields.marker).toMatch(/^x-sluice-decision/i);
    expect(directHits('/direct-from-agent', injected)).toBe(0);
  });

  test('with a sidecar that never becomes Ready, the agent never starts', async () => {
    await mustCreatePod('agent', { namespace: BROKEN, command: 'sluice-probe now; exec sleep 100000', podSecurity: { runAsUser: 1000 } });
    const p = await waitPod(node, BROKEN, 'agent', 'the sidecar to have failed and been restarted', (v) => (v.status.initContainerStatuses ?? []).some((c) => c.name === 'sluice-proxy' && c.restartCount >= 1 && c.lastState?.terminated !== undefined));
    const agent = containerStatus(p, 'agent');
    expect(agent.state.running).toBeUndefined();
    expect(agent.state.terminated).toBeUndefined();
    expect(agent.state.waiting?.reason).toBe('PodInitializing');
    const sidecar = containerStatus(p, 'sluice-proxy');
    expect(sidecar.ready).toBe(false);
    expect(sidecar.lastState?.terminated?.exitCode).toBe(1);
    // The sidecar said why it stopped: the setting it could not accept.
    expect(node.kubectl('admin', ['-n', BROKEN, 'logs', 'agent', '-c', 'sluice-proxy', '--previous'])).toContain('audit');
  });
});

describe('attacks only a running pod can test', () => {
  test("an image whose USER is 1337 (the sidecar's UID): refused without an explicit UID; with one, it runs as that UID", async () => {
    const refused = await createPod('uid1337-implicit', { image: images.agentUid1337.name, command: 'sluice-probe id; exec sleep 100000' });
    expect(refused.status).toBe(403);
    expect(refused.body.message).toContain('guard.uid_unset');
    await mustCreatePod('uid1337-explicit', { image: images.agentUid1337.name, command: `sluice-probe id; sluice-probe http ${target('/uid1337-explicit')}; exec sleep 100000`, podSecurity: { runAsUser: 1000 } });
    const p = await waitPod(node, AGENTS, 'uid1337-explicit', 'ready', allContainersReady);
    const lines = await probeLog(AGENTS, 'uid1337-explicit', 'agent', 2);
    expect(lines[0]).toMatchObject({ what: 'id', fields: { uid: '1000', euid: '1000' } });
    expect(lines[1]!.fields.marker).toMatch(/^x-sluice-decision/i);
    expect(directHits('/uid1337-explicit', p)).toBe(0);
    // Why the guard insists: without sluice the same image really runs as 1337.
    await mustCreatePod('uid1337-plain', { namespace: PLAIN, image: images.agentUid1337.name, command: 'sluice-probe id; exec sleep 100000' });
    await waitPod(node, PLAIN, 'uid1337-plain', 'ready', allContainersReady);
    expect((await probeLog(PLAIN, 'uid1337-plain', 'agent', 1))[0]).toMatchObject({ what: 'id', fields: { uid: '1337' } });
    figures.uid1337 = { implicit: refused.body.message, explicit: lines };
  });

  test('a root agent keeping CAP_SETUID is refused; one without it cannot setuid(1337), and its connection is still intercepted', async () => {
    const keeps = await createPod('root-setuid-caps', { command: 'exec sleep 100000', podSecurity: { runAsUser: 0, runAsNonRoot: false } });
    expect(keeps.status).toBe(403);
    expect(keeps.body.message).toContain('guard.uid_change');
    await mustCreatePod('root-agent', {
      command: `sluice-probe id; sluice-probe setuid 1337 ${target('/setuid-1337')}; exec sleep 100000`,
      podSecurity: { runAsUser: 0, runAsNonRoot: false },
      containerSecurity: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
    });
    const p = await waitPod(node, AGENTS, 'root-agent', 'ready', allContainersReady);
    const lines = await probeLog(AGENTS, 'root-agent', 'agent', 3);
    figures.rootSetuid = lines;
    expect(lines[0]).toMatchObject({ what: 'id', fields: { uid: '0', capeff: '0000000000000000' } });
    expect(lines[1]).toMatchObject({ what: 'setuid', result: '1337=refused' });
    expect(lines[1]!.fields.errno).toBe('Operation not permitted');
    expect(lines[2]).toMatchObject({ what: 'setuid-http', result: 'response', fields: { uid: '0' } });
    expect(lines[2]!.fields.marker).toMatch(/^x-sluice-decision/i);
    expect(directHits('/setuid-1337', p)).toBe(0);
  });

  test('raw sockets and iptables without capabilities fail; the pod keeps its interception rules', async () => {
    const raw = probeLines(exec(AGENTS, 'agent', 'agent', 'sluice-probe raw || true'));
    const rootRaw = probeLines(exec(AGENTS, 'root-agent', 'agent', 'sluice-probe raw || true'));
    figures.rawSockets = { uid1000: raw, root: rootRaw };
    for (const r of [...raw, ...rootRaw]) expect(r.result).toMatch(/=refused$/);
    // The sidecar image carries the real iptables; a root agent container (no capabilities) runs it.
    await mustCreatePod('tamper', {
      command: 'exec sleep 100000',
      podSecurity: { runAsUser: 0, runAsNonRoot: false },
      containerSecurity: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
      extraContainers: [
        {
          name: 'iptables',
          image: sidecarImageName,
          imagePullPolicy: 'Never',
          command: ['/usr/sbin/iptables', '-t', 'nat', '-F'],
          securityContext: { runAsUser: 0, runAsNonRoot: false, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
        },
      ],
    });
    const p = await waitPod(node, AGENTS, 'tamper', 'the iptables container to have exited', (v) => {
      const s = v.status.containerStatuses?.find((c) => c.name === 'iptables');
      return Boolean(s?.state.terminated || (s?.restartCount ?? 0) > 0) && Boolean(v.status.containerStatuses?.find((c) => c.name === 'agent')?.ready);
    });
    const attempt = node.kubectl('admin', ['-n', AGENTS, 'logs', 'tamper', '-c', 'iptables', ...(containerStatus(p, 'iptables').state.terminated ? [] : ['--previous'])]);
    const status = containerStatus(p, 'iptables');
    figures.iptables = { log: attempt.trim(), exitCode: status.state.terminated?.exitCode ?? 'restarted' };
    expect(attempt).toMatch(/Permission denied|Operation not permitted/);
    const rules = podIptables(p, 'agent');
    expect(rules).toContain('SLUICE');
    expect(rules).toMatch(/REDIRECT/);
  });

  test('the sidecar killed: agent traffic stops, nothing bypasses it, and the kubelet restarts it', async () => {
    const before = await getPod(node, AGENTS, 'agent');
    const sidecarPid = node.containerPid(containerId(before, 'sluice-proxy'));
    // The agent keeps trying while the sidecar dies and comes back: 30 attempts, 100 ms apart.
    const loop = `for i in $(seq 30); do sluice-probe http ${target('/while-killed')}; sleep 0.1; done; true`;
    const probing = new Promise<string>((resolve, reject) => {
      const child = spawn(KUBECTL, ['--kubeconfig', node.cluster.kubeconfigPath('admin'), '-n', AGENTS, 'exec', 'agent', '-c', 'agent', '--', '/bin/sh', '-c', loop], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (out += c.toString()));
      child.once('error', reject);
      child.once('exit', () => resolve(out));
    });
    await new Promise((r) => setTimeout(r, 300));
    process.kill(sidecarPid, 'SIGKILL');
    const out = await probing;
    const results = probeLines(out);
    const refused = results.filter((r) => r.result !== 'response');
    figures.sidecarKilled = { attempts: results.length, failedWhileDown: refused.length, outcomes: [...new Set(results.map((r) => `${r.result} ${r.fields.errno ?? r.fields.marker ?? ''}`))] };
    expect(results.length).toBe(30);
    expect(refused.length).toBeGreaterThan(0);
    // Every attempt either failed — refused (nothing listens on the redirect port) or cut off (the
    // sidecar died holding it) — or was the sidecar's own answer; none reached anything else.
    for (const r of results) expect(['connect-failed', 'no-response'].includes(r.result) || /^x-sluice-decision/i.test(r.fields.marker ?? '')).toBe(true);
    expect(directHits('/while-killed', before)).toBe(0);
    const after = await waitPod(node, AGENTS, 'agent', 'the sidecar to be back and Ready', (v) => containerStatus(v, 'sluice-proxy').restartCount >= 1 && containerStatus(v, 'sluice-proxy').ready);
    expect(containerStatus(after, 'agent').restartCount).toBe(0);
    const again = probeLines(exec(AGENTS, 'agent', 'agent', `sluice-probe http ${target('/after-restart')}`));
    expect(again[0]?.result).toBe('response');
    expect(directHits('/after-restart', after)).toBe(0);
  });
});
