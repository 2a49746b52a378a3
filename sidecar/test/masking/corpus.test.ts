// The quality bar on the labelled corpus: recall ≥ 99 % over every positive, ≥ 90 % for each rule,
// false positives ≤ 1 % of the negatives. Prints the per-rule table. The corpus files must match
// what the committed generator produces, so nobody edits one without the other. The encoded half
// (every row again in base64, MIME, hex, percent, escapes, UTF-16, format characters, split across
// messages, nested, plus encoded look-alikes) holds outbound DLP's decoded views to the same bars,
// ≥ 90 % for each encoding.
import { describe, expect, test } from '@jest/globals';
import { createMasker, scanDecoded } from '../../src/masking/index.ts';
import { BUILTIN_RULE_IDS } from '../../src/masking/index.ts';
import { formatScore, loadCorpus, score } from '../masking-corpus/evaluate.ts';
import { ENCODINGS, formatEncodedScore, generateEncodedNegatives, generateEncodedPositives, loadEncodedCorpus, scoreEncoded } from '../masking-corpus/encoded.ts';
import { generateNegatives, generatePositives } from '../masking-corpus/generate.ts';

const corpus = loadCorpus();
const masker = createMasker('*');
const detect = (text: string): { output: string; rules: string[] } => {
  const r = masker.maskText(text);
  return { output: r.output, rules: r.findings.map((f) => f.rule) };
};

describe('masking corpus', () => {
  test('corpus files are what the seeded generator writes', () => {
    expect(corpus.positives).toEqual(generatePositives());
    expect(corpus.negatives).toEqual(generateNegatives());
  });

  test('has ≥ 300 positives over every built-in rule and ≥ 1000 negatives', () => {
    expect(corpus.positives.length).toBeGreaterThanOrEqual(300);
    expect(corpus.negatives.length).toBeGreaterThanOrEqual(1000);
    const labelled = new Set(corpus.positives.map((p) => p.rule));
    expect([...BUILTIN_RULE_IDS].filter((id) => !labelled.has(id))).toEqual([]);
  });

  test('recall ≥ 99 % (≥ 90 % per rule) and false positives ≤ 1 %', () => {
    const s = score(detect, corpus);
    console.log(formatScore(s, 'sluice masking on sidecar/test/masking-corpus'));
    expect(s.detected / s.positives).toBeGreaterThanOrEqual(0.99);
    for (const r of s.rules) expect({ rule: r.rule, recall: r.detected / r.positives >= 0.9 }).toEqual({ rule: r.rule, recall: true });
    expect(s.falsePositives / s.negatives).toBeLessThanOrEqual(0.01);
  });

  test('masked JSON documents stay valid JSON with the same shape', () => {
    let checked = 0;
    for (const p of corpus.positives) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(p.text);
      } catch {
        continue;
      }
      const out = masker.maskText(p.text).output;
      const masked = JSON.parse(out) as unknown;
      expect(Object.keys(masked as object)).toEqual(Object.keys(parsed as object));
      checked++;
    }
    expect(checked).toBeGreaterThan(50);
  });

  describe('encoded (outbound DLP, decoded views)', () => {
    const encoded = loadEncodedCorpus();

    test('corpus files are what the seeded generator writes', () => {
      expect(encoded.positives).toEqual(generateEncodedPositives(corpus.positives));
      expect(encoded.negatives).toEqual(generateEncodedNegatives(corpus.negatives));
    });

    test('every positive in one of the encodings, every encoding ≥ 40 times, look-alikes included', () => {
      expect(encoded.positives.length).toBe(corpus.positives.length);
      for (const e of ENCODINGS) expect({ e, n: encoded.positives.filter((p) => p.encoding === e).length >= 40 }).toEqual({ e, n: true });
      expect(encoded.negatives.length).toBeGreaterThanOrEqual(corpus.negatives.length + 400);
    });

    test('recall ≥ 99 % (≥ 90 % per encoding) and false positives ≤ 1 %', () => {
      const s = scoreEncoded(
        (body) => {
          const r = scanDecoded(body, masker.scanner, { mode: 'mask', maskRaw: true });
          return { output: r.output, rules: r.findings.map((f) => f.rule), blocked: r.unmaskable !== undefined || r.unscannable !== undefined };
        },
        encoded.positives,
        encoded.negatives,
      );
      console.log(formatEncodedScore(s, 'sluice outbound DLP on sidecar/test/masking-corpus encoded-*.jsonl'));
      expect(s.detected / s.positives).toBeGreaterThanOrEqual(0.99);
      for (const [e, r] of s.byEncoding) expect({ e, recall: r.detected / r.positives >= 0.9 }).toEqual({ e, recall: true });
      expect(s.falsePositives / s.negatives).toBeLessThanOrEqual(0.01);
    });

    test('the raw rules alone miss most of them (what decoding adds)', () => {
      const s = scoreEncoded((body) => {
        const r = masker.maskBuffer(body);
        return { output: r.output, rules: r.findings.map((f) => f.rule), blocked: false };
      }, encoded.positives, []);
      expect(s.detected / s.positives).toBeLessThan(0.5);
    });
  });
});
