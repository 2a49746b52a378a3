// Bodies larger than the decoding window: decoded in segments as they stream, with bounded memory.
// Secrets in every encoding, placed anywhere in the body and cut by chunk boundaries anywhere
// (fixed seeds), never leave in any form; the text around them is passed through unchanged; a run
// too long to decode whole fails the stream with a stable code instead of passing unscanned.
import { describe, expect, test } from '@jest/globals';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DecodedViewsTransform, DlpStreamError, createMasker, maskingTransform, scanDecoded, segmentEnd } from '../../src/masking/index.ts';
import type { ViewFinding } from '../../src/masking/index.ts';
import { prng } from '../../../testkit/prng.ts';

const masker = createMasker('*');
const AWS_ID = 'AKIAQ4T7ZK2MWX3RPL6N';
const WINDOW = 4096;
const every = (s: string, f: (c: string) => string): string => [...s].map(f).join('');

const ENCODINGS: Record<string, (s: string) => string> = {
  base64: (s) => Buffer.from(s).toString('base64'),
  base64url: (s) => Buffer.from(`${s}\u00ff\u00fe>`, 'latin1').toString('base64url'),
  mime: (s) => Buffer.from(`${s} and some more words so that it wraps`).toString('base64').replace(/(.{16})/g, '$1\r\n'),
  hex: (s) => Buffer.from(s).toString('hex'),
  percent: (s) => every(s, (c) => `%${c.charCodeAt(0).toString(16)}`),
  escapes: (s) => every(s, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`),
  'utf-16le': (s) => Buffer.from(s, 'utf16le').toString('latin1'),
  'zero-width': (s) => `${s.slice(0, 9)}\u200b${s.slice(9)}`,
  nested: (s) => encodeURIComponent(Buffer.from(s).toString('base64')),
};

function body(seed: number): { text: Buffer; placed: string[] } {
  const r = prng(seed);
  const words = ['alpha', 'beta', 'gamma', 'delta', 'the', 'quick', 'fox', 'lorem', 'ipsum', 'dolor'];
  const parts: Buffer[] = [];
  const placed: string[] = [];
  const names = Object.keys(ENCODINGS);
  let size = 0;
  let k = 0;
  while (size < 60_000) {
    const line = Array.from({ length: 3 + Math.floor(r() * 12) }, () => words[Math.floor(r() * words.length)]).join(' ') + '\n';
    parts.push(Buffer.from(line));
    size += line.length;
    if (r() < 0.02) {
      const name = names[k++ % names.length]!;
      const enc = ENCODINGS[name]!(`key ${AWS_ID}`);
      const b = Buffer.from(` ${enc} `, name === 'utf-16le' ? 'latin1' : 'utf8');
      parts.push(b);
      placed.push(name);
      size += b.length;
    }
  }
  return { text: Buffer.concat(parts), placed };
}

async function run(input: Buffer, chunks: number[], window = WINDOW): Promise<{ out: Buffer; findings: ViewFinding[]; maxHeld: number }> {
  const pieces: Buffer[] = [];
  for (let i = 0, j = 0; i < input.length; j++) {
    const n = chunks[j % chunks.length]!;
    pieces.push(input.subarray(i, i + n));
    i += n;
  }
  const out: Buffer[] = [];
  const findings: ViewFinding[] = [];
  const decoded = new DecodedViewsTransform({ masker, window, onFinding: (f) => findings.push(f) });
  let maxHeld = 0;
  const sink = new Writable({
    write(c: Buffer, _e, cb) {
      out.push(c);
      maxHeld = Math.max(maxHeld, decoded.writableLength + decoded.readableLength);
      cb();
    },
  });
  await pipeline(Readable.from(pieces), decoded, maskingTransform({ masker, direction: 'request' }), sink);
  return { out: Buffer.concat(out), findings, maxHeld };
}

describe('decoded views in segments', () => {
  test.each([1, 2, 3, 4, 5])('every encoding, anywhere, under random chunking (seed %i)', async (seed) => {
    const { text, placed } = body(seed);
    expect(new Set(placed).size).toBe(Object.keys(ENCODINGS).length);
    const r = prng(100 + seed);
    const chunks = Array.from({ length: 64 }, () => 1 + Math.floor(r() * (seed % 2 ? 700 : 5000)));
    const { out, findings } = await run(text, chunks);
    // Nothing of the key survives in any form, in any window of the output.
    expect(out.toString('latin1')).not.toContain(AWS_ID);
    expect(scanDecoded(out, masker.scanner, { mode: 'scan', maskRaw: true }).findings).toEqual([]);
    expect(findings.length).toBeGreaterThanOrEqual(placed.length);
    // The words around the secrets pass through as they were.
    const words = (b: Buffer) => b.toString('latin1').split('\n').filter((l) => /^[a-z ]+$/.test(l));
    expect(words(out)).toEqual(words(text));
  });

  test('single-byte chunks', async () => {
    const { text } = body(9);
    const { out } = await run(text.subarray(0, 20_000), [1]);
    expect(scanDecoded(out, masker.scanner, { mode: 'scan', maskRaw: true }).findings).toEqual([]);
  });

  test('segments end at a byte no encoded run reads across, in the second half of the window', () => {
    const b = Buffer.from(`${'a'.repeat(3000)} ${'b'.repeat(2000)}`);
    expect(segmentEnd(b, 4096)).toBe(3001);
    expect(segmentEnd(Buffer.from('x'.repeat(5000)), 4096)).toBe(-1);
    // Not inside UTF-16 text, not after a backslash.
    expect(segmentEnd(Buffer.from(`${'a'.repeat(2500)}${Buffer.from(' x', 'utf16le').toString('latin1')}${'c'.repeat(2000)}`, 'latin1'), 4096)).toBe(-1);
    expect(segmentEnd(Buffer.from(`${'a'.repeat(2500)}\\ ${'c'.repeat(2000)}`), 4096)).toBe(-1);
  });

  test('a run longer than half the window fails the stream with dlp.undecodable_body (nothing unscanned follows)', async () => {
    const blob = Buffer.from(`prefix ${Buffer.alloc(9000, 7).toString('base64')} suffix`);
    const err = await run(blob, [1000]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DlpStreamError);
    expect((err as DlpStreamError).code).toBe('dlp.undecodable_body');
  });

  test('memory stays bounded by the window', async () => {
    const { text } = body(4);
    const big = Buffer.concat(Array.from({ length: 8 }, () => text));
    const { maxHeld } = await run(big, [65536]);
    expect(maxHeld).toBeLessThanOrEqual(4 * WINDOW + 65536);
  });
});
