// A server name is minted into a leaf certificate only when it is a plain hostname or an IP
// literal: the agent controls the TLS server name (and the CONNECT target), so a wildcard, a NUL,
// a byte past ASCII or an endless name must never reach a certificate, whether the policy would
// deny the name or not. Checked where a leaf is signed (every minting path) and, on the real
// sidecar with raw ClientHellos as the agent, where a connection is handed on: such a name is
// refused (net.bad_server_name) before any decision or certificate, and the agent reads no
// ServerHello. A denied hostname is still terminated, so its requests get a readable 403.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classifyFirstBytes } from '../../src/listener/first-bytes.ts';
import { mintLeafCertificate } from '../../src/tls/leaf-certificates.ts';
import { generatePodCa } from '../../src/tls/pod-ca.ts';
import type { PodCa } from '../../src/tls/pod-ca.ts';
import { startTestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import { buildBundle } from '../../../testkit/policy/opa-build.ts';

const BAD_NAMES = ['*.github.com', 'a\x00.evil.com', 'x'.repeat(70_000), 'ex\u0100mple.com', 'ex\u00e9mple.com', 'fe80::1%eth0', 'a..b', 'example.com.', 'a b.com', 'under_score.example', `${'a'.repeat(64)}.com`, `${'a.'.repeat(127)}a`];
const GOOD_NAMES = ['github.com', 'registry.npmjs.org', 'xn--bcher-kva.example', 'a-b--c.example', '1.2.3.4', '::1', '2001:db8::7', '::ffff:10.0.0.1', `${'a'.repeat(63)}.com`];

describe('minting a leaf', () => {
  let ca: PodCa;
  beforeAll(async () => {
    ca = await generatePodCa('server-name-test');
  });

  it.each(BAD_NAMES.map((n) => [JSON.stringify(n.slice(0, 40)), n]))('refuses %s', async (_label, name) => {
    await expect(mintLeafCertificate(ca, name)).rejects.toThrow(/not a hostname or IP address/);
  });

  it.each(GOOD_NAMES)('mints %s, with exactly that name as its SAN', async (name) => {
    const leaf = new X509Certificate((await mintLeafCertificate(ca, name)).der);
    expect(leaf.verify(ca.keys.publicKey)).toBe(true);
    expect(name.includes(':') || /^\d+\./.test(name) ? leaf.checkIP(name) : leaf.checkHost(name)).toBe(name);
    expect(leaf.subjectAltName).not.toContain('*');
  });
});

/** A real ClientHello from Node's TLS client (server name `servername`, none when undefined). */
async function captureClientHello(servername: string | undefined): Promise<Buffer> {
  return new Promise((resolve) => {
    const server = createServer((socket) => {
      socket.once('data', (chunk: Buffer) => {
        resolve(chunk);
        socket.destroy();
        server.close();
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const c = tlsConnect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, servername, ALPNProtocols: ['http/1.1'], rejectUnauthorized: false });
      c.on('error', () => undefined);
    });
  });
}

/** A ClientHello whose server name is `sni` byte for byte (a placeholder of the same length swapped in). */
async function helloWithSni(sni: Buffer): Promise<Buffer> {
  const placeholder = 'q'.repeat(sni.length - 4) + '.com';
  const hello = await captureClientHello(placeholder);
  const at = hello.indexOf(placeholder, 0, 'latin1');
  expect(at).toBeGreaterThan(0);
  sni.copy(hello, at);
  return hello;
}

describe('the TLS server name as sent', () => {
  it('is read one character per byte: 0xAA is not a wildcard', async () => {
    const hello = await helloWithSni(Buffer.concat([Buffer.from([0xaa]), Buffer.from('.github.com')]));
    const got = classifyFirstBytes(hello);
    expect(got).toMatchObject({ kind: 'tls' });
    expect((got as { sni: string }).sni).toBe('\u00aa.github.com');
  });
});

describe('on the sidecar: a name that is not a hostname gets no certificate', () => {
  let sidecar: TestSidecar;
  const refused: { code: string; reason: string; via: string; name?: string }[] = [];
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-server-name-'));
    sidecar = await startTestSidecar({
      // Names ending in github.com are allowed at the connection level; the rest denied.
      bundle: buildBundle(
        `package sluice

default decision := {"allow": false, "code": "test.name_denied", "reason": "not listed"}

decision := {"allow": true, "code": "test.allowed", "reason": "listed"} if endswith(input.request.host, "github.com")
`,
        'server-name',
      ),
      config: { audit: { spoolDir: join(dir, 'spool'), spool: { fsync: 'none' } } },
      events: { refused: (r) => void refused.push(r) },
    });
  }, 60_000);
  afterAll(async () => {
    await sidecar?.stop();
  });

  /** Everything the sidecar sends before it closes the connection (bounded). */
  function answerOf(socket: Socket): Promise<Buffer> {
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      socket.on('data', (d: Buffer) => chunks.push(d));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(Buffer.concat(chunks)));
      socket.setTimeout(5000, () => socket.destroy());
    });
  }

  async function refusalOf(name: string): Promise<{ code: string } | undefined> {
    for (let i = 0; i < 200; i++) {
      const r = refused.find((x) => x.name === name || x.reason.includes(JSON.stringify(name.slice(0, 20)).slice(1, -1)));
      if (r) return r;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return undefined;
  }

  it.each([
    ['a wildcard', Buffer.from('*.github.com')],
    ['0xAA (ascii-decoded, a wildcard)', Buffer.concat([Buffer.from([0xaa]), Buffer.from('.github.com')])],
    ['a NUL', Buffer.from('a\x00.github.com', 'latin1')],
    ['a byte past ASCII', Buffer.from('ex\u00e9mple.github.com', 'latin1')],
  ])('an SNI with %s is refused with net.bad_server_name and no ServerHello', async (_label, sni) => {
    const hello = await helloWithSni(sni);
    const socket = connect(sidecar.addresses.transparent!.port, '127.0.0.1');
    const answer = answerOf(socket);
    socket.write(hello);
    expect((await answer).subarray(0, 1)).not.toEqual(Buffer.from([0x16]));
    expect(await refusalOf(sni.toString('latin1'))).toMatchObject({ code: 'net.bad_server_name' });
  });

  it('a CONNECT to a wildcard the policy allows gets no certificate for it either', async () => {
    const socket = connect(sidecar.addresses.proxy!.port, '127.0.0.1');
    const answer = answerOf(socket);
    socket.write('CONNECT *.github.com:443 HTTP/1.1\r\nHost: *.github.com:443\r\n\r\n');
    await new Promise((resolve) => socket.once('data', resolve));
    socket.write(await captureClientHello(undefined));
    const got = (await answer).toString('latin1');
    expect(got).toMatch(/^HTTP\/1\.1 200 /);
    expect(got).not.toContain('\x16\x03');
    expect(await refusalOf('*.github.com')).toMatchObject({ code: 'net.bad_server_name' });
  });

  it('a denied hostname is still terminated: the agent reads the 403', async () => {
    const socket = tlsConnect({ host: '127.0.0.1', port: sidecar.addresses.transparent!.port, servername: 'denied.example', ca: readFileSync(sidecar.trust.caFile), ALPNProtocols: ['http/1.1'] });
    const answer = answerOf(socket);
    socket.once('secureConnect', () => socket.end('GET / HTTP/1.1\r\nHost: denied.example\r\nConnection: close\r\n\r\n'));
    expect((await answer).toString('latin1')).toMatch(/^HTTP\/1\.1 403 [^]*test\.name_denied/);
  });
});
