// Classifying a redirected connection from its first bytes: real ClientHellos (from Node's own
// TLS client) give SNI and ALPN; HTTP gives its method; anything else is opaque.
import { describe, expect, test } from '@jest/globals';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { classifyFirstBytes } from '../../src/listener/first-bytes.ts';

async function captureClientHello(servername: string | undefined, alpn: string[]): Promise<Buffer> {
  return new Promise((resolve) => {
    const server = createServer((socket) => {
      socket.once('data', (chunk) => {
        resolve(chunk);
        socket.destroy();
        server.close();
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as AddressInfo).port;
      const c = tlsConnect({ host: '127.0.0.1', port, servername, ALPNProtocols: alpn, rejectUnauthorized: false });
      c.on('error', () => undefined);
    });
  });
}

describe('classifyFirstBytes', () => {
  test('a real ClientHello yields SNI and ALPN', async () => {
    const hello = await captureClientHello('registry.npmjs.org', ['h2', 'http/1.1']);
    expect(classifyFirstBytes(hello)).toEqual({ kind: 'tls', sni: 'registry.npmjs.org', alpn: ['h2', 'http/1.1'] });
  });

  test('a ClientHello without SNI has no name', async () => {
    const hello = await captureClientHello(undefined, []);
    expect(classifyFirstBytes(hello)).toMatchObject({ kind: 'tls', sni: undefined });
  });

  test('a ClientHello split across reads asks for more until complete', async () => {
    const hello = await captureClientHello('github.com', []);
    for (const cut of [1, 3, 5, 40, hello.length - 1]) expect(classifyFirstBytes(hello.subarray(0, cut))).toEqual({ kind: 'need-more' });
  });

  test('corrupt hellos are opaque, never a throw', async () => {
    const hello = await captureClientHello('github.com', []);
    for (let i = 5; i < Math.min(hello.length, 120); i++) {
      const bad = Buffer.from(hello);
      bad[i] = bad[i]! ^ 0xff;
      const k = classifyFirstBytes(bad).kind;
      expect(['tls', 'opaque', 'need-more']).toContain(k);
    }
  });

  test.each([
    ['GET / HTTP/1.1\r\n', 'http'],
    ['POST /x HTTP/1.1\r\n', 'http'],
    ['CONNECT a:443 HTTP/1.1\r\n', 'http'],
    ['SSH-2.0-OpenSSH_9\r\n', 'opaque'],
    ['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'opaque'],
    ['\x00\x01\x02binary', 'opaque'],
  ])('%j → %s', (text, kind) => expect(classifyFirstBytes(Buffer.from(text, 'latin1')).kind).toBe(kind));

  test('a short uppercase prefix waits for more bytes', () => {
    expect(classifyFirstBytes(Buffer.from('GE'))).toEqual({ kind: 'need-more' });
  });
});
