// Command-level approval end to end: a real sidecar (explicit proxy mode) whose identity is a
// pod-bound service-account token, a real kube-apiserver with the generated CRD and the sluice
// webhook enforcing the approver rules, real `git` pushing over HTTPS to git's own http-backend,
// real `curl`, and `kubectl sluice` run as alice (the pod's creator), bob (an approver) and
// mallory (an outsider). Tests run in order and share the cluster; the last one stops the API
// server while a request is held.
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { Agent, request } from 'undici';
import type { ApprovalRequest } from '../../api/src/index.ts';
import { podSelector } from '../../lib/src/approvals/labels.ts';
import { eventually } from '../support/kube/admission.ts';
import { createBareRepo, gitBackendHandler } from '../../testkit/git/git-backend.ts';
import { startTestSidecar } from '../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../testkit/sidecar/test-sidecar.ts';
import { createTestCa, startHttpsUpstream } from '../../testkit/sidecar/upstreams.ts';
import type { TestCa, TestUpstream } from '../../testkit/sidecar/upstreams.ts';
import { ApprovalEnv, NAMESPACE, SERVICE_ACCOUNT } from './approval-env.ts';
import type { AgentPod } from './approval-env.ts';

jest.setTimeout(60_000);

interface Proc {
  code: number | null;
  stdout: string;
  stderr: string;
  endedAt: number;
}

/** A child process run asynchronously (the sidecar shares this event loop). */
function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): { done: Promise<Proc>; exited: () => boolean } {
  const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let exited = false;
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<Proc>((resolve) => {
    child.on('close', (code) => {
      exited = true;
      resolve({ code, stdout, stderr, endedAt: performance.now() });
    });
  });
  return { done, exited: () => exited };
}

let env: ApprovalEnv;
let ca: TestCa;
let git: TestUpstream;
let registry: TestUpstream;
let repoPath = '';
let pod: AgentPod;
let sidecar: TestSidecar;
const notifications: { body: unknown; at: number }[] = [];
let receiver: Server;
let receiverFailures = 1;
let work = '';
let home = '';
let commits = 0;
let streamedChunks = 0;
const receivePackAt: number[] = [];

function agentEnv(s: TestSidecar): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: home,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
    HTTPS_PROXY: s.proxyUrl,
    https_proxy: s.proxyUrl,
    GIT_SSL_CAINFO: s.trust.caFile,
    CURL_CA_BUNDLE: s.trust.caFile,
  };
}

/** Commits a change in the agent's clone and starts `git push origin main` through the sidecar. */
function commitAndPush(s: TestSidecar, dir = work): ReturnType<typeof run> {
  commits += 1;
  writeFileSync(join(dir, 'README.md'), `# app\n\nchange ${commits}\n`);
  const e = agentEnv(s);
  const commit = spawn('git', ['-c', 'user.name=Agent', '-c', 'user.email=agent@example.com', 'commit', '-qam', `change ${commits}`], { cwd: dir, env: e });
  let resolveCommitted!: () => void;
  const committed = new Promise<void>((r) => (resolveCommitted = r));
  commit.on('close', () => resolveCommitted());
  let inner: ReturnType<typeof run> | undefined;
  const done = committed.then(() => {
    inner = run('git', ['push', 'origin', 'main'], { cwd: dir, env: e });
    return inner.done;
  });
  return { done, exited: () => inner?.exited() ?? false };
}

async function pendingRequest(user: string, podName: string, seen: ReadonlySet<string>): Promise<ApprovalRequest> {
  const api = env.api(user);
  return eventually(`a new pending ApprovalRequest for ${podName}`, async () => {
    const list = await api.list(NAMESPACE, podSelector(podName));
    return list.items.find((a) => (a.status?.state ?? 'Pending') === 'Pending' && !seen.has(a.metadata.name!));
  });
}

async function allRequests(podName: string): Promise<ApprovalRequest[]> {
  return (await env.api('admin').list(NAMESPACE, podSelector(podName))).items;
}

async function metrics(s: TestSidecar): Promise<string> {
  return (await fetch(`${s.adminUrl}/metrics`)).text();
}

function metric(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line ? Number(line.split(' ').pop()) : 0;
}

async function startSidecarFor(p: AgentPod, approvals: Record<string, unknown>): Promise<TestSidecar> {
  return startTestSidecar({
    resolve: { 'github.com': git.dial, 'registry.npmjs.org': registry.dial },
    extraRootsFiles: [ca.caFile],
    config: {
      pod: { namespace: NAMESPACE, name: p.name, uid: p.uid, serviceAccount: SERVICE_ACCOUNT },
      podInfoDir: p.podInfoDir,
      approvals: { kubeconfig: p.kubeconfig, ...approvals },
    },
  });
}

beforeAll(async () => {
  env = await ApprovalEnv.start();
  ca = await createTestCa();
  const repo = createBareRepo('acme', 'app');
  repoPath = repo.path;
  git = await startHttpsUpstream(ca, ['github.com'], gitBackendHandler(repo.root));
  git.server.on('request', (req: IncomingMessage) => {
    if (req.method === 'POST' && req.url?.endsWith('/git-receive-pack')) receivePackAt.push(performance.now());
  });
  // A registry that streams a never-ending tarball, 16 KiB every 20 ms.
  registry = await startHttpsUpstream(ca, ['registry.npmjs.org'], () => undefined);
  registry.server.removeAllListeners('request');
  registry.server.on('request', (_req: IncomingMessage, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const timer = setInterval(() => {
      streamedChunks += 1;
      res.write(Buffer.alloc(16 * 1024, 7));
    }, 20);
    res.on('close', () => clearInterval(timer));
  });
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (receiverFailures > 0) {
        receiverFailures -= 1;
        res.writeHead(503).end();
        return;
      }
      notifications.push({ body: JSON.parse(body), at: performance.now() });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hooks/sluice`;
  pod = await env.createAgentPod('coder-0');
  sidecar = await startSidecarFor(pod, { maxWaitMs: 60_000, apiGraceMs: 1000, notify: { url: receiverUrl, format: 'slack', initialBackoffMs: 50 } });
  home = mkdtempSync(join(tmpdir(), 'sluice-agent-home-'));
  work = join(home, 'app');
  const clone = await run('git', ['clone', '-q', 'https://github.com/acme/app.git', work], { env: agentEnv(sidecar) }).done;
  if (clone.code !== 0) throw new Error(`clone through the sidecar failed: ${clone.stderr}`);
}, 180_000);

afterAll(async () => {
  await sidecar?.stop();
  await env?.stop();
  await git?.close();
  await registry?.close();
  receiver?.close();
}, 60_000);

describe('the ApprovalRequest CRD', () => {
  test('the API server serves the generated CRD with its printer columns', async () => {
    const dispatcher = new Agent({ connect: { ca: env.cluster.ca.certPem } });
    const table = await request(`${env.cluster.server}/apis/sluice.io/v1alpha1/namespaces/${NAMESPACE}/approvalrequests`, {
      dispatcher,
      headers: { authorization: `Bearer ${env.cluster.user('approver').token}`, accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' },
    });
    const body = (await table.body.json()) as { columnDefinitions: { name: string }[] };
    await dispatcher.close();
    expect(body.columnDefinitions.map((c) => c.name)).toEqual(expect.arrayContaining(['Name', 'Pod', 'Creator', 'Summary', 'State', 'Age']));
  });
});

describe('a held git push', () => {
  let held: ApprovalRequest;
  const seen = new Set<string>();

  test('hangs; alice (its creator) and mallory (an outsider) cannot approve it; bob can, and it completes', async () => {
    const before = receivePackAt.length;
    const push = commitAndPush(sidecar);
    held = await pendingRequest('approver', 'coder-0', seen);
    seen.add(held.metadata.name!);
    const name = held.metadata.name!;
    expect(held.spec).toMatchObject({
      pod: { namespace: NAMESPACE, name: 'coder-0', uid: pod.uid },
      serviceAccount: SERVICE_ACCOUNT,
      session: sidecar.sessionId,
      creator: { username: 'alice@example.com' },
      request: { method: 'POST', host: 'github.com', path: '/acme/app.git/git-receive-pack', summary: 'git push acme/app refs/heads/main on github.com' },
      code: 'git.push_requires_approval',
      requestedScope: 'session',
    });

    const listed = await env.cli('approver', ['approvals', '-n', NAMESPACE]);
    expect(listed.code).toBe(0);
    expect(listed.stdout.split('\n')[0]).toMatch(/^NAME +POD +CREATOR +SUMMARY +SCOPE +AGE +EXPIRES$/);
    expect(listed.stdout).toMatch(new RegExp(`^${name} +coder-0 +alice@example.com +git push acme/app refs/heads/main on github.com +session +\\d+s +\\d+s$`, 'm'));
    const everywhere = await env.cli('approver', ['approvals', '-A']);
    expect(everywhere.stdout).toMatch(new RegExp(`^${NAMESPACE} +${name} +coder-0 `, 'm'));

    const alice = await env.cli('creator', ['approve', name, '-n', NAMESPACE]);
    expect(alice.code).toBe(1);
    expect(alice.stderr).toContain('forbidden:');
    expect(alice.stderr).toContain('sluice approval.self_approval');
    expect(alice.stderr).toContain('alice@example.com created pod coder-0 and cannot approve its requests');
    const mallory = await env.cli('outsider', ['approve', name, '-n', NAMESPACE]);
    expect(mallory.code).toBe(1);
    expect(mallory.stderr).toContain('sluice approval.not_an_approver');
    expect(mallory.stderr).toContain('mallory@example.com may not approve');

    // The notification (after one refused delivery, retried) names the exact command.
    const note = await eventually('the approval notification', () => Promise.resolve(notifications.find((n) => JSON.stringify(n.body).includes(name))));
    expect((note.body as { text: string }).text).toContain(`kubectl sluice approve ${name} -n ${NAMESPACE} --scope session`);
    const m0 = await metrics(sidecar);
    expect(metric(m0, 'sluice_approvals_notifications_total', 'result="retried"')).toBe(1);
    expect(metric(m0, 'sluice_approvals_notifications_total', 'result="sent"')).toBe(1);
    expect(metric(m0, 'sluice_approvals_pending')).toBe(1);

    // Still held after all that: git is waiting and nothing reached the upstream.
    expect(push.exited()).toBe(false);
    expect(receivePackAt.length).toBe(before);
    expect((await env.api('approver').get(NAMESPACE, name)).status?.state).toBe('Pending');

    const bob = await env.cli('approver', ['approve', name, '-n', NAMESPACE]);
    expect(bob.stderr).toBe('');
    expect(bob.code).toBe(0);
    expect(bob.stdout).toContain(`approved ${NAMESPACE}/${name}`);
    const pushed = await push.done;
    expect(pushed.stderr).not.toContain('rejected');
    expect(pushed.code).toBe(0);
    expect(receivePackAt.length).toBe(before + 1);
    console.log(`approve (kubectl sluice spawned) → upstream saw the push: ${(receivePackAt.at(-1)! - bob.startedAt).toFixed(0)} ms; CLI process ${(bob.endedAt - bob.startedAt).toFixed(0)} ms`);

    const decided = await env.api('approver').get(NAMESPACE, name);
    expect(decided.status).toMatchObject({ state: 'Approved', decidedBy: 'bob@example.com', scope: 'session' });
    expect(decided.status?.decidedByGroups).toContain('sluice-approvers');
    const head = await run('git', ['rev-parse', 'main'], { cwd: repoPath }).done;
    const local = await run('git', ['rev-parse', 'HEAD'], { cwd: work }).done;
    expect(head.stdout).toBe(local.stdout);
  });

  test('a decided request cannot be decided again; an unknown one is not found', async () => {
    const name = held.metadata.name!;
    const again = await env.cli('approver', ['deny', name, '-n', NAMESPACE, '--reason', 'changed my mind']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^error: already decided: .* is Approved by bob@example.com at /);
    // The API server refuses it too, for clients that skip the CLI's check: the CRD's own rule
    // (which holds even without the webhook) for a changed state, the webhook for any other change.
    const statusPath = `/apis/sluice.io/v1alpha1/namespaces/${NAMESPACE}/approvalrequests/${name}/status`;
    const flip = await env.cluster.request<{ message: string }>('approver', 'PATCH', statusPath, { status: { state: 'Denied' } }, 'application/merge-patch+json');
    expect(flip.status).toBe(422);
    expect(flip.body.message).toContain('a decided ApprovalRequest cannot change state');
    const widen = await env.cluster.request<{ message: string }>('approver', 'PATCH', statusPath, { status: { scope: 'ttl', ttl: '8h' } }, 'application/merge-patch+json');
    expect(widen.status).toBe(403);
    expect(widen.body.message).toContain('sluice approval.already_decided');
    const missing = await env.cli('approver', ['approve', 'coder-0-nosuch', '-n', NAMESPACE]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('not found: approval request agents/coder-0-nosuch');
  });

  test('the session scope lets the next push through without asking; revoke ends that; a denial reaches git', async () => {
    const count = (await allRequests('coder-0')).length;
    const before = receivePackAt.length;
    const second = await commitAndPush(sidecar).done;
    expect(second.code).toBe(0);
    expect(receivePackAt.length).toBe(before + 1);
    expect((await allRequests('coder-0')).length).toBe(count);
    expect(metric(await metrics(sidecar), 'sluice_approvals_grant_uses_total', 'scope="session"')).toBe(1);

    const revoke = await env.cli('approver', ['revoke', 'coder-0', '-n', NAMESPACE]);
    expect(revoke.code).toBe(0);
    expect(revoke.stdout).toContain(`revoked ${NAMESPACE}/${held.metadata.name!}`);
    const revoked = await env.api('approver').get(NAMESPACE, held.metadata.name!);
    expect(revoked.status).toMatchObject({ state: 'Revoked', revokedBy: 'bob@example.com', decidedBy: 'bob@example.com' });
    // The sidecar sees the revocation on its watch before it lets anything else through.
    await eventually('the sidecar to drop the grant', () => Promise.resolve(sidecar.approvals!.coordinator.grants.size === 0 ? true : undefined));

    const third = commitAndPush(sidecar);
    const next = await pendingRequest('approver', 'coder-0', seen);
    seen.add(next.metadata.name!);
    const watch = env.cliBackground('approver', ['approvals', '-n', NAMESPACE, '--watch']);
    await eventually('the watch to list the held request', () => Promise.resolve(watch.output().includes(next.metadata.name!) ? true : undefined));
    const deny = await env.cli('approver', ['deny', next.metadata.name!, '-n', NAMESPACE, '--reason', 'not during the release freeze']);
    expect(deny.code).toBe(0);
    await eventually('the watch to show the denial and who denied', () => Promise.resolve(new RegExp(`^${next.metadata.name!} .* Denied +bob@example.com `, 'm').test(watch.output()) ? true : undefined));
    const watched = await watch.stop();
    expect(watched.stdout.split('\n')[0]).toMatch(/^NAME +POD +CREATOR +SUMMARY +SCOPE +STATE +DECIDED-BY +AGE +EXPIRES$/);
    expect(watched.code).toBe(0);
    const refused = await third.done;
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('[remote rejected] main -> main (sluice approval.denied: denied by bob@example.com: not during the release freeze)');
    expect(refused.stderr).toContain('remote: sluice: push held for approval');
    expect(receivePackAt.length).toBe(before + 1);
  });
});

describe('limits', () => {
  test('a request nobody decides expires: the agent is refused and the ApprovalRequest says Expired', async () => {
    const p = await env.createAgentPod('coder-1');
    const quick = await startSidecarFor(p, { maxWaitMs: 1500 });
    try {
      const dir = join(home, 'app-1');
      expect((await run('git', ['clone', '-q', 'https://github.com/acme/app.git', dir], { env: agentEnv(quick) }).done).code).toBe(0);
      const before = receivePackAt.length;
      const pushed = await commitAndPush(quick, dir).done;
      expect(pushed.code).not.toBe(0);
      expect(pushed.stderr).toContain('sluice approval.expired');
      expect(receivePackAt.length).toBe(before);
      const [expired] = await allRequests('coder-1');
      await eventually('the Expired state', async () => ((await env.api('approver').get(NAMESPACE, expired!.metadata.name!)).status?.state === 'Expired' ? true : undefined));
      expect(metric(await metrics(quick), 'sluice_approvals_decisions_total', 'outcome="expired"')).toBe(1);
    } finally {
      await quick.stop();
    }
  });
});

describe('timing', () => {
  test('approve → the upstream sees the request (approval sent to the API server → receive-pack POST arrives)', async () => {
    const bob = env.api('approver');
    const samples: number[] = [];
    const roundTrips: number[] = [];
    const seen = new Set((await allRequests('coder-0')).map((a) => a.metadata.name!));
    for (let i = 0; i < 5; i++) {
      const before = receivePackAt.length;
      const push = commitAndPush(sidecar);
      const held = await pendingRequest('approver', 'coder-0', seen);
      seen.add(held.metadata.name!);
      // Wait for the sidecar's own "Pending" status write, so ours is not refused as a conflict.
      const current = await eventually('the Pending state', async () => {
        const a = await bob.get(NAMESPACE, held.metadata.name!);
        return a.status?.state === 'Pending' ? a : undefined;
      });
      const sent = performance.now();
      await bob.patchStatus(NAMESPACE, held.metadata.name!, { state: 'Approved', scope: 'once' }, current.metadata.resourceVersion as string);
      roundTrips.push(performance.now() - sent);
      expect((await push.done).code).toBe(0);
      expect(receivePackAt.length).toBe(before + 1);
      samples.push(receivePackAt.at(-1)! - sent);
    }
    samples.sort((a, b) => a - b);
    roundTrips.sort((a, b) => a - b);
    const fmt = (xs: number[]) => `median ${xs[2]!.toFixed(1)} ms, max ${xs[4]!.toFixed(1)} ms`;
    console.log(`approval status patch sent → upstream saw the push (5 pushes): ${fmt(samples)}; the patch's own round trip (webhooks, etcd): ${fmt(roundTrips)}`);
    expect(samples[4]).toBeLessThan(1000);
    expect(metric(await metrics(sidecar), 'sluice_approvals_time_to_decision_seconds_count', 'outcome="approved"')).toBeGreaterThanOrEqual(5);
  });
});

describe('the kill switch', () => {
  test('kubectl sluice kill cuts a long download mid-stream and a held push within a second', async () => {
    const download = run('curl', ['-sS', '--fail', '-o', '/dev/null', 'https://registry.npmjs.org/huge/-/huge-1.0.0.tgz'], { env: agentEnv(sidecar) });
    await eventually('the download to be streaming', () => Promise.resolve(streamedChunks >= 10 ? true : undefined));
    const seen = new Set((await allRequests('coder-0')).map((a) => a.metadata.name!));
    const push = commitAndPush(sidecar);
    const held = await pendingRequest('approver', 'coder-0', seen);

    const kill = await env.cli('approver', ['kill', 'coder-0', '-n', NAMESPACE]);
    expect(kill.code).toBe(0);
    expect(kill.stdout).toContain('kill switch on for agents/coder-0');
    const [cut, pushed] = await Promise.all([download.done, push.done]);
    const seenAt = pod.lastPodInfoWrite();
    console.log(
      `kill: CLI exit → download cut ${(cut.endedAt - kill.endedAt).toFixed(0)} ms, annotation in the pod's downward-API files → download cut ${(cut.endedAt - seenAt).toFixed(0)} ms, → held push cut ${(pushed.endedAt - seenAt).toFixed(0)} ms (streamed ${streamedChunks * 16} KiB before)`,
    );
    expect(cut.code).not.toBe(0);
    expect(cut.stderr).toMatch(/curl: \((18|56|92)\)/);
    expect(pushed.code).not.toBe(0);
    expect(cut.endedAt - seenAt).toBeLessThan(1000);
    expect(pushed.endedAt - seenAt).toBeLessThan(1000);
    expect(cut.endedAt - kill.endedAt).toBeLessThan(1000);
    const expired = await eventually('the held request to be marked Expired', async () => {
      const a = await env.api('approver').get(NAMESPACE, held.metadata.name!);
      return a.status?.state === 'Expired' ? a : undefined;
    });
    expect(expired.status?.reason).toContain('kill switch');
    const m = await metrics(sidecar);
    expect(metric(m, 'sluice_approvals_decisions_total', 'outcome="killed"')).toBe(1);

    // A new connection is refused before TLS (the proxy's CONNECT answer is a 403 pod.killed).
    const refused = await run('curl', ['-sS', '--proxy-header', 'x-test: 1', 'https://github.com/acme/app.git/info/refs?service=git-upload-pack'], { env: agentEnv(sidecar) }).done;
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('CONNECT tunnel failed, response 403');

    expect((await env.cli('approver', ['kill', 'coder-0', '-n', NAMESPACE, '--undo'])).code).toBe(0);
    await eventually('the kill switch to be off', () => Promise.resolve(sidecar.podInfo.killed ? undefined : true));
    const fetched = await run('git', ['fetch', '-q', 'origin'], { cwd: work, env: agentEnv(sidecar) }).done;
    expect(fetched.code).toBe(0);
  });
});

describe('the API server goes away', () => {
  test('a request held when the API server stops is refused, not forwarded; new holds are refused at once', async () => {
    const before = receivePackAt.length;
    const seen = new Set((await allRequests('coder-0')).map((a) => a.metadata.name!));
    await run('git', ['pull', '-q', '--rebase', 'origin', 'main'], { cwd: work, env: agentEnv(sidecar) }).done;
    const push = commitAndPush(sidecar);
    await Promise.race([pendingRequest('approver', 'coder-0', seen), push.done.then((r) => Promise.reject(new Error(`push ended before it was held: ${r.stderr}`)))]);
    const stopping = performance.now();
    await env.stopCluster();
    const stopped = performance.now();
    const refused = await push.done;
    console.log(`API server stop took ${(stopped - stopping).toFixed(0)} ms; the held push was refused ${(refused.endedAt - stopped).toFixed(0)} ms after it was gone`);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('sluice approval.unavailable');
    expect(receivePackAt.length).toBe(before);
    const again = await commitAndPush(sidecar).done;
    expect(again.stderr).toContain('sluice approval.unavailable');
    // Clients other than git get sluice's JSON answer, marked as the hold's outcome.
    const api = await run('curl', ['-sS', '-D', '-', '-X', 'POST', '-d', '{"title":"x"}', 'https://api.github.com/repos/acme/app/issues'], { env: agentEnv(sidecar) }).done;
    expect(api.stdout).toMatch(/^HTTP\/(1\.1|2) 503 /m);
    expect(api.stdout).toMatch(/^x-sluice-decision: hold; code=approval\.unavailable\r?$/m);
    expect(api.stdout).toContain('"error":"approval.unavailable"');
    expect(receivePackAt.length).toBe(before);
    const m = await metrics(sidecar);
    expect(metric(m, 'sluice_approvals_decisions_total', 'outcome="unavailable"')).toBeGreaterThanOrEqual(1);
    expect(metric(m, 'sluice_approvals_pending')).toBe(0);
    expect(metric(m, 'sluice_approvals_held_requests')).toBe(0);
  });
});
