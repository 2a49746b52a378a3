// The whole story on a real node, step by step as a platform team and a developer would live it:
// `helm install` the packaged chart (the webhook a real pod of the image `make image` builds,
// managing its own certificate: webhook.certificates.mode self), label a namespace, apply an agent
// Deployment (git, curl, python3, AWS CLI: agent-image.ts) and watch the kubelet start it with the
// interception init container and the native sidecar. The scripted agent clones from git's own
// http-backend, reads a file whose AWS keys arrive masked, writes to S3 in moto with keys the
// sidecar got by STS web identity from the kubelet-projected token, and pushes: held until an
// approver who did not create it approves (its creator, an approver too, is refused), then it
// lands; `kubectl sluice kill` cuts it off; `replay` and `verify` read the session back from
// VictoriaLogs. Then attacks only a running pod shows (label flips, ephemeral containers,
// port-forward to the sidecar) and a sidecar restart that resumes the same hash chain.
//
// No kube-proxy and no cluster DNS here: the API server reaches the webhook's Service through
// `--enable-aggregator-routing=true` (Services resolved to endpoint IPs, for admission webhooks
// too), pods reach the API server on the bridge address (node.ts).
//
// The steps themselves are story.ts, shared with `make demo-cluster` (demo-cluster.ts), which
// shows the same story to a person: this file only judges what each step observed.
//
// Needs root and the node tools, like running-pod.test.ts. `make test-cluster` runs it.
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { eventually } from '../support/kube/admission.ts';
import { AGENTS, LEAKED_KEY_ID, LEAKED_SECRET, SIDECAR_REPO, Story } from './story.ts';
import { containerStatus } from './sluice-on-node.ts';

jest.setTimeout(240_000);

const ROOT = join(import.meta.dirname, '..', '..');
const LOGS = join(tmpdir(), 'sluice-e2e-whole-story-logs');

let story: Story;
let eventsBeforeRestart = 0;
const storyStarted = performance.now();

function kubectl(handle: string, args: string[], input?: string): string {
  return story.node.kubectl(handle, args, input);
}

beforeAll(async () => {
  story = await Story.start();
}, 900_000);

afterAll(async () => {
  const left = await story?.stop({ keepLogsIn: LOGS });
  const figures = story?.figures ?? {};
  figures.hostLeftovers = left;
  figures.wholeStoryMs = Math.round(performance.now() - storyStarted);
  console.log(`e2e/cluster whole story figures (component logs in ${LOGS}): ${JSON.stringify(figures, null, 2)}`);
  expect(left ?? []).toEqual([]);
}, 120_000);

describe('the whole story on a real node', () => {
  test('1. helm install of the packaged chart: the webhook runs as pods and manages its own certificate (certificates.mode self)', async () => {
    const installed = await story.installChart();
    // Two webhook replicas on the node, both Ready (ready means: every registration trusts it).
    expect(installed.webhookPods).toHaveLength(2);
    for (const p of installed.webhookPods) {
      expect(p.status.phase).toBe('Running');
      expect(containerStatus(p, 'sluice-webhook').ready).toBe(true);
    }
    // The caBundle the chart rendered empty was set by the webhook itself, from its own Secret.
    const ours = installed.registrations;
    expect(ours.length).toBeGreaterThan(0);
    for (const c of ours) for (const w of c.webhooks) {
      expect(w.clientConfig.service).toBeDefined();
      expect(w.clientConfig.caBundle ?? '').not.toBe('');
    }
  });

  test('2. label the namespace, apply an agent Deployment: the kubelet runs the init container, then the native sidecar, then the agent', async () => {
    const { pod, init, sidecar, agent, plainPod } = await story.labelAndDeploy();
    expect(pod.spec.initContainers!.map((c) => [c.name, c.restartPolicy ?? null])).toEqual([
      ['sluice-init', null],
      ['sluice-proxy', 'Always'],
    ]);
    expect(pod.spec.initContainers![1]!.image).toBe(`${SIDECAR_REPO}:${story.version}`);
    expect(init.state.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
    expect(sidecar).toMatchObject({ ready: true, started: true, restartCount: 0 });
    expect(Date.parse(sidecar.state.running!.startedAt)).toBeGreaterThanOrEqual(Date.parse(init.state.terminated!.finishedAt));
    expect(Date.parse(agent.state.running!.startedAt)).toBeGreaterThanOrEqual(Date.parse(sidecar.state.running!.startedAt));
    // The same Deployment in a namespace nobody labelled: no sidecar.
    expect(plainPod.spec.initContainers ?? []).toEqual([]);
  });

  test('3. the agent clones through sluice, and the leaked keys in a file it reads arrive masked', async () => {
    const { clone, settings, upstreamSawClone } = await story.cloneAndRead();
    expect(clone).toBe('ok');
    expect(settings).toContain('[REDACTED:aws-access-key-id]');
    expect(settings).toContain('[REDACTED:aws-secret-access-key]');
    expect(settings).not.toContain(LEAKED_KEY_ID);
    expect(settings).not.toContain(LEAKED_SECRET);
    // It went through the sidecar: the upstream saw the pod's sidecar, with the CA only it trusts.
    expect(upstreamSawClone).toBe(true);
  });

  test('3b. S3 through moto with credentials the agent never sees: STS web identity with the kubelet-projected token', async () => {
    const s3 = await story.s3();
    expect(s3.whoami).toBe(`arn:aws:sts::123456789012:assumed-role/agent-role/sluice-${AGENTS}-${story.coderPod}`);
    expect(s3.s3put).toMatch(/ok$/);
    expect(s3.s3ls).toContain('from-agent.txt');
    expect(s3.stored).toBe('hello-from-agent\n');
    // The agent holds the webhook's placeholder and no service-account token; STS issued the real
    // keys to the sidecar, for the pod's own identity, and they never appear in the agent's output.
    expect(s3.keys).toMatch(/^SLUICEPLACEHOLDER .*No such file or directory/);
    expect(s3.issued.length).toBeGreaterThanOrEqual(1);
    for (const c of s3.issued) {
      expect(c.subject).toBe(`system:serviceaccount:${AGENTS}:default`);
      expect(s3.agentLog).not.toContain(c.accessKeyId);
      expect(s3.agentLog).not.toContain(c.secretAccessKey);
    }
  });

  test('4. the push is held; the creator cannot approve it; an approver can, and it lands', async () => {
    const a = await story.approvePush();
    expect(a.pushReturnedWhileHeld).toBe(false);
    expect(a.gitLogWhileHeld).not.toContain('fix from the agent');
    expect(a.listed.stdout).toContain(a.requestName);
    // carol created the Deployment (its pod carries her as creator) and is an approver: refused all the same.
    expect(a.byCreator.code).not.toBe(0);
    expect(a.byCreator.stderr).toContain('carol@example.com created pod');
    expect(a.byCreator.stderr).toContain('cannot approve its requests');
    expect(a.byApprover.code).toBe(0);
    expect(a.push).toBe('ok');
    expect(a.gitLogAfter).toContain('fix from the agent');
    expect(a.decided.status?.state).toBe('Approved');
    expect(a.decided.status?.decidedBy).toBe(story.node.cluster.user('approver').name);
  });

  test('5. kubectl sluice kill cuts the agent off', async () => {
    const { kill, pollsAfterKill } = await story.kill();
    expect(kill.code).toBe(0);
    expect(pollsAfterKill.slice(-3).every((p) => p !== '200')).toBe(true);
  });

  test('6. kubectl sluice replay and verify read the session back from the log store', async () => {
    const { replay, verify, events } = await story.replayAndVerify();
    expect(replay).toMatch(/session_start pod /);
    expect(replay).toMatch(/git-upload-pack/);
    expect(replay).toMatch(/GET https:\/\/raw\.githubusercontent\.com\/acme\/app\/main\/deploy\/settings\.json → allow /);
    expect(replay).toMatch(/masked 2 \(aws-access-key-id×1, aws-secret-access-key×1\)/);
    expect(replay).toMatch(/POST https:\/\/github\.com\/acme\/app\.git\/git-receive-pack \[git push acme\/app refs\/heads\/main\] → hold git\.push_requires_approval/);
    expect(replay).toMatch(/approval +decidedBy=bob@example\.com .*outcome=approved/);
    expect(replay).toMatch(/credential +audience=sts\.amazonaws\.com .*provider=aws-sts result=issued role=arn:aws:iam::123456789012:role\/agent-role/);
    expect(replay).toMatch(/kill +annotation=sluice\.io\/kill/);
    expect(replay).toMatch(/refusal +code=pod\.killed /);
    expect(replay).not.toContain(LEAKED_KEY_ID);
    for (const c of story.aws.hop.issued.values()) expect(replay).not.toContain(c.secretAccessKey);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/^ok: session [0-9a-f-]+: \d+ events, seq 0\.\.\d+, chain intact/m);
    eventsBeforeRestart = events;
  });

  test('7. on the running pod: the label flip is refused, an ephemeral container as the sidecar\'s UID is refused, a plain debug container is cut off like the agent; port-forward to the sidecar is refused (developer: by the API server; approver: inside the pod)', async () => {
    const { node, toolsAgent, github, coderPod, figures } = story;
    // carol may do what a developer does to her pods: patch them, add debug containers, port-forward.
    await node.cluster.grant('lead', AGENTS, 'pod-debugger', [{ apiGroups: [''], resources: ['pods', 'pods/ephemeralcontainers', 'pods/portforward'], verbs: ['get', 'list', 'patch', 'update', 'create'] }]);
    const attempt = (args: string[]) => {
      try {
        return { code: 0, out: kubectl('lead', args) };
      } catch (err) {
        return { code: 1, out: (err as Error).message };
      }
    };
    // 1. Take the running pod out of sluice's view by its labels: refused, whichever label.
    const flips = ['sluice.io/injected=false', 'sluice.io/inject=false'].map((l) => attempt(['-n', AGENTS, 'label', 'pod', coderPod, l, '--overwrite']));
    figures.labelFlip = flips.map((f) => f.out.trim().split('\n').pop());
    for (const f of flips) {
      expect(f.code).toBe(1);
      expect(f.out).toMatch(/sluice guard\.injection_marker/);
    }
    // 2. A debug container as the sidecar's UID (its traffic would skip interception): refused.
    const path = `/api/v1/namespaces/${AGENTS}/pods/${coderPod}/ephemeralcontainers`;
    const withEphemeral = async (c: Record<string, unknown>) => {
      const current = (await node.cluster.request<{ spec: Record<string, unknown> }>('lead', 'GET', `/api/v1/namespaces/${AGENTS}/pods/${coderPod}`)).body;
      return node.cluster.request<{ message?: string }>('lead', 'PUT', path, { ...current, spec: { ...current.spec, ephemeralContainers: [c] } });
    };
    const debug = (name: string, securityContext: Record<string, unknown>) => ({
      name,
      image: toolsAgent.name,
      imagePullPolicy: 'Never',
      command: ['/bin/sh', '-c', 'for i in 1 2 3; do echo "STEP debug $(curl -sS -o /dev/null -w \'%{http_code}\' --max-time 5 https://raw.githubusercontent.com/acme/app/main/README.md 2>/dev/null)"; sleep 1; done; sleep 100000'],
      securityContext,
    });
    const asProxy = await withEphemeral(debug('dbg-uid1337', { runAsUser: 1337, runAsGroup: 1337, allowPrivilegeEscalation: false }));
    figures.ephemeralAsProxy = asProxy.body.message;
    expect(asProxy.status).toBe(403);
    expect(asProxy.body.message).toContain('guard.proxy_uid');
    // 3. A plain debug container is admitted, runs in the pod, and is cut off by the kill switch like the agent.
    const githubSeen = github.requests.length;
    const plain = await withEphemeral(debug('dbg', { runAsUser: 1000, runAsGroup: 1000, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } }));
    expect(plain.status).toBe(200);
    const polls = await eventually(
      'three polls from the debug container',
      () => {
        const lines = kubectl('admin', ['-n', AGENTS, 'logs', coderPod, '-c', 'dbg']).split('\n').filter((l) => l.startsWith('STEP debug '));
        return Promise.resolve(lines.length >= 3 ? lines : undefined);
      },
      60_000,
    );
    figures.debugContainerPolls = polls;
    for (const l of polls) expect(l).toBe('STEP debug 000');
    expect(github.requests.length).toBe(githubSeen);
    // 4. Port-forward to the sidecar's admin port. kubectl listens locally and opens the stream
    // only when a connection arrives; over SPDY the port is chosen after admission, so the webhook
    // lets only approvers port-forward to an injected pod at all.
    const portForward = async (user: string) => {
      const child = spawn(join(ROOT, '.tools', 'bin', 'kubectl'), ['--kubeconfig', node.cluster.kubeconfigPath(user), '-n', AGENTS, 'port-forward', `pod/${coderPod}`, '0:15090'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (out += c.toString()));
      let gone = false;
      const exited = new Promise<void>((resolve) =>
        child.once('exit', () => {
          gone = true;
          resolve();
        }),
      );
      // Listening locally, or already gone (refused before it listened).
      const localPort = await eventually('kubectl port-forward listening or exited', () => Promise.resolve(/Forwarding from 127\.0\.0\.1:(\d+)/.exec(out)?.[1] ?? (gone ? '' : undefined)), 20_000);
      if (!localPort) return { scraped: 'failed: kubectl exited before listening', out };
      const scraped = await fetch(`http://127.0.0.1:${localPort}/metrics`, { signal: AbortSignal.timeout(10_000) }).then(
        (r) => `HTTP ${r.status}`,
        (err: Error) => `failed: ${err.message}`,
      );
      await eventually('kubectl to report the outcome', () => Promise.resolve(/error/i.test(out) ? true : undefined), 20_000).catch(() => undefined);
      child.kill('SIGTERM');
      await exited;
      return { scraped, out };
    };
    await node.cluster.grant('creator', AGENTS, 'port-forwarder', [{ apiGroups: [''], resources: ['pods', 'pods/portforward'], verbs: ['get', 'create'] }]);
    const developer = await portForward('creator');
    const approver = await portForward('lead');
    figures.portForward = { developer: developer.out.trim().split('\n').slice(-2), approver: approver.out.trim().split('\n').slice(-2) };
    // A developer who is no approver: refused by the API server (the webhook).
    expect(developer.scraped).toMatch(/^failed/);
    expect(developer.out).toMatch(/guard\.port_forward/);
    // An approver is admitted, and the kubelet's connection to the sidecar's admin port inside the
    // pod is refused by the pod's own interception rules: only the sidecar's UID reaches it.
    expect(approver.scraped).toMatch(/^failed/);
    expect(approver.out).toMatch(/connect: connection refused/);
  });

  test('8. the sidecar killed and restarted by the kubelet resumes the same session: the chain goes on, nothing lost, the kill switch still holds', async () => {
    const r = await story.restartSidecar();
    expect(containerStatus(r.after, 'agent').restartCount).toBe(0);
    // One session, two starts: the first fresh, the second resumed from the spool the restart kept.
    expect(r.replay.match(/session_start /g)).toHaveLength(2);
    expect(r.replay).toMatch(/#0 +session_start .*resumed=false/);
    expect(r.verify.code).toBe(0);
    expect(r.verify.stdout).toMatch(/chain intact/);
    expect(r.events).toBeGreaterThan(eventsBeforeRestart);
    // The kill switch is the pod's annotation, not the sidecar's memory: still cut off after the restart.
    for (const l of r.pollsAfterRestart) expect(l).toMatch(/STEP poll 000$/);
  });
});
