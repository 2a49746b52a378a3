// What the whole story's steps (story.ts) must have observed, in either interception mode: the
// judgements whole-story.test.ts (mode init) and cni-whole-story.test.ts (mode cni, the agent
// namespace enforcing Pod Security "restricted") share, so both runs hold the same story to the
// same standard and cannot drift apart. Only expect() over what a step returned: it never runs a
// command, and a mode-specific judgement takes the mode as an argument instead of a copy here.
import { expect } from '@jest/globals';
import { AGENTS, LEAKED_KEY_ID, LEAKED_SECRET, SIDECAR_REPO } from './story.ts';
import type { Approved, ClonedAndRead, Deployed, InterceptionMode, Killed, ModeSwitched, PortForwarded, Replayed, Restarted, RunningPodAttempts, S3Done, Story } from './story.ts';

/** Step 2: the kubelet ran sluice-init (the mode's command), then the native sidecar, then the agent; the unlabelled namespace's pod has no sidecar. */
export function expectStartOrder(d: Deployed, story: Story, mode: InterceptionMode): void {
  const { pod, init, sidecar, agent, plainPod } = d;
  expect(pod.spec.initContainers!.map((c) => [c.name, c.restartPolicy ?? null])).toEqual([
    ['sluice-init', null],
    ['sluice-proxy', 'Always'],
  ]);
  expect(pod.spec.initContainers![0]!.command?.at(-1)).toBe(mode === 'cni' ? 'check-network' : 'init-network');
  expect(pod.spec.initContainers![1]!.image).toBe(`${SIDECAR_REPO}:${story.version}`);
  expect(init.state.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
  expect(sidecar).toMatchObject({ ready: true, started: true, restartCount: 0 });
  expect(Date.parse(sidecar.state.running!.startedAt)).toBeGreaterThanOrEqual(Date.parse(init.state.terminated!.finishedAt));
  expect(Date.parse(agent.state.running!.startedAt)).toBeGreaterThanOrEqual(Date.parse(sidecar.state.running!.startedAt));
  // The same Deployment in a namespace nobody labelled: no sidecar.
  expect(plainPod.spec.initContainers ?? []).toEqual([]);
}

/** Step 3: the clone went through the sidecar, and the leaked keys arrived masked. */
export function expectClonedAndMasked(c: ClonedAndRead): void {
  expect(c.clone).toBe('ok');
  expect(c.settings).toContain('[REDACTED:aws-access-key-id]');
  expect(c.settings).toContain('[REDACTED:aws-secret-access-key]');
  expect(c.settings).not.toContain(LEAKED_KEY_ID);
  expect(c.settings).not.toContain(LEAKED_SECRET);
  // It went through the sidecar: the upstream saw the pod's sidecar, with the CA only it trusts.
  expect(c.upstreamSawClone).toBe(true);
}

/** Step 3b: S3 through moto as the pod's own role, with keys the agent never sees. */
export function expectS3(s3: S3Done, story: Story): void {
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
}

/** Step 4: held; its creator (an approver too) refused; another approver releases it and it lands. */
export function expectApproved(a: Approved, story: Story): void {
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
}

/** Step 5: after the kill switch, the agent's polls fail. */
export function expectKilled(k: Killed): void {
  expect(k.kill.code).toBe(0);
  expect(k.pollsAfterKill.slice(-3).every((p) => p !== '200')).toBe(true);
}

/** Step 6: the session read back from the log store has every act of the story, no secret, and an intact chain. */
export function expectReplayed(r: Replayed, story: Story): void {
  const { replay, verify } = r;
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
}

/** Step 8: a sidecar restart resumes the same session and chain; the kill switch still holds. */
export function expectRestartResumed(r: Restarted, eventsBeforeRestart: number): void {
  expect(r.after.status.containerStatuses?.find((c) => c.name === 'agent')?.restartCount).toBe(0);
  // One session, two starts: the first fresh, the second resumed from the spool the restart kept.
  expect(r.replay.match(/session_start /g)).toHaveLength(2);
  expect(r.replay).toMatch(/#0 +session_start .*resumed=false/);
  expect(r.verify.code).toBe(0);
  expect(r.verify.stdout).toMatch(/chain intact/);
  expect(r.events).toBeGreaterThan(eventsBeforeRestart);
  // The kill switch is the pod's annotation, not the sidecar's memory: still cut off after the restart.
  for (const l of r.pollsAfterRestart) expect(l).toMatch(/STEP poll 000$/);
}

/** Step 7: the injection labels stay, an ephemeral container as the sidecar's UID is refused, a plain one is admitted and cut off like the (killed) agent. */
export function expectRunningPodAttemptsRefused(a: RunningPodAttempts): void {
  for (const f of a.labelFlips) {
    expect(f.code).toBe(1);
    expect(f.out).toMatch(/sluice guard\.injection_marker/);
  }
  expect(a.asProxy.status).toBe(403);
  expect(a.asProxy.message).toContain('guard.proxy_uid');
  expect(a.plain.status).toBe(200);
  expect(a.debugPolls.length).toBeGreaterThanOrEqual(3);
  for (const l of a.debugPolls) expect(l).toBe('STEP debug 000');
  expect(a.githubRequestsDuring).toBe(0);
}

/** Step 7b: port-forward to the sidecar's admin port — a developer refused by the API server (the webhook), an approver admitted and refused inside the pod by its rules. */
export function expectPortForwardRefused(developer: PortForwarded, approver: PortForwarded): void {
  expect(developer.scraped).toMatch(/^failed/);
  expect(developer.out).toMatch(/guard\.port_forward/);
  // Only the sidecar's UID reaches the admin port; the kubelet's connection inside the pod is refused.
  expect(approver.scraped).toMatch(/^failed/);
  expect(approver.out).toMatch(/connect: connection refused/);
}

/**
 * Step 9 (and its way back): after `helm upgrade` to `to`, the node agent is there (cni) or gone with
 * its plugin (init); the pod that ran before is untouched — same pod, nothing restarted, its own
 * rules, its traffic — and still governed by the kill switch; its replacement is injected in `to`.
 */
export function expectModeSwitched(s: ModeSwitched, from: InterceptionMode, to: InterceptionMode): void {
  const command = (m: InterceptionMode) => (m === 'cni' ? 'check-network' : 'init-network');
  if (to === 'cni') {
    expect(s.cniAgentPods).toHaveLength(1);
    expect(s.conflistPlugins.at(-1)).toBe('sluice-cni');
  } else {
    expect(s.cniAgentPods).toEqual([]);
    expect(s.conflistPlugins).not.toContain('sluice-cni');
  }
  expect(s.oldAfter.metadata.uid).toBe(s.before.metadata.uid);
  for (const c of [...(s.oldAfter.status.initContainerStatuses ?? []), ...(s.oldAfter.status.containerStatuses ?? [])]) expect(c.restartCount).toBe(0);
  expect(s.oldAfter.spec.initContainers![0]!.command?.at(-1)).toBe(command(from));
  expect(s.oldRules).toContain('-A SLUICE_OUT -j DROP');
  expect(s.pollsBefore.every((p) => p === '200')).toBe(true);
  expect(s.oldPollsAfter.every((p) => p === '200')).toBe(true);
  // Still governed after the switch: the kill switch cuts it off.
  expect(s.oldKill.code).toBe(0);
  expect(s.oldPollsAfterKill.slice(-3)).toEqual(['000', '000', '000']);
  // Recreated in the new mode: its rules (by the node agent, or its own init container), traffic through its sidecar.
  expect(s.restartedInitCommand.at(-1)).toBe(command(to));
  if (to === 'cni') expect(JSON.stringify(s.restarted.spec.initContainers)).not.toMatch(/NET_ADMIN|NET_RAW|"runAsUser":0/);
  else expect(JSON.stringify(s.restarted.spec.initContainers)).toMatch(/NET_ADMIN/);
  expect(s.restartedRules).toContain('-A SLUICE_OUT -j DROP');
  expect(s.restartedPolls.every((p) => p === '200')).toBe(true);
}
