// The detection engine: compiles rules (data) into a scanner and finds secret spans in a byte
// buffer. Pure and synchronous; it never sees where bytes come from and never records values.
//
// Why it is shaped like this: running ~30 regexes over every byte would cap throughput near
// 100 MB/s. Instead every rule names literal keywords (or is an assignment rule, found at `=`/`:`),
// and each keyword is reduced to one rare "anchor" byte. The hot loop is one Buffer.indexOf (memchr)
// pass per distinct anchor byte; only at anchor hits do we compare keywords and, on a keyword hit,
// run the rule's regex on a small window around it. Clean text costs a handful of memchr passes.
//
// Streaming support: scan() also says up to where its answer is final (`safeEnd`). A match whose
// keyword sits too close to the end of the buffer to be complete is deferred: the caller keeps the
// bytes from there on and scans them again with the next chunk. Bounded by each rule's maxLength.
import type { AssignmentRuleSpec, PatternRuleSpec, RuleSpec } from './rule-schema.ts';
import { MaskingRuleError } from './rule-schema.ts';
import { VALIDATORS, isPlaceholder } from './validators.ts';
import type { Validator } from './validators.ts';

/** A secret span in the scanned bytes. `start`/`end` are byte offsets; the value is never kept. */
export interface Finding {
  rule: string;
  start: number;
  end: number;
  keepLength: boolean;
}

export interface ScanResult {
  /** Sorted, non-overlapping spans (overlaps merged under the strongest rule). */
  findings: Finding[];
  /** Bytes before this offset are final: no later data can create or change a finding there. */
  safeEnd: number;
}

const CONFIDENCE_RANK = { high: 3, medium: 2, low: 1 } as const;
const SLACK = 16;
// How far back from a separator an assignment's name (and its line start) may begin.
const ASSIGN_LOOKBACK = 200;
const NAME_MAX = 128;
const NAME_MEMO_LIMIT = 65536;
// Assignment rules are addressed by bit in a 32-bit mask.
const MAX_ASSIGNMENT_RULES = 31;

// Relative frequency of ASCII bytes in source code, JSON and prose (per 10k, measured on
// node_modules): the rarest byte of a keyword becomes its anchor.
const FREQ =
  ' :1751 e:805 t:603 i:457 r:454 n:447 s:433 o:426 a:416 l:269 d:249 c:216 u:215 p:204 h:166 .:156 f:147 m:127 ":111 g:104 ;:91 ):90 (:89 y:88 b:78 ,:77 =:69 ::61 /:58 x:57 0:57 S:55 v:53 C:49 T:46 }:45 {:45 w:42 *:38 E:34 A:33 P:32 I:30 |:29 -:28 _:27 k:26 R:26 D:26 O:22 F:22 1:22 M:21 j:20 \\:20 q:19 &:19 2:18 N:17 B:17 V:16 L:15 3:14 \':14 z:13 >:13 #:13 ]:12 [:12 9:12 `:11 U:11 @:11 ?:11 !:10 <:9 W:8 H:8 6:8 Q:7 G:7 4:7 K:5 8:5 7:4 5:4 +:4 X:3 J:3 $:3 Y:2 ^:1 Z:1 ~:0 %:0';
const BYTE_FREQ = new Float64Array(256).fill(0.5);
for (const entry of FREQ.split(/ (?=\S:)/)) {
  const sep = entry.lastIndexOf(':');
  const ch = entry === ' :1751' ? ' ' : entry.slice(0, sep).replace('\\\\', '\\');
  BYTE_FREQ[ch.charCodeAt(0)] = Number(entry.slice(sep + 1)) + 0.5;
}
// A memchr pass over 10k bytes costs about as much as handling this many anchor hits.
const PASS_COST = 100;

interface CompiledBase {
  index: number;
  id: string;
  rank: number;
  keepLength: boolean;
  validator: Validator | undefined;
  allow: RegExp[];
}

interface CompiledPattern extends CompiledBase {
  re: RegExp;
  /** Sticky twin of `re`, for rules whose match starts at the keyword: one attempt, no search. */
  sticky: RegExp | undefined;
  lookbehind: number;
  context: number;
  reach: number;
}

interface CompiledAssignment extends CompiledBase {
  slot: number;
  names: RegExp;
  value: RegExp;
  onEquals: boolean;
  onColon: boolean;
  lineStart: boolean;
  maxLength: number;
}

interface Keyword {
  bytes: Uint8Array; // lower-cased when ignoreCase
  ignoreCase: boolean;
  anchorOffset: number;
  rules: CompiledPattern[];
}

/** One memchr pass. Keywords are found by the byte after (or before) the anchor: one table lookup a hit. */
interface Anchor {
  byte: number;
  char: string;
  assignment: boolean;
  any: Keyword[];
  next: (Keyword[] | undefined)[];
  prev: (Keyword[] | undefined)[];
}

function addKeyword(anchor: Anchor, k: Keyword): void {
  const o = k.anchorOffset;
  const push = (table: (Keyword[] | undefined)[], b: number): void => {
    const variants = k.ignoreCase && b >= 97 && b <= 122 ? [b, b - 32] : [b];
    for (const v of variants) {
      const list = table[v] ?? [];
      if (!list.includes(k)) list.push(k);
      table[v] = list;
    }
  };
  if (o + 1 < k.bytes.length) push(anchor.next, k.bytes[o + 1] ?? 0);
  else if (o > 0) push(anchor.prev, k.bytes[o - 1] ?? 0);
  else if (!anchor.any.includes(k)) anchor.any.push(k);
}

interface Candidate {
  rank: number;
  ruleIndex: number;
  rule: string;
  keepLength: boolean;
  start: number;
  end: number;
}

function compileBase(spec: RuleSpec, index: number): CompiledBase {
  const validator = spec.validator === undefined ? undefined : VALIDATORS[spec.validator];
  return {
    index,
    id: spec.id,
    rank: CONFIDENCE_RANK[spec.confidence],
    keepLength: spec.keepLength,
    validator,
    allow: spec.allowlist.map((a) => new RegExp(a)),
  };
}

function lowerByte(b: number): number {
  return b >= 65 && b <= 90 ? b + 32 : b;
}

/** What a compiled rule set can tell about itself (for docs, tests and the bench). */
export interface ScannerInfo {
  ruleIds: string[];
  anchorBytes: string[];
  maxCarry: number;
}

export class Scanner {
  readonly ruleIds: readonly string[];
  private readonly patterns: CompiledPattern[] = [];
  private readonly assignments: CompiledAssignment[] = [];
  private readonly anchors: Anchor[] = [];
  private readonly nameMemo = new Map<number, number>();
  private readonly maxLookbehind: number;
  private readonly maxKeyword: number;
  /** Longest span a deferred match can hold back, i.e. the bound on a stream's carried tail. */
  readonly maxCarry: number;
  /** Bytes before a scan's start that rules look back at (names, schemes, boundaries). */
  readonly contextBytes: number;

  constructor(specs: readonly RuleSpec[]) {
    this.ruleIds = Object.freeze(specs.map((s) => s.id));
    let maxLookbehind = ASSIGN_LOOKBACK;
    let maxKeyword = 1;
    let maxReach = 0;
    const keywordSpecs: { text: string; ignoreCase: boolean; rule: CompiledPattern }[] = [];
    specs.forEach((spec, index) => {
      if (spec.kind === 'assignment') {
        if (this.assignments.length >= MAX_ASSIGNMENT_RULES) {
          throw new MaskingRuleError('masking.too_many_assignment_rules', `rule ${spec.id}: at most ${MAX_ASSIGNMENT_RULES} assignment rules`);
        }
        this.assignments.push(this.compileAssignment(spec, index, this.assignments.length));
        maxReach = Math.max(maxReach, spec.maxLength + ASSIGN_LOOKBACK);
        return;
      }
      const rule = this.compilePattern(spec, index);
      this.patterns.push(rule);
      maxLookbehind = Math.max(maxLookbehind, spec.lookbehind + spec.context);
      maxReach = Math.max(maxReach, rule.reach + spec.lookbehind + spec.context);
      for (const k of spec.keywords) {
        keywordSpecs.push({ text: k, ignoreCase: spec.keywordsIgnoreCase, rule });
        maxKeyword = Math.max(maxKeyword, k.length);
      }
    });
    this.maxLookbehind = maxLookbehind;
    this.maxKeyword = maxKeyword;
    this.maxCarry = maxReach + maxKeyword + SLACK;
    this.contextBytes = maxLookbehind + 8;
    this.buildAnchors(keywordSpecs);
  }

  info(): ScannerInfo {
    return {
      ruleIds: [...this.ruleIds],
      anchorBytes: this.anchors.map((a) => String.fromCharCode(a.byte)),
      maxCarry: this.maxCarry,
    };
  }

  private compilePattern(spec: PatternRuleSpec, index: number): CompiledPattern {
    for (const k of spec.keywords) {
      if (/[^\x20-\x7e]/.test(k)) throw new MaskingRuleError('masking.bad_keyword', `rule ${spec.id}: keywords must be printable ASCII`);
    }
    return {
      ...compileBase(spec, index),
      re: new RegExp(spec.pattern, `gd${spec.flags}`),
      sticky: spec.lookbehind === 0 ? new RegExp(spec.pattern, `yd${spec.flags}`) : undefined,
      lookbehind: spec.lookbehind,
      context: spec.context,
      reach: spec.maxLength + SLACK,
    };
  }

  private compileAssignment(spec: AssignmentRuleSpec, index: number, slot: number): CompiledAssignment {
    return {
      ...compileBase(spec, index),
      slot,
      names: new RegExp(spec.names, 'i'),
      value: new RegExp(spec.value, 'yd'),
      onEquals: spec.separators.includes('='),
      onColon: spec.separators.includes(':'),
      lineStart: spec.lineStart,
      maxLength: spec.maxLength,
    };
  }

  private buildAnchors(keywords: { text: string; ignoreCase: boolean; rule: CompiledPattern }[]): void {
    const byByte = new Map<number, Anchor>();
    const anchorFor = (byte: number): Anchor => {
      let a = byByte.get(byte);
      if (!a) {
        a = { byte, char: String.fromCharCode(byte), assignment: false, any: [], next: new Array<Keyword[] | undefined>(256), prev: new Array<Keyword[] | undefined>(256) };
        byByte.set(byte, a);
      }
      return a;
    };
    if (this.assignments.some((a) => a.onEquals)) anchorFor(0x3d).assignment = true;
    if (this.assignments.some((a) => a.onColon)) anchorFor(0x3a).assignment = true;
    // Keywords shared by several rules are compared once.
    const merged = new Map<string, Keyword>();
    for (const k of keywords) {
      const text = k.ignoreCase ? k.text.toLowerCase() : k.text;
      const key = `${k.ignoreCase ? 'i' : 's'}:${text}`;
      let entry = merged.get(key);
      if (!entry) {
        entry = { bytes: Buffer.from(text, 'latin1'), ignoreCase: k.ignoreCase, anchorOffset: 0, rules: [] };
        merged.set(key, entry);
      }
      if (!entry.rules.includes(k.rule)) entry.rules.push(k.rule);
    }
    // Greedy set cover: each memchr pass costs about PASS_COST hits per 10k bytes, so pick the byte
    // with the lowest (pass + hits) cost per keyword it covers until every keyword has an anchor.
    const passBytes = (b: number, ignoreCase: boolean): number[] => (ignoreCase && b >= 97 && b <= 122 ? [b, b - 32] : [b]);
    let open = [...merged.values()];
    while (open.length > 0) {
      const covers = new Map<string, Keyword[]>();
      for (const k of open) {
        for (const b of new Set(k.bytes)) {
          const key = passBytes(b, k.ignoreCase).join(',');
          const list = covers.get(key) ?? [];
          list.push(k);
          covers.set(key, list);
        }
      }
      let bestKey = '';
      let bestScore = Infinity;
      for (const [key, list] of covers) {
        const bytes = key.split(',').map(Number);
        const cost = bytes.reduce((sum, b) => sum + (BYTE_FREQ[b] ?? 0) + (byByte.has(b) ? 0 : PASS_COST), 0);
        const score = cost / list.length;
        if (score < bestScore) {
          bestScore = score;
          bestKey = key;
        }
      }
      const chosen = covers.get(bestKey) ?? [];
      const bytes = bestKey.split(',').map(Number);
      for (const k of chosen) {
        k.anchorOffset = k.bytes.indexOf(bytes[0] ?? 0);
        for (const b of bytes) addKeyword(anchorFor(b), k);
      }
      open = open.filter((k) => !chosen.includes(k));
    }
    this.anchors.push(...byByte.values());
  }

  /**
   * Finds secrets in `buf`. Offsets below `from` are context already emitted by a stream: findings
   * are clipped to start at `from`. With `final` false, matches that could still grow with more data
   * are left out and `safeEnd` says where the undecided region begins.
   */
  scan(buf: Buffer, from = 0, final = true): ScanResult {
    const n = buf.length;
    const text = buf.toString('latin1');
    const cands: Candidate[] = [];
    let cut = final ? n : Math.max(from, n - this.maxKeyword - this.maxLookbehind);
    for (const anchor of this.anchors) {
      const { next, prev, any, assignment, char } = anchor;
      // String#indexOf on the latin1 view: a builtin call per hit, far cheaper than Buffer#indexOf's.
      let i = text.indexOf(char, 0);
      while (i !== -1) {
        if (assignment) {
          const c = this.assignmentAt(buf, text, i, final, cands);
          if (c < cut) cut = c;
        }
        const kn = i + 1 < n ? next[buf[i + 1] ?? 0] : undefined;
        if (kn !== undefined) cut = this.keywordsAt(kn, buf, text, i, final, cands, cut);
        const kp = i > 0 ? prev[buf[i - 1] ?? 0] : undefined;
        if (kp !== undefined) cut = this.keywordsAt(kp, buf, text, i, final, cands, cut);
        if (any.length > 0) cut = this.keywordsAt(any, buf, text, i, final, cands, cut);
        i = text.indexOf(char, i + 1);
      }
    }
    return { findings: resolve(cands, from, cut), safeEnd: cut };
  }

  private keywordsAt(list: Keyword[], buf: Buffer, text: string, i: number, final: boolean, cands: Candidate[], cut: number): number {
    const n = buf.length;
    for (const k of list) {
      const h = i - k.anchorOffset;
      if (h < 0 || h + k.bytes.length > n || !keywordAt(buf, h, k)) continue;
      for (const rule of k.rules) {
        const c = this.patternAt(rule, text, h, final, cands);
        if (c < cut) cut = c;
      }
    }
    return cut;
  }

  /** Runs one pattern rule at keyword position h. Returns the deferral cut (Infinity if decided). */
  private patternAt(rule: CompiledPattern, text: string, h: number, final: boolean, cands: Candidate[]): number {
    for (const c of cands) if (c.ruleIndex === rule.index && c.start <= h && c.end > h) return Infinity;
    const n = text.length;
    const lo = Math.max(0, h - rule.lookbehind);
    const ws = Math.max(0, lo - rule.context);
    const we = Math.min(n, h + rule.reach);
    const truncated = !final && h + rule.reach > n;
    const window = text.slice(ws, we);
    if (rule.sticky) {
      const re = rule.sticky;
      re.lastIndex = h - ws;
      const m = re.exec(window);
      if (m === null) return truncated ? lo : Infinity;
      const end = h + m[0].length;
      if (truncated && end + SLACK > n) return lo;
      const span = secretSpan(m, ws, h, end);
      this.accept(rule, text, span[0], span[1], cands);
      return Infinity;
    }
    const re = rule.re;
    re.lastIndex = 0;
    for (let m = re.exec(window); m !== null; m = re.exec(window)) {
      const start = ws + m.index;
      const end = start + m[0].length;
      if (m[0].length === 0) re.lastIndex++;
      if (start > h) break;
      if (start < lo || end <= h) continue;
      if (truncated && end + SLACK > n) return lo;
      const span = secretSpan(m, ws, start, end);
      this.accept(rule, text, span[0], span[1], cands);
      return Infinity;
    }
    return truncated ? lo : Infinity;
  }

  /** Assignment rules at a `=`/`:` at position i. Returns the deferral cut (Infinity if decided). */
  private assignmentAt(buf: Buffer, text: string, i: number, final: boolean, cands: Candidate[]): number {
    const n = buf.length;
    const sep = buf[i];
    const next = i + 1 < n ? (buf[i + 1] ?? 0) : -1;
    if (next === -1) return final ? Infinity : Math.max(0, i - ASSIGN_LOOKBACK);
    let nameEnd = i; // exclusive
    if (sep === 0x3d) {
      if (next === 0x3d || next === 0x3e || next === 0x7e) return Infinity; // == => =~
      const prev = i > 0 ? (buf[i - 1] ?? 0) : 0;
      if (prev === 0x3a) nameEnd = i - 1; // := (Go)
      else if (isOperatorByte(prev)) return Infinity; // != <= += ...
    } else if (next === 0x2f || next === 0x3a || next === 0x3d) {
      return Infinity; // :// :: :=
    }
    // Value: skip blanks and one opening quote, then find where the value text ends.
    let v = i + 1;
    while (v < n && v < i + 9 && (buf[v] === 0x20 || buf[v] === 0x09)) v++;
    if (v >= n) return final ? Infinity : Math.max(0, i - ASSIGN_LOOKBACK);
    let quote = buf[v] ?? 0;
    let escaped = false;
    if (quote === 0x5c && (buf[v + 1] === 0x22 || buf[v + 1] === 0x27)) {
      // JSON inside a JSON string (an LLM prompt carrying a config file): \"value\"
      escaped = true;
      quote = buf[v + 1] ?? 0;
      v += 2;
    } else if (quote === 0x22 || quote === 0x27 || quote === 0x60) v++;
    else quote = 0;
    // Cheap reject before touching the name: values are at least a few bytes (a scheme such as
    // "token " or "Basic " may follow).
    for (let j = v; j < v + 4; j++) {
      if (j >= n) return final ? Infinity : Math.max(0, i - ASSIGN_LOOKBACK);
      if (isValueStop(buf[j] ?? 0, quote)) return Infinity;
    }
    // `name: string;`, `key = getKey(`, `token: opts.token,`: an unquoted identifier closed by code
    // punctuation is a reference in code (or a type), not a literal value. Most `:` in code end here.
    if (quote === 0) {
      let j = v;
      const limit = Math.min(n, v + 64);
      while (j < limit && isIdentifierByte(buf[j] ?? 0)) j++;
      const b = buf[j] ?? 0;
      if (j < limit && (b === 0x3b || b === 0x2c || b === 0x28 || b === 0x29 || b === 0x3c || b === 0x5b)) return Infinity;
    }
    const name = readName(buf, nameEnd);
    if (name === undefined) return Infinity;
    const matching = this.rulesNaming(buf, text, name.nameStart, name.nameEnd);
    if (matching === 0) return Infinity;
    let cut = Infinity;
    for (const rule of this.assignments) {
      if ((matching & (1 << rule.slot)) === 0) continue;
      if (sep === 0x3d ? !rule.onEquals : !rule.onColon) continue;
      if (rule.lineStart && !opensLine(buf, name.start)) continue;
      const limit = v + rule.maxLength;
      let ve = v;
      while (ve < n && ve < limit && !isValueEnd(buf, ve, quote, escaped)) ve++;
      if (!final && ve >= n && ve < limit) {
        cut = Math.min(cut, name.start);
        continue;
      }
      const value = text.slice(v, ve);
      rule.value.lastIndex = 0;
      const m = rule.value.exec(value);
      if (m === null) continue;
      const span = secretSpan(m, v, v, v + m[0].length);
      this.accept(rule, text, span[0], span[1], cands);
    }
    return cut;
  }

  /**
   * Bit set of assignment rules whose `names` regex accepts the name in `buf[start, end)`. Names
   * repeat endlessly in code and JSON (id, type, name, ...), so answers are memoised under a
   * 53-bit key (FNV-1a of the bytes, length, first and last byte), which spares building a string
   * per `=`/`:`. The memo is dropped when it grows past NAME_MEMO_LIMIT.
   */
  private rulesNaming(buf: Buffer, text: string, start: number, end: number): number {
    let h = 0x811c9dc5;
    for (let j = start; j < end; j++) h = Math.imul(h ^ (buf[j] ?? 0), 0x01000193);
    const len = end - start;
    const key = (h >>> 0) * 0x200000 + (((len & 0x7f) << 14) | (((buf[start] ?? 0) & 0x7f) << 7) | ((buf[end - 1] ?? 0) & 0x7f));
    let bits = this.nameMemo.get(key);
    if (bits === undefined) {
      const name = text.slice(start, end);
      bits = 0;
      for (const rule of this.assignments) if (rule.names.test(name)) bits |= 1 << rule.slot;
      if (this.nameMemo.size >= NAME_MEMO_LIMIT) this.nameMemo.clear();
      this.nameMemo.set(key, bits);
    }
    return bits;
  }

  private accept(rule: CompiledBase, text: string, start: number, end: number, cands: Candidate[]): void {
    // A span must not end inside a JSON/shell escape: a dangling backslash would eat the quote after it.
    while (end > start && text.charCodeAt(end - 1) === 0x5c) end--;
    if (end <= start) return;
    const value = text.slice(start, end);
    if (isPlaceholder(value)) return;
    if (rule.validator && !rule.validator(value)) return;
    for (const a of rule.allow) if (a.test(value)) return;
    cands.push({ rank: rule.rank, ruleIndex: rule.index, rule: rule.id, keepLength: rule.keepLength, start, end });
  }
}

function keywordAt(buf: Buffer, h: number, k: Keyword): boolean {
  const bytes = k.bytes;
  if (k.ignoreCase) {
    for (let j = 0; j < bytes.length; j++) if (lowerByte(buf[h + j] ?? 0) !== bytes[j]) return false;
  } else {
    for (let j = 0; j < bytes.length; j++) if (buf[h + j] !== bytes[j]) return false;
  }
  return true;
}

function secretSpan(m: RegExpExecArray, base: number, start: number, end: number): [number, number] {
  const g = m.indices?.groups?.secret;
  return g ? [base + g[0], base + g[1]] : [start, end];
}

function isOperatorByte(b: number): boolean {
  // ! < > = + - * / % & | ^ ~ ?
  return b === 0x21 || b === 0x3c || b === 0x3e || b === 0x3d || b === 0x2b || b === 0x2d || b === 0x2a || b === 0x2f ||
    b === 0x25 || b === 0x26 || b === 0x7c || b === 0x5e || b === 0x7e || b === 0x3f;
}

function isNameByte(b: number): boolean {
  return (b >= 0x61 && b <= 0x7a) || (b >= 0x41 && b <= 0x5a) || (b >= 0x30 && b <= 0x39) || b === 0x5f || b === 0x2d || b === 0x2e;
}

function isIdentifierByte(b: number): boolean {
  return (b >= 0x61 && b <= 0x7a) || (b >= 0x41 && b <= 0x5a) || (b >= 0x30 && b <= 0x39) || b === 0x5f || b === 0x24 || b === 0x2e;
}

function isValueStop(b: number, quote: number): boolean {
  if (quote !== 0) return b === quote || b === 0x0a || b === 0x0d;
  return b <= 0x20 || b === 0x2c || b === 0x3b || b === 0x7d || b === 0x29 || b === 0x22 || b === 0x27;
}

/**
 * Quoted values end at the closing quote (not an escaped one); bare values at the end of the line.
 * A backslash also ends a bare value: in JSON-escaped text (a prompt carrying a .env file) `\n` is
 * the line break.
 */
function isValueEnd(buf: Buffer, j: number, quote: number, escaped: boolean): boolean {
  const b = buf[j] ?? 0;
  if (b === 0x0a || b === 0x0d) return true;
  if (quote === 0 || escaped) return b === 0x5c || (quote !== 0 && b === quote);
  return b === quote && buf[j - 1] !== 0x5c;
}

/** The assigned name before a separator: `NAME=`, `name: `, `"name": `, `\\"name\\": `. */
function readName(buf: Buffer, end: number): { nameStart: number; nameEnd: number; start: number } | undefined {
  let j = end - 1;
  while (j >= 0 && j > end - 9 && (buf[j] === 0x20 || buf[j] === 0x09)) j--;
  let quote = 0;
  if (buf[j] === 0x22 || buf[j] === 0x27) {
    quote = buf[j] ?? 0;
    j--;
    if (buf[j] === 0x5c) j--; // \"name\": JSON inside a JSON string
  }
  const nameEnd = j + 1;
  const floor = Math.max(0, nameEnd - NAME_MAX);
  while (j >= floor && isNameByte(buf[j] ?? 0)) j--;
  let nameStart = j + 1;
  // `\nAPI_KEY=` in JSON-escaped text: the n (or r, t) belongs to the escape, not to the name.
  if (buf[j] === 0x5c && (buf[nameStart] === 0x6e || buf[nameStart] === 0x72 || buf[nameStart] === 0x74)) nameStart++;
  if (nameEnd - nameStart < 2) return undefined;
  if (quote !== 0) {
    if (buf[j] !== quote) return undefined;
    return { nameStart, nameEnd, start: buf[j - 1] === 0x5c ? j - 1 : j };
  }
  return { nameStart, nameEnd, start: nameStart };
}

/**
 * Only blanks, `- ` (YAML lists), `{`/`,`, or one shell word (`export`, `set`, Dockerfile `ENV`)
 * stand between the line start and `pos`. After `export`/`ENV` anything may precede (CI logs print
 * `<timestamp> + export NAME=value`).
 */
function opensLine(buf: Buffer, pos: number): boolean {
  let j = pos - 1;
  const floor = Math.max(0, pos - ASSIGN_LOOKBACK);
  let seenWord = false;
  while (j >= floor) {
    const b = buf[j] ?? 0;
    if (b === 0x0a || b === 0x0d) return true;
    if ((b === 0x6e || b === 0x72) && buf[j - 1] === 0x5c) return true; // \n in JSON-escaped text
    if (b === 0x20 || b === 0x09 || b === 0x2d || b === 0x7b || b === 0x2c) {
      j--;
      continue;
    }
    if (seenWord || !isNameByte(b)) return false;
    const wordEnd = j + 1;
    while (j >= floor && isNameByte(buf[j] ?? 0)) j--;
    const word = buf.toString('latin1', j + 1, wordEnd);
    if (word === 'export' || word === 'ENV' || word === 'declare') return true;
    if (word !== 'set') return false;
    seenWord = true;
  }
  return j < 0;
}

/** Keeps candidates at or after `from` (clipped) and before `cut`; merges overlaps under the strongest rule. */
function resolve(cands: Candidate[], from: number, cut: number): Finding[] {
  if (cands.length === 0) return [];
  cands.sort((a, b) => a.start - b.start || b.end - a.end);
  const out: Finding[] = [];
  let cur: Candidate | undefined;
  for (const c0 of cands) {
    const c = c0.start < from ? { ...c0, start: from } : c0;
    if (c.end <= c.start) continue;
    if (cur && c.start < cur.end) {
      const better = c.rank > cur.rank || (c.rank === cur.rank && (c.end - c.start > cur.end - cur.start || (c.end - c.start === cur.end - cur.start && c.ruleIndex < cur.ruleIndex)));
      cur = {
        ...(better ? c : cur),
        start: cur.start,
        end: Math.max(cur.end, c.end),
      };
      continue;
    }
    if (cur) out.push(toFinding(cur));
    if (c.start >= cut) {
      cur = undefined;
      break;
    }
    cur = c;
  }
  if (cur) out.push(toFinding(cur));
  return out;
}

function toFinding(c: Candidate): Finding {
  return { rule: c.rule, start: c.start, end: c.end, keepLength: c.keepLength };
}
