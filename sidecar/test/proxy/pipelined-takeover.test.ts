// A CONNECT or protocol upgrade pipelined behind a request still being answered cannot take the
// connection over: node:http still has the first request's response bound to the socket. It is a
// refusal (http.pipelined_takeover: counted, recorded once), the connection is closed without a
// byte of the refused request's answer, the request in flight ends cut and is recorded once, and
// the sidecar keeps serving. And no agent-facing server event handler can throw the process down:
// a handler that throws costs its own connection (sluice_request_faults_total{phase="front"}).
// The real sidecar in-process, raw sockets, a real slow upstream.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { once } from 'node:events';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { buildBundle } from '../../../testkit/policy/opa-build.ts';
import { startTestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import { startHttpUpstream } from '../../../testkit/sidecar/upstreams.ts';
import type { RequestContext } from '../../src/proxy/request-context.ts';

const POLICY = `package sluice
default decision := {"allow": false, "code": "test.name_denied", "reason": "not listed"}
decision := {"allow": true, "allow_upgrade": true, "code": "test.allowed", "reason": "listed"} if input.request.host == "allowed.example"
`;

let sidecar: TestSidecar;
let upstream: Awaited<ReturnType<typeof startHttpUpstream>>;
const refused: { code: string; via: string }[] = [];
const done: RequestContext[] = [];
const uncaught: Error[] = [];
const onUncaught = (e: Error) => void uncaught.push(e);

beforeAll(async () => {
  // Before the fix a takeover threw out of node:http's 'connect' event: the process went down.
  // Caught here so the test reports it instead of the worker dying.
  process.on('uncaughtException', onUncaught);
  // The upstream answers late, so the first request is still in flight when the second arrives.
  upstream = await startHttpUpstream((_req, res) => {
    setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('slow-ok\n'), 400);
  });
  sidecar = await startTestSidecar({
    bundle: buildBundle(POLICY, 'pipelined-takeover'),
    resolve: { 'allowed.example:80': upstream.dial, 'allowed.example:443': upstream.dial },
    events: {
      refused: (r) => {
        refused.push(r);
        // Thrown from the transparent port's first-bytes handler (a socket's 'data' event).
        if (r.name === 'throw-in-handler.example') throw new Error('a handler fault forced by the test');
      },
      requestDone: (ctx) => void done.push(ctx),
      // A hook that throws inside the gateway's handlers, for the guarded-handler test below.
      requestStart: (ctx) => {
        if (ctx.req.url?.includes('/throw-in-handler') || ctx.req.headers['x-mark'] === '/throw-in-handler') throw new Error('a handler fault forced by the test');
      },
    },
  });
}, 60_000);

afterAll(async () => {
  await sidecar?.stop();
  await upstream?.close();
  process.off('uncaughtException', onUncaught);
});

/** Writes `bytes` in one write; everything answered until the sidecar closes (bounded). */
async function exchange(bytes: string, port: 'proxy' | 'transparent' = 'proxy'): Promise<{ answer: string }> {
  const s = connect({ host: '127.0.0.1', port: sidecar.addresses[port]!.port });
  await once(s, 'connect');
  let answer = '';
  s.on('data', (d: Buffer) => (answer += d.toString('latin1')));
  s.on('error', () => undefined);
  const timer = setTimeout(() => s.destroy(), 3000);
  s.write(bytes);
  await new Promise<void>((resolve) => s.once('close', () => resolve()));
  clearTimeout(timer);
  return { answer };
}

async function counted(metric: string, labels: Record<string, string>): Promise<number> {
  const m = await sidecar.registry.getSingleMetric(metric)?.get();
  return m?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))?.value ?? 0;
}

/** Waits (bounded) until `n` requests have been recorded since `from`. */
async function recorded(from: number, n: number): Promise<RequestContext[]> {
  for (let i = 0; i < 100 && done.length - from < n; i++) await new Promise((r) => setTimeout(r, 20));
  // A second record of the same request would arrive right after the first: give it the chance.
  await new Promise((r) => setTimeout(r, 100));
  return done.slice(from);
}

const FIRST = 'GET http://allowed.example/slow HTTP/1.1\r\nHost: allowed.example\r\n\r\n';

describe('a CONNECT or upgrade pipelined behind a pending request', () => {
  test.each([
    ['a denied CONNECT', 'CONNECT denied.example:443 HTTP/1.1\r\nHost: denied.example:443\r\n\r\n'],
    ['an allowed CONNECT', 'CONNECT allowed.example:443 HTTP/1.1\r\nHost: allowed.example:443\r\n\r\n'],
    ['a WebSocket upgrade', 'GET http://allowed.example/ws HTTP/1.1\r\nHost: allowed.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'],
    ['an h2c upgrade', 'GET http://allowed.example/h2 HTTP/1.1\r\nHost: allowed.example\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n'],
  ])('%s is refused as http.pipelined_takeover, the connection closed, the first request cut and recorded once', async (_what, second) => {
    const before = await counted('sluice_refusals_total', { code: 'http.pipelined_takeover' });
    const seenRefused = refused.length;
    const seenDone = done.length;
    const { answer } = await exchange(FIRST + second);
    expect(uncaught).toEqual([]);
    // Nothing of the refused request's answer (no 403, no 200 Connection Established, no 101,
    // no 502 in another request's name) reaches the agent: the connection is simply closed.
    expect(answer).not.toMatch(/Connection Established|HTTP\/1\.1 (101|403|502)/);
    expect(refused.slice(seenRefused)).toEqual([expect.objectContaining({ code: 'http.pipelined_takeover', via: 'proxy' })]);
    expect(await counted('sluice_refusals_total', { code: 'http.pipelined_takeover' })).toBe(before + 1);
    // The request in flight is recorded once, as cut; the refused one is not a request.
    const ended = await recorded(seenDone, 1);
    expect(ended.map((c) => [c.req.url, c.answer?.code])).toEqual([['http://allowed.example/slow', 'http.client_closed']]);
  });

  test('a WebSocket upgrade pipelined on the transparent port is refused the same way', async () => {
    const seenRefused = refused.length;
    const seenDone = done.length;
    const { answer } = await exchange(
      'GET /slow HTTP/1.1\r\nHost: allowed.example\r\n\r\nGET /ws HTTP/1.1\r\nHost: allowed.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      'transparent',
    );
    expect(uncaught).toEqual([]);
    expect(answer).not.toMatch(/HTTP\/1\.1 (101|403|502)/);
    expect(refused.slice(seenRefused)).toEqual([expect.objectContaining({ code: 'http.pipelined_takeover', via: 'transparent' })]);
    const ended = await recorded(seenDone, 1);
    expect(ended.map((c) => [c.req.url, c.answer?.code])).toEqual([['/slow', 'http.client_closed']]);
  });

  test('a CONNECT after the first answer is complete, on the same connection, is answered as usual', async () => {
    const s = connect({ host: '127.0.0.1', port: sidecar.addresses.proxy!.port });
    await once(s, 'connect');
    let answer = '';
    s.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    s.on('error', () => undefined);
    const timer = setTimeout(() => s.destroy(), 3000);
    s.write(FIRST);
    // The first answer is complete (its last chunk is in) before the CONNECT is sent.
    while (!/slow-ok\n\r\n0\r\n\r\n$/.test(answer)) await once(s, 'data');
    s.write('CONNECT denied.example:443 HTTP/1.1\r\nHost: denied.example:443\r\n\r\n');
    await new Promise<void>((resolve) => s.once('close', () => resolve()));
    clearTimeout(timer);
    expect(answer).toMatch(/^HTTP\/1\.1 200 [^]*slow-ok\n\r\n0\r\n\r\nHTTP\/1\.1 403 [^]*code=test\.name_denied/);
  });

  test('a CONNECT that is not pipelined is still answered, and the sidecar still serves', async () => {
    const { answer } = await exchange('CONNECT denied.example:443 HTTP/1.1\r\nHost: denied.example:443\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 403 /);
    expect(answer).toContain('code=test.name_denied');
    const plain = await exchange('GET http://allowed.example/after HTTP/1.1\r\nHost: allowed.example\r\nConnection: close\r\n\r\n');
    expect(plain.answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(uncaught).toEqual([]);
  });
});

describe('an agent-facing server event handler that throws', () => {
  test.each([
    ['request', 'GET http://allowed.example/throw-in-handler HTTP/1.1\r\nHost: allowed.example\r\n\r\n', ''],
    ['connect', 'CONNECT denied.example:443 HTTP/1.1\r\nHost: denied.example:443\r\nX-Mark: /throw-in-handler\r\n\r\n', ''],
    // The upgrade handler answers its own fault (the socket is that request's alone), and counts it.
    ['upgrade', 'GET http://allowed.example/throw-in-handler HTTP/1.1\r\nHost: allowed.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n', 'HTTP/1.1 502 '],
  ])("in '%s' costs its own connection (counted as a front fault), not the process", async (_event, bytes, answered) => {
    const before = await counted('sluice_request_faults_total', { phase: 'front' });
    const { answer } = await exchange(bytes);
    expect(uncaught).toEqual([]);
    expect(answer.startsWith(answered)).toBe(true);
    if (!answered) expect(answer).toBe('');
    expect(await counted('sluice_request_faults_total', { phase: 'front' })).toBe(before + 1);
    const after = await exchange('GET http://allowed.example/after HTTP/1.1\r\nHost: allowed.example\r\nConnection: close\r\n\r\n');
    expect(after.answer).toMatch(/^HTTP\/1\.1 200 /);
  });

  test("in the transparent port's first-bytes handler (a TLS hello) costs its own connection, not the process", async () => {
    const before = await counted('sluice_request_faults_total', { phase: 'front' });
    const s = tlsConnect({ host: '127.0.0.1', port: sidecar.addresses.transparent!.port, servername: 'throw-in-handler.example', rejectUnauthorized: false });
    s.on('error', () => undefined);
    await new Promise<void>((resolve) => s.once('close', () => resolve()));
    expect(uncaught).toEqual([]);
    expect(await counted('sluice_request_faults_total', { phase: 'front' })).toBe(before + 1);
    const after = await exchange('GET http://allowed.example/after HTTP/1.1\r\nHost: allowed.example\r\nConnection: close\r\n\r\n');
    expect(after.answer).toMatch(/^HTTP\/1\.1 200 /);
  });
});
