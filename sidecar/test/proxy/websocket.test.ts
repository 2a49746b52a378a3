// WebSocket through a real sidecar with a real WebSocket server (`ws`) upstream and real clients:
// the upgrade is decided with facts (facts.upgrade), h2c and other protocols are refused, every
// message both ways goes through the masking detectors (mask or block per `dlp`), fragmented and
// control frames included, malformed frames and oversized messages close the connection with the
// RFC 6455 close code, and every message and close is in the audit trail and the metrics.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket, { WebSocketServer } from 'ws';
import { startTestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import { createTestCa, startHttpsUpstream } from '../../../testkit/sidecar/upstreams.ts';
import type { TestUpstream } from '../../../testkit/sidecar/upstreams.ts';
import type { TestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import { encodeFrame, FrameReader, OPCODE } from '../../src/websocket/frames.ts';
import { buildBundle } from '../../../testkit/policy/opa-build.ts';

const AWS_ID = 'AKIAQ4T7ZK2MWX3RPL6N';
const AWS_SECRET = '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';
const CREDS = `aws_access_key_id = ${AWS_ID}\naws_secret_access_key = ${AWS_SECRET}\n`;

const POLICY = `package sluice

default decision := {"allow": false, "code": "test.deny", "reason": "not listed"}

decision := {"allow": true, "code": "test.ws_mask", "reason": "websocket, masked", "allow_upgrade": true, "mask": ["*"], "dlp": "mask"} if {
	input.request.host == "ws.example"
	input.facts.upgrade.protocol == "websocket"
}

decision := {"allow": true, "code": "test.plain", "reason": "plain requests only"} if {
	input.request.host == "ws.example"
	not input.facts.upgrade
}

# No dlp: an upgrade blocks a secret (the safe default).
decision := {"allow": true, "code": "test.ws_block", "reason": "websocket, no dlp", "allow_upgrade": true} if input.request.host == "block.example"

# Where the policy injects a credential, an upgrade cannot carry it: refused.
decision := {"allow": true, "code": "test.ws_cred", "reason": "injected token", "allow_upgrade": true, "credential": {"provider": "oauth2-token-exchange"}} if input.request.host == "cred.example"

# The subprotocol is a fact: only "chat" is allowed here.
decision := {"allow": true, "code": "test.ws_chat", "reason": "chat only", "allow_upgrade": true, "dlp": "mask"} if {
	input.request.host == "chat.example"
	input.facts.upgrade.subprotocols == ["chat"]
}
`;

let upstream: Server;
let tlsUpstream: TestUpstream;
let wss: WebSocketServer;
let sidecar: TestSidecar;
const received: { data: string; binary: boolean }[] = [];
const negotiated: string[] = [];
const spoolDir = mkdtempSync(join(tmpdir(), 'sluice-ws-spool-'));

beforeAll(async () => {
  upstream = createServer((_req, res) => res.end('plain'));
  // The server would negotiate permessage-deflate if it were offered.
  wss = new WebSocketServer({ noServer: true, perMessageDeflate: true, handleProtocols: (p) => (p.has('chat') ? 'chat' : false) });
  upstream.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)));
  wss.on('connection', (ws: WebSocket) => {
    negotiated.push(ws.extensions);
    ws.on('message', (data: Buffer, binary: boolean) => {
      const text = data.toString();
      received.push({ data: text, binary });
      if (text === 'send me a secret') ws.send(`here: ${CREDS}`);
      else if (text === 'send me a big one') ws.send(Buffer.alloc(1024 * 1024 + 1, 'a'));
      else ws.send(binary ? data : `echo: ${text}`, { binary });
    });
    ws.on('ping', (d: Buffer) => received.push({ data: `ping:${d.toString()}`, binary: false }));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  const dial = `127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  // wss: TLS from the agent to sluice (a leaf for ws.example) and from sluice to the upstream.
  const ca = await createTestCa();
  tlsUpstream = await startHttpsUpstream(ca, ['ws.example']);
  tlsUpstream.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)));
  sidecar = await startTestSidecar({
    extraRootsFiles: [ca.caFile],
    resolve: { 'ws.example:80': dial, 'ws.example:443': tlsUpstream.dial, 'block.example:80': dial, 'chat.example:80': dial, 'cred.example:80': dial },
    bundle: buildBundle(POLICY, 'websocket-test'),
    config: { audit: { spoolDir, spool: { fsync: 'none' } } },
  });
}, 60_000);

afterAll(async () => {
  await sidecar?.stop();
  for (const c of wss?.clients ?? []) c.terminate();
  await tlsUpstream?.close();
  wss?.close();
  upstream?.closeAllConnections();
  upstream?.close();
});

/** A real WebSocket client whose TCP connection goes to sluice's transparent port (as iptables would send it). */
function open(host: string, protocols?: string[]): Promise<WebSocket> {
  const port = sidecar.addresses.transparent!.port;
  const ws = new WebSocket(`ws://${host}/chat`, protocols, { createConnection: () => connect(port, '127.0.0.1') });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`refused: ${res.statusCode} ${String(res.headers['x-sluice-decision'])}`)));
    ws.once('error', reject);
  });
}

function nextMessage(ws: WebSocket): Promise<{ data: Buffer; binary: boolean }> {
  return new Promise((resolve) => ws.once('message', (data: Buffer, binary: boolean) => resolve({ data, binary })));
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })));
}

/** A raw upgrade through the transparent port: the status line and the socket. */
function rawUpgrade(host: string, extra: string): Promise<{ head: string; socket: Socket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = connect(sidecar.addresses.transparent!.port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      resolve({ head: buf.subarray(0, end).toString(), socket, rest: buf.subarray(end + 4) });
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(`GET /chat HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\n${extra}\r\n`);
  });
}

const WS_HEADERS = 'Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';

async function metrics(): Promise<string> {
  return (await fetch(`${sidecar.adminUrl}/metrics`)).text();
}

describe('the upgrade decision', () => {
  test('is made with facts: the policy sees facts.upgrade (a subprotocol it does not allow is refused)', async () => {
    const ok = await open('chat.example', ['chat']);
    expect(ok.protocol).toBe('chat');
    ok.close();
    await expect(open('chat.example', ['other'])).rejects.toThrow(/refused: 403 deny; code=test.deny/);
  });

  test('where the decision injects a credential, the upgrade is refused (the agent\'s own would be relayed)', async () => {
    await expect(open('cred.example')).rejects.toThrow(/refused: 403 deny; code=http.upgrade_credential/);
  });

  test('h2c and protocols other than WebSocket are refused, whatever the policy says', async () => {
    const h2c = await rawUpgrade('ws.example', 'Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n');
    expect(h2c.head).toMatch(/^HTTP\/1\.1 400/);
    expect(h2c.head).toContain('code=http.upgrade_h2c');
    h2c.socket.destroy();
    const spdy = await rawUpgrade('ws.example', 'Upgrade: SPDY/3.1\r\n');
    expect(spdy.head).toMatch(/^HTTP\/1\.1 403/);
    expect(spdy.head).toContain('code=http.upgrade_protocol');
    spdy.socket.destroy();
  });

  test('the extension offer is stripped: frames are plain both ways', async () => {
    const before = negotiated.length;
    const ws = await open('ws.example');
    expect(ws.extensions).toBe('');
    const echoed = nextMessage(ws);
    ws.send('hello');
    expect((await echoed).data.toString()).toBe('echo: hello');
    expect(negotiated.slice(before)).toEqual(['']);
    ws.close();
  });
});

describe('messages', () => {
  test('over TLS both ways (wss): a secret from the agent is masked, the echo comes back', async () => {
    const port = sidecar.addresses.transparent!.port;
    const ca = readFileSync(sidecar.trust.caFile);
    const ws = new WebSocket('wss://ws.example/chat', undefined, { createConnection: () => tlsConnect({ host: '127.0.0.1', port, servername: 'ws.example', ca, ALPNProtocols: ['http/1.1'] }) });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const a = nextMessage(ws);
    ws.send(`over tls: ${CREDS}`);
    const got = (await a).data.toString();
    expect(got).toMatch(/^echo: over tls: /);
    expect(got).not.toContain(AWS_SECRET);
    ws.close();
  });


  test('text, binary and fragmented messages are relayed whole', async () => {
    const ws = await open('ws.example');
    const bin = Buffer.from([0, 1, 2, 255, 254]);
    const a = nextMessage(ws);
    ws.send(bin, { binary: true });
    expect((await a).data).toEqual(bin);
    const b = nextMessage(ws);
    ws.send('frag', { fin: false });
    ws.ping('keepalive');
    ws.send('mented', { fin: true });
    expect((await b).data.toString()).toBe('echo: fragmented');
    expect(received.some((r) => r.data === 'ping:keepalive')).toBe(true);
    ws.close();
  });

  test('a secret the agent sends is masked before it leaves (dlp: mask), raw and base64-encoded', async () => {
    const ws = await open('ws.example');
    const a = nextMessage(ws);
    ws.send(`my key: ${CREDS}`);
    const echoed = (await a).data.toString();
    expect(echoed).not.toContain(AWS_SECRET);
    expect(echoed).toContain('[REDACTED:');
    const b = nextMessage(ws);
    ws.send(JSON.stringify({ blob: Buffer.from(CREDS).toString('base64') }));
    const echoed2 = (await b).data.toString();
    expect(Buffer.from((JSON.parse(echoed2.slice('echo: '.length)) as { blob: string }).blob, 'base64').toString()).not.toContain(AWS_SECRET);
    expect(received.map((r) => r.data).join('\n')).not.toContain(AWS_SECRET);
    ws.close();
  });

  test('a secret the upstream sends is masked before the agent sees it', async () => {
    const ws = await open('ws.example');
    const a = nextMessage(ws);
    ws.send('send me a secret');
    const got = (await a).data.toString();
    expect(got).toMatch(/^here: /);
    expect(got).not.toContain(AWS_SECRET);
    ws.close();
  });

  test('without dlp a secret closes the connection with 1008 before it leaves, recorded and counted', async () => {
    const ws = await open('block.example');
    const before = received.length;
    const c = closed(ws);
    ws.send(`my key: ${CREDS}`);
    const { code, reason } = await c;
    expect(code).toBe(1008);
    expect(reason).toBe('sluice: dlp.secret_in_websocket');
    expect(received.slice(before).map((r) => r.data).join('')).not.toContain(AWS_SECRET);
    expect(await metrics()).toMatch(/sluice_websocket_closes_total\{code="dlp.secret_in_websocket"\} [1-9]/);
  });

  test('a secret in a ping closes the connection too (control payloads are inspected)', async () => {
    const ws = await open('block.example');
    const c = closed(ws);
    ws.ping(AWS_SECRET.slice(0, 40) + ' ' + AWS_ID);
    expect((await c).code).toBe(1008);
  });

  test('a secret split across two messages closes the connection (the far side would join them)', async () => {
    const ws = await open('ws.example');
    const before = received.length;
    const c = closed(ws);
    const whole = `aws_access_key_id = ${AWS_ID}`;
    const first = nextMessage(ws);
    ws.send(whole.slice(0, 26));
    await first;
    ws.send(whole.slice(26));
    const { code, reason } = await c;
    expect(code).toBe(1008);
    expect(reason).toBe('sluice: dlp.secret_across_messages');
    expect(received.slice(before).map((r) => r.data).join('')).not.toContain(AWS_ID);
  });

  test('a message over the limit closes with 1009, either way', async () => {
    const ws = await open('ws.example');
    const c = closed(ws);
    ws.send(Buffer.alloc(1024 * 1024 + 1, 'b'));
    expect((await c).code).toBe(1009);
    const ws2 = await open('ws.example');
    const c2 = closed(ws2);
    ws2.send('send me a big one');
    expect((await c2).code).toBe(1009);
  });

  test('a malformed frame (an unmasked client frame) closes with 1002', async () => {
    const r = await rawUpgrade('ws.example', WS_HEADERS);
    expect(r.head).toMatch(/^HTTP\/1\.1 101/);
    const reader = new FrameReader('server');
    const events: unknown[] = [];
    const ended = new Promise<void>((resolve) => r.socket.once('close', () => resolve()));
    r.socket.on('data', (d: Buffer) => events.push(...reader.push(d).events));
    r.socket.write(encodeFrame(OPCODE.text, Buffer.from('not masked')));
    await ended;
    expect(events).toEqual([expect.objectContaining({ type: 'close', code: 1002, reason: 'sluice: ws.malformed_frame' })]);
  });
});

describe('the audit trail', () => {
  test('records the upgrade with its facts, each message by direction and size, and how it ended; never a secret', async () => {
    const ws = await open('ws.example');
    const a = nextMessage(ws);
    ws.send(`audit me ${AWS_ID}`);
    await a;
    const c = closed(ws);
    ws.close(1000, 'bye');
    await c;
    await new Promise((r) => setTimeout(r, 300)); // the end record is written after the close
    const files: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d)) {
        const p = join(d, e);
        if (statSync(p).isDirectory()) walk(p);
        else files.push(p);
      }
    };
    walk(spoolDir);
    const lines = files.flatMap((f) => readFileSync(f, 'utf8').split('\n')).filter((l) => l.startsWith('{'));
    const all = lines.join('\n');
    expect(all).not.toContain(AWS_ID);
    expect(all).not.toContain(AWS_SECRET);
    type Ev = { kind: string; request_id?: string; request?: Record<string, unknown>; masking?: unknown[]; bytes?: { in: number; out: number }; detail?: Record<string, unknown> };
    const events = lines.map((l) => JSON.parse(l) as Ev);
    const wsOf = (e: Ev) => e.detail?.websocket as { direction?: string; end?: string } | undefined;
    const sent = events.find((e) => wsOf(e)?.direction === 'out' && e.masking?.length);
    expect(sent).toBeDefined();
    expect(sent).toMatchObject({ kind: 'request', request: { host: 'ws.example', path: '/chat' }, bytes: { in: 0 }, masking: expect.arrayContaining([expect.objectContaining({ direction: 'request' })]) });
    const same = events.filter((e) => e.request_id === sent!.request_id);
    expect(same[0]).toMatchObject({ kind: 'request', request: { host: 'ws.example', facts: { upgrade: { protocol: 'websocket' } } }, decision: { action: 'allow', code: 'test.ws_mask' }, detail: { websocket: true } });
    expect(same.some((e) => wsOf(e)?.direction === 'in' && e.kind === 'response')).toBe(true);
    expect(same.some((e) => wsOf(e)?.end === 'ws.closed')).toBe(true);
    expect(await metrics()).toMatch(/sluice_websocket_frames_total\{direction="out",outcome="masked"\} [1-9]/);
  });
});
