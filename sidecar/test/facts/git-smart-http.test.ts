// Git facts from real git traffic: `git clone/fetch/push` against git's own http-backend, every
// request recorded and fed to deriveFacts; plus the pkt-line parser on edge shapes git also sends.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { Facts } from '../../../api/src/index.ts';
import { bodyPrefixNeeded, deriveFacts, moreBodyNeeded } from '../../src/facts/derive-facts.ts';
import { parseReceivePackCommands } from '../../src/facts/git-receive-pack.ts';
import { startGitHttpBackend } from './git-http-backend.ts';
import type { GitHttpBackend, RecordedRequest } from './git-http-backend.ts';

const run = promisify(execFile);
const ZERO = '0'.repeat(40);

let dir: string;
let backend: GitHttpBackend;
const env = (): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH,
  HOME: dir,
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_AUTHOR_NAME: 'agent',
  GIT_AUTHOR_EMAIL: 'agent@example.test',
  GIT_COMMITTER_NAME: 'agent',
  GIT_COMMITTER_EMAIL: 'agent@example.test',
  GIT_TERMINAL_PROMPT: '0',
});
const git = async (cwd: string, ...args: string[]): Promise<string> => (await run('git', args, { cwd, env: env() })).stdout.trim();

/** Runs a git command and returns the requests it made. */
async function traffic(cwd: string, ...args: string[]): Promise<RecordedRequest[]> {
  const before = backend.requests.length;
  await git(cwd, ...args);
  return backend.requests.slice(before);
}

function factsOf(r: RecordedRequest): Facts {
  // What the proxy would do: buffer only what the facts ask for, then derive.
  const cap = bodyPrefixNeeded(r);
  const facts = deriveFacts(r, cap === 0 ? undefined : r.body.subarray(0, cap));
  return Facts.parse(facts);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-git-facts-'));
  await git(dir, 'init', '-q', '--bare', '-b', 'main', 'srv/acme/app.git');
  await git(join(dir, 'srv/acme/app.git'), 'config', 'http.receivepack', 'true');
  await git(join(dir, 'srv/acme/app.git'), 'config', 'receive.advertisePushOptions', 'true');
  await git(dir, 'init', '-q', '-b', 'main', 'seed');
  const seed = join(dir, 'seed');
  writeFileSync(join(seed, 'README.md'), 'hello\n');
  await git(seed, 'add', '.');
  await git(seed, 'commit', '-q', '-m', 'init');
  await git(seed, 'push', '-q', join(dir, 'srv/acme/app.git'), 'main');
  backend = await startGitHttpBackend(join(dir, 'srv'));
});

afterAll(async () => {
  await backend.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('real git traffic', () => {
  test('clone: upload-pack discovery then rpc, repo without .git', async () => {
    const reqs = await traffic(dir, '-c', 'protocol.version=0', 'clone', '-q', `${backend.url}/acme/app.git`, 'clone-v0');
    const facts = reqs.map(factsOf);
    expect(facts[0]).toEqual({ git: { service: 'git-upload-pack', operation: 'fetch', phase: 'discovery', repo: 'acme/app' } });
    expect(facts.at(-1)).toEqual({ git: { service: 'git-upload-pack', operation: 'fetch', phase: 'rpc', repo: 'acme/app' } });
    expect(reqs.at(-1)!.method).toBe('POST');
    expect(reqs.map((r) => bodyPrefixNeeded(r))).toEqual(reqs.map(() => 0)); // fetches never buffer a body
  });

  test('clone with protocol v2 and a URL without .git', async () => {
    const reqs = await traffic(dir, '-c', 'protocol.version=2', 'clone', '-q', `${backend.url}/acme/app`, 'clone-v2');
    expect(reqs[0]!.headers['git-protocol']).toBe('version=2');
    for (const f of reqs.map(factsOf)) expect(f.git).toMatchObject({ operation: 'fetch', repo: 'acme/app' });
    expect(reqs.filter((r) => r.method === 'POST').length).toBeGreaterThanOrEqual(2); // ls-refs + fetch
  });

  test('push: receive-pack discovery then rpc with the ref updates and push options', async () => {
    const work = join(dir, 'clone-v0');
    const base = await git(work, 'rev-parse', 'HEAD');
    writeFileSync(join(work, 'a.txt'), 'a\n');
    await git(work, 'add', '.');
    await git(work, 'commit', '-q', '-m', 'a');
    const head = await git(work, 'rev-parse', 'HEAD');
    await git(work, 'tag', 'v1');
    await git(work, 'branch', 'feature');
    const reqs = await traffic(work, 'push', '-q', '-o', 'ci.skip', '-o', 'merge_request.create', 'origin', 'main', 'feature', 'v1');
    const facts = reqs.map(factsOf);
    expect(facts[0]!.git).toEqual({ service: 'git-receive-pack', operation: 'push', phase: 'discovery', repo: 'acme/app' });
    const rpc = facts.at(-1)!.git!;
    expect(rpc.phase).toBe('rpc');
    expect(rpc.refs).toEqual(
      expect.arrayContaining([
        { ref: 'refs/heads/main', old: base, new: head },
        { ref: 'refs/heads/feature', old: ZERO, new: head },
        { ref: 'refs/tags/v1', old: ZERO, new: expect.stringMatching(/^[0-9a-f]{40}$/) },
      ]),
    );
    expect(rpc.refs).toHaveLength(3);
    expect(rpc.push_options).toEqual(['ci.skip', 'merge_request.create']);
    // The command section is read from the start of the body; the pack follows it.
    const body = reqs.at(-1)!.body;
    expect(moreBodyNeeded(reqs.at(-1)!, body)).toBe(0);
    expect(body.includes(Buffer.from('PACK'))).toBe(true);
  });

  test('delete push: a ref update to the zero id, no pack', async () => {
    const work = join(dir, 'clone-v0');
    const reqs = await traffic(work, 'push', '-q', 'origin', ':feature');
    const rpc = factsOf(reqs.at(-1)!).git!;
    expect(rpc.refs).toEqual([{ ref: 'refs/heads/feature', old: expect.stringMatching(/^[0-9a-f]{40}$/), new: ZERO }]);
    expect(rpc.push_options).toBeUndefined();
  });

  test('a large push is chunked after a "0000" probe; both are push rpcs, the probe has no refs', async () => {
    const work = join(dir, 'clone-v0');
    writeFileSync(join(work, 'big.bin'), Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251)));
    await git(work, 'add', '.');
    await git(work, 'commit', '-q', '-m', 'big');
    const reqs = await traffic(work, '-c', 'http.postBuffer=65536', 'push', '-q', 'origin', 'main');
    const posts = reqs.filter((r) => r.method === 'POST');
    expect(posts.length).toBe(2);
    expect(posts[0]!.body.toString()).toBe('0000');
    expect(factsOf(posts[0]!).git!.refs).toEqual([]);
    expect(posts[1]!.headers['transfer-encoding']).toBe('chunked');
    expect(factsOf(posts[1]!).git!.refs).toEqual([{ ref: 'refs/heads/main', old: expect.any(String), new: expect.any(String) }]);
  });

  test('every prefix of a real push body either asks for more or yields the same refs', () => {
    const push = backend.requests.filter((r) => r.path.endsWith('/git-receive-pack') && r.body.length > 4).at(0)!;
    const full = deriveFacts(push, push.body).git!.refs!;
    const section = parseReceivePackCommands(push.body, 65536);
    expect(section.status).toBe('complete');
    const end = section.status === 'complete' ? section.bytes : 0;
    for (let n = 0; n <= end; n++) {
      const prefix = push.body.subarray(0, n);
      const more = moreBodyNeeded(push, prefix);
      if (n < end) {
        expect(more).toBeGreaterThan(0);
        expect(n + more).toBeLessThanOrEqual(end);
        expect(deriveFacts(push, prefix).git!.refs).toBeUndefined();
      } else {
        expect(more).toBe(0);
        expect(deriveFacts(push, prefix).git!.refs).toEqual(full);
      }
    }
  });
});

const pkt = (s: string): string => (s.length + 4).toString(16).padStart(4, '0') + s;
const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const pushReq = (headers: Record<string, string> = {}) => ({ method: 'POST', host: 'github.com', path: '/acme/app.git/git-receive-pack', query: {}, headers });

describe('receive-pack command section', () => {
  test('shallow lines come before the commands; capabilities ride on the first command', () => {
    const body = Buffer.from(pkt(`shallow ${A}\n`) + pkt(`${A} ${B} refs/heads/main\0report-status atomic\n`) + '0000PACK');
    const r = parseReceivePackCommands(body, 65536);
    expect(r).toEqual({ status: 'complete', refs: [{ ref: 'refs/heads/main', old: A, new: B }], capabilities: ['report-status', 'atomic'], pushOptions: [], bytes: body.indexOf('PACK') });
  });

  test('a signed push (push-cert) yields the commands inside the certificate', () => {
    const lines = ['certificate version 0.1\n', 'pusher agent 1700000000 +0000\n', 'pushee https://github.com/acme/app.git\n', 'nonce 1700000000-abc\n', '\n', `${A} ${B} refs/heads/main\n`, '-----BEGIN PGP SIGNATURE-----\n', 'xyz\n', '-----END PGP SIGNATURE-----\n', 'push-cert-end\n'];
    const body = Buffer.from(pkt('push-cert\0report-status push-cert=1700000000-abc\n') + lines.map(pkt).join('') + '0000');
    const r = parseReceivePackCommands(body, 65536);
    expect(r.status === 'complete' && r.refs).toEqual([{ ref: 'refs/heads/main', old: A, new: B }]);
  });

  test('sha256 object ids', () => {
    const o = '1'.repeat(64);
    const n = '2'.repeat(64);
    const r = parseReceivePackCommands(Buffer.from(pkt(`${o} ${n} refs/heads/main\0object-format=sha256\n`) + '0000'), 65536);
    expect(r.status === 'complete' && r.refs).toEqual([{ ref: 'refs/heads/main', old: o, new: n }]);
  });

  test('the hard cap: a command section longer than the cap is too-large and yields no refs', () => {
    const many = Array.from({ length: 2000 }, (_, i) => pkt(`${A} ${B} refs/tags/t${i}`)).join('');
    const body = Buffer.from(many + '0000');
    expect(parseReceivePackCommands(body, 4096)).toEqual({ status: 'too-large' });
    expect(parseReceivePackCommands(body.subarray(0, 100), 4096).status).toBe('incomplete');
    const req = pushReq();
    expect(bodyPrefixNeeded(req)).toBe(65536);
    expect(moreBodyNeeded(req, body.subarray(0, 65536))).toBe(0); // the cap is reached: decide now
    const facts = deriveFacts(req, body.subarray(0, 65536)).git!;
    expect(facts.refs).toBeUndefined(); // unknown, never a partial list
    expect(facts.operation).toBe('push');
  });

  test('malformed sections yield no refs', () => {
    for (const text of ['zzzz', pkt('not a command') + '0000', '0001' + '0000', pkt(`${A} ${B}`) + '0000', pkt(`${A} ${'b'.repeat(64)} refs/x`) + '0000']) {
      expect(parseReceivePackCommands(Buffer.from(text), 65536).status).toBe('invalid');
      expect(deriveFacts(pushReq(), Buffer.from(text)).git!.refs).toBeUndefined();
    }
  });

  test('a gzip-encoded body is read through its encoding', () => {
    const body = gzipSync(Buffer.from(pkt(`${A} ${B} refs/heads/main\0report-status\n`) + '0000' + 'PACK'.repeat(1000)));
    const req = pushReq({ 'content-encoding': 'gzip' });
    expect(moreBodyNeeded(req, body.subarray(0, 20))).toBeGreaterThan(0);
    expect(deriveFacts(req, body).git!.refs).toEqual([{ ref: 'refs/heads/main', old: A, new: B }]);
    expect(deriveFacts(pushReq({ 'content-encoding': 'zstd' }), body).git!.refs).toBeUndefined();
  });
});

describe('path shapes', () => {
  const shape = (method: string, path: string, service?: string) =>
    deriveFacts({ method, host: 'h', path, query: service ? { service: [service] } : {}, headers: {} }).git;

  test.each([
    ['/acme/app.git/info/refs', 'acme/app'],
    ['/acme/app/info/refs', 'acme/app'],
    ['/group/sub/project.git/info/refs', 'group/sub/project'],
    ['/scm/proj/repo.git/info/refs', 'scm/proj/repo'],
    ['/org/project/_git/repo/info/refs', 'org/project/_git/repo'],
    ['/acme//app.git/info/refs', 'acme/app'],
    ['/acme/x/../app.git/info/refs', 'acme/app'],
    ['/acme/%61pp.git/info/refs', 'acme/app'],
  ])('%s → %s', (path, repo) => {
    expect(shape('GET', path, 'git-upload-pack')).toEqual({ service: 'git-upload-pack', operation: 'fetch', phase: 'discovery', repo });
  });

  test('not git: dumb protocol, wrong method, unknown service, escaping or undecodable paths', () => {
    expect(shape('GET', '/acme/app.git/info/refs')).toBeUndefined();
    expect(shape('POST', '/acme/app.git/info/refs', 'git-receive-pack')).toBeUndefined();
    expect(shape('GET', '/acme/app.git/git-receive-pack')).toBeUndefined();
    expect(shape('GET', '/acme/app.git/info/refs', 'git-upload-archive')).toBeUndefined();
    expect(shape('GET', '/../info/refs', 'git-upload-pack')).toBeUndefined();
    expect(shape('GET', '/info/refs', 'git-upload-pack')).toBeUndefined();
    expect(shape('GET', '/acme/app.git/git-receive-pack/x')).toBeUndefined();
  });

  // A push gates what the upstream executes: every reading some server makes of the path counts.
  const push = { service: 'git-receive-pack', operation: 'push', phase: 'rpc' };
  test.each([
    ['/acme/app.git/git-receive-pack;jsessionid=1', 'acme/app'],
    ['/acme/app.git;x=1/git-receive-pack', 'acme/app'],
    ['/acme/app.git%2Fgit-receive-pack', 'acme/app'],
    ['/acme%2Fapp.git%5Cgit-receive-pack', 'acme/app'],
    ['/acme/app.git/Git-Receive-Pack', 'acme/app'],
    ['/acme/app.git/git%2Dreceive%2Dpack', 'acme/app'],
    ['/acme/app.git/git-receive-pack/', 'acme/app'],
    ['/acme/app.git/git-receive-pack%00.css', 'acme/app'],
    ['/acme/%ff/app.git/git-receive-pack', 'acme/\u00ff/app'],
  ])('a push however the path is spelled: %s', (path, repo) => {
    expect(shape('POST', path)).toEqual({ ...push, repo });
    expect(shape('post', path)).toEqual({ ...push, repo });
  });

  test('an info/refs service that some server reads as receive-pack is receive-pack', () => {
    const q = (service: string[]) => deriveFacts({ method: 'GET', host: 'h', path: '/acme/app.git/info/refs', query: { service }, headers: {} }).git;
    expect(q(['git-upload-pack', 'git-receive-pack'])).toMatchObject({ service: 'git-receive-pack', operation: 'push', phase: 'discovery' });
    expect(q(['git-receive-pack', 'git-upload-pack'])).toMatchObject({ service: 'git-receive-pack' });
    expect(q(['GIT-RECEIVE-PACK'])).toMatchObject({ service: 'git-receive-pack' });
    expect(q(['git-receive-pack\0x'])).toMatchObject({ service: 'git-receive-pack' });
    expect(q(['git-upload-pack;service=git-receive-pack'])).toMatchObject({ service: 'git-receive-pack' });
    expect(q(['git-upload-archive', 'git-upload-pack'])).toMatchObject({ service: 'git-upload-pack' });
    const upper = deriveFacts({ method: 'GET', host: 'h', path: '/acme/app.git/INFO/Refs', query: { Service: ['git-receive-pack'] }, headers: {} }).git;
    expect(upper).toMatchObject({ service: 'git-receive-pack', phase: 'discovery', repo: 'acme/app' });
  });
});
