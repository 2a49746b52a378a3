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
// shows the same story to a person: this file only judges what each step observed, with the
// judgements it shares with cni-whole-story.test.ts (the same story in interception mode cni) in
// story-expect.ts.
//
// Needs root and the node tools, like running-pod.test.ts. `make test-cluster` runs it.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { Story } from './story.ts';
import { expectApproved, expectClonedAndMasked, expectKilled, expectPortForwardRefused, expectReplayed, expectRestartResumed, expectRunningPodAttemptsRefused, expectS3, expectStartOrder } from './story-expect.ts';
import { containerStatus } from './sluice-on-node.ts';

jest.setTimeout(240_000);

const LOGS = join(tmpdir(), 'sluice-e2e-whole-story-logs');

let story: Story;
let eventsBeforeRestart = 0;
const storyStarted = performance.now();

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
    expectStartOrder(await story.labelAndDeploy(), story, 'init');
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

  test('7. on the running pod: the label flip is refused, an ephemeral container as the sidecar\'s UID is refused, a plain debug container is cut off like the agent; port-forward to the sidecar is refused (developer: by the API server; approver: inside the pod)', async () => {
    // carol may do what a developer does to her pods: patch them, add debug containers, port-forward.
    expectRunningPodAttemptsRefused(await story.runningPodAttempts(['sluice.io/injected=false', 'sluice.io/inject=false']));
    // alice is a developer and no approver; carol is an approver.
    expectPortForwardRefused(await story.portForwardToSidecar('creator'), await story.portForwardToSidecar('lead'));
  });

  test('8. the sidecar killed and restarted by the kubelet resumes the same session: the chain goes on, nothing lost, the kill switch still holds', async () => {
    expectRestartResumed(await story.restartSidecar(), eventsBeforeRestart);
  });

  test('9. helm upgrade to interception.mode cni under a running agent: the running pod keeps its rules, its traffic and the kill switch; a rollout restart brings it back in mode cni, unprivileged', async () => {
    const s = await story.switchMode('cni');
    // helm --wait returned with the node agent running and its plugin last in the node's configuration.
    expect(s.cniAgentPods).toHaveLength(1);
    expect(s.conflistPlugins.at(-1)).toBe('sluice-cni');
    // The running pod: the same pod, nothing restarted, the rules its init container installed, its traffic still answered.
    expect(s.oldAfter.metadata.uid).toBe(s.before.metadata.uid);
    for (const c of [...(s.oldAfter.status.initContainerStatuses ?? []), ...(s.oldAfter.status.containerStatuses ?? [])]) expect(c.restartCount).toBe(0);
    expect(s.oldAfter.spec.initContainers![0]!.command?.at(-1)).toBe('init-network');
    expect(s.oldRules).toContain('-A SLUICE_OUT -j DROP');
    expect(s.pollsBefore.every((p) => p === '200')).toBe(true);
    expect(s.oldPollsAfter.every((p) => p === '200')).toBe(true);
    // Still governed after the switch: the kill switch cuts it off.
    expect(s.oldKill.code).toBe(0);
    expect(s.oldPollsAfterKill.slice(-3)).toEqual(['000', '000', '000']);
    // Recreated: injected in mode cni (the check, no privileges), the rules installed by the node agent, traffic through its sidecar.
    expect(s.restartedInitCommand.at(-1)).toBe('check-network');
    expect(JSON.stringify(s.restarted.spec.initContainers)).not.toMatch(/NET_ADMIN|NET_RAW|"runAsUser":0/);
    expect(s.restartedRules).toContain('-A SLUICE_OUT -j DROP');
    expect(s.restartedPolls.every((p) => p === '200')).toBe(true);
  });
});
