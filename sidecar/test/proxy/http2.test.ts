// HTTP/2 towards the agent: offered through ALPN on intercepted TLS, decided by the same pipeline
// as HTTP/1.1 (same policy, same domain-fronting checks, same answers), forwarded upstream as
// HTTP/1.1 — except gRPC, which goes out over HTTP/2 with its trailers relayed back. Real clients:
// curl (--http2 through CONNECT) and node:http2 on the transparent port.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { constants as h2constants, connect as h2connect, createSecureServer } from 'node:http2';
import type { ClientHttp2Session, Http2SecureServer, IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import { connect as netConnect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { createTestCa, echoHandler, startHttpsUpstream } from '../../../testkit/sidecar/upstreams.ts';
import type { TestCa, TestUpstream } from '../../../testkit/sidecar/upstreams.ts';
import { startTestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import { mintLeafCertificate } from '../../src/tls/leaf-certificates.ts';
import { allowAllRego, buildBundle } from '../../../testkit/policy/opa-build.ts';

const run = promisify(execFile);

let ca: TestCa;
let registry: TestUpstream;
let grpcServer: Http2SecureServer;
let grpcDial: string;
const grpcSeen: { headers: IncomingHttpHeaders; httpVersion: string }[] = [];
let sidecar: TestSidecar;
let allowAll: TestSidecar;
let h1Only: TestSidecar;
let endlessClosed = Promise.withResolvers<void>();
/** path → resolves with the status once the allow-all sidecar has finished that request */
const allowAllDone = new Map<string, PromiseWithResolvers<number>>();
/** refusal code → resolves with the reason once the main sidecar reports it */
const refusals = new Map<string, PromiseWithResolvers<string>>();

/** A unary gRPC-shaped upstream: echoes the message framed, then grpc-status in the trailers. */
async function startGrpcUpstream(): Promise<void> {
  const leaf = await mintLeafCertificate(ca.ca, 'grpc.example.com');
  grpcServer = createSecureServer({ cert: leaf.toString('pem'), key: ca.ca.leafKeyPem, allowHTTP1: false });
  grpcServer.on('request', (req, res) => {
    grpcSeen.push({ headers: req.headers, httpVersion: req.httpVersion });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const message = Buffer.concat(chunks).subarray(5);
      const reply = Buffer.from(`echo:${message.toString()}`);
      const frame = Buffer.alloc(5 + reply.length);
      frame.writeUInt32BE(reply.length, 1);
      reply.copy(frame, 5);
      res.writeHead(200, { 'content-type': 'application/grpc' });
      res.addTrailers({ 'grpc-status': '0', 'grpc-message': 'served' });
      res.end(frame);
    });
  });
  await new Promise<void>((resolve) => grpcServer.listen(0, '127.0.0.1', () => resolve()));
  grpcDial = `127.0.0.1:${(grpcServer.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  ca = await createTestCa();
  registry = await startHttpsUpstream(ca, ['registry.npmjs.org'], (req, res, body) => {
    if (req.url === '/drip') {
      // 16 KiB every 20 ms whatever the back-pressure, like a slow mirror.
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const timer = setInterval(() => res.write(Buffer.alloc(16 * 1024, 7)), 20);
      res.once('close', () => {
        clearInterval(timer);
        endlessClosed.resolve();
      });
      return;
    }
    if (req.url === '/dup-etag') {
      // Legal to send on HTTP/1.1, refused by HTTP/2 (Location is a single-value field).
      res.setHeader('location', ['/a', '/b']);
      res.end('x');
      return;
    }
    if (req.url !== '/endless') return echoHandler(req, res, body);
    // Streams until the client goes away: the sidecar must release it when the agent does.
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const chunk = randomBytes(16 * 1024);
    const pump = () => {
      while (!res.destroyed && res.write(chunk));
    };
    res.on('drain', pump);
    res.once('close', () => endlessClosed.resolve());
    pump();
  });
  await startGrpcUpstream();
  const resolve = { 'registry.npmjs.org:443': registry.dial, 'grpc.example.com:443': grpcDial };
  sidecar = await startTestSidecar({ resolve, extraRootsFiles: [ca.caFile], events: { refused: (r) => refusals.get(r.code)?.resolve(r.reason) } });
  allowAll = await startTestSidecar({
    resolve,
    extraRootsFiles: [ca.caFile],
    bundle: buildBundle(allowAllRego('test.allow'), 'allow-all'),
    events: { requestDone: (ctx) => allowAllDone.get(ctx.summary?.path ?? '')?.resolve(ctx.status ?? 0) },
  });
  h1Only = await startTestSidecar({ resolve, extraRootsFiles: [ca.caFile], config: { http2: { enabled: false } } });
}, 60_000);

afterAll(async () => {
  for (const s of [sidecar, allowAll, h1Only]) await s?.stop();
  await registry?.close();
  await new Promise<void>((resolve) => (grpcServer ? grpcServer.close(() => resolve()) : resolve()));
});

/** An HTTP/2 session to `name` through a sidecar's transparent port (as a redirected agent). */
function session(via: TestSidecar, name: string): ClientHttp2Session {
  const port = via.addresses.transparent!.port;
  const ca = readFileSync(via.trust.caFile);
  return h2connect(`https://${name}`, { createConnection: () => tlsConnect({ host: '127.0.0.1', port, servername: name, ca, ALPNProtocols: ['h2'] }) });
}

/** The same through the explicit proxy: CONNECT, then TLS and HTTP/2 inside the tunnel. */
async function sessionViaConnect(via: TestSidecar, name: string): Promise<ClientHttp2Session> {
  const raw = netConnect(via.addresses.proxy!.port, '127.0.0.1');
  raw.write(`CONNECT ${name}:443 HTTP/1.1\r\nHost: ${name}:443\r\n\r\n`);
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    const onData = (c: Buffer) => {
      seen += c.toString('latin1');
      if (!seen.includes('\r\n\r\n')) return;
      raw.off('data', onData);
      if (seen.startsWith('HTTP/1.1 200')) resolve();
      else reject(new Error(seen));
    };
    raw.on('data', onData);
    raw.once('error', reject);
  });
  const ca = readFileSync(via.trust.caFile);
  return h2connect(`https://${name}`, { createConnection: () => tlsConnect({ socket: raw, servername: name, ca, ALPNProtocols: ['h2'] }) });
}

interface H2Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  trailers: IncomingHttpHeaders;
}

function request(s: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: Buffer | Buffer[]): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const stream = s.request(headers, { endStream: body === undefined });
    let status = 0;
    let got: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      status = Number(h[':status']);
      got = h;
    });
    stream.on('trailers', (t: IncomingHttpHeaders) => {
      trailers = t;
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve({ status, headers: got, body: Buffer.concat(chunks), trailers }));
    stream.on('error', reject);
    if (body !== undefined) {
      // Several DATA frames and no content-length: the body's end is END_STREAM alone.
      for (const part of Array.isArray(body) ? body : [body]) stream.write(part);
      stream.end();
    }
  });
}

function close(s: ClientHttp2Session): Promise<void> {
  return new Promise((resolve) => s.close(() => resolve()));
}

describe('HTTP/2 towards the agent', () => {
  test('curl negotiates h2 through CONNECT; the upstream gets HTTP/1.1 with :authority as Host', async () => {
    const r = await run('curl', ['-sS', '-i', '--http2', '--max-time', '20', '--cacert', sidecar.trust.caFile, '-x', sidecar.proxyUrl, 'https://registry.npmjs.org/left-pad']);
    expect(r.stdout).toMatch(/^HTTP\/2 200/m);
    const body = JSON.parse(r.stdout.slice(r.stdout.indexOf('\r\n\r\n', r.stdout.indexOf('HTTP/2')) + 4)) as { url: string; host: string };
    expect(body).toMatchObject({ url: '/left-pad', host: 'registry.npmjs.org' });
    expect(registry.requests.at(-1)!.headers.host).toBe('registry.npmjs.org');
  });

  test('streams on one connection are decided one by one: reads allowed, a write denied with the JSON answer', async () => {
    const s = session(sidecar, 'registry.npmjs.org');
    try {
      const reads = await Promise.all([1, 2, 3].map((i) => request(s, { ':method': 'GET', ':path': `/pkg-${i}` })));
      expect(reads.map((r) => r.status)).toEqual([200, 200, 200]);
      expect(reads.map((r) => (JSON.parse(r.body.toString()) as { url: string }).url)).toEqual(['/pkg-1', '/pkg-2', '/pkg-3']);
      const put = await request(s, { ':method': 'PUT', ':path': '/acme', 'content-type': 'application/json' }, Buffer.from('{}'));
      expect(put.status).toBe(403);
      expect(put.headers['x-sluice-decision']).toBe('deny; code=registry.write_denied');
      expect(JSON.parse(put.body.toString())).toMatchObject({ error: 'registry.write_denied' });
    } finally {
      await close(s);
    }
  });

  test('a streamed body without content-length arrives whole', async () => {
    const parts = [randomBytes(700_000), randomBytes(900_000), randomBytes(500_000)];
    const s = session(allowAll, 'registry.npmjs.org');
    try {
      const r = await request(s, { ':method': 'POST', ':path': '/upload', 'content-type': 'application/octet-stream' }, parts);
      expect(r.status).toBe(200);
      const seen = registry.requests.at(-1)!;
      expect(seen.body.length).toBe(2_100_000);
      expect(createHash('sha256').update(seen.body).digest('hex')).toBe(createHash('sha256').update(Buffer.concat(parts)).digest('hex'));
    } finally {
      await close(s);
    }
  });

  test('a stream the agent resets mid-body never reaches the upstream as a complete request', async () => {
    const done = Promise.withResolvers<number>();
    allowAllDone.set('/truncated', done);
    const s = session(allowAll, 'registry.npmjs.org');
    s.on('error', () => undefined);
    try {
      const stream = s.request({ ':method': 'POST', ':path': '/truncated', 'content-type': 'application/octet-stream' }, { endStream: false });
      stream.on('error', () => undefined);
      stream.write(randomBytes(64 * 1024));
      await new Promise<void>((resolve) => stream.once('ready', () => resolve()));
      stream.close(h2constants.NGHTTP2_CANCEL);
      expect(await done.promise).toBe(499);
      expect(registry.requests.some((r) => r.url === '/truncated')).toBe(false);
    } finally {
      await close(s);
    }
  });

  test('an upstream header HTTP/2 cannot carry is a 502, and the sidecar carries on', async () => {
    const s = session(sidecar, 'registry.npmjs.org');
    try {
      const bad = await request(s, { ':method': 'GET', ':path': '/dup-etag' });
      expect(bad.status).toBe(502);
      expect(JSON.parse(bad.body.toString())).toMatchObject({ error: 'upstream.bad_headers' });
      expect((await request(s, { ':method': 'GET', ':path': '/after' })).status).toBe(200);
    } finally {
      await close(s);
    }
  });

  test(':authority other than the TLS server name is refused (domain fronting)', async () => {
    const s = session(sidecar, 'registry.npmjs.org');
    try {
      const r = await request(s, { ':method': 'GET', ':path': '/x', ':authority': 'evil.example' });
      expect(r.status).toBe(403);
      expect(JSON.parse(r.body.toString())).toMatchObject({ error: 'net.sni_host_mismatch' });
    } finally {
      await close(s);
    }
  });

  test('a Host field that disagrees with :authority is refused', async () => {
    const s = session(sidecar, 'registry.npmjs.org');
    try {
      const r = await request(s, { ':method': 'GET', ':path': '/x', ':authority': 'registry.npmjs.org', host: 'evil.example' });
      expect(r.status).toBe(400);
      expect(JSON.parse(r.body.toString())).toMatchObject({ error: 'net.host_mismatch' });
    } finally {
      await close(s);
    }
  });

  test('gRPC goes upstream over HTTP/2 with te: trailers, and grpc-status comes back in the trailers', async () => {
    const s = session(allowAll, 'grpc.example.com');
    try {
      const message = Buffer.from('ping');
      const frame = Buffer.alloc(5 + message.length);
      frame.writeUInt32BE(message.length, 1);
      message.copy(frame, 5);
      const r = await request(s, { ':method': 'POST', ':path': '/sluice.test.Echo/Say', 'content-type': 'application/grpc', te: 'trailers' }, frame);
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('application/grpc');
      expect(r.body.subarray(5).toString()).toBe('echo:ping');
      expect(r.trailers).toMatchObject({ 'grpc-status': '0', 'grpc-message': 'served' });
      expect(grpcSeen.at(-1)).toMatchObject({ httpVersion: '2.0', headers: { te: 'trailers', ':path': '/sluice.test.Echo/Say' } });
    } finally {
      await close(s);
    }
  });

  test('with http2.enabled false, ALPN chooses http/1.1 even for a client that prefers h2', async () => {
    const socket = tlsConnect({ host: '127.0.0.1', port: h1Only.addresses.transparent!.port, servername: 'registry.npmjs.org', ca: readFileSync(h1Only.trust.caFile), ALPNProtocols: ['h2', 'http/1.1'] });
    const alpn = await new Promise<string | false>((resolve, reject) => {
      socket.once('secureConnect', () => resolve(socket.alpnProtocol ?? false));
      socket.once('error', reject);
    });
    socket.destroy();
    expect(alpn).toBe('http/1.1');
  });

  test.each([
    ['the agent goes away', 'transparent', (s: ClientHttp2Session) => s.destroy()],
    ['the kill switch cuts every connection', 'transparent', () => void sidecar.gateway.cutAll()],
    ['the agent goes away', 'CONNECT', (s: ClientHttp2Session) => s.destroy()],
    ['the kill switch cuts every connection', 'CONNECT', () => void sidecar.gateway.cutAll()],
    ['the kill switch cuts every connection', 'CONNECT, reading a drip', () => void sidecar.gateway.cutAll()],
  ])('an endless download is released upstream when %s (%s)', async (_what, via, cut) => {
    endlessClosed = Promise.withResolvers<void>();
    const drip = via.endsWith('drip');
    const s = via.startsWith('CONNECT') ? await sessionViaConnect(sidecar, 'registry.npmjs.org') : session(sidecar, 'registry.npmjs.org');
    s.on('error', () => undefined);
    const stream = s.request({ ':method': 'GET', ':path': drip ? '/drip' : '/endless' });
    stream.on('error', () => undefined);
    await new Promise<void>((resolve) => {
      let n = 0;
      stream.on('data', (c: Buffer) => {
        n += c.length;
        if (n > (drip ? 160 * 1024 : 1024 * 1024)) {
          // The fast one is left unread (flow control holds it); the drip keeps being read.
          if (!drip) stream.pause();
          resolve();
        }
      });
    });
    cut(s);
    // Resolves when the upstream's response closes: the sidecar aborted its upstream request.
    await endlessClosed.promise;
  });

  test('a connection that breaks the HTTP/2 framing is closed and counted; nothing goes upstream', async () => {
    const before = registry.requests.length;
    const socket = tlsConnect({ host: '127.0.0.1', port: sidecar.addresses.transparent!.port, servername: 'registry.npmjs.org', ca: readFileSync(sidecar.trust.caFile), ALPNProtocols: ['h2'] });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', () => resolve());
      socket.once('error', reject);
    });
    socket.on('error', () => undefined);
    socket.resume();
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    // Not the client preface: nghttp2 refuses the session (GOAWAY) and the sidecar closes it.
    socket.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n\x00\x00\x04\x08\x00\x00\x00\x00\x00garbage!'));
    await closed;
    const text = await (await fetch(`${sidecar.adminUrl}/metrics`)).text();
    expect(text).toMatch(/sluice_http_errors_total\{code="http.h2_protocol_error"\} [1-9]/);
    expect(registry.requests.length).toBe(before);
  });

  test('an agent that does not trust the pod CA fails the handshake, and the sidecar records why', async () => {
    const refused = Promise.withResolvers<string>();
    refusals.set('tls.handshake_failed', refused);
    const socket = tlsConnect({ host: '127.0.0.1', port: sidecar.addresses.transparent!.port, servername: 'registry.npmjs.org', ALPNProtocols: ['h2'] });
    await new Promise<void>((resolve) => socket.once('error', () => resolve()));
    expect(await refused.promise).toMatch(/TLS handshake/);
    const text = await (await fetch(`${sidecar.adminUrl}/metrics`)).text();
    expect(text).toMatch(/sluice_refusals_total\{code="tls.handshake_failed"\} [1-9]/);
  });

  test('h2 requests are counted like any other', async () => {
    const text = await (await fetch(`${sidecar.adminUrl}/metrics`)).text();
    expect(text).toMatch(/sluice_requests_total\{action="deny",code="registry.write_denied"\} 1/);
    expect(text).toMatch(/sluice_requests_total\{action="deny",code="net.sni_host_mismatch"\} 1/);
  });
});
