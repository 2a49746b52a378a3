// Bounded WebSocket recording in a real sidecar (the upgrade phase wires the relay's `record`): a
// flood of tiny messages through the transparent port is in the audit trail whole, in order, in a
// few window events, not one per message; with a small spool and a store that never answers
// (onFull fail-closed), a message that cannot be recorded closes the connection with 1011
// audit.spool_full and never reaches the upstream. An upgrade on an HTTP/1.0 request is refused
// with 400 ws.bad_handshake (recorded) and never dialled; the same request on HTTP/1.1 upgrades.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startTestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import { buildBundle } from '../../../testkit/policy/opa-build.ts';
import { closed, entries, nextMessage, spooled, startUpstream } from '../../../testkit/sidecar/websocket-path.ts';
import type { Upstream } from '../../../testkit/sidecar/websocket-path.ts';

const POLICY = `package sluice

default decision := {"allow": false, "code": "test.deny", "reason": "not listed"}

decision := {"allow": true, "code": "test.ws", "reason": "websocket", "allow_upgrade": true, "dlp": "mask"} if input.request.host == "ws.example"
`;

let upstream: Upstream;
const sidecars: TestSidecar[] = [];

beforeAll(async () => {
  upstream = await startUpstream((ws, data) => {
    if (data.startsWith('echo ')) ws.send(data);
  });
});

// The spool_full sidecar's store never answers: its recorder waits out its drain timeout (5 s) on stop.
afterAll(async () => {
  await Promise.all(sidecars.map((s) => s.stop()));
  await upstream?.close();
}, 30_000);

async function sidecar(spoolDir: string, audit: Record<string, unknown> = {}): Promise<TestSidecar> {
  const s = await startTestSidecar({
    resolve: { 'ws.example:80': `127.0.0.1:${upstream.port}` },
    bundle: buildBundle(POLICY, 'ws-recording'),
    config: { audit: { spoolDir, spool: { fsync: 'none' }, ...audit }, websocket: { rate: { connection: { messagesPerSecond: 100_000 }, sidecar: { messagesPerSecond: 100_000 } } } },
  });
  sidecars.push(s);
  return s;
}

/** One raw handshake on the transparent port; resolves with everything the sidecar sent before the first blank line. */
function rawHandshake(s: TestSidecar, version: '1.0' | '1.1'): Promise<string> {
  const sock = connect(s.addresses.transparent!.port, '127.0.0.1');
  sock.write(`GET /chat HTTP/${version}\r\nHost: ws.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  return new Promise((resolve, reject) => {
    let got = '';
    sock.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.includes('\r\n\r\n')) {
        sock.destroy();
        resolve(got.slice(0, got.indexOf('\r\n\r\n')));
      }
    });
    sock.on('error', reject);
    sock.on('close', () => resolve(got));
  });
}

function open(s: TestSidecar): Promise<WebSocket> {
  const ws = new WebSocket('ws://ws.example/chat', { createConnection: () => connect(s.addresses.transparent!.port, '127.0.0.1') });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

test('a flood of tiny messages is recorded whole and in order, in window events, not one event per message', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-ws-rec-'));
  const s = await sidecar(dir);
  const ws = await open(s);
  upstream.received.length = 0;
  const N = 3000;
  for (let i = 0; i < N; i++) ws.send(`m${i}`);
  await upstream.has(N);
  const c = closed(ws);
  ws.close();
  await c;
  const { events } = spooled(dir);
  const out = entries(events).filter((e) => e.direction === 'out' && e.kind === 'text');
  expect(out.map((e) => e.bytes)).toEqual(Array.from({ length: N }, (_, i) => `m${i}`.length));
  const windows = events.filter((e) => (e.detail?.websocket as { v?: number } | undefined)?.v === 2);
  expect(windows.length).toBeLessThan(N / 20);
}, 60_000);

test('a message the full spool cannot take closes the connection with 1011 audit.spool_full and is not carried', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-ws-full-'));
  const s = await sidecar(dir, { spool: { fsync: 'none', maxBytes: 64 * 1024, segmentBytes: 8 * 1024, onFull: 'fail-closed' }, store: { type: 'loki', url: 'http://127.0.0.1:9', retryInitialMs: 60_000, retryMaxMs: 60_000 } });
  const ws = await open(s);
  const first = nextMessage(ws);
  ws.send('echo before');
  expect(await first).toBe('echo before');
  // Round trips, one event each way, until the spool refuses one: the connection is closed then.
  upstream.received.length = 0;
  const c = closed(ws);
  let closedWith: { code: number; reason: string } | undefined;
  void c.then((v) => (closedWith = v));
  for (let i = 0; i < 3000 && !closedWith; i++) {
    const answer = Promise.race([nextMessage(ws), c]);
    ws.send(`echo ${i}`);
    await answer;
  }
  expect(await c).toEqual({ code: 1011, reason: 'sluice: audit.spool_full' });
  // Everything the upstream got was recorded first.
  const recorded = entries(spooled(dir).events).filter((e) => e.direction === 'out' && e.kind === 'text' && !e.undelivered);
  expect(upstream.received.length).toBeGreaterThan(0);
  expect(recorded.length).toBeGreaterThanOrEqual(upstream.received.length);
}, 60_000);

test('an upgrade on an HTTP/1.0 request is refused with 400 ws.bad_handshake, recorded, and never reaches the upstream', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-ws-10-'));
  const s = await sidecar(dir);
  let dialled = 0;
  const count = (): void => void dialled++;
  upstream.wss.on('connection', count);
  try {
    const head = await rawHandshake(s, '1.0');
    expect(head).toMatch(/^HTTP\/1\.1 400 /);
    expect(head.toLowerCase()).toContain('x-sluice-decision: deny; code=ws.bad_handshake');
    // The same request on HTTP/1.1 is carried: the refusal is the version's alone.
    expect(await rawHandshake(s, '1.1')).toMatch(/^HTTP\/1\.1 101 /);
    await upstream.has(0);
    expect(dialled).toBe(1);
  } finally {
    upstream.wss.off('connection', count);
  }
  // Recorded as any refused request is (the pipeline's done phase): the decision names the code.
  const refused = spooled(dir).events.filter((e) => e.decision?.code === 'ws.bad_handshake');
  expect(refused).toHaveLength(1);
  expect(refused[0]).toMatchObject({ kind: 'request', status: 400, decision: { action: 'deny' }, detail: { upgrade: 'websocket' } });
}, 60_000);
