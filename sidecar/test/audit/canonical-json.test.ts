// The record path's fast canonical JSON must be byte-identical to the `canonicalize` reference
// (RFC 8785): checked on the golden events and on seeded random values that reach every branch.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import canonicalize from 'canonicalize';
import { canonicalJson } from '../../../lib/src/audit/canonical-json.ts';
import { prng } from '../masking-corpus/generate.ts';

const KEYS = ['a', 'b', 'B', 'aa', '', 'é', '\u20ac', '\ud83d\ude00', '10', '9', '01', 'hash', 'id', ' ', '\n', 'z\u0000'];
const STRINGS = ['', 'x', 'line\nbreak', 'quote"back\\slash', '\u0001\u001f\u007f', 'é漢😀', '\u2028\u2029', '</script>'];
const NUMBERS = [0, -0, 1, -1, 0.1, 1e21, 1e-7, 123456789012345680000, 5e-324, Number.MAX_SAFE_INTEGER, 2 ** 53 + 2, 333333333.3333333];

function randomValue(rand: () => number, depth: number): unknown {
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const r = rand();
  if (depth <= 0 || r < 0.45) {
    const k = rand();
    if (k < 0.35) return pick(STRINGS);
    if (k < 0.7) return pick(NUMBERS) * (rand() < 0.5 ? 1 : rand());
    if (k < 0.8) return rand() < 0.5;
    if (k < 0.9) return null;
    return undefined;
  }
  if (r < 0.7) return Array.from({ length: Math.floor(rand() * 4) }, () => randomValue(rand, depth - 1));
  const obj: Record<string, unknown> = {};
  const n = Math.floor(rand() * 6);
  for (let i = 0; i < n; i++) obj[pick(KEYS)] = randomValue(rand, depth - 1);
  return obj;
}

describe('canonicalJson', () => {
  it('matches the reference on the golden events', () => {
    const lines = readFileSync(join(import.meta.dirname, 'testdata', 'chain-golden.ndjson'), 'utf8').trim().split('\n');
    for (const line of lines) {
      const ev = JSON.parse(line) as unknown;
      expect(canonicalJson(ev)).toBe(canonicalize(ev));
    }
  });

  it('matches the reference on 5000 generated values', () => {
    const rand = prng(20250102);
    for (let i = 0; i < 5000; i++) {
      const v = randomValue(rand, 4);
      expect(canonicalJson(v)).toBe(canonicalize(v));
    }
  });

  it('matches the reference on values only the reference path handles', () => {
    const date = new Date(0);
    const withToJson = { toJSON: () => ({ b: 1, a: 2 }) };
    const nullProto = Object.assign(Object.create(null) as Record<string, unknown>, { b: 1, a: 2 });
    for (const v of [{ x: date }, { y: withToJson }, nullProto, { 2: 'a', 10: 'b', x: 'c' }]) {
      expect(canonicalJson(v)).toBe(canonicalize(v));
    }
  });

  it('refuses what RFC 8785 forbids, as the reference does', () => {
    for (const bad of [{ n: Number.NaN }, [Number.POSITIVE_INFINITY], { s: 'a\udc00b' }, { k: 1n }]) {
      expect(() => canonicalize(bad)).toThrow();
      expect(() => canonicalJson(bad)).toThrow();
    }
  });
});
