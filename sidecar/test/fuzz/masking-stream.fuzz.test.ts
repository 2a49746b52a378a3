// Fuzzing the masking stream: content built from corpus secrets (raw, base64, hex, percent,
// JSON \u escapes, UTF-16LE) among text, separators and JSON punctuation, cut into chunks at
// arbitrary points (chunk splits × content × encodings). The invariant: masking a stream split at
// any points gives the same bytes and the same redactions as masking it whole — for the raw
// streaming masker (StreamMasker) and for outbound DLP's decoded views in segments
// (DecodedViewsTransform, small windows so segment cuts are exercised) followed by it; a stream
// that fails, fails the same way whole and split. And no secret inserted raw survives.
import { afterAll, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DecodedViewsTransform, StreamMasker, createMasker, maskingTransform } from '../../src/masking/index.ts';
import type { Redaction } from '../../src/masking/index.ts';
import { loadCorpus, secretsGone } from '../masking-corpus/evaluate.ts';
import { fuzz, printReports } from './fuzz-harness.ts';

afterAll(printReports);

const masker = createMasker('*');
// One standalone-detectable secret per rule (the corpus positive's text carries the context some
// rules need; the whole text is inserted).
const seen = new Set<string>();
const samples = loadCorpus().positives.filter((p) => (seen.has(p.rule) ? false : (seen.add(p.rule), true)));

type Encoding = 'raw' | 'base64' | 'hex' | 'percent' | 'json' | 'utf16';
function encode(text: string, e: Encoding): string {
  const b = Buffer.from(text, 'utf8');
  switch (e) {
    case 'raw':
      return text;
    case 'base64':
      return b.toString('base64');
    case 'hex':
      return b.toString('hex');
    case 'percent':
      return [...b].map((x) => `%${x.toString(16).padStart(2, '0').toUpperCase()}`).join('');
    case 'json':
      return [...text].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');
    case 'utf16':
      return Buffer.from(text, 'utf16le').toString('latin1');
  }
}

const piece = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('lorem ', 'ipsum', ' ', '\n', '"', ',', '{"a":"', '"}', ':', '\t', '[', ']', '\\', '\0', 'é', 'xyzzy0123456789', '=') },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...samples), fc.constantFrom<Encoding>('raw', 'raw', 'base64', 'hex', 'percent', 'json', 'utf16')).map(([p, e]) => ({ p, e })) },
);
const content = fc.record({
  pieces: fc.array(piece, { maxLength: 10 }),
  // Negative cuts fall on multiples of the window (where segments are cut).
  cuts: fc.array(fc.oneof(fc.nat(), fc.integer({ min: -8, max: -1 })), { maxLength: 6 }),
  window: fc.constantFrom(128, 512, 2048, 4096),
});

function build(pieces: (string | { p: (typeof samples)[number]; e: Encoding })[]): { body: Buffer; raw: string[] } {
  const raw: string[] = [];
  const text = pieces
    .map((x) => {
      if (typeof x === 'string') return x;
      if (x.e === 'raw') raw.push(...x.p.secrets);
      return encode(x.p.text, x.e);
    })
    .join('');
  return { body: Buffer.from(text, 'latin1'), raw };
}

function split(body: Buffer, cuts: number[], window: number): Buffer[] {
  const points = [...new Set(cuts.map((c) => (c < 0 ? -c * window : c)).map((c) => (body.length ? c % body.length : 0)))].filter((p) => p > 0).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let at = 0;
  for (const p of [...points, body.length]) {
    out.push(body.subarray(at, p));
    at = p;
  }
  return out;
}

function rawStream(chunks: Buffer[]): { out: string; redactions: Redaction[] } {
  const redactions: Redaction[] = [];
  const core = new StreamMasker({ masker, direction: 'request', onRedaction: (r) => redactions.push(r) });
  const parts = chunks.map((c) => core.write(c));
  parts.push(core.end());
  return { out: Buffer.concat(parts).toString('latin1'), redactions };
}

async function dlpStream(chunks: Buffer[], window: number): Promise<{ out: string; findings: string[]; error?: string }> {
  const findings: string[] = [];
  const out: Buffer[] = [];
  try {
    await pipeline(
      Readable.from(chunks, { objectMode: false }),
      new DecodedViewsTransform({ masker, window, onFinding: (f) => findings.push(`${f.rule}@${f.offset}+${f.length}:${f.via.join('/')}`) }),
      maskingTransform({ masker, direction: 'request' }),
      new Writable({
        write(c: Buffer, _e, cb) {
          out.push(c);
          cb();
        },
      }),
    );
  } catch (err) {
    return { out: '', findings, error: (err as { code?: string }).code ?? (err as Error).message };
  }
  return { out: Buffer.concat(out).toString('latin1'), findings };
}

/** Runs whose content had something to mask: the generator must not drift into vacuity. */
const found = { raw: 0, decoded: 0 };
afterAll(() => {
  expect(found.raw).toBeGreaterThan(100);
  process.stdout.write(`masking fuzz: ${found.raw} raw and ${found.decoded} decoded-view runs had secrets\n`);
  expect(found.decoded).toBeGreaterThan(100);
});

test('raw streaming masker: any chunking masks like the whole, and no raw secret survives', async () => {
  await fuzz('masking-stream-raw', content, 1500, ({ pieces, cuts }) => {
    const { body, raw } = build(pieces);
    const whole = rawStream([body]);
    const chunked = rawStream(split(body, cuts, 64));
    if (whole.redactions.length) found.raw++;
    expect(chunked.out).toBe(whole.out);
    expect(chunked.redactions).toEqual(whole.redactions);
    expect(secretsGone(whole.out, raw)).toBe(true);
  });
});

test('decoded views in segments + masker: any chunking gives the same bytes, findings or failure', async () => {
  await fuzz('masking-stream-dlp', content, 600, async ({ pieces, cuts, window }) => {
    const { body } = build(pieces);
    const whole = await dlpStream([body], window);
    const chunked = await dlpStream(split(body, cuts, window), window);
    expect(chunked).toEqual(whole);
    if (whole.findings.some((f) => !f.endsWith(':'))) found.decoded++;
  });
});
