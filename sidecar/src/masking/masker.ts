// Chooses rules by id and masks whole buffers. The rule set a request uses is picked by policy
// (`decision.mask`: ids, or "*" for all), so compiled scanners are cached per distinct selection.
// Redactions are reported by rule, offset and length only: never the matched bytes.
import { BUILTIN_RULES } from './builtin-rules.ts';
import type { RuleSpec } from './rule-schema.ts';
import { Scanner } from './scanner.ts';
import type { Finding } from './scanner.ts';

export type Direction = 'request' | 'response';

/** One redaction as reported to audit/metrics: where, by which rule; the value is never included. */
export interface Redaction {
  rule: string;
  direction: Direction;
  /** Byte offset of the secret in the (decoded) body as the sender sent it. */
  offset: number;
  length: number;
}

export type RuleSelection = readonly string[] | '*';

export interface Masker {
  readonly scanner: Scanner;
  /** Ids asked for that no loaded rule has (a typo in policy): the caller should audit them. */
  readonly unknownRuleIds: readonly string[];
  /** Masks a whole body in memory. For streams use maskingTransform. */
  maskBuffer(body: Buffer): { output: Buffer; findings: Finding[] };
  maskText(text: string): { output: string; findings: Finding[] };
}

const REPLACEMENTS = new Map<string, Buffer>();

/** `[REDACTED:rule-id]`, or for keep-length rules the same number of bytes, so offsets stay put. */
export function replacementFor(f: Finding): Buffer {
  const label = `[REDACTED:${f.rule}]`;
  if (!f.keepLength) {
    let r = REPLACEMENTS.get(label);
    if (!r) {
      r = Buffer.from(label, 'latin1');
      REPLACEMENTS.set(label, r);
    }
    return r;
  }
  const len = f.end - f.start;
  return Buffer.from(len >= label.length ? label + '*'.repeat(len - label.length) : '*'.repeat(len), 'latin1');
}

/** Copies `buf[from, to)` with every finding inside it replaced. Findings must be sorted and disjoint. */
export function applyFindings(buf: Buffer, findings: readonly Finding[], from: number, to: number): Buffer {
  if (findings.length === 0) return buf.subarray(from, to);
  const parts: Buffer[] = [];
  let pos = from;
  for (const f of findings) {
    if (f.start >= to) break;
    parts.push(buf.subarray(pos, f.start), replacementFor(f));
    pos = f.end;
  }
  if (pos < to) parts.push(buf.subarray(pos, to));
  return Buffer.concat(parts);
}

function select(rules: readonly RuleSpec[], ids: RuleSelection): { chosen: RuleSpec[]; unknown: string[] } {
  if (ids === '*' || ids.includes('*')) return { chosen: [...rules], unknown: [] };
  const wanted = new Set(ids);
  const chosen = rules.filter((r) => wanted.has(r.id));
  const known = new Set(rules.map((r) => r.id));
  return { chosen, unknown: [...wanted].filter((id) => !known.has(id)) };
}

class RuleSetMasker implements Masker {
  readonly scanner: Scanner;
  readonly unknownRuleIds: readonly string[];
  constructor(rules: readonly RuleSpec[], ids: RuleSelection) {
    const { chosen, unknown } = select(rules, ids);
    this.scanner = new Scanner(chosen);
    this.unknownRuleIds = Object.freeze(unknown);
  }
  maskBuffer(body: Buffer): { output: Buffer; findings: Finding[] } {
    const { findings } = this.scanner.scan(body, 0, true);
    return { output: findings.length ? applyFindings(body, findings, 0, body.length) : body, findings };
  }
  maskText(text: string): { output: string; findings: Finding[] } {
    const { output, findings } = this.maskBuffer(Buffer.from(text, 'utf8'));
    return { output: findings.length ? output.toString('utf8') : text, findings };
  }
}

/** A masker over the given rule ids (default: every rule) of `rules` (default: the built-in set). */
export function createMasker(ids: RuleSelection = '*', rules: readonly RuleSpec[] = BUILTIN_RULES): Masker {
  return new RuleSetMasker(rules, ids);
}

/**
 * Caches maskers per selection for one loaded rule set. Policy returns the same few `mask` lists
 * over and over; compiling per request would cost more than scanning a small body.
 */
export class MaskerCache {
  private readonly rules: readonly RuleSpec[];
  private readonly cache = new Map<string, Masker>();
  private readonly limit: number;
  constructor(rules: readonly RuleSpec[] = BUILTIN_RULES, limit = 64) {
    this.rules = rules;
    this.limit = limit;
  }
  get(ids: RuleSelection): Masker {
    const key = ids === '*' ? '*' : [...ids].sort().join(',');
    let m = this.cache.get(key);
    if (m) {
      this.cache.delete(key);
    } else {
      m = createMasker(ids, this.rules);
      if (this.cache.size >= this.limit) {
        const oldest = this.cache.keys().next().value;
        if (oldest !== undefined) this.cache.delete(oldest);
      }
    }
    this.cache.set(key, m);
    return m;
  }
}
