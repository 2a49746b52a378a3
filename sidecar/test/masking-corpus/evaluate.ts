// Scores a detector on the labelled corpus: per-rule recall (every labelled secret fully gone from
// the output, no 12-byte piece of it left) and false positives (any redaction in a negative).
// Shared by the jest corpus test and bench/masking, so sluice and gitleaks are scored alike.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Negative, Positive } from './generate.ts';

export const CORPUS_DIR = import.meta.dirname;

export function loadCorpus(): { positives: Positive[]; negatives: Negative[] } {
  const read = <T>(file: string): T[] =>
    readFileSync(join(CORPUS_DIR, file), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as T);
  return { positives: read<Positive>('positives.jsonl'), negatives: read<Negative>('negatives.jsonl') };
}

const PIECE = 12;

/** True when no secret, nor any PIECE-byte window of one, survives in `output`. */
export function secretsGone(output: string, secrets: readonly string[]): boolean {
  for (const s of secrets) {
    if (s.length <= PIECE) {
      if (output.includes(s)) return false;
      continue;
    }
    for (let i = 0; i + PIECE <= s.length; i += 4) if (output.includes(s.slice(i, i + PIECE))) return false;
    if (output.includes(s.slice(-PIECE))) return false;
  }
  return true;
}

export interface RuleScore {
  rule: string;
  positives: number;
  detected: number;
  /** Detected with the labelled rule id (not merely by an overlapping rule). */
  attributed: number;
}

export interface Score {
  rules: RuleScore[];
  positives: number;
  detected: number;
  negatives: number;
  falsePositives: number;
  fpByKind: Map<string, number>;
  missed: string[];
  fpIds: string[];
}

/** A detector maps a text to its masked form and the rule ids that fired. */
export type Detector = (text: string) => { output: string; rules: string[] };

export function score(detect: Detector, corpus = loadCorpus()): Score {
  const byRule = new Map<string, RuleScore>();
  const missed: string[] = [];
  let detected = 0;
  for (const p of corpus.positives) {
    const row = byRule.get(p.rule) ?? { rule: p.rule, positives: 0, detected: 0, attributed: 0 };
    byRule.set(p.rule, row);
    row.positives++;
    const r = detect(p.text);
    if (secretsGone(r.output, p.secrets)) {
      row.detected++;
      detected++;
      if (r.rules.includes(p.rule)) row.attributed++;
    } else {
      missed.push(p.id);
    }
  }
  const fpByKind = new Map<string, number>();
  const fpIds: string[] = [];
  for (const n of corpus.negatives) {
    if (detect(n.text).rules.length > 0) {
      fpByKind.set(n.kind, (fpByKind.get(n.kind) ?? 0) + 1);
      fpIds.push(n.id);
    }
  }
  return {
    rules: [...byRule.values()].sort((a, b) => a.rule.localeCompare(b.rule)),
    positives: corpus.positives.length,
    detected,
    negatives: corpus.negatives.length,
    falsePositives: fpIds.length,
    fpByKind,
    missed,
    fpIds,
  };
}

const pct = (a: number, b: number): string => (b === 0 ? '   -  ' : `${((100 * a) / b).toFixed(1).padStart(5)}%`);

export function formatScore(s: Score, title: string): string {
  const lines = [`${title}`, `${'rule'.padEnd(28)} ${'n'.padStart(4)} ${'recall'.padStart(7)} ${'by-rule'.padStart(7)}`];
  for (const r of s.rules) lines.push(`${r.rule.padEnd(28)} ${String(r.positives).padStart(4)} ${pct(r.detected, r.positives).padStart(7)} ${pct(r.attributed, r.positives).padStart(7)}`);
  lines.push(`${'ALL positives'.padEnd(28)} ${String(s.positives).padStart(4)} ${pct(s.detected, s.positives).padStart(7)}`);
  lines.push(`${'negatives (false positives)'.padEnd(28)} ${String(s.negatives).padStart(4)} ${pct(s.falsePositives, s.negatives).padStart(7)}  (${s.falsePositives})`);
  for (const [k, v] of [...s.fpByKind.entries()].sort()) lines.push(`   fp ${k}: ${v}`);
  return lines.join('\n');
}
