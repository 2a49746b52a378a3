// The canonical request target through the real sidecar, on HTTP/1.1 and HTTP/2, in front of
// git's own http-backend: a push disguised by a fragment, dot segments (plain or encoded), path
// parameters or double slashes is refused or held — never run by receive-pack — and each
// refusal carries the decision header and lands in the audit trail. And the destination port
// reaches the policy input on every path (transparent HTTP and TLS, CONNECT, absolute-form, h2).
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import type { ClientHttp2Session, IncomingHttpHeaders } from 'node:http2';
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { createBareRepo, gitBackendHandler } from '../../../testkit/git/git-backend.ts';
import { createTestCa, startHttpUpstream, startHttpsUpstream } from '../../../testkit/sidecar/upstreams.ts';
import type { TestUpstream } from '../../../testkit/sidecar/upstreams.ts';
import { startTestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import type { RequestContext } from '../../src/proxy/request-context.ts';
import { allowAllRego, buildBundle } from '../../../testkit/policy/opa-build.ts';

const ZERO = '0'.repeat(40);
const NEW = '1'.repeat(40);
const pkt = (s: string): string => (s.length + 4).toString(16).padStart(4, '0') + s;
/** A push body as git sends it: one command, a flush, then (what would be) the pack. */
const PUSH = Buffer.from(pkt(`${ZERO} ${NEW} refs/heads/sneaky\0report-status\n`) + '0000PACK');

let git: TestUpstream;
let plain: TestUpstream;
let sidecar: TestSidecar;
let allowAll: TestSidecar;
let spoolDir: string;
/** path → the context of the finished request (policy input, answer) on the allow-all sidecar */
const done = new Map<string, RequestContext>();

beforeAll(async () => {
  const ca = await createTestCa();
  const repos = createBareRepo('acme', 'app').root;
  git = await startHttpsUpstream(ca, ['github.com'], gitBackendHandler(repos));
  plain = await startHttpUpstream();
  spoolDir = mkdtempSync(join(tmpdir(), 'sluice-target-spool-'));
  sidecar = await startTestSidecar({
    resolve: { 'github.com:443': git.dial },
    extraRootsFiles: [ca.caFile],
    config: { audit: { spoolDir, spool: { fsync: 'none' } } },
  });
  allowAll = await startTestSidecar({
    resolve: { 'github.com:443': git.dial, 'github.com:8443': git.dial, 'github.com:80': plain.dial, 'github.com:8080': plain.dial },
    extraRootsFiles: [ca.caFile],
    bundle: buildBundle(allowAllRego('test.allow'), 'allow-all'),
    events: { requestDone: (ctx) => done.set(ctx.summary?.path ?? String(ctx.req.url), ctx) },
  });
}, 60_000);

afterAll(async () => {
  for (const s of [sidecar, allowAll]) await s?.stop();
  for (const u of [git, plain]) await u?.close();
});

function tlsTo(via: TestSidecar, name = 'github.com', alpn = ['http/1.1']): Socket {
  return tlsConnect({ host: '127.0.0.1', port: via.addresses.transparent!.port, servername: name, ca: readFileSync(via.trust.caFile), ALPNProtocols: alpn });
}

/** One raw HTTP/1.1 exchange on a fresh socket (the target exactly as written); resolves with the response text. */
function raw(socket: Socket, head: string, body = Buffer.alloc(0)): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.once('end', () => resolve(text));
    socket.once('close', () => resolve(text));
    socket.once('error', reject);
    socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body]));
  });
}

const pushHead = (target: string, host = 'github.com') =>
  `POST ${target} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/x-git-receive-pack-request\r\nContent-Length: ${PUSH.length}\r\nConnection: close\r\n\r\n`;

function h2session(via: TestSidecar, name = 'github.com'): ClientHttp2Session {
  return h2connect(`https://${name}`, { createConnection: () => tlsTo(via, name, ['h2']) });
}

function h2request(s: ClientHttp2Session, headers: Record<string, string>, body?: Buffer): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = s.request(headers, { endStream: body === undefined });
    let got: IncomingHttpHeaders = {};
    let text = '';
    stream.on('response', (h) => (got = h));
    stream.on('data', (c: Buffer) => (text += c.toString()));
    stream.on('end', () => resolve({ status: Number(got[':status']), headers: got, body: text }));
    stream.on('error', reject);
    if (body) stream.end(body);
  });
}

function receivePackRuns(): number {
  return git.requests.filter((r) => r.method === 'POST' && r.url.includes('receive-pack')).length;
}

/** The audit records in the spool whose decision has `code` (the recorder writes asynchronously). */
async function auditedCodes(code: string): Promise<unknown[]> {
  for (let i = 0; i < 50; i++) {
    const lines = readdirSync(spoolDir)
      .filter((f) => f.endsWith('.ndjson'))
      .flatMap((f) => readFileSync(join(spoolDir, f), 'utf8').split('\n'))
      .filter((l) => l.includes(`"${code}"`));
    if (lines.length) return lines.map((l) => JSON.parse(l) as unknown);
    await new Promise((r) => setTimeout(r, 20));
  }
  return [];
}

describe('a push disguised in the request target never runs (HTTP/1.1)', () => {
  test('a fragment is refused with a recorded 400, not read as upload-pack', async () => {
    const res = await raw(tlsTo(sidecar), pushHead('/acme/app.git/git-receive-pack#/git-upload-pack'), PUSH);
    expect(res).toMatch(/^HTTP\/1\.1 400 /);
    expect(res).toMatch(/x-sluice-decision: deny; code=http\.target_fragment/i);
    expect(receivePackRuns()).toBe(0);
    const records = await auditedCodes('http.target_fragment');
    expect(records.length).toBeGreaterThan(0);
    expect(records[0]).toMatchObject({ decision: { action: 'deny', code: 'http.target_fragment' } });
  });

  test.each([
    '/acme/app.git/git-upload-pack/../git-receive-pack',
    '/acme/app.git/git-upload-pack/%2e%2e/git-receive-pack',
    '/acme/app.git/git-receive-pack;x=1',
    '/acme//app.git//git-receive-pack',
    '/acme/app.git%2Fgit-receive-pack',
  ])('%s is held as a push', async (target) => {
    const res = await raw(tlsTo(sidecar), pushHead(target), PUSH);
    expect(res).toMatch(/^HTTP\/1\.1 403 /);
    expect(res).toMatch(/x-sluice-decision: hold; code=git\.push_requires_approval/i);
    expect(receivePackRuns()).toBe(0);
  });

  test.each([
    ['/acme/app.git/git-upload-pack%2F..%2Fgit-receive-pack', 'http.target_ambiguous'],
    ['/acme/app.git/git-upload-pack/..;/git-receive-pack', 'http.target_ambiguous'],
    ['/acme/app.git/git-receive-pack%00', 'http.target_bad_escape'],
    ['/acme\\app.git\\git-receive-pack', 'http.target_bad_char'],
  ])('%s is refused (%s)', async (target, code) => {
    const res = await raw(tlsTo(sidecar), pushHead(target), PUSH);
    expect(res).toMatch(/^HTTP\/1\.1 400 /);
    expect(res).toContain(`code=${code}`);
    expect(receivePackRuns()).toBe(0);
  });
});

describe('a push disguised in :path never runs (HTTP/2)', () => {
  test('a fragment is refused; dot segments and parameters are held', async () => {
    const s = h2session(sidecar);
    try {
      const headers = (path: string) => ({ ':method': 'POST', ':path': path, 'content-type': 'application/x-git-receive-pack-request' });
      const frag = await h2request(s, headers('/acme/app.git/git-receive-pack#/git-upload-pack'), PUSH);
      expect({ status: frag.status, decision: frag.headers['x-sluice-decision'] }).toEqual({ status: 400, decision: 'deny; code=http.target_fragment' });
      for (const path of ['/acme/app.git/git-upload-pack/../git-receive-pack', '/acme/app.git/git-upload-pack/%2E%2e/git-receive-pack', '/acme/app.git/git-receive-pack;x', '/acme//app.git//git-receive-pack']) {
        const r = await h2request(s, headers(path), PUSH);
        expect({ path, status: r.status, decision: r.headers['x-sluice-decision'] }).toEqual({ path, status: 403, decision: 'hold; code=git.push_requires_approval' });
      }
      const authority = await h2request(s, headers('//evil.example/acme/app.git/git-receive-pack'), PUSH);
      expect({ status: authority.status, decision: authority.headers['x-sluice-decision'] }).toEqual({ status: 400, decision: 'deny; code=http.target_ambiguous' });
      const nonAscii = await h2request(s, headers('/acme/app.git/git-receive-pack\u00e9'), PUSH);
      expect({ status: nonAscii.status, decision: nonAscii.headers['x-sluice-decision'] }).toEqual({ status: 400, decision: 'deny; code=http.target_bad_char' });
    } finally {
      s.close();
    }
    expect(receivePackRuns()).toBe(0);
  });
});

describe('the forwarded target is the one the policy saw', () => {
  test('dot segments are resolved before forwarding (HTTP/1.1 and HTTP/2)', async () => {
    const res = await raw(tlsTo(allowAll), 'GET /acme/app.git/x/%2e%2e/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: github.com\r\nConnection: close\r\n\r\n');
    expect(res).toMatch(/^HTTP\/1\.1 200 /);
    expect(git.requests.at(-1)!.url).toBe('/acme/app.git/info/refs?service=git-upload-pack');
    const s = h2session(allowAll);
    try {
      const r = await h2request(s, { ':method': 'GET', ':path': '/acme/./app.git/info/refs?service=git-upload-pack' });
      expect(r.status).toBe(200);
    } finally {
      s.close();
    }
    expect(git.requests.at(-1)!.url).toBe('/acme/app.git/info/refs?service=git-upload-pack');
  });
});

describe('the destination port reaches the policy input on every path', () => {
  const inputPort = (path: string) => done.get(path)?.input?.request.port;

  test('transparent plain HTTP: the Host port', async () => {
    const s = netConnect(allowAll.addresses.transparent!.port, '127.0.0.1');
    await raw(s, 'GET /port-plain HTTP/1.1\r\nHost: github.com:8080\r\nConnection: close\r\n\r\n');
    expect(inputPort('/port-plain')).toBe(8080);
  });

  test('transparent TLS: the Host port, else 443', async () => {
    await raw(tlsTo(allowAll), 'GET /port-tls HTTP/1.1\r\nHost: github.com:8443\r\nConnection: close\r\n\r\n');
    expect(inputPort('/port-tls')).toBe(8443);
    await raw(tlsTo(allowAll), 'GET /port-tls-default HTTP/1.1\r\nHost: github.com\r\nConnection: close\r\n\r\n');
    expect(inputPort('/port-tls-default')).toBe(443);
  });

  test('CONNECT: the CONNECT port', async () => {
    const s = netConnect(allowAll.addresses.proxy!.port, '127.0.0.1');
    const res = await new Promise<string>((resolve, reject) => {
      let seen = '';
      s.write('CONNECT github.com:8443 HTTP/1.1\r\nHost: github.com:8443\r\n\r\n');
      const onData = (c: Buffer) => {
        seen += c.toString('latin1');
        if (!seen.includes('\r\n\r\n')) return;
        s.off('data', onData);
        resolve(seen);
      };
      s.on('data', onData);
      s.once('error', reject);
    });
    expect(res).toMatch(/^HTTP\/1\.1 200/);
    const tls = tlsConnect({ socket: s, servername: 'github.com', ca: readFileSync(allowAll.trust.caFile), ALPNProtocols: ['http/1.1'] });
    await raw(tls, 'GET /port-connect HTTP/1.1\r\nHost: github.com:8443\r\nConnection: close\r\n\r\n');
    expect(inputPort('/port-connect')).toBe(8443);
  });

  test('absolute-form through the proxy port: the URL port', async () => {
    const s = netConnect(allowAll.addresses.proxy!.port, '127.0.0.1');
    await raw(s, 'GET http://github.com:8080/port-absolute HTTP/1.1\r\nHost: github.com:8080\r\nConnection: close\r\n\r\n');
    expect(inputPort('/port-absolute')).toBe(8080);
  });

  test('HTTP/2: the :authority port', async () => {
    const s = h2session(allowAll);
    try {
      await h2request(s, { ':method': 'GET', ':path': '/port-h2', ':authority': 'github.com:8443' });
      await h2request(s, { ':method': 'GET', ':path': '/port-h2-default', ':authority': 'github.com' });
    } finally {
      s.close();
    }
    expect(inputPort('/port-h2')).toBe(8443);
    expect(inputPort('/port-h2-default')).toBe(443);
  });
});
