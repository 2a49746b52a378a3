// The built-in masking detectors are one list (sidecar/src/masking/builtin-rules.ts, rules as data).
// corpus.test.ts fails when a rule has no labelled positives; this test fails when the other places
// that name rule ids drift from that list: docs/masking.md's table of built-in rules (every id in
// exactly one row, no unknown id, the confidence column and the rule count right) and the corpus
// labels (a positive labelled with an id that is not a built-in rule scores nothing).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { BUILTIN_RULES, BUILTIN_RULE_IDS } from '../../src/masking/builtin-rules.ts';
import { loadCorpus } from '../masking-corpus/evaluate.ts';

const REPO = join(import.meta.dirname, '..', '..', '..');

function builtinTable(): { ids: string[]; confidence: string }[] {
  const doc = readFileSync(join(REPO, 'docs', 'masking.md'), 'utf8');
  const section = doc.slice(doc.indexOf('### Built-in rules'));
  const lines = section.split('\n');
  const header = lines.findIndex((l) => l.startsWith('| id | what | confidence |'));
  expect(header).toBeGreaterThan(0);
  const rows = lines.slice(header + 2);
  return rows.slice(0, rows.findIndex((l) => !l.startsWith('|'))).map((l) => {
    const cells = l.split(' | ');
    return { ids: [...(cells[0] ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1]!), confidence: cells[2] ?? '' };
  });
}

describe('built-in masking rules', () => {
  test('ids are unique', () => {
    expect(new Set(BUILTIN_RULE_IDS).size).toBe(BUILTIN_RULE_IDS.length);
  });

  test("docs/masking.md's table lists every built-in rule once, with its confidence, and no other", () => {
    const rows = builtinTable();
    const listed = rows.flatMap((r) => r.ids);
    expect([...listed].sort()).toEqual([...BUILTIN_RULE_IDS].sort());
    const confidence = new Map(BUILTIN_RULES.map((r) => [r.id, r.confidence]));
    for (const r of rows) for (const id of r.ids) expect({ id, confidence: r.confidence }).toEqual({ id, confidence: confidence.get(id) });
    const doc = readFileSync(join(REPO, 'docs', 'masking.md'), 'utf8');
    expect(doc).toContain(`\n${BUILTIN_RULE_IDS.length} rules. `);
  });

  test('the corpus labels positives only with built-in rule ids', () => {
    const known = new Set(BUILTIN_RULE_IDS);
    expect([...new Set(loadCorpus().positives.map((p) => p.rule))].filter((r) => !known.has(r))).toEqual([]);
  });
});
