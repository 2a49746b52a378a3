// A message's audit entry (websocket/recording.ts): with record_body, a sample cut on a character
// boundary and a SHA-256 of the whole when the sample is shorter; without it, no content at all.
import { createHash } from 'node:crypto';
import { expect, test } from '@jest/globals';
import { entryOf } from '../../src/websocket/recording.ts';

const base = { n: 3, t: 12, frames: 1, findings: [] };

test('a text sample never splits a character, and a cut sample carries the digest of the whole', () => {
  const text = Buffer.from(`${'a'.repeat(9)}€€€`); // 9 + 3×3 bytes: a cut at 10 falls inside the first €
  const e = entryOf({ ...base, kind: 'text', bytes: text.length, forwarded: text, sampleBytes: 10 });
  expect(e.text).toBe('a'.repeat(9));
  expect(e.sha256).toBe(createHash('sha256').update(text).digest('hex'));
  const whole = entryOf({ ...base, kind: 'text', bytes: text.length, forwarded: text, sampleBytes: 100 });
  expect(whole.text).toBe(text.toString());
  expect(whole.sha256).toBeUndefined();
});

test('binary is sampled as base64; without record_body an entry holds no content', () => {
  const bin = Buffer.from([0, 1, 2, 255]);
  expect(entryOf({ ...base, kind: 'binary', bytes: 4, forwarded: bin, sampleBytes: 2 })).toEqual({ n: 3, t: 12, kind: 'binary', bytes: 4, base64: 'AAE=', sha256: createHash('sha256').update(bin).digest('hex') });
  expect(entryOf({ ...base, kind: 'binary', bytes: 4, forwarded: bin })).toEqual({ n: 3, t: 12, kind: 'binary', bytes: 4 });
});
