// The whole story on a real node in interception mode cni (issue 19, docs/cni.md), in an agent
// namespace that enforces Pod Security "restricted": `helm install` the packaged chart with
// `interception.mode: cni` (the webhook, and the sluice node agent as the chart's privileged
// DaemonSet, which puts its chained plugin into the node's CNI configuration); the same steps as
// whole-story.test.ts (story.ts, judged by story-expect.ts): the agent Deployment starts with the
// unprivileged check container, then the native sidecar, then the agent; clone with a masked
// secret, S3 by web identity, a held push released by an approver who is not its creator, kill,
// replay and verify from VictoriaLogs, a sidecar restart that resumes the chain. Then what only
// this mode changes: `kubectl sluice check` and the chart's NOTES report the mode and the
// namespace's level, and the running-pod attacks that still make sense when no container of the
// pod holds a capability: a root agent, raw sockets and iptables, an image whose USER is the
// sidecar's UID, the sidecar killed, the label flip on the markers the node agent decides by,
// ephemeral containers and port-forward to the sidecar.
//
// Needs root and the node tools, like whole-story.test.ts (its own node: the harness's lock
// serialises it with the other node suites). `make test-cluster` runs it.
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { PLUGIN_TYPE } from '../../cni/src/conflist.ts';
import { AGENTS, SIDECAR_REPO, SYSTEM, Story } from './story.ts';
import { expectApproved, expectClonedAndMasked, expectKilled, expectModeSwitched, expectPortForwardRefused, expectReplayed, expectRestartResumed, expectRunningPodAttemptsRefused, expectS3, expectStartOrder } from './story-expect.ts';
import { RecordingUpstream, allContainersReady, containerStatus, probeLines, waitPod } from './sluice-on-node.ts';
import type { PodView } from './sluice-on-node.ts';

jest.setTimeout(240_000);

const LOGS = join(tmpdir(), 'sluice-e2e-cni-whole-story-logs');
const KUBECTL = join(import.meta.dirname, '..', '..', '.tools', 'bin', 'kubectl');
/** What "restricted" asks of an agent's own pod and containers (sluice's containers comply by themselves). */
const RESTRICTED_POD = { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } };
const RESTRICTED_CONTAINER = { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } };

let story: Story;
let upstream: RecordingUpstream;
let eventsBeforeRestart = 0;
const storyStarted = performance.now();

beforeAll(async () => {
  story = await Story.start({ mode: 'cni', podSecurity: 'restricted' });
  // Plain HTTP on the bridge that records who connects: a connection from a pod's own IP is a bypass.
  upstream = await RecordingUpstream.start(story.node.address);
}, 900_000);

afterAll(async () => {
  await upstream?.stop();
  const left = await story?.stop({ keepLogsIn: LOGS });
  const figures = story?.figures ?? {};
  figures.hostLeftovers = left;
  figures.wholeStoryMs = Math.round(performance.now() - storyStarted);
  console.log(`e2e/cluster CNI-mode whole story figures (component logs in ${LOGS}): ${JSON.stringify(figures, null, 2)}`);
  expect(left ?? []).toEqual([]);
}, 120_000);

interface PodSpecOptions {
  image?: string;
  command: string;
  podSecurity?: Record<string, unknown>;
  containerSecurity?: Record<string, unknown>;
  extraContainers?: Record<string, unknown>[];
}

function podManifest(name: string, o: PodSpecOptions): Record<string, unknown> & { apiVersion: string; kind: string } {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: AGENTS },
    spec: {
      terminationGracePeriodSeconds: 1,
      securityContext: o.podSecurity ?? { ...RESTRICTED_POD, runAsUser: 1000, runAsGroup: 1000 },
      containers: [
        { name: 'agent', image: o.image ?? story.images.agent.name, imagePullPolicy: 'Never', command: ['/bin/sh', '-c', o.command], securityContext: o.containerSecurity ?? RESTRICTED_CONTAINER },
        ...(o.extraContainers ?? []),
      ],
    },
  };
}

/** carol (the lead, who may create pods in the agent namespace) creates a pod. */
async function createPod(name: string, o: PodSpecOptions): Promise<{ status: number; body: { message?: string } }> {
  return story.node.cluster.create<{ message?: string }>('lead', podManifest(name, o));
}

async function logsOf(pod: string, container: string, count: number): Promise<ReturnType<typeof probeLines>> {
  const deadline = Date.now() + 30_000;
  let lines = probeLines(story.node.kubectl('admin', ['-n', AGENTS, 'logs', pod, '-c', container]));
  while (lines.length < count && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    lines = probeLines(story.node.kubectl('admin', ['-n', AGENTS, 'logs', pod, '-c', container]));
  }
  return lines;
}

function directHits(path: string, pod: PodView): number {
  return upstream.hitsFor(path).filter((h) => h.remoteAddress.endsWith(pod.status.podIP ?? '-')).length;
}

describe('the whole story in interception mode cni, the agent namespace enforcing Pod Security "restricted"', () => {
  test('1. helm install with interception.mode cni: the webhook pods, and the node agent DaemonSet with its plugin last in the node\'s CNI configuration; NOTES report the mode and the namespace\'s level', async () => {
    const installed = await story.installChart();
    expect(installed.webhookPods).toHaveLength(2);
    for (const p of installed.webhookPods) expect(containerStatus(p, 'sluice-webhook').ready).toBe(true);
    for (const c of installed.registrations) for (const w of c.webhooks) expect(w.clientConfig.caBundle ?? '').not.toBe('');
    expect(installed.cniAgentPods).toHaveLength(1);
    expect(containerStatus(installed.cniAgentPods[0]!, 'sluice-cni').ready).toBe(true);
    expect(installed.conflistPlugins).toEqual(['bridge', PLUGIN_TYPE]);
    expect(installed.notes).toMatch(/Interception: +mode cni/);
    expect(installed.notes).toContain(`namespace ${AGENTS}: Pod Security enforce=restricted`);
    expect(installed.notes).not.toContain('refuses injected pods');
  });

  let deployed: Awaited<ReturnType<Story['labelAndDeploy']>>;
  test('2. label the namespace, apply the agent Deployment: admitted under "restricted"; the kubelet runs the unprivileged check, then the native sidecar, then the agent; the node agent installed the rules', async () => {
    deployed = await story.labelAndDeploy();
    expectStartOrder(deployed, story, 'cni');
    // No container of the pod holds a privilege: the rules were installed from outside, by the node.
    for (const c of deployed.pod.spec.initContainers!) expect(c.securityContext).toMatchObject({ runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } });
    expect(JSON.stringify(deployed.pod.spec)).not.toMatch(/NET_ADMIN|NET_RAW|"runAsUser":0|"privileged":true/);
    const rules = story.podIptables(deployed.pod);
    expect(rules).toContain('-A SLUICE_NAT -m owner --uid-owner 1337 -j RETURN');
    expect(rules).toContain('-A SLUICE_OUT -j DROP');
    const agentPod = (await story.cniAgentPods())[0]!;
    expect(story.node.kubectl('admin', ['-n', SYSTEM, 'logs', agentPod.metadata.name])).toMatch(new RegExp(`"pod":"${AGENTS}/${story.coderPod}".*interception rules installed`));
    // The plain namespace's pod went through the plugin too, and was left alone.
    expect(story.podIptables(deployed.plainPod)).not.toContain('SLUICE');
  });

  test('2b. kubectl sluice check reports mode cni, the node agent ready, and the agent namespace\'s Pod Security level', async () => {
    const c = await story.check();
    story.figures.check = c.results.filter((r) => ['interception', 'agent-namespaces'].includes(r.category));
    const interception = c.results.filter((r) => r.category === 'interception');
    expect(interception.map((r) => r.status)).toEqual(['ok', 'ok']);
    expect(interception[0]!.message).toMatch(/^interception mode cni/);
    expect(interception[1]!.message).toBe(`DaemonSet ${SYSTEM}/sluice-cni: 1/1 node agents ready`);
    expect(c.results.filter((r) => r.category === 'agent-namespaces')).toEqual([
      { category: 'agent-namespaces', status: 'ok', message: `namespace ${AGENTS}: Pod Security "restricted" (mode cni: sluice's containers pass restricted)` },
    ]);
  });

  test('3. the agent clones through sluice, and the leaked keys in a file it reads arrive masked', async () => {
    expectClonedAndMasked(await story.cloneAndRead());
  });

  test('3b. S3 through moto with credentials the agent never sees: STS web identity with the kubelet-projected token', async () => {
    expectS3(await story.s3(), story);
  });

  test('4. the push is held; the creator cannot approve it; an approver can, and it lands', async () => {
    expectApproved(await story.approvePush(), story);
  });

  test('5. kubectl sluice kill cuts the agent off', async () => {
    expectKilled(await story.kill());
  });

  test('6. kubectl sluice replay and verify read the session back from the log store', async () => {
    const r = await story.replayAndVerify();
    expectReplayed(r, story);
    eventsBeforeRestart = r.events;
  });

  test('7. the sidecar killed and restarted by the kubelet resumes the same session; the node\'s rules stay, the kill switch still holds', async () => {
    const r = await story.restartSidecar();
    expectRestartResumed(r, eventsBeforeRestart);
    expect(story.podIptables(r.after)).toContain('-A SLUICE_OUT -j DROP');
  });
});

describe('running-pod attacks in mode cni under "restricted"', () => {
  beforeAll(async () => {
    // carol may do what a developer does in her namespace: create, read and label pods.
    await story.node.cluster.grant('lead', AGENTS, 'pod-author', [{ apiGroups: [''], resources: ['pods', 'pods/log'], verbs: ['create', 'get', 'list', 'patch', 'update', 'delete'] }]);
  });

  test('a root agent is refused by Pod Security before it runs', async () => {
    const res = await createPod('root-agent', { command: 'exec sleep 100000', podSecurity: { runAsUser: 0, runAsNonRoot: false, seccompProfile: { type: 'RuntimeDefault' } } });
    story.figures.rootAgent = res.body.message;
    expect(res.status).toBe(403);
    expect(res.body.message).toMatch(/violates PodSecurity "restricted:latest".*runAsNonRoot/);
  });

  test('raw sockets and iptables without capabilities fail; the pod keeps the rules the node installed', async () => {
    const res = await createPod('tamper', {
      command: 'sluice-probe raw; exec sleep 100000',
      extraContainers: [
        {
          name: 'iptables',
          image: `${SIDECAR_REPO}:${story.version}`,
          imagePullPolicy: 'Never',
          command: ['/usr/sbin/iptables', '-t', 'nat', '-F'],
          securityContext: { ...RESTRICTED_CONTAINER, runAsUser: 1000 },
        },
      ],
    });
    expect(res.status).toBe(201);
    const p = await waitPod(story.node, AGENTS, 'tamper', 'the iptables container to have exited', (v) => {
      const s = v.status.containerStatuses?.find((c) => c.name === 'iptables');
      return Boolean(s?.state.terminated || (s?.restartCount ?? 0) > 0) && Boolean(v.status.containerStatuses?.find((c) => c.name === 'agent')?.ready);
    });
    const raw = await logsOf('tamper', 'agent', 2);
    const attempt = story.node.kubectl('admin', ['-n', AGENTS, 'logs', 'tamper', '-c', 'iptables', ...(containerStatus(p, 'iptables').state.terminated ? [] : ['--previous'])]);
    story.figures.tamper = { raw, iptables: attempt.trim() };
    expect(raw.map((r) => r.result)).toEqual(['inet-raw=refused', 'packet=refused']);
    expect(attempt).toMatch(/Permission denied|Operation not permitted/);
    const rules = story.podIptables(p);
    expect(rules).toContain('-A SLUICE_OUT -j DROP');
    expect(rules).toMatch(/REDIRECT --to-ports 15001/);
  });

  test("an image whose USER is 1337 (the sidecar's UID): refused without an explicit UID; with one, it runs as that UID and is intercepted", async () => {
    const implicit = await createPod('uid1337-implicit', { image: story.images.agentUid1337.name, command: 'sluice-probe id; exec sleep 100000', podSecurity: RESTRICTED_POD });
    story.figures.uid1337Implicit = implicit.body.message;
    expect(implicit.status).toBe(403);
    expect(implicit.body.message).toContain('guard.uid_unset');
    const explicit = await createPod('uid1337-explicit', { image: story.images.agentUid1337.name, command: `sluice-probe id; sluice-probe http ${upstream.address} ${upstream.port} /uid1337-explicit; exec sleep 100000` });
    expect(explicit.status).toBe(201);
    const p = await waitPod(story.node, AGENTS, 'uid1337-explicit', 'ready', allContainersReady);
    const lines = await logsOf('uid1337-explicit', 'agent', 2);
    story.figures.uid1337Explicit = lines;
    expect(lines[0]).toMatchObject({ what: 'id', fields: { uid: '1000', euid: '1000' } });
    expect(lines[1]!.fields.marker).toMatch(/^x-sluice-decision/i);
    expect(directHits('/uid1337-explicit', p)).toBe(0);
  });

  test('the sidecar killed: the agent\'s traffic stops and nothing bypasses it (the rules the node installed outlive the sidecar); the kubelet restarts it', async () => {
    expect((await createPod('sidecar-kill', { command: 'exec sleep 100000' })).status).toBe(201);
    const before = await waitPod(story.node, AGENTS, 'sidecar-kill', 'ready', allContainersReady);
    const sidecarPid = story.node.containerPid(containerStatus(before, 'sluice-proxy').containerID!.replace(/^containerd:\/\//, ''));
    // The agent keeps trying while the sidecar dies and comes back: 30 attempts, 100 ms apart.
    const loop = `for i in $(seq 30); do sluice-probe http ${upstream.address} ${upstream.port} /while-killed; sleep 0.1; done; true`;
    const probing = new Promise<string>((resolve, reject) => {
      const child = spawn(KUBECTL, ['--kubeconfig', story.node.cluster.kubeconfigPath('admin'), '-n', AGENTS, 'exec', 'sidecar-kill', '-c', 'agent', '--', '/bin/sh', '-c', loop], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (out += c.toString()));
      child.once('error', reject);
      child.once('exit', () => resolve(out));
    });
    await new Promise((r) => setTimeout(r, 300));
    process.kill(sidecarPid, 'SIGKILL');
    const results = probeLines(await probing);
    const failed = results.filter((r) => r.result !== 'response');
    story.figures.sidecarKilled = { attempts: results.length, failedWhileDown: failed.length, outcomes: [...new Set(results.map((r) => `${r.result} ${r.fields.errno ?? r.fields.marker ?? ''}`))] };
    expect(results.length).toBe(30);
    expect(failed.length).toBeGreaterThan(0);
    // Each attempt failed (nothing listens on the redirect port, or the dying sidecar held it) or was the sidecar's own answer.
    for (const r of results) expect(['connect-failed', 'no-response'].includes(r.result) || /^x-sluice-decision/i.test(r.fields.marker ?? '')).toBe(true);
    expect(directHits('/while-killed', before)).toBe(0);
    const after = await waitPod(story.node, AGENTS, 'sidecar-kill', 'the sidecar back and Ready', (v) => containerStatus(v, 'sluice-proxy').restartCount >= 1 && containerStatus(v, 'sluice-proxy').ready);
    expect(containerStatus(after, 'agent').restartCount).toBe(0);
    const again = probeLines(story.node.kubectl('admin', ['-n', AGENTS, 'exec', 'sidecar-kill', '-c', 'agent', '--', 'sluice-probe', 'http', upstream.address, String(upstream.port), '/after-restart']));
    expect(again[0]?.fields.marker).toMatch(/^x-sluice-decision/i);
    expect(directHits('/after-restart', after)).toBe(0);
  });

  test('on the running pod: the label flip on the markers the node agent decides by, an ephemeral container as the sidecar\'s UID and port-forward to the sidecar are refused; a plain debug container is cut off like the agent', async () => {
    const a = await story.runningPodAttempts(['sluice.io/injected=false', 'sluice.io/injected-', 'sluice.io/inject=false']);
    expectRunningPodAttemptsRefused(a);
    const pod = await waitPod(story.node, AGENTS, story.coderPod, 'running', (p) => p.metadata.labels?.['sluice.io/injected'] !== undefined);
    expect(pod.metadata.labels?.['sluice.io/injected']).toBe('true');
    // alice is a developer and no approver; carol is an approver.
    expectPortForwardRefused(await story.portForwardToSidecar('creator'), await story.portForwardToSidecar('lead'));
  });
});

describe('the way back: helm upgrade to interception.mode init', () => {
  test('the namespace relaxed to privileged first; the node agent takes its plugin out; the running pod keeps its rules, its traffic and the kill switch; a rollout restart brings it back in mode init', async () => {
    expectModeSwitched(await story.switchMode('init'), 'cni', 'init');
  });
});
