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
import { AGENTS, Story } from './story.ts';
import { expectApproved, expectClonedAndMasked, expectKilled, expectModeSwitched, expectPortForwardRefused, expectReplayed, expectRestartResumed, expectRunningPodAttemptsRefused, expectS3, expectStartOrder } from './story-expect.ts';
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

  test('1b. Prometheus, configured as the chart\'s PodMonitor and ServiceMonitor select (kubernetes_sd_configs against the real API server), scrapes the webhook pods', async () => {
    const p = await story.startPrometheus();
    expect(p.monitors.map((m) => `${m.kind} ${m.metadata.namespace}/${m.metadata.name}`).sort()).toEqual(['PodMonitor sluice-system/sluice-sidecars', 'ServiceMonitor sluice-system/sluice-webhook']);
    const sd = p.scrapeConfigs.map((c) => (c.kubernetes_sd_configs as { role: string; namespaces?: { names: string[] }; api_server: string }[])[0]!);
    // The PodMonitor selects the release's agent namespaces (agents.namespaces), through the node's API server.
    expect(sd.map((c) => [c.role, c.namespaces?.names])).toEqual([['pod', [AGENTS]], ['endpoints', ['sluice-system']]]);
    for (const c of sd) expect(c.api_server).toBe(story.node.cluster.server);
    const webhook = p.targets.filter((t) => t.job === 'sluice-webhook');
    expect(webhook.length).toBeGreaterThanOrEqual(1);
    for (const t of webhook) expect(t).toMatchObject({ namespace: 'sluice-system', container: 'sluice-webhook', pod: expect.stringMatching(/^sluice-webhook-/) });
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

  test('6b. Prometheus discovered the agent pod\'s sidecar through the API server and scraped it over the bridge; every dashboard query returns data, except the failures the story never causes', async () => {
    const { targets, results } = await story.dashboardQueries();
    story.figures.dashboardResults = results.map((r) => `${r.series ? '✔' : '✖'} ${r.where}: ${r.series} series ${r.values.join(' ')}`);
    const sidecar = targets.filter((t) => t.job === 'sluice-system/sluice-sidecars');
    // Only the injected pod: the plain namespace's pod has no sluice-admin port and is not in agents.namespaces.
    expect(sidecar.map((t) => [t.namespace, t.pod, t.container, t.health])).toEqual([[AGENTS, story.coderPod, 'sluice-proxy', 'up']]);
    expect(sidecar[0]!.scrapeUrl).toMatch(new RegExp(`^http://${story.node.podSubnet.split('.').slice(0, 3).join('\\.')}\\.\\d+:15090/metrics$`));
    expect(results.filter((r) => r.where.startsWith('sluice / Overview /')).length).toBeGreaterThan(20);
    // A labelled counter whose label values are an open set (codes) has no series until its first
    // increment, so a panel of failures the story never causes is empty. Each such metric is named
    // here with the reason, and must be exported by the sidecar all the same (its HELP/TYPE was
    // scraped: the panel fills the moment it happens). Closed label sets (audit drops and append
    // errors, approval grant uses, API errors, notifications, push outcomes) are exported at 0 from
    // start-up, so their panels read 0, not No data. (Not required to stay empty: a transient
    // upstream error must not fail the story.)
    const notCaused: Record<string, string> = {
      sluice_refusals_total: 'the agent speaks only HTTP(S) to named hosts: no connection refused before a request',
      sluice_http_errors_total: 'no malformed, timed-out or unusable agent request',
      sluice_upstream_errors_total: 'every upstream answered',
      sluice_dns_queries_total: 'the agent reaches upstreams through the proxy port (HTTPS_PROXY): it resolves no name itself',
      sluice_credentials_errors_total: 'every STS web-identity exchange succeeded',
    };
    const empty = results.filter((r) => r.series === 0);
    const unexplained = empty.filter((r) => !r.metrics.some((m) => m.name in notCaused)).map((r) => `${r.where}: ${r.promql}`);
    expect(unexplained).toEqual([]);
    // The story's one approval is a number on the stat, not NaN: the time-to-decision series existed
    // at 0 before it, so increase() sees it; pushes failing is a number (0 when none failed; it read
    // No data before), not pinned to 0: a transient store hiccup must not fail the story.
    const finite = (where: string) => {
      const v = results.find((r) => r.where === where)?.values.map(Number) ?? [];
      return v.length === 1 && Number.isFinite(v[0]);
    };
    expect({ median: finite('sluice / Approvals / Median time to decision'), pushesFailing: finite('sluice / Overview / Audit pushes failing') }).toEqual({ median: true, pushesFailing: true });
    for (const r of empty) for (const m of r.metrics) expect(`${m.name} exported: ${m.exported}`).toBe(`${m.name} exported: true`);
    story.figures.dashboardsWithData = `${results.length - empty.length}/${results.length}`;
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
    expectModeSwitched(await story.switchMode('cni'), 'init', 'cni');
  });
});
