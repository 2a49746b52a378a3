// The framing of a response masked by its bytes, through real HTTP: an upstream server, a front
// that waits for the first bytes before it writes the head (sniffed-response.ts, as the response
// phase does for a body under a binary label) and a real client. A body passed as is keeps its
// Content-Length, ETag and Content-MD5; a short text body is masked whole (unchanged: every header
// kept; changed: exact length, weak ETag, no digest); a long one streams chunked with a weak ETag;
// the client reads every body complete.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createHash } from 'node:crypto';
import { createServer, get } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMasker } from '../../src/masking/index.ts';
import { sniffedStagesChooser } from '../../src/masking/response-body.ts';
import { sniffedResponse } from '../../src/masking/sniffed-response.ts';

const AWS_ID = 'AKIAQ4T7ZK2MWX3RPL6N';
const AWS_SECRET = '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';
const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(3000, 0xab)]);
const SECRET_TEXT = Buffer.from(`config:\naws_access_key_id = ${AWS_ID}\naws_secret_access_key = ${AWS_SECRET}\n`);
const PLAIN_TEXT = Buffer.from('just some words, nothing to hide\n'.repeat(20));
const LONG_SECRET_TEXT = Buffer.concat([Buffer.from('x = 1\n'.repeat(1000)), SECRET_TEXT]);

const BODIES: Record<string, Buffer> = { '/png': PNG, '/secret': SECRET_TEXT, '/plain': PLAIN_TEXT, '/long': LONG_SECRET_TEXT };

let upstream: Server;
let front: Server;

beforeAll(async () => {
  upstream = createServer((req, res) => {
    const body = BODIES[req.url ?? '']!;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length, etag: '"v1"', 'content-md5': createHash('md5').update(body).digest('base64') });
    // In two pieces, as a network would deliver it.
    res.write(body.subarray(0, 100));
    res.end(body.subarray(100));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  const upPort = (upstream.address() as AddressInfo).port;
  const masker = createMasker('*');
  const choose = sniffedStagesChooser({ masker, onRedaction: () => undefined, onFinding: () => undefined }, 'pass', false);
  front = createServer((req, res) => {
    get({ host: '127.0.0.1', port: upPort, path: req.url }, (up) => {
      const headers: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && k !== 'connection' && k !== 'keep-alive' && k !== 'transfer-encoding' && k !== 'date') headers[k] = v;
      sniffedResponse(headers, up, choose, { wholeBytes: 1024 }).then(
        (r) => {
          res.writeHead(up.statusCode ?? 502, { ...r.headers, 'x-framing': r.framing });
          r.body.pipe(res);
        },
        () => {
          res.writeHead(502);
          res.end();
        },
      );
    });
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', () => r()));
}, 30_000);

afterAll(async () => {
  front.closeAllConnections();
  upstream.closeAllConnections();
  await new Promise<void>((r) => front.close(() => r()));
  await new Promise<void>((r) => upstream.close(() => r()));
});

function fetchRaw(path: string): Promise<{ headers: IncomingHttpHeaders; body: Buffer; complete: boolean }> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port: (front.address() as AddressInfo).port, path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks), complete: res.complete }));
      res.once('error', reject);
    }).once('error', reject);
  });
}

describe('a response under a binary label, framed by what its bytes are', () => {
  test('binary bytes pass unchanged: Content-Length, ETag and Content-MD5 kept', async () => {
    const r = await fetchRaw('/png');
    expect(r.complete).toBe(true);
    expect(r.body.equals(PNG)).toBe(true);
    expect(r.headers['x-framing']).toBe('kept');
    expect(r.headers).toMatchObject({ 'content-length': String(PNG.length), etag: '"v1"', 'content-md5': createHash('md5').update(PNG).digest('base64') });
  });

  test('short text without a secret is masked whole and, unchanged, keeps every header', async () => {
    const r = await fetchRaw('/plain');
    expect(r.body.equals(PLAIN_TEXT)).toBe(true);
    expect(r.headers['x-framing']).toBe('kept');
    expect(r.headers).toMatchObject({ 'content-length': String(PLAIN_TEXT.length), etag: '"v1"' });
    expect(r.headers['content-md5']).toBeDefined();
  });

  test('short text with a secret: masked, its exact new length, a weak ETag, no digest of the original', async () => {
    const r = await fetchRaw('/secret');
    expect(r.complete).toBe(true);
    expect(r.body.toString()).not.toContain(AWS_SECRET);
    expect(r.body.toString()).toContain('[REDACTED:');
    expect(r.headers['content-length']).toBe(String(r.body.length));
    expect(r.headers['x-framing']).toBe('recomputed');
    expect(r.headers.etag).toBe('W/"v1"');
    expect(r.headers['content-md5']).toBeUndefined();
  });

  test('long text streams masked: no Content-Length (chunked), a weak ETag, no digest, no ranges; the client reads it whole', async () => {
    const r = await fetchRaw('/long');
    expect(r.complete).toBe(true);
    expect(r.headers['content-length']).toBeUndefined();
    expect(r.headers['transfer-encoding']).toBe('chunked');
    expect(r.headers['x-framing']).toBe('streamed');
    expect(r.headers.etag).toBe('W/"v1"');
    expect(r.headers['content-md5']).toBeUndefined();
    expect(r.headers['accept-ranges']).toBe('none');
    expect(r.body.toString()).not.toContain(AWS_SECRET);
    expect(r.body.toString().startsWith('x = 1\n')).toBe(true);
  });
});
