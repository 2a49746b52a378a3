// Where in a Rego library each decision code comes from: a pure scan of the sources that finds every
// rule naming a code (`lib.deny("git.paste_denied", …)`, `"code": "net.not_allowlisted"`) with its
// file, line, priority, text and the input fields it reads. `make policy` writes it beside the bundle
// (rules.json, policies/scripts/rule-index.ts) from the original sources, because the copies `opa
// build -t wasm` stores in a bundle lose their comments (so their line numbers) and the entrypoint rule.
// For any other bundle the same scan runs over the sources stored in it, and says so.
// It reads text only: it never evaluates Rego and never decides anything.

/** One rule that can produce a decision code. */
export interface RuleEntry {
  code: string;
  /** library-relative path, e.g. policies/rego/git.rego */
  file: string;
  /** 1-based line of the code literal */
  line: number;
  /** the rule's name (`verdicts`, `decision`, …) and package */
  rule: string;
  package: string;
  /** first and last line of the whole rule (its comments excluded) */
  start: number;
  end: number;
  /** the verdict priority when the rule wraps its decision in lib.verdict(N, …) */
  priority?: number;
  /** the rule's source, lines start..end (long rules cut) */
  text: string;
  /** the input fields the rule reads, aliases resolved (`aws.bucket` → input.facts.aws.bucket) */
  inputs: string[];
}

export interface RuleIndex {
  /** the bundle revision the index was built for */
  revision: string;
  /** where the scanned sources came from: "sources" (make policy) or "bundle" (copies stored in a bundle) */
  from: 'sources' | 'bundle';
  rules: RuleEntry[];
}

export interface RegoFile {
  path: string;
  text: string;
}

/** The rules.json file name, beside bundle.tar.gz. */
export const RULE_INDEX_FILE = 'rules.json';
const MAX_RULE_LINES = 40;

// A code is the first argument of a call or the value of "code": a dotted lower-case name.
const CODE_LITERAL = /(?:\(\s*|"code"\s*:\s*)"([a-z0-9_]+(?:\.[a-z0-9_]+)+)"/g;
// Top-level statements start in column 0 (opa fmt style, which OPA's own bundle copies keep too).
const RULE_START = /^(?:default\s+)?([A-Za-z_][\w]*)\b/;
const ALIAS = /^([A-Za-z_]\w*)\s*:=\s*(input(?:\.[A-Za-z_]\w*)+)\s*$/;
const INPUT_REF = /\binput(?:\.[A-Za-z_]\w*)+/g;

interface Span {
  start: number; // 0-based line index
  end: number;
  name: string;
}

function ruleSpans(lines: readonly string[]): Span[] {
  const spans: Span[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const m = RULE_START.exec(line);
    if (!m || m[1] === 'package' || m[1] === 'import') continue;
    const last = spans.at(-1);
    if (last && last.end < 0) last.end = lastCodeLine(lines, last.start, i - 1);
    spans.push({ start: i, end: -1, name: m[1]! });
  }
  const last = spans.at(-1);
  if (last && last.end < 0) last.end = lastCodeLine(lines, last.start, lines.length - 1);
  return spans;
}

/** The last line of a rule: blank lines and the next rule's column-0 comments belong to neither. */
function lastCodeLine(lines: readonly string[], start: number, to: number): number {
  let end = to;
  while (end > start && (lines[end]!.trim() === '' || lines[end]!.startsWith('#'))) end--;
  return end;
}

/** Simple aliases of the form `aws := input.facts.aws` a package defines at its top level. */
export function inputAliases(text: string): Map<string, string> {
  const aliases = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = ALIAS.exec(line);
    if (m) aliases.set(m[1]!, m[2]!);
  }
  return aliases;
}

/** The input paths a piece of Rego reads, with the package's aliases resolved, sorted. */
export function inputsRead(text: string, aliases: ReadonlyMap<string, string>): string[] {
  // string literals and comments name no input
  const code = text.replace(/"(?:[^"\\\n]|\\.)*"/g, '""').replace(/#.*$/gm, '');
  const found = new Set<string>();
  for (const m of code.matchAll(INPUT_REF)) found.add(m[0]);
  for (const [alias, target] of aliases) {
    const re = new RegExp(`(?<![\\w.])${alias}((?:\\.[A-Za-z_]\\w*)*)(?![\\w(])`, 'g');
    for (const m of code.matchAll(re)) found.add(`${target}${m[1] ?? ''}`);
  }
  // a path and its own prefix: keep the longer one
  const all = [...found].sort();
  return all.filter((p) => !all.some((q) => q !== p && q.startsWith(`${p}.`)));
}

interface Helpers {
  /** rule name → what its bodies read directly, and the same-package rules they use */
  reads: Map<string, { inputs: Set<string>; uses: Set<string> }>;
}

function namesUsed(text: string, names: Iterable<string>): Set<string> {
  const code = text.replace(/"(?:[^"\\\n]|\\.)*"/g, '""').replace(/#.*$/gm, '');
  const used = new Set<string>();
  for (const name of names) if (new RegExp(`(?<![\\w.])${name}(?!\\w)`).test(code)) used.add(name);
  return used;
}

/** What each rule of a package reads, so a rule's helpers (`s3`, `api_write`) count as its own reads. */
function helperReads(rules: readonly { name: string; text: string }[], aliases: ReadonlyMap<string, string>): Helpers {
  const names = new Set(rules.map((r) => r.name));
  const reads: Helpers['reads'] = new Map();
  for (const r of rules) {
    const entry = reads.get(r.name) ?? { inputs: new Set<string>(), uses: new Set<string>() };
    for (const i of inputsRead(r.text, aliases)) entry.inputs.add(i);
    for (const u of namesUsed(r.text, names)) if (u !== r.name) entry.uses.add(u);
    reads.set(r.name, entry);
  }
  return { reads };
}

function withHelpers(text: string, self: string, aliases: ReadonlyMap<string, string>, helpers: Helpers): string[] {
  const found = new Set(inputsRead(text, aliases));
  const seen = new Set<string>([self]);
  const visit = (name: string, depth: number): void => {
    if (seen.has(name) || depth > 4) return;
    seen.add(name);
    const h = helpers.reads.get(name);
    if (!h) return;
    for (const i of h.inputs) found.add(i);
    for (const u of h.uses) visit(u, depth + 1);
  };
  for (const u of namesUsed(text, helpers.reads.keys())) visit(u, 0);
  const all = [...found].sort();
  return all.filter((p) => !all.some((q) => q !== p && q.startsWith(`${p}.`)));
}

/** Scans Rego sources (tests skipped) for the rules that name decision codes. */
export function scanRules(files: readonly RegoFile[]): RuleEntry[] {
  const entries: RuleEntry[] = [];
  for (const file of [...files].sort((a, b) => a.path.localeCompare(b.path))) {
    if (file.path.endsWith('_test.rego')) continue;
    const lines = file.text.split('\n');
    const pkg = /^package\s+([\w.]+)/m.exec(file.text)?.[1] ?? '';
    const aliases = inputAliases(file.text);
    const spans = ruleSpans(lines);
    const helpers = helperReads(spans.map((sp) => ({ name: sp.name, text: lines.slice(sp.start, sp.end + 1).join('\n') })), aliases);
    for (const span of spans) {
      const text = lines.slice(span.start, span.end + 1).join('\n');
      const codes = [...text.matchAll(CODE_LITERAL)];
      if (!codes.length) continue;
      const priority = /\bverdict\(\s*(\d+)/.exec(text)?.[1];
      const shown = span.end - span.start + 1 > MAX_RULE_LINES ? [...lines.slice(span.start, span.start + MAX_RULE_LINES), '\t…'].join('\n') : text;
      const inputs = withHelpers(text, span.name, aliases, helpers);
      const seen = new Set<string>();
      for (const m of codes) {
        const code = m[1]!;
        if (seen.has(code)) continue;
        seen.add(code);
        const offset = m.index + m[0].length - code.length - 1;
        const line = span.start + text.slice(0, offset).split('\n').length;
        entries.push({
          code,
          file: file.path,
          line,
          rule: span.name,
          package: pkg,
          start: span.start + 1,
          end: span.end + 1,
          ...(priority !== undefined ? { priority: Number(priority) } : {}),
          text: shown,
          inputs,
        });
      }
    }
  }
  return entries;
}

export function buildRuleIndex(files: readonly RegoFile[], revision: string, from: RuleIndex['from']): RuleIndex {
  return { revision, from, rules: scanRules(files) };
}

/** Every rule that names `code`, in file order. */
export function rulesFor(index: RuleIndex, code: string): RuleEntry[] {
  return index.rules.filter((r) => r.code === code);
}

/** A rules.json read from disk, checked for shape (an index from another tool is refused, not trusted). */
export function parseRuleIndex(text: string): RuleIndex | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  const o = raw as Partial<RuleIndex> | null;
  if (!o || typeof o !== 'object' || typeof o.revision !== 'string' || !Array.isArray(o.rules)) return undefined;
  const ok = o.rules.every((r) => r && typeof r.code === 'string' && typeof r.file === 'string' && Number.isInteger(r.line) && typeof r.text === 'string' && Array.isArray(r.inputs));
  return ok ? { revision: o.revision, from: o.from === 'bundle' ? 'bundle' : 'sources', rules: o.rules } : undefined;
}
