// A fault in a phase fails closed, for protocol upgrades as for plain requests (the real sidecar,
// a real `ws` upstream, raw sockets and a real `ws` client as the agent): a handler that throws in
// an upgrade's guard, facts or decided phase gets the agent sluice's 502 sidecar.internal_error,
// counted once in sluice_requests_total and by phase in sluice_request_faults_total, and recorded;
// a done-phase step that throws after a WebSocket has been relayed to its end is counted
// (sluice_request_faults_total{phase="done"}) while the upgrade is still counted, recorded and
// reported done — never an unhandled rejection, never a crash.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startTestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import { buildBundle } from '../../../testkit/policy/opa-build.ts';
import { closed, nextMessage, startUpstream } from '../../../testkit/sidecar/websocket-path.ts';
import type { Upstream } from '../../../testkit/sidecar/websocket-path.ts';
import type { Feature } from '../../src/proxy/pipeline.ts';
import type { RequestContext } from '../../src/proxy/request-context.ts';

const POLICY = `package sluice

default decision := {"allow": false, "code": "test.deny", "reason": "not listed"}

decision := {"allow": true, "code": "test.ws", "reason": "websocket allowed", "allow_upgrade": true} if input.request.host == "ws.example"
`;

/** A feature that throws in the phase the agent names in `x-throw-in`. */
const where = (h: { req: { headers: Record<string, unknown> } }) => h.req.headers['x-throw-in'];
const faulty: Feature = {
  name: 'faulty',
  phases: {
    guard: (head) => {
      if (where(head) === 'guard') throw new Error('guard fault');
      return undefined;
    },
    facts: (ctx) => {
      if (where(ctx) === 'facts') throw new Error('facts fault');
    },
    decided: async (ctx) => {
      await Promise.resolve();
      if (where(ctx) === 'decided') throw new Error('decided fault');
    },
    done: (ctx) => {
      if (where(ctx) === 'done') throw new Error('done fault');
    },
  },
};

let upstream: Upstream;
let sidecar: TestSidecar;
let spoolDir: string;
const done: RequestContext[] = [];
const rejections: unknown[] = [];
const onRejection = (r: unknown) => void rejections.push(r);

beforeAll(async () => {
  process.on('unhandledRejection', onRejection);
  spoolDir = join(mkdtempSync(join(tmpdir(), 'sluice-faults-')), 'spool');
  upstream = await startUpstream((ws, data) => ws.send(data));
  sidecar = await startTestSidecar({
    bundle: buildBundle(POLICY, 'phase-faults'),
    resolve: { 'ws.example:80': `127.0.0.1:${upstream.port}` },
    config: { audit: { spoolDir, spool: { fsync: 'none' } } },
    features: [faulty],
    events: { requestDone: (ctx) => void done.push(ctx) },
  });
}, 60_000);

afterAll(async () => {
  process.off('unhandledRejection', onRejection);
  await sidecar?.stop();
  await upstream?.close();
});

async function requestsTotal(action: string, code: string): Promise<number> {
  const text = await (await fetch(`${sidecar.adminUrl}/metrics`)).text();
  return Number(new RegExp(`sluice_requests_total\\{action="${action}",code="${code.replace(/\./g, '\\.')}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
}

async function faults(phase: string): Promise<number> {
  const text = await (await fetch(`${sidecar.adminUrl}/metrics`)).text();
  return Number(new RegExp(`sluice_request_faults_total\\{phase="${phase}"\\} (\\d+)`).exec(text)?.[1] ?? Number.NaN);
}

/** The spooled audit events of one request (waits, bounded, until `n` are there). */
async function recorded(id: string, n = 1): Promise<Record<string, unknown>[]> {
  let events: Record<string, unknown>[] = [];
  for (let i = 0; i < 200 && events.length < n; i++) {
    events = readdirSync(spoolDir)
      .filter((f) => f.endsWith('.ndjson'))
      .flatMap((f) => readFileSync(join(spoolDir, f), 'utf8').split('\n'))
      .filter((l) => l.includes(`"${id}"`))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    if (events.length < n) await new Promise((r) => setTimeout(r, 10));
  }
  return events;
}

async function doneWith(id: string): Promise<RequestContext | undefined> {
  for (let i = 0; i < 200 && !done.some((c) => c.id === id); i++) await new Promise((r) => setTimeout(r, 10));
  return done.find((c) => c.id === id);
}

/** A raw WebSocket upgrade on the transparent port; everything the sidecar answers until it closes. */
function rawUpgrade(extra: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(sidecar.addresses.transparent!.port, '127.0.0.1');
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (answer += d));
    socket.on('error', reject);
    socket.on('close', () => resolve(answer));
    socket.setTimeout(5000, () => socket.destroy());
    const head = ['GET /chat HTTP/1.1', 'Host: ws.example', ...extra, 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='];
    socket.write(`${head.join('\r\n')}\r\n\r\n`);
  });
}

describe('a fault in an upgrade phase fails closed', () => {
  test.each(['guard', 'facts', 'decided'])('a throw in the %s phase: 502 sidecar.internal_error, counted once, recorded, done', async (phase) => {
    const before = await requestsTotal('error', 'sidecar.internal_error');
    const faulted = await faults(phase);
    let dialled = 0;
    const count = (): void => void dialled++;
    upstream.wss.on('connection', count);
    const answer = await rawUpgrade([`X-Throw-In: ${phase}`]);
    expect(answer).toMatch(/^HTTP\/1\.1 502 /);
    expect(answer).toMatch(/x-sluice-decision: error; code=sidecar\.internal_error/i);
    const id = /x-sluice-request-id: (\S+)/i.exec(answer)?.[1] ?? '';
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: 'sidecar.internal_error', reason: `sidecar error: ${phase} fault`, request_id: id });
    expect((await doneWith(id))?.answer).toMatchObject({ code: 'sidecar.internal_error', kind: 'error' });
    expect(await requestsTotal('error', 'sidecar.internal_error')).toBe(before + 1);
    expect(await faults(phase)).toBe(faulted + 1);
    const events = await recorded(id);
    expect(events.at(-1)).toMatchObject({ request_id: id, status: 502, decision: { action: 'deny', code: 'sidecar.internal_error' }, detail: { upgrade: 'websocket' } });
    upstream.wss.off('connection', count);
    expect(dialled).toBe(0);
    expect(rejections).toEqual([]);
  });
});

describe('a fault in a done-phase step', () => {
  test('after a relayed WebSocket ends: counted as a fault of the done phase; the upgrade is still counted, recorded and done', async () => {
    const before = await requestsTotal('allow', 'test.ws');
    const faulted = await faults('done');
    const ws = new WebSocket('ws://ws.example/chat', { headers: { 'x-throw-in': 'done' }, createConnection: () => connect(sidecar.addresses.transparent!.port, '127.0.0.1') });
    let id = '';
    ws.once('upgrade', (res) => (id = String(res.headers['x-sluice-request-id'] ?? '')));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const echoed = nextMessage(ws);
    ws.send('hello');
    expect(await echoed).toBe('hello');
    const c = closed(ws);
    ws.close(1000, 'bye');
    await c;
    const ctx = await doneWith(id);
    expect(ctx).toMatchObject({ status: 101 });
    expect(ctx?.answer).toBeUndefined();
    expect(await faults('done')).toBe(faulted + 1);
    expect(await requestsTotal('allow', 'test.ws')).toBe(before + 1);
    // The request record before the relay, the end record after it: the throwing step skipped neither.
    const events = await recorded(id, 2);
    expect(events[0]).toMatchObject({ kind: 'request', decision: { action: 'allow', code: 'test.ws' }, detail: { upgrade: 'websocket', websocket: true } });
    expect(events.at(-1)).toMatchObject({ kind: 'response', status: 101, decision: { action: 'allow', code: 'test.ws' }, detail: { websocket: { end: 'ws.closed' } } });
    expect(rejections).toEqual([]);
  });
});
