// The response side's own pieces (masking/response-body.ts): a body's kind by its bytes, and
// decoded views over a stream — however the upstream's chunks fall, an encoded secret is masked
// (a run is never split between two scans) and a streamed body flows on record by record.
import { describe, expect, test } from '@jest/globals';
import { Readable, Writable } from 'node:stream';
import type { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import fc from 'fast-check';
import { createMasker, scanDecoded } from '../../src/masking/index.ts';
import { ResponseDecodedViews, sniffResponseBody, sniffedMaskingStage, textMaskingStages } from '../../src/masking/response-body.ts';

const masker = createMasker('*');
const AWS_ID = 'AKIAQ4T7ZK2MWX3RPL6N';
const AWS_SECRET = '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';
const CREDS = `aws_access_key_id = ${AWS_ID}\naws_secret_access_key = ${AWS_SECRET}\n`;
const b64 = (s: string) => Buffer.from(s).toString('base64');

async function through(chunks: Buffer[], stages: Transform[]): Promise<Buffer> {
  const out: Buffer[] = [];
  const sink = new Writable({
    write: (c: Buffer, _e, cb) => {
      out.push(c);
      cb();
    },
  });
  await pipeline([Readable.from(chunks), ...stages, sink]);
  return Buffer.concat(out);
}

const opts = () => ({ masker, onRedaction: () => undefined, onFinding: () => undefined });

describe('sniffResponseBody', () => {
  test.each([
    ['text', Buffer.from(CREDS)],
    ['text', Buffer.from('{"a":1}', 'utf16le')],
    ['gzip', zlib.gzipSync('x')],
    ['binary', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])],
    ['binary', Buffer.from([0x50, 0x4b, 0x03, 0x04, 1, 2])],
    ['binary', Buffer.alloc(64, 7)],
    ['binary', Buffer.concat([Buffer.from('abc'), Buffer.alloc(4), Buffer.from('defgh')])],
  ])('%s', (kind, prefix) => {
    expect(sniffResponseBody(prefix)).toBe(kind);
  });
});

describe('decoded views over a response stream', () => {
  test('however the chunks fall, no secret in any encoding comes out', async () => {
    const bodies = [
      JSON.stringify({ content: b64(CREDS).replace(/(.{60})/g, '$1\n'), name: '.env' }),
      `-----\n${b64(CREDS).replace(/(.{64})/g, '$1\n')}\n-----\n`,
      `{"items":[{"data":{"k":"${b64(CREDS)}"}},{"hex":"${Buffer.from(CREDS).toString('hex')}"}]}\n`,
    ];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...bodies), fc.array(fc.integer({ min: 1, max: 300 }), { maxLength: 8 }), async (body, sizes) => {
        const buf = Buffer.from(body);
        const chunks: Buffer[] = [];
        let at = 0;
        for (const n of sizes) {
          if (at >= buf.length) break;
          chunks.push(buf.subarray(at, at + n));
          at += n;
        }
        if (at < buf.length) chunks.push(buf.subarray(at));
        const out = await through(chunks, textMaskingStages(opts()));
        expect(out.toString()).not.toContain(AWS_SECRET);
        expect(scanDecoded(out, masker.scanner, { mode: 'scan', maskRaw: true }).findings).toEqual([]);
      }),
      { seed: 0x5111ce, numRuns: 150 },
    );
  });

  test('a streamed body is released record by record, not held for the window', async () => {
    const t = new ResponseDecodedViews(opts());
    const seen: string[] = [];
    t.on('data', (d: Buffer) => seen.push(d.toString()));
    t.write(Buffer.from('{"type":"ADDED","object":{"name":"a"}}\n'));
    await new Promise((r) => setImmediate(r));
    expect(seen.join('')).toBe('{"type":"ADDED","object":{"name":"a"}}\n');
    t.end();
  });

  test('an unbroken run past half the window fails the stream instead of passing unscanned', async () => {
    const run = Buffer.alloc(3000, 0x41);
    await expect(through([run.subarray(0, 1000), run.subarray(1000)], [new ResponseDecodedViews({ ...opts(), limits: { window: 2048 } })])).rejects.toMatchObject({ code: 'dlp.undecodable_body' });
  });

  test('a binary-labelled body that is text is masked; one that is binary passes byte for byte', async () => {
    const text = await through([Buffer.from(CREDS)], [sniffedMaskingStage(opts(), 'pass', false)]);
    expect(text.toString()).not.toContain(AWS_SECRET);
    const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from(CREDS)]);
    expect(await through([png], [sniffedMaskingStage(opts(), 'pass', false)])).toEqual(png);
  });
});
