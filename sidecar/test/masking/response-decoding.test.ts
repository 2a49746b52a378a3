// Secrets on their way to the agent, through a real sidecar from a real upstream: whatever the
// content coding (gzip, deflate raw or zlib-wrapped, br, zstd, stacked codings, chunked), however
// the secret is written inside (base64 as GitHub's contents API and Kubernetes Secrets send it,
// JSON escapes, hex), and whatever Content-Type the upstream was asked to claim (S3's
// response-content-type lets the agent pick image/png or application/octet-stream for a text
// object), the agent receives it masked; a decompression bomb is cut, never relayed unscanned.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createServer, request } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as zlib from 'node:zlib';
import { startTestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../../testkit/sidecar/test-sidecar.ts';
import { createMasker, scanDecoded } from '../../src/masking/index.ts';
import { buildBundle } from '../../../testkit/policy/opa-build.ts';

const AWS_ID = 'AKIAQ4T7ZK2MWX3RPL6N';
const AWS_SECRET = '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';
const CREDS = `[default]\naws_access_key_id = ${AWS_ID}\naws_secret_access_key = ${AWS_SECRET}\n`;
const b64 = (s: string) => Buffer.from(s).toString('base64');
const masker = createMasker('*');

const POLICY = `package sluice

default decision := {"allow": true, "code": "test.allow", "reason": "test policy", "mask": ["*"], "dlp": "mask"}
`;

type Shape = { type: string; encoding?: string; body: Buffer; chunked?: boolean };

const z = zlib as typeof zlib & { zstdCompressSync?: (b: Buffer) => Buffer };
// A file's content as GitHub's contents API sends it: base64, wrapped, inside JSON.
const CONTENTS = JSON.stringify({ name: '.env', encoding: 'base64', content: b64(CREDS).replace(/(.{60})/g, '$1\n') });
const SHAPES: Record<string, Shape> = {
  'base64 in JSON (GitHub contents API)': { type: 'application/json; charset=utf-8', body: Buffer.from(CONTENTS) },
  'base64 in JSON, gzip, chunked': { type: 'application/json', encoding: 'gzip', body: zlib.gzipSync(CONTENTS), chunked: true },
  'base64 in JSON, raw deflate': { type: 'application/json', encoding: 'deflate', body: zlib.deflateRawSync(CONTENTS) },
  'base64 in JSON, br': { type: 'application/json', encoding: 'br', body: zlib.brotliCompressSync(CONTENTS) },
  'base64 in JSON, gzip then br': { type: 'application/json', encoding: 'gzip, br', body: zlib.brotliCompressSync(zlib.gzipSync(CONTENTS)) },
  ...(z.zstdCompressSync ? { 'base64 in JSON, zstd': { type: 'application/json', encoding: 'zstd', body: z.zstdCompressSync(Buffer.from(CONTENTS)) } } : {}),
  'base64 Secret data (Kubernetes)': { type: 'application/json', body: Buffer.from(JSON.stringify({ kind: 'Secret', data: { config: b64(CREDS) } })) },
  'hex in text': { type: 'text/plain', body: Buffer.from(`dump: ${Buffer.from(CREDS).toString('hex')}\n`) },
  'text as application/octet-stream': { type: 'application/octet-stream', body: Buffer.from(CREDS) },
  'text as image/png (response-content-type)': { type: 'image/png', body: Buffer.from(CREDS) },
  'gzip inside a text type without Content-Encoding': { type: 'text/plain', body: zlib.gzipSync(CREDS) },
  'gzip inside gzip': { type: 'text/plain', encoding: 'gzip', body: zlib.gzipSync(zlib.gzipSync(CREDS)) },
};

let upstream: Server;
let sidecar: TestSidecar;

function serve(req: IncomingMessage, res: ServerResponse): void {
  const name = decodeURIComponent((req.url ?? '/').slice(1));
  if (name === 'not-gzip') {
    // Says gzip, is not: the decoder fails, and the plain text behind it never reaches the agent.
    res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip' });
    res.end(CREDS);
    return;
  }
  if (name === 'bomb') {
    // 1 GiB of zeros in ~1 MiB of gzip: decoded it would have to be scanned, and never is.
    res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip' });
    const gz = zlib.createGzip({ level: 9 });
    gz.pipe(res);
    const zero = Buffer.alloc(1024 * 1024);
    let n = 0;
    const pump = () => {
      while (n < 1024) {
        n++;
        if (!gz.write(zero)) return void gz.once('drain', pump);
      }
      gz.end();
    };
    res.on('close', () => gz.destroy());
    pump();
    return;
  }
  const s = SHAPES[name];
  if (!s) return void res.writeHead(404).end();
  const headers: Record<string, string> = { 'content-type': s.type };
  if (s.encoding) headers['content-encoding'] = s.encoding;
  if (!s.chunked) headers['content-length'] = String(s.body.length);
  res.writeHead(200, headers);
  if (s.chunked) {
    for (let i = 0; i < s.body.length; i += 7) res.write(s.body.subarray(i, i + 7));
    res.end();
  } else res.end(s.body);
}

beforeAll(async () => {
  upstream = createServer(serve);
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  sidecar = await startTestSidecar({
    resolve: { 'files.example:80': `127.0.0.1:${(upstream.address() as AddressInfo).port}` },
    bundle: buildBundle(POLICY, 'response-decoding-test'),
  });
}, 60_000);

afterAll(async () => {
  await sidecar?.stop();
  upstream?.closeAllConnections();
  upstream?.close();
});

/** GET through the explicit proxy; the body as the agent receives it, with its codings undone. */
function get(name: string): Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer; complete: boolean }> {
  const proxy = new URL(sidecar.proxyUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: proxy.hostname, port: proxy.port, path: `http://files.example/${encodeURIComponent(name)}`, headers: { host: 'files.example', 'accept-encoding': 'gzip, deflate, br, zstd' } });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      const done = (complete: boolean) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), complete });
      res.on('end', () => done(res.complete));
      res.on('error', () => done(false));
      res.on('aborted', () => done(false));
    });
    req.on('error', reject);
    req.end();
  });
}

function undo(encoding: string | undefined, body: Buffer): Buffer {
  let b = body;
  for (const c of (encoding ?? '').split(',').map((s) => s.trim()).filter(Boolean).reverse()) {
    if (c === 'gzip') b = zlib.gunzipSync(b);
    else if (c === 'br') b = zlib.brotliDecompressSync(b);
    else if (c === 'deflate') b = b[0] === 0x78 ? zlib.inflateSync(b) : zlib.inflateRawSync(b);
    else if (c === 'zstd') b = (zlib as unknown as { zstdDecompressSync: (x: Buffer) => Buffer }).zstdDecompressSync(b);
  }
  return b;
}

describe('a secret in a response reaches the agent masked', () => {
  test.each(Object.keys(SHAPES))('%s', async (name) => {
    const r = await get(name);
    expect(r.complete).toBe(true);
    expect(r.status).toBe(200);
    let body = undo(r.headers['content-encoding'], r.body);
    // Whatever the agent could unpack itself (a gzip stream without a Content-Encoding) is unpacked too.
    while (body[0] === 0x1f && body[1] === 0x8b) body = zlib.gunzipSync(body);
    expect(body.toString('latin1')).not.toContain(AWS_SECRET);
    expect(scanDecoded(body, masker.scanner, { mode: 'scan', maskRaw: true }).findings).toEqual([]);
    // The rest of the body is there: masked, not dropped.
    expect(body.length).toBeGreaterThan(40);
  });

  test('a body that is not what its Content-Encoding says is cut, coded and counted', async () => {
    // Cut before or after the head went out: either the request fails or the body is incomplete.
    const r = await get('not-gzip').catch(() => undefined);
    if (r) {
      expect(r.complete).toBe(false);
      expect(r.body.toString('latin1')).not.toContain(AWS_SECRET);
    }
    const metrics = await (await fetch(`${sidecar.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/sluice_masking_responses_cut_total\{code="masking.bad_encoding"\} [1-9]/);
  });

  test('a decompression bomb is cut, not scanned gigabyte by gigabyte', async () => {
    const started = performance.now();
    const r = await get('bomb');
    expect(r.complete).toBe(false);
    expect(performance.now() - started).toBeLessThan(10_000);
    const metrics = await (await fetch(`${sidecar.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/sluice_masking_responses_cut_total\{code="masking.decompression_bomb"\} 1/);
  });
});
