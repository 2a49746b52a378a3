// Streaming redaction must give the same bytes as masking the whole body, wherever chunk
// boundaries fall: every positive of the corpus is split at every byte boundary.
import { describe, expect, test } from '@jest/globals';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StreamMasker, createMasker, maskingTransform, parseRules } from '../../src/masking/index.ts';
import type { Redaction } from '../../src/masking/index.ts';
import { loadCorpus } from '../masking-corpus/evaluate.ts';

const masker = createMasker('*');

/** Feeds `chunks` through the streaming core and returns output and redactions. */
function runChunks(chunks: Buffer[]): { out: Buffer; redactions: Redaction[] } {
  const redactions: Redaction[] = [];
  const core = new StreamMasker({ masker, direction: 'response', onRedaction: (r) => redactions.push(r) });
  const parts = chunks.map((c) => core.write(c));
  parts.push(core.end());
  return { out: Buffer.concat(parts), redactions };
}

describe('maskingTransform', () => {
  test('every positive split at every byte boundary masks exactly like the whole body', () => {
    const { positives } = loadCorpus();
    let splits = 0;
    for (const p of positives) {
      const body = Buffer.from(p.text, 'utf8');
      const whole = masker.maskBuffer(body);
      const expected = whole.output.toString('latin1');
      for (let i = 1; i < body.length; i++) {
        const { out, redactions } = runChunks([body.subarray(0, i), body.subarray(i)]);
        if (out.toString('latin1') !== expected) {
          throw new Error(`${p.id} (${p.rule}) differs when split at ${i}`);
        }
        expect(redactions.map((r) => [r.rule, r.offset, r.length])).toEqual(whole.findings.map((f) => [f.rule, f.start, f.end - f.start]));
        splits++;
      }
    }
    expect(splits).toBeGreaterThan(100_000);
    // ~270k splits: about 30 s on an idle core, several times that on a loaded CI machine.
  }, 600_000);

  test('one-byte chunks hold back only a bounded tail', () => {
    const { positives } = loadCorpus();
    const p = positives.find((x) => x.rule === 'private-key')!;
    const body = Buffer.from(`${'lorem ipsum dolor '.repeat(4000)}${p.text}`);
    const core = new StreamMasker({ masker, direction: 'response' });
    let emitted = 0;
    let maxHeld = 0;
    for (let i = 0; i < body.length; i++) {
      emitted += core.write(body.subarray(i, i + 1)).length;
      maxHeld = Math.max(maxHeld, i + 1 - emitted);
    }
    expect(Buffer.concat([core.end()]).toString()).toContain('[REDACTED:private-key]');
    expect(maxHeld).toBeLessThanOrEqual(masker.scanner.maxCarry + masker.scanner.contextBytes);
    expect(maxHeld).toBeGreaterThan(0);
  });

  test('offsets are stream offsets and no value is reported', async () => {
    const body = 'x'.repeat(70_000) + '\nAPI_KEY=Sup3r-S3cret-V4lue!\n' + 'y'.repeat(70_000);
    const seen: Redaction[] = [];
    const out: Buffer[] = [];
    await pipeline(
      Readable.from([Buffer.from(body)]),
      maskingTransform({ masker, direction: 'request', onRedaction: (r) => seen.push(r) }),
      new Writable({
        write(c: Buffer, _e, cb) {
          out.push(c);
          cb();
        },
      }),
    );
    expect(seen).toEqual([{ rule: 'dotenv-secret', direction: 'request', offset: body.indexOf('Sup3r'), length: 'Sup3r-S3cret-V4lue!'.length }]);
    expect(JSON.stringify(seen)).not.toContain('Sup3r');
    expect(Buffer.concat(out).toString()).toContain('API_KEY=[REDACTED:dotenv-secret]\n');
  });

  test('event streams release each complete record without waiting for more data', () => {
    const t = maskingTransform({ masker, direction: 'response', flushAt: '\n\n' });
    const parts: string[] = [];
    t.on('data', (c: Buffer) => parts.push(c.toString()));
    t.write('data: {"delta":"hello"}\n\ndata: {"delta":"wor');
    expect(parts.join('')).toBe('data: {"delta":"hello"}\n\n');
    t.end('ld"}\n\n');
    expect(parts.join('')).toBe('data: {"delta":"hello"}\n\ndata: {"delta":"world"}\n\n');
  });

  test('keep-length rules preserve the byte length', () => {
    const m = createMasker(
      '*',
      parseRules([{ id: 'ticket-id', description: 'internal ticket secret', confidence: 'high', keywords: ['TKT-'], pattern: 'TKT-[0-9]{8}', maxLength: 12, keepLength: true }]),
    );
    const out = m.maskText('ref TKT-12345678 done').output;
    expect(out).toBe('ref ************ done');
    expect(m.maskText('ref TKT-12345678 done').output.length).toBe('ref TKT-12345678 done'.length);
  });
});
