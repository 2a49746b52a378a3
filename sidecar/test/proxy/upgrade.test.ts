// Protocol upgrades are relayed only where the policy says allow_upgrade; elsewhere the upgrade
// request is refused with a 403 naming why, and nothing reaches the upstream. What is relayed is
// WebSocket only, through the inspecting relay (websocket.test.ts): an upstream that switches to
// something else is never relayed as raw bytes.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createServer, request } from 'node:http';
import { readFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { startTestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import { buildBundle } from '../../../testkit/policy/opa-build.ts';

const POLICY = `package sluice

default decision := {"allow": false, "code": "test.deny", "reason": "not listed"}

decision := {"allow": true, "code": "test.ws", "reason": "websocket allowed", "allow_upgrade": true} if input.request.host == "ws.example"

decision := {"allow": true, "code": "test.plain", "reason": "allowed, no upgrade"} if input.request.host == "plain.example"

# Denied as a connection (its TLS name), allowed with an upgrade as a request: the connection wins.
decision := {"allow": false, "code": "test.conn_denied", "reason": "this name is denied at the connection"} if {
	input.request.host == "wss.example"
	input.request.method == "CONNECT"
}

decision := {"allow": true, "code": "test.wss", "reason": "websocket allowed", "allow_upgrade": true} if {
	input.request.host == "wss.example"
	input.request.method != "CONNECT"
}
`;

let upstream: Server;
let upgrades = 0;
let sidecar: TestSidecar;

beforeAll(async () => {
  upstream = createServer((_req, res) => res.end('plain'));
  upstream.on('upgrade', (_req: IncomingMessage, socket: Socket) => {
    upgrades++;
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    socket.on('data', (d: Buffer) => socket.write(d.toString().toUpperCase()));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  const dial = `127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  sidecar = await startTestSidecar({ resolve: { 'ws.example:80': dial, 'plain.example:80': dial, 'other.example:80': dial }, bundle: buildBundle(POLICY, 'upgrade-test') });
}, 60_000);

afterAll(async () => {
  await sidecar?.stop();
  upstream?.closeAllConnections();
  upstream?.close();
});

/** An upgrade request through the explicit proxy: the relayed socket, or the refusal. */
function upgrade(host: string): Promise<{ socket: Socket } | { status: number; body: string }> {
  const proxy = new URL(sidecar.proxyUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: proxy.hostname, port: proxy.port, path: `http://${host}/chat`, headers: { host, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' } });
    req.on('upgrade', (_res, socket) => resolve({ socket }));
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('upgrades', () => {
  test('an upgrade on a connection denied at its TLS name is refused with that denial', async () => {
    const socket = tlsConnect({ host: '127.0.0.1', port: sidecar.addresses.transparent!.port, servername: 'wss.example', ca: readFileSync(sidecar.trust.caFile), ALPNProtocols: ['http/1.1'] });
    socket.setEncoding('utf8');
    let answer = '';
    socket.on('data', (d: string) => (answer += d));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.once('secureConnect', () => socket.write('GET /chat HTTP/1.1\r\nHost: wss.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'));
    await closed;
    expect(answer).toMatch(/^HTTP\/1\.1 403/);
    expect(answer).toContain('test.conn_denied');
  });

  test('where the decision allows an upgrade, an upstream that switches without completing the WebSocket handshake is not relayed', async () => {
    // Before: the bytes were piped both ways uninspected ("hello" came back upper-cased).
    const before = upgrades;
    const r = await upgrade('ws.example');
    expect(r).toMatchObject({ status: 502 });
    expect(JSON.parse((r as { body: string }).body)).toMatchObject({ error: 'ws.upstream_handshake' });
    expect(upgrades).toBe(before + 1);
  });

  test('an allowed request without allow_upgrade is refused as an upgrade', async () => {
    const before = upgrades;
    const r = await upgrade('plain.example');
    expect(r).toMatchObject({ status: 403 });
    expect(JSON.parse((r as { body: string }).body)).toMatchObject({ error: 'http.upgrade_denied' });
    expect(upgrades).toBe(before);
  });

  test('a denied destination is refused with the rule that denied it', async () => {
    const r = await upgrade('other.example');
    expect(JSON.parse((r as { body: string }).body)).toMatchObject({ error: 'test.deny' });
  });
});
