// The websocket settings reach a real sidecar from its config: an idle connection through the
// transparent port (a real `ws` client and server) is closed with 1001 ws.idle_timeout although
// the agent keeps pinging, a flood over the connection rate with 1008 ws.rate_limited; each end is
// in the audit trail and the metrics with its code.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startTestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import { buildBundle } from '../../../testkit/policy/opa-build.ts';
import { closed, startUpstream } from '../../../testkit/sidecar/websocket-path.ts';
import type { Upstream } from '../../../testkit/sidecar/websocket-path.ts';

const POLICY = `package sluice

default decision := {"allow": false, "code": "test.deny", "reason": "not listed"}

decision := {"allow": true, "code": "test.ws", "reason": "websocket", "allow_upgrade": true, "dlp": "mask"} if input.request.host == "ws.example"
`;

let upstream: Upstream;
let sidecar: TestSidecar;
const spoolDir = mkdtempSync(join(tmpdir(), 'sluice-ws-limits-'));

beforeAll(async () => {
  upstream = await startUpstream();
  sidecar = await startTestSidecar({
    resolve: { 'ws.example:80': `127.0.0.1:${upstream.port}` },
    bundle: buildBundle(POLICY, 'ws-limits'),
    config: { audit: { spoolDir, spool: { fsync: 'none' } }, websocket: { idleTimeoutMs: 300, rate: { connection: { messagesPerSecond: 20 } } } },
  });
}, 60_000);

afterAll(async () => {
  await sidecar?.stop();
  await upstream?.close();
});

function open(): Promise<WebSocket> {
  const ws = new WebSocket('ws://ws.example/chat', { createConnection: () => connect(sidecar.addresses.transparent!.port, '127.0.0.1') });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function ends(): string[] {
  return readdirSync(spoolDir)
    .filter((f) => f.startsWith('seg-'))
    .flatMap((f) => readFileSync(join(spoolDir, f), 'utf8').split('\n'))
    .filter((l) => l.startsWith('{'))
    .map((l) => (JSON.parse(l) as { detail?: { websocket?: { end?: string } } }).detail?.websocket?.end)
    .filter((e): e is string => typeof e === 'string');
}

test('websocket.idleTimeoutMs from the config closes an idle connection (pings are not activity), recorded and counted', async () => {
  const ws = await open();
  const pinger = setInterval(() => ws.ping('hi'), 50);
  try {
    expect(await closed(ws)).toEqual({ code: 1001, reason: 'sluice: ws.idle_timeout' });
  } finally {
    clearInterval(pinger);
  }
  expect(await (await fetch(`${sidecar.adminUrl}/metrics`)).text()).toMatch(/sluice_websocket_closes_total\{code="ws.idle_timeout"\} 1/);
});

test('websocket.rate.connection from the config closes a flood with 1008, recorded and counted', async () => {
  const ws = await open();
  const c = closed(ws);
  for (let i = 0; i < 100; i++) ws.send(`m${i}`);
  expect(await c).toEqual({ code: 1008, reason: 'sluice: ws.rate_limited' });
  expect(await (await fetch(`${sidecar.adminUrl}/metrics`)).text()).toMatch(/sluice_websocket_closes_total\{code="ws.rate_limited"\} 1/);
  // The end event is written after the close (not awaited by the relay): wait for it to land.
  for (let i = 0; i < 50 && !ends().includes('ws.rate_limited'); i++) await new Promise((r) => setTimeout(r, 20));
  expect(ends()).toEqual(expect.arrayContaining(['ws.idle_timeout', 'ws.rate_limited']));
});
