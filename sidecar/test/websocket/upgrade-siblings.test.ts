// Upgrade-like paths other than the WebSocket handshake, through a real sidecar: an HTTP/2 CONNECT
// stream (a tunnel inside an intercepted connection, the carrier of RFC 8441's extended CONNECT)
// reaches the pipeline and is refused with a sluice code and recorded, instead of node:http2's own
// unrecorded 405; extended CONNECT is never offered (SETTINGS_ENABLE_CONNECT_PROTOCOL 0).
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import type { ClientHttp2Session } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { startTestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import { buildBundle } from '../../../testkit/policy/opa-build.ts';

const POLICY = `package sluice

default decision := {"allow": false, "code": "test.deny", "reason": "not listed"}

decision := {"allow": true, "code": "test.any", "reason": "anything to this host", "allow_upgrade": true, "dlp": "mask"} if input.request.host == "ws.example"
`;

let sidecar: TestSidecar;
const spoolDir = mkdtempSync(join(tmpdir(), 'sluice-upgrade-siblings-'));

beforeAll(async () => {
  sidecar = await startTestSidecar({ bundle: buildBundle(POLICY, 'upgrade-siblings'), config: { audit: { spoolDir, spool: { fsync: 'none' } } } });
}, 60_000);

afterAll(async () => {
  await sidecar?.stop();
});

function session(): Promise<ClientHttp2Session> {
  const port = sidecar.addresses.transparent!.port;
  const ca = readFileSync(sidecar.trust.caFile);
  const s = h2connect('https://ws.example', { createConnection: () => tlsConnect({ host: '127.0.0.1', port, servername: 'ws.example', ca, ALPNProtocols: ['h2'] }) });
  return new Promise((resolve, reject) => {
    s.once('remoteSettings', () => resolve(s));
    s.once('error', reject);
  });
}

test('an HTTP/2 CONNECT stream is refused by the pipeline (400 http.nested_connect), recorded; extended CONNECT is not offered', async () => {
  const s = await session();
  expect(s.remoteSettings.enableConnectProtocol).toBe(false);
  const st = s.request({ ':method': 'CONNECT', ':authority': 'ws.example:443' });
  const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
    st.once('response', (h) => resolve(h));
    st.once('error', reject);
  });
  st.close();
  s.close();
  expect(headers[':status']).toBe(400);
  expect(String(headers['x-sluice-decision'])).toBe('deny; code=http.nested_connect');
  const recorded = () =>
    readdirSync(spoolDir)
      .filter((f) => f.startsWith('seg-'))
      .flatMap((f) => readFileSync(join(spoolDir, f), 'utf8').split('\n'))
      .some((l) => l.includes('"code":"http.nested_connect"'));
  // The record is written as the answer goes out: wait for it to land.
  for (let i = 0; i < 50 && !recorded(); i++) await new Promise((r) => setTimeout(r, 20));
  expect(recorded()).toBe(true);
});
