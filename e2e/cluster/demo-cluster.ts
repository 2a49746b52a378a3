// `make demo-cluster`: the whole story on a real single-node Kubernetes, shown to a person. The
// steps are story.ts — the same ones whole-story.test.ts asserts — and this program only prints
// them: each command as the user who would type it (`helm install …`, `kubectl label …`,
// `kubectl sluice approve …`), when it ran, what happened (✔/✖), and a summary at the end.
//
// Needs root (a kubelet and containerd run on this machine) and the node tools `make deps` builds;
// it says so and exits 2 otherwise. It waits for any other real node on this machine (the
// harness's machine-wide lock), tears everything down at the end, and on Ctrl-C or SIGTERM
// exits through the harness's synchronous teardown, which puts the host back. It never leaves a
// process, link, mount or cgroup behind, and sends traffic only on loopback and its own bridge.
// `--cni`: the same story with `interception.mode: cni` (the sluice node agent installs each pod's
// rules, docs/cni.md) in an agent namespace that enforces Pod Security "restricted".
import { LEAKED_KEY_ID, LEAKED_SECRET, PLAIN, SYSTEM, Story } from './story.ts';
import type { ShownCommand } from './story.ts';
import { missingPrerequisites } from './node.ts';
import { containerStatus } from './sluice-on-node.ts';

const t0 = performance.now();
const cni = process.argv.includes('--cni');
const secs = (msValue: number) => `${(msValue / 1000).toFixed(1)} s`;
const clock = () => `+${((performance.now() - t0) / 1000).toFixed(1).padStart(5)}s`;
const tty = process.stdout.isTTY;
const paint = (code: string, s: string) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
const out = (s = '') => process.stdout.write(`${s}\n`);

let failures = 0;
function check(ok: boolean, what: string): void {
  if (!ok) failures++;
  out(`  ${ok ? paint('32', '✔') : paint('31', '✖')} ${what}`);
}
function note(what: string): void {
  out(`    ${paint('2', what)}`);
}
function heading(n: string, title: string): void {
  out();
  out(paint('1', `── ${n}. ${title} ${'─'.repeat(Math.max(3, 78 - title.length - n.length))}`));
}
function showCommand(c: ShownCommand): void {
  out(`  ${paint('2', clock())} ${paint('36', c.user)} $ ${c.line}`);
}
/** The first `max` lines of a command's output, indented, long lines cut. */
function excerpt(text: string, max: number): void {
  const lines = text.trimEnd().split('\n');
  for (const l of lines.slice(0, max)) out(`    │ ${l.length > 150 ? `${l.slice(0, 149)}…` : l}`);
  if (lines.length > max) out(`    │ … (${lines.length - max} more lines)`);
}

function preflight(): void {
  if (process.getuid?.() !== 0) {
    out('make demo-cluster runs a real Kubernetes node on this machine (a kubelet, containerd, a bridge,');
    out('iptables in pod network namespaces): it needs root. Run it as root, e.g. `sudo make demo-cluster`.');
    process.exit(2);
  }
  const missing = missingPrerequisites();
  if (missing.length) {
    out('make demo-cluster needs the node tools, which are missing:');
    for (const m of missing) out(`  ${m}`);
    out('`make deps` builds them (tools/install.sh, cached in .tools; a cold build takes 10–25 min, see docs/e2e-cluster.md).');
    process.exit(2);
  }
}

async function main(): Promise<number> {
  preflight();
  // Ctrl-C (and a cancelled job): exit, so the harness's 'exit' handlers tear the node down
  // synchronously and put the host back (node.ts installs the same once a node starts; this one
  // covers the image build before it, and says what is happening).
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => {
      out(`\n${signal}: tearing the node down and restoring the host …`);
      process.exitCode = code;
      process.exit(code);
    });
  }
  process.once('exit', (code) => {
    if (code === 130 || code === 143) out('torn down (the harness restored the host); interrupted.');
  });

  out(paint('1', 'sluice on a real node: the whole story (make demo-cluster)'));
  out('A single-node Kubernetes 1.37 on this machine (etcd, kube-apiserver, controller-manager, scheduler,');
  out('containerd, a kubelet; pods on a private bridge), sluice installed from its packaged chart, and a');
  out('scripted coding agent (git, curl, python3, AWS CLI) doing its first minute of work.');
  out('Users: admin (platform team), carol@example.com (team lead: creates the agent, is an approver),');
  out('bob@example.com (approver). "GitHub" and "AWS" (moto) run on the bridge; no internet is used.');
  heading('0', 'Bring-up: images, the node, GitHub, AWS, the log store');
  if (cni) out('Interception mode cni: the sluice node agent (a privileged DaemonSet) installs each pod\'s rules; the agent namespace enforces Pod Security "restricted".');
  const story = await Story.start({
    ...(cni ? { mode: 'cni' as const, podSecurity: 'restricted' as const } : {}),
    onCommand: showCommand,
    onProgress: (what) => out(`  ${paint('2', clock())} ${what}`),
    onObserved: (what) => out(`  ${paint('2', clock())} ${what}`),
  });
  let crashed: unknown;
  const summary: string[] = [];
  try {
    heading('1', 'Install sluice: helm install of the packaged chart');
    const installed = await story.installChart();
    check(installed.webhookPods.length === 2 && installed.webhookPods.every((p) => p.status.phase === 'Running' && containerStatus(p, 'sluice-webhook').ready), `${installed.webhookPods.length} webhook pods Running and Ready in ${SYSTEM} (helm --wait took ${secs(installed.helmInstallMs)})`);
    const hooks = installed.registrations.flatMap((r) => r.webhooks);
    check(hooks.length > 0 && hooks.every((w) => w.clientConfig.service && w.clientConfig.caBundle), `the webhook set the caBundle of its ${hooks.length} mutating webhooks itself (certificates.mode self; the chart renders it empty)`);
    if (cni) check(installed.cniAgentPods.length === 1 && installed.conflistPlugins.at(-1) === 'sluice-cni', `the node agent (DaemonSet sluice-cni) runs and put its plugin last in the node's CNI configuration: ${installed.conflistPlugins.join(' → ')}`);

    heading('2', 'Label a namespace, apply the agent Deployment');
    const d = await story.labelAndDeploy();
    const order = (d.pod.spec.initContainers ?? []).map((c) => `${c.name}${c.restartPolicy === 'Always' ? ' (native sidecar)' : ''}`).join(', ');
    note(`pod ${d.pod.metadata.name}: init containers ${order}; sluice-init runs ${d.pod.spec.initContainers?.[0]?.command?.at(-1) ?? '?'}`);
    const initRan = d.init.state.terminated ? (Date.parse(d.init.state.terminated.finishedAt) - Date.parse(d.init.state.terminated.startedAt)) / 1000 : NaN;
    const sidecarToAgent = d.sidecar.state.running && d.agent.state.running ? (Date.parse(d.agent.state.running.startedAt) - Date.parse(d.sidecar.state.running.startedAt)) / 1000 : NaN;
    check(
      d.init.state.terminated?.exitCode === 0 && d.sidecar.ready && d.sidecar.restartCount === 0 && sidecarToAgent >= 0,
      `the kubelet ran sluice-init (exit 0, ${initRan.toFixed(1)} s), then sluice-proxy (Ready), then the agent (${sidecarToAgent.toFixed(1)} s after the sidecar started)`,
    );
    check(true, `pod Ready ${secs(d.podStartInjectedMs)} after apply with sluice; ${secs(d.podStartPlainMs)} in namespace ${PLAIN} (not labelled, ${(d.plainPod.spec.initContainers ?? []).length} init containers)`);
    summary.push(`pod start, apply → Ready: ${secs(d.podStartPlainMs)} without sluice, ${secs(d.podStartInjectedMs)} with it (sluice-init ${initRan.toFixed(1)} s, sidecar start → agent start ${sidecarToAgent.toFixed(1)} s)`);

    heading('3', 'The agent clones, and reads a file with leaked AWS keys');
    note('the agent runs on its own; its log says what it did (STEP lines), the upstreams say what they saw');
    const c = await story.cloneAndRead();
    check(c.clone === 'ok' && c.upstreamSawClone, `git clone https://github.com/acme/app.git: ${c.clone}, through the sidecar (only it trusts GitHub's CA here)`);
    const masked = c.settings.includes('[REDACTED:aws-access-key-id]') && c.settings.includes('[REDACTED:aws-secret-access-key]') && !c.settings.includes(LEAKED_KEY_ID) && !c.settings.includes(LEAKED_SECRET);
    check(masked, 'curl …/deploy/settings.json: both keys arrive masked');
    note(`the agent read: ${c.settings}`);
    summary.push('masked: aws-access-key-id and aws-secret-access-key in deploy/settings.json (the agent never saw them)');

    heading('3b', 'S3 with credentials the agent never holds (STS web identity)');
    const s3 = await story.s3();
    check(s3.whoami.includes(':assumed-role/agent-role/'), `aws sts get-caller-identity: ${s3.whoami}`);
    check(s3.s3put.endsWith('ok') && s3.stored === 'hello-from-agent\n', `aws s3 cp - s3://acme-agent-data/from-agent.txt: stored in moto (${JSON.stringify(s3.stored)})`);
    const leaked = s3.issued.some((k) => s3.agentLog.includes(k.accessKeyId) || s3.agentLog.includes(k.secretAccessKey));
    check(s3.keys.startsWith('SLUICEPLACEHOLDER ') && s3.issued.length > 0 && !leaked, `the agent holds AWS_ACCESS_KEY_ID=SLUICEPLACEHOLDER and no service-account token; STS issued ${s3.issued.length} key pair(s) to the sidecar for ${s3.issued[0]?.subject ?? '?'}, none in the agent's log`);
    summary.push(`credentials: ${s3.issued.length} STS key pair(s) for the pod's own identity, held by the sidecar only`);

    heading('4', 'git push is held for approval');
    const a = await story.approvePush();
    check(!a.pushReturnedWhileHeld && !a.gitLogWhileHeld.includes('fix from the agent'), `the push waited: ApprovalRequest ${a.requestName} was pending and the repository unchanged until approved`);
    note('bob listed it:');
    excerpt(a.listed.stdout, 6);
    check(a.byCreator.code !== 0, 'carol, who created the agent, could not approve it, approver or not:');
    excerpt(a.byCreator.stderr, 3);
    check(a.byApprover.code === 0 && a.push === 'ok' && a.gitLogAfter.includes('fix from the agent'), `bob approved: the push landed ${secs(a.approveToPushLandedMs)} later (decided by ${a.decided.status?.decidedBy ?? '?'})`);
    summary.push(`held: git push acme/app refs/heads/main (${a.requestName}); refused to its creator carol, approved by bob, landed in ${secs(a.approveToPushLandedMs)}`);

    heading('5', 'The kill switch');
    const k = await story.kill();
    check(k.kill.code === 0 && k.pollsAfterKill.slice(-3).every((p) => p !== '200'), `the agent's polls of GitHub after the kill: ${k.pollsAfterKill.join(' ')} (200 before it)`);
    summary.push(`refused: after kubectl sluice kill, the agent's requests (${k.pollsAfterKill.slice(-3).join(' ')}), and carol's self-approval`);

    heading('6', 'Replay and verify the session from the log store (VictoriaLogs)');
    const r = await story.replayAndVerify();
    excerpt(r.replay, 30);
    check(r.verify.code === 0, r.verify.stdout.trim() || r.verify.stderr.trim());
    summary.push(`session ${r.sessionId}: ${r.events} events, chain intact`);

    heading('7', 'Kill the sidecar (SIGKILL from the host): the kubelet restarts it');
    const rs = await story.restartSidecar();
    check(containerStatus(rs.after, 'agent').restartCount === 0, `sluice-proxy Ready again ${secs(rs.sidecarRestartToReadyMs)} after SIGKILL (restartCount ${containerStatus(rs.after, 'sluice-proxy').restartCount}); the agent was not restarted`);
    check(rs.verify.code === 0 && rs.events > r.events && (rs.replay.match(/session_start /g) ?? []).length === 2, `the same session resumed: ${rs.verify.stdout.trim()}`);
    check(rs.pollsAfterRestart.every((l) => l.endsWith('STEP poll 000')), `still cut off after the restart (the kill switch is the pod's annotation): ${rs.pollsAfterRestart.length} polls, all 000`);
    summary.push(`sidecar restart: Ready in ${secs(rs.sidecarRestartToReadyMs)}, session resumed (${rs.events} events, chain intact), kill switch still holding`);
  } catch (err) {
    crashed = err;
    out(`\n${paint('31', 'the story stopped:')} ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    heading('8', 'Teardown');
    const stopped = performance.now();
    const hostLeft = await story.stop();
    out(`  ${paint('2', clock())} pods deleted, kubelet, containerd and control plane stopped, bridge ${story.node.bridge} removed, sysctls restored (${secs(performance.now() - stopped)})`);
    check(hostLeft.length === 0, hostLeft.length === 0 ? 'the host is as it was' : `the host still differs: ${hostLeft.join('; ')}`);
  }
  out();
  out(paint('1', 'Summary'));
  for (const s of summary) out(`  ${s}`);
  const bringUp = story.figures.bringUp as { totalMs?: number } | undefined;
  out(`  wall time ${secs(performance.now() - t0)} (images ${secs(Number(story.figures.imagesMs))}, node bring-up ${secs(bringUp?.totalMs ?? NaN)}, helm install ${secs(Number(story.figures.helmInstallMs))})`);
  out(`  ${failures === 0 && !crashed ? paint('32', 'every step did what it should.') : paint('31', `${failures} check(s) failed${crashed ? ', and the story stopped early' : ''}.`)}`);
  return failures === 0 && !crashed ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    out(`make demo-cluster failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
