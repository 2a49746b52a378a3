// The opening handshake sluice sends upstream for an agent's upgrade: an upgrade request that
// comes with a body is refused (http.upgrade_body: node:http would hand the body over as the
// upgraded protocol's first bytes, and the head upstream announced a length it never carried),
// and the Host the upstream reads is the decided and dialled one, not the agent's (which may name
// another port), as for a plain request. The real sidecar, raw sockets, a raw upstream that
// records the head it is sent.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { buildBundle } from '../../../testkit/policy/opa-build.ts';
import { startTestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';

const POLICY = `package sluice
default decision := {"allow": false, "code": "test.name_denied", "reason": "not listed"}
decision := {"allow": true, "allow_upgrade": true, "code": "test.allowed", "reason": "listed"} if input.request.host == "allowed.example"
`;

let sidecar: TestSidecar;
let raw: Server;
const heads: string[] = [];
const open = new Set<Socket>();

beforeAll(async () => {
  // Records each request head it is sent, then hangs up (the agent gets sluice's 502).
  raw = createServer((s) => {
    open.add(s);
    s.once('close', () => open.delete(s));
    let b = '';
    s.on('error', () => undefined);
    s.on('data', (d: Buffer) => {
      b += d.toString('latin1');
      const end = b.indexOf('\r\n\r\n');
      if (end < 0) return;
      heads.push(b.slice(0, end));
      s.destroy();
    });
  });
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', () => r()));
  const at = `127.0.0.1:${(raw.address() as AddressInfo).port}`;
  sidecar = await startTestSidecar({ bundle: buildBundle(POLICY, 'upgrade-head'), resolve: { 'allowed.example:80': at, 'allowed.example:8080': at } });
}, 60_000);

afterAll(async () => {
  await sidecar?.stop();
  for (const s of open) s.destroy();
  await new Promise<void>((r) => raw?.close(() => r()));
});

/** Writes `bytes`; everything answered until the sidecar closes (bounded). */
async function exchange(bytes: string): Promise<string> {
  const s = connect({ host: '127.0.0.1', port: sidecar.addresses.proxy!.port });
  await once(s, 'connect');
  let answer = '';
  s.on('data', (d: Buffer) => (answer += d.toString('latin1')));
  s.on('error', () => undefined);
  const timer = setTimeout(() => s.destroy(), 3000);
  s.write(bytes);
  await new Promise<void>((resolve) => s.once('close', () => resolve()));
  clearTimeout(timer);
  return answer;
}

const upgrade = (url: string, host: string, extra = '') =>
  `GET ${url} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`;

describe('an upgrade request with a body', () => {
  test.each([
    ['Content-Length', 'Content-Length: 12\r\n', 'secret-bodyXAFTERBYTES'],
    ['Transfer-Encoding', 'Transfer-Encoding: chunked\r\n', '5\r\nhello\r\n0\r\n\r\n'],
  ])('with %s is refused (http.upgrade_body) and nothing reaches the upstream', async (_what, header, body) => {
    const seen = heads.length;
    const answer = await exchange(upgrade('http://allowed.example/ws', 'allowed.example', header) + body);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('x-sluice-decision: deny; code=http.upgrade_body');
    expect(heads.slice(seen)).toEqual([]);
  });

  test('Content-Length: 0 goes on, without a Content-Length upstream', async () => {
    const seen = heads.length;
    await exchange(upgrade('http://allowed.example/ws', 'allowed.example', 'Content-Length: 0\r\n'));
    expect(heads.slice(seen)).toHaveLength(1);
    expect(heads[seen]).toMatch(/^GET \/ws HTTP\/1\.1\r\n/);
    expect(heads[seen]).not.toMatch(/content-length/i);
  });
});

describe('the Host the upstream reads', () => {
  test.each([
    ['the agent names another port', 'http://allowed.example/ws', 'allowed.example:9999', 'allowed.example'],
    ['the decided port is not the default', 'http://allowed.example:8080/ws', 'allowed.example', 'allowed.example:8080'],
    ['the default port is written out', 'http://allowed.example:80/ws', 'allowed.example:80', 'allowed.example'],
  ])('is the decided authority when %s', async (_what, url, host, forwarded) => {
    const seen = heads.length;
    await exchange(upgrade(url, host));
    expect(heads.slice(seen)).toHaveLength(1);
    const hosts = heads[seen]!.split('\r\n').filter((l) => /^host:/i.test(l));
    expect(hosts).toEqual([`host: ${forwarded}`]);
  });
});
