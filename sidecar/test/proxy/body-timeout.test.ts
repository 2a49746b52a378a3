// A request body that stalls while the sidecar forwards it (the agent sends part of it, then
// nothing) is cut at limits.requestBodyTimeoutMs and recorded, on HTTP/1.1 and HTTP/2; the
// upstream never gets it as a complete request. The real sidecar (400 ms timeouts) and upstream.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { startFrontHarness } from '../fuzz/front-harness.ts';
import type { FrontHarness } from '../fuzz/front-harness.ts';

let h: FrontHarness;

beforeAll(async () => {
  h = await startFrontHarness();
}, 60_000);

afterAll(async () => {
  await h?.close();
});

/** Requests the upstream received whole from the sidecar's forwarding (barrier probes aside). */
function forwardedComplete(): number {
  return h.complete.filter((c) => c.headers['x-fuzz-ctx']).length;
}

test('HTTP/1.1: a stalled body gets a recorded 408 and the upstream request is never completed', async () => {
  const marks = h.mark();
  const before = forwardedComplete();
  const s = connect({ host: '127.0.0.1', port: h.sidecar.addresses.transparent!.port });
  await once(s, 'connect');
  let answer = '';
  s.on('data', (d: Buffer) => (answer += d.toString('latin1')));
  s.on('error', () => undefined);
  const started = Date.now();
  s.write(`POST /upload HTTP/1.1\r\nHost: github.com\r\nContent-Length: 100\r\n\r\n${'x'.repeat(10)}`);
  const giveUp = setTimeout(() => s.destroy(), 5000);
  await once(s, 'close');
  clearTimeout(giveUp);
  expect(Date.now() - started).toBeLessThan(2500);
  expect(answer).toMatch(/^HTTP\/1\.1 408 /);
  expect(answer).toContain('x-sluice-decision: deny; code=http.request_timeout');
  await h.quiet();
  expect(h.malformed.slice(marks.malformed)).toEqual([expect.objectContaining({ code: 'http.request_timeout', status: 408 })]);
  expect(h.heads.slice(marks.heads).map((x) => x.url)).toEqual(['/upload']);
  expect(forwardedComplete()).toBe(before);
});

test('HTTP/2: a stalled body cancels the stream, recorded, and the upstream request is never completed', async () => {
  const marks = h.mark();
  const before = forwardedComplete();
  const session = h2connect('https://github.com', {
    createConnection: () => tlsConnect({ host: '127.0.0.1', port: h.sidecar.addresses.transparent!.port, servername: 'github.com', ca: readFileSync(h.ca), ALPNProtocols: ['h2'] }),
  });
  session.on('error', () => undefined);
  const req = session.request({ ':method': 'POST', ':path': '/upload-h2', 'content-length': '100' });
  req.on('error', () => undefined);
  req.write('x'.repeat(10));
  const started = Date.now();
  const giveUp = setTimeout(() => session.destroy(), 5000);
  await once(req, 'close');
  clearTimeout(giveUp);
  expect(Date.now() - started).toBeLessThan(2500);
  expect(req.rstCode).toBeGreaterThan(0);
  session.close();
  await h.quiet();
  expect(h.malformed.slice(marks.malformed)).toEqual([expect.objectContaining({ code: 'http.request_timeout', status: 408 })]);
  expect(forwardedComplete()).toBe(before);
});
