// Bounded WebSocket recording through real sockets: a real `ws` client, sluice's relay
// (proxy/upgrade.ts → websocket/relay.ts) and a real `ws` server, with a real audit recorder and
// spool. A flood of tiny messages is recorded faithfully (every message, in order, in the spool)
// but as one event per recording window, not one per message; a spool that refuses writes closes
// the connection with 1011 before anything unrecorded is carried; rates per connection and per
// sidecar close with 1008; an idle connection (pings are not activity) and one past its lifetime
// close with 1001. Every end is reported with its code (the gateway records and counts it).
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketBatchDetail } from '../../../api/src/index.ts';
import { WsBudget } from '../../src/websocket/rate.ts';
import type { AuditRecorder } from '../../src/audit/index.ts';
import { closed, entries, nextMessage, openClient, spooled, startFront, startRecorder, startUpstream } from '../../../testkit/sidecar/websocket-path.ts';
import type { Front, Upstream } from '../../../testkit/sidecar/websocket-path.ts';

const AWS_ID = 'AKIAQ4T7ZK2MWX3RPL6N';

let upstream: Upstream;
const cleanups: (() => Promise<unknown> | void)[] = [];

beforeAll(async () => {
  upstream = await startUpstream((ws, data) => {
    if (data.startsWith('echo ')) ws.send(`echoed ${data.slice(5)}`);
  });
});

afterAll(async () => {
  await upstream.close();
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  upstream.received.length = 0;
  upstream.pings = 0;
});

function spoolDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sluice-ws-rec-'));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

async function front(o: Omit<Parameters<typeof startFront>[0], 'upstreamPort'>): Promise<Front> {
  const f = await startFront({ upstreamPort: upstream.port, ...o });
  cleanups.push(() => f.close());
  return f;
}

async function recorder(dir: string, extra: Parameters<typeof startRecorder>[1] = {}): Promise<AuditRecorder> {
  const r = await startRecorder(dir, extra);
  cleanups.push(() => r.stop({ drainTimeoutMs: 100 }));
  return r;
}

const upstreamHas = (n: number): Promise<void> => upstream.has(n);

const FAST = { rate: { connection: { messagesPerSecond: 1_000_000 }, sidecar: { messagesPerSecond: 1_000_000 } } };

describe('a flood of tiny messages', () => {
  test('is recorded whole and in order, one event per window instead of one per message', async () => {
    const dir = spoolDir();
    const f = await front({ recorder: await recorder(dir), settings: FAST });
    const ws = await openClient(f);
    const started = performance.now();
    const N = 10_000;
    for (let i = 0; i < N; i++) ws.send(`m${i}`);
    await upstreamHas(N);
    const elapsed = performance.now() - started;
    const end = f.nextEnd();
    ws.close(1000, 'done');
    await end;
    expect(upstream.received).toEqual(Array.from({ length: N }, (_, i) => `m${i}`));
    const { events } = spooled(dir);
    const out = entries(events).filter((e) => e.direction === 'out' && e.kind === 'text');
    // Every message is in the trail, in the order it crossed, with its size.
    expect(out.map((e) => e.bytes)).toEqual(Array.from({ length: N }, (_, i) => `m${i}`.length));
    const ns = out.map((e) => e.n);
    expect(ns).toEqual([...ns].sort((a, b) => a - b));
    // Events: at most one per 256 messages, plus the direction's 100 a second (a second's burst first).
    const wsEvents = events.filter((e) => (e.detail?.websocket as { v?: number } | undefined)?.v === 2 && (e.detail?.websocket as { direction: string }).direction === 'out');
    expect(wsEvents.length).toBeLessThanOrEqual(Math.ceil(N / 256) + 100 + Math.ceil((elapsed / 1000) * 100) + 2);
    expect(wsEvents.length).toBeLessThan(N / 10);
  }, 60_000);

  test('is closed with 1008 and ws.rate_limited when one connection goes over its rate; what was refused never reaches the upstream', async () => {
    const dir = spoolDir();
    const f = await front({ recorder: await recorder(dir), settings: { rate: { connection: { messagesPerSecond: 50 } } } });
    const ws = await openClient(f);
    const c = closed(ws);
    const end = f.nextEnd();
    for (let i = 0; i < 200; i++) ws.send(`r${i}`);
    expect(await c).toEqual({ code: 1008, reason: 'sluice: ws.rate_limited' });
    expect(await end).toMatchObject({ code: 'ws.rate_limited', by: 'sluice', close: 1008 });
    await new Promise<void>((r) => setImmediate(r));
    // A second's burst at most (50), never the flood.
    expect(upstream.received.length).toBeLessThanOrEqual(50);
    // What crossed was recorded first; what passed inspection but was still waiting when the
    // connection was closed is recorded as undelivered, and never reached the upstream.
    const out = entries(spooled(dir).events).filter((e) => e.direction === 'out' && e.kind === 'text');
    const delivered = out.filter((e) => !e.undelivered).length;
    expect(delivered).toBeGreaterThanOrEqual(upstream.received.length);
    expect(out.length).toBeLessThanOrEqual(50);
    expect(out.filter((e) => e.undelivered).length + delivered).toBe(out.length);
  });

  test('the sidecar-wide rate is shared by every connection: the one that goes over it is closed with ws.sidecar_rate_limited', async () => {
    const dir = spoolDir();
    // 60 messages a second for the whole sidecar; each connection alone could carry far more.
    const budget = new WsBudget({ messagesPerSecond: 60, bytesPerSecond: 1024 * 1024 }, performance.now());
    const f = await front({ recorder: await recorder(dir), settings: { rate: { connection: { messagesPerSecond: 100_000 } } }, sidecarBudget: budget });
    const a = await openClient(f);
    const b = await openClient(f);
    for (let i = 0; i < 40; i++) a.send(`a${i}`);
    await upstreamHas(40);
    const c = closed(b);
    // More than the budget could refill in the seconds a loaded machine might take.
    for (let i = 0; i < 400; i++) b.send(`b${i}`);
    expect(await c).toEqual({ code: 1008, reason: 'sluice: ws.sidecar_rate_limited' });
    expect(upstream.received.filter((m) => m.startsWith('b')).length).toBeLessThan(400);
    a.close();
  });
});

describe('a spool that refuses writes', () => {
  test('closes the connection with 1011 and the recorder\'s code; the message it could not record is not carried', async () => {
    const dir = spoolDir();
    // A store nobody answers: nothing is shipped, so the small spool fills and (fail-closed) refuses.
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', () => r()));
    const port = (dead.address() as AddressInfo).port;
    await new Promise<void>((r) => dead.close(() => r()));
    const rec = await recorder(dir, { spool: { fsync: 'none', maxBytes: 64 * 1024, segmentBytes: 8 * 1024, onFull: 'fail-closed' }, store: { type: 'loki', url: `http://127.0.0.1:${port}`, retryInitialMs: 60_000, retryMaxMs: 60_000 } });
    const f = await front({ recorder: rec, settings: FAST });
    const ws = await openClient(f);
    const first = nextMessage(ws);
    ws.send('echo before');
    expect(await first).toBe('echoed before');
    // Fill the spool until it refuses even an event smaller than any WebSocket event.
    for (const size of [4000, 400, 0]) {
      for (let i = 0; i < 1000; i++) {
        const ok = await rec.record({ kind: 'request', pod: { namespace: 'agents', name: 'agent-1' }, request_id: `fill-${i}`, ...(size ? { detail: { fill: 'x'.repeat(size) } } : {}) }).then(
          () => true,
          () => false,
        );
        if (!ok) break;
      }
    }
    const c = closed(ws);
    const end = f.nextEnd();
    ws.send('after the spool is full');
    expect(await c).toEqual({ code: 1011, reason: 'sluice: audit.spool_full' });
    expect(await end).toMatchObject({ code: 'audit.spool_full', by: 'sluice', close: 1011 });
    expect(upstream.received).toEqual(['echo before']);
  });
});

describe('time limits', () => {
  test('an idle connection is closed with 1001 ws.idle_timeout; pings and pongs do not keep it open', async () => {
    const f = await front({ settings: { idleTimeoutMs: 300 } });
    const ws = await openClient(f);
    const started = performance.now();
    const pinger = setInterval(() => ws.ping('still here'), 50);
    const c = closed(ws);
    const end = f.nextEnd();
    try {
      expect(await c).toEqual({ code: 1001, reason: 'sluice: ws.idle_timeout' });
    } finally {
      clearInterval(pinger);
    }
    expect(performance.now() - started).toBeGreaterThanOrEqual(200);
    expect(upstream.pings).toBeGreaterThan(1);
    expect(await end).toMatchObject({ code: 'ws.idle_timeout', by: 'sluice', close: 1001 });
  });

  test('messages are activity: a connection that talks outlives the idle timeout, and is closed at its maximum lifetime (ws.max_lifetime)', async () => {
    const f = await front({ settings: { idleTimeoutMs: 400, maxLifetimeMs: 1000 } });
    const ws = await openClient(f);
    const started = performance.now();
    let i = 0;
    const talker = setInterval(() => ws.send(`tick ${i++}`), 50);
    const c = closed(ws);
    const end = f.nextEnd();
    try {
      expect(await c).toEqual({ code: 1001, reason: 'sluice: ws.max_lifetime' });
    } finally {
      clearInterval(talker);
    }
    expect(performance.now() - started).toBeGreaterThanOrEqual(600);
    expect(await end).toMatchObject({ code: 'ws.max_lifetime', by: 'sluice' });
  });
});

describe('what an event holds', () => {
  test('both directions in the conversation\'s order; with record_body a masked sample and a digest of a longer message; never a secret', async () => {
    const dir = spoolDir();
    const f = await front({ recorder: await recorder(dir), recordContent: true, settings: { recording: { sampleBytes: 64 } } });
    const ws = await openClient(f);
    const one = nextMessage(ws);
    ws.send('echo hello');
    expect(await one).toBe('echoed hello');
    const two = nextMessage(ws);
    ws.send(`echo key ${AWS_ID}`);
    expect(await two).not.toContain(AWS_ID);
    ws.send('z'.repeat(1000));
    await upstreamHas(3);
    const end = f.nextEnd();
    ws.close(1000, 'bye');
    await end;
    const { events } = spooled(dir);
    expect(JSON.stringify(events)).not.toContain(AWS_ID);
    const list = entries(events);
    expect(list.map((e) => [e.direction, e.kind, e.text?.slice(0, 12)])).toEqual([
      ['out', 'text', 'echo hello'],
      ['in', 'text', 'echoed hello'],
      ['out', 'text', 'echo key [RE'],
      ['in', 'text', 'echoed key [' ],
      ['out', 'text', 'zzzzzzzzzzzz'],
      ['out', 'close', 'bye'],
      ['in', 'close', 'bye'],
    ]);
    // Every window event has the shape api/src/audit.ts documents.
    const windows = events.map((e) => e.detail?.websocket).filter((w) => (w as { v?: number } | undefined)?.v === 2);
    expect(windows.length).toBeGreaterThan(0);
    for (const w of windows) expect(WebSocketBatchDetail.safeParse(w).success).toBe(true);
    const long = list[4]!;
    expect(long.text).toHaveLength(64);
    expect(long.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(list[2]!.masked?.length).toBeGreaterThan(0);
  });

  test('without record_body an entry has the message\'s kind, size and redactions, never its content', async () => {
    const dir = spoolDir();
    const f = await front({ recorder: await recorder(dir) });
    const ws = await openClient(f);
    const one = nextMessage(ws);
    ws.send('echo private words');
    await one;
    const end = f.nextEnd();
    ws.close();
    await end;
    const { events } = spooled(dir);
    expect(JSON.stringify(events)).not.toContain('private words');
    expect(entries(events)[0]).toEqual({ n: 1, t: expect.any(Number), kind: 'text', bytes: 18, direction: 'out' });
  });
});
