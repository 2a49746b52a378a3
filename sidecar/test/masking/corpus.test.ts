// The quality bar on the labelled corpus: recall ≥ 99 % over every positive, ≥ 90 % for each rule,
// false positives ≤ 1 % of the negatives. Prints the per-rule table. The corpus files must match
// what the committed generator produces, so nobody edits one without the other.
import { describe, expect, test } from '@jest/globals';
import { createMasker } from '../../src/masking/index.ts';
import { BUILTIN_RULE_IDS } from '../../src/masking/index.ts';
import { formatScore, loadCorpus, score } from '../masking-corpus/evaluate.ts';
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
});
