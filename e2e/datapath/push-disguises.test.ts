// A git push disguised from the policy never reaches git: an agent in a pod-like network
// namespace (UID 1000, real interception rules, the real sidecar as UID 1337, the default policy)
// sends receive-pack requests to git's own http-backend that real git executes — a push hidden in
// a push certificate whose header ends inside a pkt-line, a push whose target carries a fragment
// naming upload-pack, a push behind encoded dot segments — over HTTP/1.1 (Python) and HTTP/2
// (Node). Each is held or refused with the decision header; the repository is unchanged.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AGENT_UID, AgentNetns, canCreateNetns } from '../support/netns/agent-netns.ts';
import { startNetnsSidecar } from '../support/netns/netns-sidecar.ts';
import type { NetnsSidecar } from '../support/netns/netns-sidecar.ts';
import { createBareRepo, gitBackendHandler } from '../../testkit/git/git-backend.ts';
import { createTestCa, startHttpsUpstream } from '../../testkit/sidecar/upstreams.ts';
import type { TestUpstream } from '../../testkit/sidecar/upstreams.ts';
import { repoRoot } from '../../testkit/sidecar/test-sidecar.ts';

const support = canCreateNetns();
const describeNetns = support.ok ? describe : describe.skip;
if (!support.ok) console.warn(`push-disguises e2e skipped: ${support.reason}`);

const ZERO = '0'.repeat(40);
let ns: AgentNetns;
let sidecar: NetnsSidecar;
let git: TestUpstream;
let bare: string;
let bodies: string;
let pack: Buffer;
let next: string;

const env = { PATH: process.env.PATH, GIT_CONFIG_NOSYSTEM: '1', HOME: tmpdir(), GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' };
const runGit = (cwd: string, args: string[], input?: string): Buffer => execFileSync('git', args, { cwd, env, input });

beforeAll(async () => {
  if (!support.ok) return;
  ns = new AgentNetns(repoRoot);
  const ca = await createTestCa();
  const repo = createBareRepo('acme', 'app');
  bare = repo.path;
  git = await startHttpsUpstream(ca, ['github.com'], gitBackendHandler(repo.root), ns.hostAddr4);
  sidecar = await startNetnsSidecar(ns, { resolve: { 'github.com:443': git.dial }, extraRootsFiles: [ca.caFile] });
  // A commit the repository does not have yet, and the pack that carries it.
  const work = mkdtempSync(join(tmpdir(), 'sluice-push-work-'));
  runGit(work, ['clone', '-q', bare, '.']);
  writeFileSync(join(work, 'change.txt'), 'change\n');
  runGit(work, ['add', '.']);
  runGit(work, ['commit', '-qm', 'change']);
  next = runGit(work, ['rev-parse', 'HEAD']).toString().trim();
  const base = runGit(work, ['rev-parse', 'HEAD~1']).toString().trim();
  pack = runGit(work, ['pack-objects', '--revs', '--stdout', '-q'], `${next}\n^${base}\n`);
  bodies = ns.dirFor(AGENT_UID, 'push-bodies');
}, 120_000);

afterAll(async () => {
  await sidecar?.stop();
  await git?.close();
  ns?.destroy();
});

const pkt = (s: string): Buffer => Buffer.from((Buffer.byteLength(s, 'latin1') + 4).toString(16).padStart(4, '0') + s, 'latin1');

/** A push creating `ref`: plain, or with the command inside a push certificate whose header ends inside a pkt-line. */
function pushBody(ref: string, kind: 'plain' | 'cert-inline-blank'): Buffer {
  const command = `${ZERO} ${next} ${ref}\n`;
  if (kind === 'plain') return Buffer.concat([pkt(`${command.slice(0, -1)}\0report-status\n`), Buffer.from('0000'), pack]);
  const header = 'certificate version 0.1\npusher agent 1700000000 +0000\npushee https://github.com/acme/app.git\nnonce 1700000000-abc\n\n';
  return Buffer.concat([pkt('push-cert\0report-status\n'), pkt(header), pkt(command), pkt('push-cert-end\n'), Buffer.from('0000'), pack]);
}

function refsInRepo(): string {
  return runGit(bare, ['for-each-ref', '--format=%(refname)']).toString();
}

function receivePackPosts(): number {
  return git.requests.filter((r) => r.method === 'POST' && r.url.includes('receive-pack')).length;
}

/** The agent POSTs `body` to `target` on github.com over HTTP/1.1 (Python's http.client sends the target as given). */
async function postH1(target: string, body: Buffer): Promise<{ status: number; decision: string }> {
  const file = join(bodies, `b${Math.random().toString(36).slice(2)}.bin`);
  writeFileSync(file, body, { mode: 0o644 });
  const code = [
    'import http.client, ssl, sys',
    'c = http.client.HTTPSConnection("github.com", context=ssl.create_default_context())',
    `c.request("POST", ${JSON.stringify(target)}, body=open(${JSON.stringify(file)}, "rb").read(), headers={"Content-Type": "application/x-git-receive-pack-request"})`,
    'r = c.getresponse()',
    'print(r.status, r.getheader("x-sluice-decision"))',
  ].join('\n');
  const r = await ns.run('/usr/bin/python3', ['-c', code], { uid: AGENT_UID, env: sidecar.agentEnv });
  const [status, ...decision] = r.stdout.trim().split(' ');
  return { status: Number(status), decision: `${decision.join(' ')}${r.stderr ? ` ${r.stderr}` : ''}` };
}

/** The same over HTTP/2 from Node (`:path` exactly as given). */
async function postH2(target: string, body: Buffer): Promise<{ status: number; decision: string }> {
  const file = join(bodies, `b${Math.random().toString(36).slice(2)}.bin`);
  writeFileSync(file, body, { mode: 0o644 });
  const code = `
const h2 = require('node:http2'); const fs = require('node:fs');
const s = h2.connect('https://github.com');
const st = s.request({ ':method': 'POST', ':path': ${JSON.stringify(target)}, 'content-type': 'application/x-git-receive-pack-request' });
st.on('response', (h) => { console.log(h[':status'], h['x-sluice-decision']); });
st.resume(); // the answer must be read for the stream to close
st.on('close', () => s.close());
st.end(fs.readFileSync(${JSON.stringify(file)}));`;
  const r = await ns.run(ns.node, ['-e', code], { uid: AGENT_UID, env: sidecar.agentEnv, timeoutMs: 20_000 });
  const [status, ...decision] = r.stdout.trim().split(' ');
  return { status: Number(status), decision: `${decision.join(' ')}${r.stderr ? ` ${r.stderr}` : ''}` };
}

describeNetns('pushes disguised from the policy are held, never executed', () => {
  test.each([
    ['HTTP/1.1', postH1],
    ['HTTP/2', postH2],
  ])('a push hidden in a push certificate (%s) is held as a push', async (proto, post) => {
    const ref = `refs/heads/cert-${proto === 'HTTP/2' ? 'h2' : 'h1'}`;
    const r = await post('/acme/app.git/git-receive-pack', pushBody(ref, 'cert-inline-blank'));
    expect(r).toEqual({ status: 403, decision: 'hold; code=git.push_requires_approval' });
    expect(refsInRepo()).not.toContain(ref);
    expect(receivePackPosts()).toBe(0);
  }, 30_000);

  test.each([
    ['HTTP/1.1', postH1],
    ['HTTP/2', postH2],
  ])('a push whose target carries a fragment naming upload-pack (%s) is refused', async (proto, post) => {
    const ref = `refs/heads/fragment-${proto === 'HTTP/2' ? 'h2' : 'h1'}`;
    const r = await post('/acme/app.git/git-receive-pack#/git-upload-pack', pushBody(ref, 'plain'));
    expect(r).toEqual({ status: 400, decision: 'deny; code=http.target_fragment' });
    expect(refsInRepo()).not.toContain(ref);
    expect(receivePackPosts()).toBe(0);
  }, 30_000);

  test('a push behind encoded dot segments is held as a push', async () => {
    const r = await postH1('/acme/app.git/git-upload-pack/%2e%2e/git-receive-pack', pushBody('refs/heads/dots', 'plain'));
    expect(r).toEqual({ status: 403, decision: 'hold; code=git.push_requires_approval' });
    expect(refsInRepo()).not.toContain('refs/heads/dots');
    expect(receivePackPosts()).toBe(0);
  });

  test('an empty probe is still let through (git sends one before a large push)', async () => {
    const r = await postH1('/acme/app.git/git-receive-pack', Buffer.from('0000'));
    expect(r.status).toBe(200);
    expect(refsInRepo()).toBe('refs/heads/main\n');
  });
});
