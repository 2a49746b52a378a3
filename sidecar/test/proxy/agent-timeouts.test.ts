// The agent-facing timeouts on handed-off sockets, with slow clients against the real sidecar
// (short configured timeouts): slow headers get a recorded 408 on the explicit proxy port, on
// plain and TLS-terminated transparent connections; a keep-alive connection that trickles the
// next head gets one too; HTTP/2 sessions that open no stream or stay idle are closed whatever
// PINGs they send. The slow clients send on their own timers; the test waits on events.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import type { ClientHttp2Session } from 'node:http2';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { startTestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';

const TIMEOUT = 300;
let sidecar: TestSidecar;
const refusals: { code: string; status: number; reason: string }[] = [];

beforeAll(async () => {
  sidecar = await startTestSidecar({
    config: { limits: { headersTimeoutMs: TIMEOUT, keepAliveTimeoutMs: TIMEOUT, requestBodyTimeoutMs: TIMEOUT } },
    events: { malformed: (m) => refusals.push(m) },
  });
}, 60_000);

afterAll(async () => {
  await sidecar?.stop();
});

async function errorsCounted(code: string): Promise<number> {
  const m = await sidecar.registry.getSingleMetric('sluice_http_errors_total')?.get();
  return m?.values.find((v) => v.labels.code === code)?.value ?? 0;
}

/**
 * Sends `head` then one more header line every 100 ms (never finishing the head), and reports
 * what came back and when the connection closed. Gives up after 5 s (the bug: never answered).
 */
function trickle(socket: Socket, head: string): Promise<{ answer: string; ms: number }> {
  const started = Date.now();
  let answer = '';
  let n = 0;
  socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
  socket.write(head);
  const drip = setInterval(() => {
    if (socket.writable) socket.write(`X-Slow-${n++}: ${'a'.repeat(8)}\r\n`);
  }, 100);
  const giveUp = setTimeout(() => socket.destroy(), 5000);
  return new Promise((resolve) => {
    socket.on('error', () => undefined);
    socket.once('close', () => {
      clearInterval(drip);
      clearTimeout(giveUp);
      resolve({ answer, ms: Date.now() - started });
    });
  });
}

function expect408(r: { answer: string; ms: number }) {
  expect(r.answer).toMatch(/^HTTP\/1\.1 408 /);
  expect(r.answer).toContain('x-sluice-decision: deny; code=http.headers_timeout');
  expect(r.ms).toBeGreaterThanOrEqual(TIMEOUT - 20);
  expect(r.ms).toBeLessThan(TIMEOUT + 2000);
}

function tcp(port: number): Promise<Socket> {
  const s = connect({ host: '127.0.0.1', port });
  return once(s, 'connect').then(() => s);
}

describe('HTTP/1.1 headers timeout on handed-off sockets', () => {
  test('explicit proxy port: a client sending one header line every 100 ms gets a recorded 408', async () => {
    const before = await errorsCounted('http.headers_timeout');
    const seen = refusals.length;
    const r = await trickle(await tcp(sidecar.addresses.proxy!.port), 'GET http://github.com/slow HTTP/1.1\r\nHost: github.com\r\n');
    expect408(r);
    expect(await errorsCounted('http.headers_timeout')).toBe(before + 1);
    expect(refusals.slice(seen)).toEqual([expect.objectContaining({ code: 'http.headers_timeout', status: 408 })]);
  });

  test('transparent port, plain HTTP: same 408', async () => {
    expect408(await trickle(await tcp(sidecar.addresses.transparent!.port), 'GET /slow HTTP/1.1\r\nHost: github.com\r\n'));
  });

  test('transparent port, TLS terminated by the sidecar: same 408', async () => {
    const socket = tlsConnect({ host: '127.0.0.1', port: sidecar.addresses.transparent!.port, servername: 'registry.npmjs.org', ca: readFileSync(sidecar.trust.caFile), ALPNProtocols: ['http/1.1'] });
    await once(socket, 'secureConnect');
    expect408(await trickle(socket, 'GET /slow HTTP/1.1\r\nHost: registry.npmjs.org\r\n'));
  });

  test('a keep-alive connection whose next head trickles in gets a 408 too; an idle one is closed', async () => {
    const socket = await tcp(sidecar.addresses.proxy!.port);
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    socket.write('GET http://exfil.example/one HTTP/1.1\r\nHost: exfil.example\r\n\r\n');
    while (!/\r\n\r\n[^]*\n/.test(answer)) await once(socket, 'data');
    expect(answer).toMatch(/^HTTP\/1\.1 403 /);
    expect(answer).not.toMatch(/connection: close/i);
    const r = await trickle(socket, 'GET http://exfil.example/two HTTP/1.1\r\n');
    expect(r.answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(r.ms).toBeLessThan(TIMEOUT + 2000);

    const idle = await tcp(sidecar.addresses.proxy!.port);
    idle.on('data', () => undefined);
    idle.write('GET http://exfil.example/three HTTP/1.1\r\nHost: exfil.example\r\n\r\n');
    await once(idle, 'data');
    const since = Date.now();
    await once(idle, 'close');
    expect(Date.now() - since).toBeLessThan(TIMEOUT + 2000);
  });
});

describe('HTTP/2 sessions', () => {
  function h2session(): Promise<ClientHttp2Session> {
    const session = h2connect('https://exfil.example', {
      createConnection: () => tlsConnect({ host: '127.0.0.1', port: sidecar.addresses.transparent!.port, servername: 'exfil.example', ca: readFileSync(sidecar.trust.caFile), ALPNProtocols: ['h2'] }),
    });
    session.on('error', () => undefined);
    return once(session, 'connect').then(() => session);
  }

  /** PINGs every 100 ms (activity that must not keep a session alive); resolves on close. */
  function pingUntilClosed(session: ClientHttp2Session): Promise<number> {
    const started = Date.now();
    const ping = setInterval(() => {
      if (!session.closed && !session.destroyed) session.ping(() => undefined);
    }, 100);
    const giveUp = setTimeout(() => session.destroy(), 5000);
    return new Promise((resolve) => {
      session.once('close', () => {
        clearInterval(ping);
        clearTimeout(giveUp);
        resolve(Date.now() - started);
      });
    });
  }

  test('a session that opens no stream is closed at the headers timeout and recorded; one idle after its streams gets GOAWAY at the keep-alive timeout — PINGs or not', async () => {
    const seen = refusals.length;
    const ms = await pingUntilClosed(await h2session());
    expect(ms).toBeLessThan(TIMEOUT + 2000);
    expect(refusals.slice(seen)).toEqual([expect.objectContaining({ code: 'http.headers_timeout', status: 408 })]);

    const session = await h2session();
    const req = session.request({ ':path': '/one' });
    req.resume();
    const [headers] = (await once(req, 'response')) as [Record<string, string>];
    expect(headers[':status']).toBe(403);
    await once(req, 'close');
    const goaway = once(session, 'goaway');
    expect(await pingUntilClosed(session)).toBeLessThan(TIMEOUT + 2000);
    await goaway;
    // Idle is not a refusal: nothing more recorded.
    expect(refusals.slice(seen)).toHaveLength(1);
  });
});
