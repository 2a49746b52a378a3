// The shape of a masking rule as data: the built-in rules and the ones a platform team adds in a
// JSON/YAML file share it. Loading validates every field (zod), compiles every regex once and
// freezes the result, so a bad rule file fails at start-up naming the rule and field, never during
// a request. Nothing here scans text.
import { createRequire } from 'node:module';
import type * as Regexpp from '@eslint-community/regexpp';
import type * as Scslre from 'scslre';
import { z } from 'zod';
import { parse as parseYaml } from 'yaml';
import type { AreaCode } from '../../../api/src/codes.ts';
import { VALIDATORS } from './validators.ts';

export class MaskingRuleError extends Error {
  readonly code: AreaCode<'masking', 'config'>;
  constructor(code: AreaCode<'masking', 'config'>, message: string) {
    super(message);
    this.name = 'MaskingRuleError';
    this.code = code;
  }
}

const ruleId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{1,62}$/, 'lower-case letters, digits and dashes (it becomes a metric label)');

const common = {
  id: ruleId,
  description: z.string().min(1),
  confidence: z.enum(['high', 'medium', 'low']).describe('wins overlaps; high = validated format'),
  validator: z
    .string()
    .refine((v) => v in VALIDATORS, { message: `unknown validator (known: ${Object.keys(VALIDATORS).join(', ')})` })
    .optional(),
  keepLength: z.boolean().default(false).describe('replace with a same-length mask instead of [REDACTED:id]'),
  allowlist: z.array(z.string()).default([]).describe('regexes; a secret value matching one is not reported'),
};

/** A literal-anchored rule: every match contains one of `keywords`; `pattern` is run only near them. */
export const PatternRuleSpec = z
  .object({
    ...common,
    kind: z.literal('pattern').default('pattern'),
    keywords: z.array(z.string().min(1).max(64)).min(1),
    keywordsIgnoreCase: z.boolean().default(false),
    pattern: z.string().min(1).describe('JS regex; named group `secret` marks the span to redact, else the whole match'),
    flags: z
      .string()
      .regex(/^[ims]*$/)
      .default(''),
    lookbehind: z.number().int().min(0).max(1024).default(0).describe('how far before a keyword a match may start (0: it starts at the keyword)'),
    context: z.number().int().min(0).max(256).default(8).describe('bytes before the match that (?<=...)/(?<!...) assertions look at'),
    maxLength: z.number().int().min(1).max(65536).describe('longest match, measured from the keyword'),
  })
  .strict();

/**
 * A `name = value` / `name: value` rule (dotenv, YAML, JSON, code, headers): found at every `=`/`:`,
 * it checks the assigned name against `names` and the value against `value`.
 */
export const AssignmentRuleSpec = z
  .object({
    ...common,
    kind: z.literal('assignment'),
    names: z.string().min(1).describe('case-insensitive regex tested against the assigned name'),
    value: z.string().min(1).describe('regex anchored at the value start; named group `secret` is redacted'),
    separators: z.array(z.enum(['=', ':'])).min(1).default(['=', ':']),
    lineStart: z.boolean().default(false).describe('the name must open its line (dotenv, shell exports)'),
    maxLength: z.number().int().min(1).max(65536).default(1024),
  })
  .strict();

export const RuleSpec = z.union([AssignmentRuleSpec, PatternRuleSpec]);
export const RuleFile = z.object({ rules: z.array(RuleSpec) }).strict();

export type PatternRuleSpec = z.output<typeof PatternRuleSpec>;
export type AssignmentRuleSpec = z.output<typeof AssignmentRuleSpec>;
export type RuleSpec = z.output<typeof RuleSpec>;
export type RuleSpecInput = z.input<typeof RuleSpec>;

// The backtracking analysis (scslre, ~14 MB) is loaded only when a rule file is: most sidecars
// run the built-in rules alone.
type Analyser = (source: string, flags: string) => { type: string; exponential: boolean } | undefined;
let analyser: Analyser | undefined;
function backtrackingReport(source: string, flags: string): ReturnType<Analyser> {
  if (!analyser) {
    const require = createRequire(import.meta.url);
    const { RegExpParser } = require('@eslint-community/regexpp') as typeof Regexpp;
    const { analyse } = require('scslre') as typeof Scslre;
    const parser = new RegExpParser({ ecmaVersion: 2025 });
    analyser = (src, fl) => analyse(parser.parseLiteral(`/${src.replace(/(?<!\\)\//g, '\\/')}/${fl.replace(/[^dgimsuvy]/g, '')}`)).reports[0];
  }
  return analyser(source, flags);
}

function checkRegex(id: string, field: string, source: string, flags: string, backtracking: boolean): void {
  try {
    new RegExp(source, flags);
  } catch (err) {
    throw new MaskingRuleError('masking.bad_regex', `rule ${id}: ${field} is not a valid regex (${(err as Error).message})`);
  }
  if (!backtracking) return;
  // A rule file is someone else's regex run over every body: one with super-linear backtracking
  // (nested quantifiers, overlapping alternatives) would stall the sidecar on a crafted response.
  let report;
  try {
    report = backtrackingReport(source, flags);
  } catch (err) {
    throw new MaskingRuleError('masking.bad_regex', `rule ${id}: ${field} cannot be analysed (${(err as Error).message})`);
  }
  if (report) {
    throw new MaskingRuleError('masking.slow_regex', `rule ${id}: ${field} can backtrack super-linearly (${report.type}: ${report.exponential ? 'exponential' : 'polynomial'} in the input length); rewrite it without nested or overlapping quantifiers`);
  }
}

/**
 * Validates rule objects, checks their regexes compile (and, for rules from a file, that they
 * cannot backtrack super-linearly), and returns them frozen.
 */
export function parseRules(input: unknown, source = 'rules', o: { checkBacktracking?: boolean } = {}): readonly RuleSpec[] {
  const bt = o.checkBacktracking ?? false;
  const parsed = z.array(RuleSpec).safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const at = issue ? issue.path.join('.') : '';
    throw new MaskingRuleError('masking.bad_rule', `${source}: ${at}: ${issue?.message ?? 'invalid'}`);
  }
  const seen = new Set<string>();
  for (const rule of parsed.data) {
    if (seen.has(rule.id)) throw new MaskingRuleError('masking.duplicate_rule', `${source}: rule id ${rule.id} is defined twice`);
    seen.add(rule.id);
    if (rule.kind === 'assignment') {
      checkRegex(rule.id, 'names', rule.names, 'i', bt);
      checkRegex(rule.id, 'value', rule.value, 'y', bt);
    } else {
      checkRegex(rule.id, 'pattern', rule.pattern, rule.flags, bt);
    }
    rule.allowlist.forEach((a, i) => {
      checkRegex(rule.id, `allowlist.${i}`, a, '', bt);
    });
  }
  return Object.freeze(parsed.data.map((r) => Object.freeze(r)));
}

/** Reads a platform team's rule file: `{ rules: [...] }` as JSON or YAML. */
export function parseRuleFile(text: string, source: string): readonly RuleSpec[] {
  let doc: unknown;
  try {
    doc = source.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new MaskingRuleError('masking.bad_rule_file', `${source}: not valid ${source.endsWith('.json') ? 'JSON' : 'YAML'} (${(err as Error).message})`);
  }
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { rules?: unknown }).rules)) {
    throw new MaskingRuleError('masking.bad_rule_file', `${source}: expected an object with a "rules" list`);
  }
  return parseRules((doc as { rules: unknown[] }).rules, source, { checkBacktracking: true });
}

/** Built-in rules plus added ones; an added rule with a built-in id replaces it. */
export function mergeRules(base: readonly RuleSpec[], added: readonly RuleSpec[]): readonly RuleSpec[] {
  const byId = new Map(base.map((r) => [r.id, r]));
  for (const r of added) byId.set(r.id, r);
  return Object.freeze([...byId.values()]);
}
