// Bodies through content codings (gzip, deflate zlib/raw, br, zstd where built in, stacked): decode →
// mask → re-encode gives the masked text back; and the header plan for each kind of message.
import { describe, expect, test } from '@jest/globals';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import {
  SUPPORTED_CODINGS,
  applyHeaderChanges,
  createMasker,
  maskingStages,
  planBodyMasking,
  planRequestForMaskedResponse,
} from '../../src/masking/index.ts';
import type { ContentCoding, Redaction } from '../../src/masking/index.ts';

const masker = createMasker('*');
const secret = 'sk-ant-api03-' + 'Ab3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1eF3hJ5kL7nP9rS1uV3xY5zA7cE9gI1kM3oQ5sU7wY9aC1eG3iK5mO7qS9uW1yA3cE5gAA';
const body = JSON.stringify({ messages: [{ role: 'user', content: `my key is ${secret}, padding ${'lorem ipsum '.repeat(5000)}` }] });
const expected = masker.maskText(body).output;

type Sync = (b: Buffer) => Buffer;
const zstd = zlib as unknown as { zstdCompressSync: Sync; zstdDecompressSync: Sync };
/** [compress, decompress] per coding, from node:zlib's one-shot functions. */
const CODECS: Record<ContentCoding, [Sync, Sync]> = {
  gzip: [zlib.gzipSync, zlib.gunzipSync],
  deflate: [zlib.deflateSync, zlib.inflateSync],
  br: [zlib.brotliCompressSync, zlib.brotliDecompressSync],
  zstd: [(b) => zstd.zstdCompressSync(b), (b) => zstd.zstdDecompressSync(b)],
};
const encode = (coding: ContentCoding, data: Buffer): Buffer => CODECS[coding][0](data);
const decode = (coding: ContentCoding, data: Buffer): Buffer => CODECS[coding][1](data);

/** Runs `input` through the stages of a plan in 1 KiB chunks (so secrets straddle boundaries). */
async function run(headers: Record<string, string>, input: Buffer, reencode = true): Promise<{ out: Buffer; redactions: Redaction[]; plan: ReturnType<typeof planBodyMasking> }> {
  const plan = planBodyMasking(headers, { reencode });
  const redactions: Redaction[] = [];
  const chunks: Buffer[] = [];
  const parts: Buffer[] = [];
  for (let i = 0; i < input.length; i += 1024) parts.push(input.subarray(i, i + 1024));
  const stages: NodeJS.ReadWriteStream[] = maskingStages(plan, { masker, direction: 'response', onRedaction: (r) => redactions.push(r) });
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      chunks.push(c);
      cb();
    },
  });
  await pipeline([Readable.from(parts), ...stages, sink]);
  return { out: Buffer.concat(chunks), redactions, plan };
}

describe('masking through content codings', () => {
  const codings: ContentCoding[] = ['gzip', 'deflate', 'br', ...(SUPPORTED_CODINGS.includes('zstd') ? (['zstd'] as const) : [])];
  for (const coding of codings) {
    test(`${coding}: decode → mask → re-encode`, async () => {
      const { out, redactions, plan } = await run({ 'content-type': 'application/json', 'content-encoding': coding, 'content-length': '123', etag: '"abc"' }, encode(coding, Buffer.from(body)));
      expect(plan).toMatchObject({ action: 'mask', decode: [coding], encode: [coding] });
      expect(decode(coding, out).toString()).toBe(expected);
      expect(JSON.parse(decode(coding, out).toString())).toBeTruthy();
      expect(redactions.map((r) => r.rule)).toEqual(['anthropic-api-key']);
    });
  }

  test('raw deflate (what some servers send as "deflate") is decoded too', async () => {
    const { out } = await run({ 'content-encoding': 'deflate' }, zlib.deflateRawSync(Buffer.from(body)), false);
    expect(out.toString()).toBe(expected);
  });

  test('stacked codings are undone in reverse order; decoded-through drops Content-Encoding', async () => {
    const input = zlib.brotliCompressSync(zlib.gzipSync(Buffer.from(body)));
    const { out, plan } = await run({ 'content-encoding': 'gzip, br' }, input, false);
    expect(plan.decode).toEqual(['br', 'gzip']);
    expect(plan.encode).toEqual([]);
    expect(plan.headerChanges.remove).toContain('content-encoding');
    expect(out.toString()).toBe(expected);
  });
});

describe('planBodyMasking', () => {
  test('masked bodies lose length, validators and digests, and stop advertising ranges', () => {
    const plan = planBodyMasking({ 'content-type': 'text/plain', 'content-length': '10', etag: 'W/"x"', 'content-digest': 'sha-256=:x:' });
    expect(plan.action).toBe('mask');
    expect(plan.headerChanges.remove).toEqual(expect.arrayContaining(['content-length', 'etag', 'content-digest', 'digest', 'content-md5']));
    expect(plan.headerChanges.set).toEqual({ 'accept-ranges': 'none' });
    expect(plan.headerChanges.remove).not.toContain('content-encoding');
    const applied = applyHeaderChanges({ 'content-type': 'text/plain', 'content-length': '10', etag: 'W/"x"' }, plan.headerChanges);
    expect(applied).toEqual({ 'content-type': 'text/plain', 'accept-ranges': 'none' });
  });

  test('binary media pass by default, and by policy list', () => {
    expect(planBodyMasking({ 'content-type': 'image/png' }).action).toBe('pass');
    expect(planBodyMasking({ 'content-type': 'application/zip' }).action).toBe('mask');
    expect(planBodyMasking({ 'content-type': 'application/zip' }, { passTypes: ['application/zip'] }).action).toBe('pass');
  });

  test('unknown codings and partial content are refused (fail closed) unless policy says pass', () => {
    expect(planBodyMasking({ 'content-encoding': 'compress' })).toMatchObject({ action: 'refuse', reason: 'masking.unknown_encoding' });
    expect(planBodyMasking({ 'content-encoding': 'compress' }, { unknownEncoding: 'pass' }).action).toBe('pass');
    expect(planBodyMasking({ 'content-type': 'text/plain' }, { status: 206 })).toMatchObject({ action: 'refuse', reason: 'masking.partial_content' });
    // gRPC frames cannot take a redaction of another length: refused, unless listed as a pass type.
    expect(planBodyMasking({ 'content-type': 'application/grpc+proto' })).toMatchObject({ action: 'refuse', reason: 'masking.grpc_unsupported' });
    expect(planBodyMasking({ 'content-type': 'application/grpc' }, { passTypes: ['application/grpc'] })).toMatchObject({ action: 'pass' });
    expect(planBodyMasking({ 'content-encoding': 'zstd' }, { supported: ['gzip'] }).action).toBe('refuse');
  });

  test('git push bodies go to the pack scanner (after decoding); fetched git data passes', () => {
    expect(planBodyMasking({ 'content-type': 'application/x-git-receive-pack-request', 'content-encoding': 'gzip' })).toMatchObject({ action: 'scan-pack', decode: ['gzip'] });
    expect(planBodyMasking({ 'content-type': 'application/x-git-upload-pack-result' }).action).toBe('pass');
  });

  test('event streams and NDJSON flush per record', () => {
    expect(planBodyMasking({ 'content-type': 'text/event-stream; charset=utf-8' }).flushAt).toBe('\n\n');
    expect(planBodyMasking({ 'content-type': 'application/x-ndjson' }).flushAt).toBe('\n');
  });

  test('requests whose response is masked ask for no ranges and only decodable codings', () => {
    const changes = planRequestForMaskedResponse({ range: 'bytes=0-99', 'if-range': '"x"', 'accept-encoding': 'gzip, deflate, br, zstd;q=0.9, compress' });
    expect(changes.remove).toEqual(['range', 'if-range']);
    expect(changes.set['accept-encoding']).toBe('gzip, deflate, br');
    expect(planRequestForMaskedResponse({ 'accept-encoding': 'compress' }).remove).toContain('accept-encoding');
  });
});

describe('empty bodies', () => {
  test.each([
    [{ 'content-type': 'application/json', 'content-length': '0', etag: '"abc"' }, 200],
    [{ 'content-type': 'text/plain' }, 204],
    [{ 'content-type': 'text/plain', etag: '"abc"' }, 304],
  ])('pass untouched, keeping ETag and Content-Length (%j, %i)', (headers, status) => {
    const plan = planBodyMasking(headers, { status });
    expect(plan.action).toBe('pass');
    expect(plan.headerChanges.remove).toEqual([]);
  });
});
