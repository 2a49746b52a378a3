// Decoded views: what outbound bytes say once the encodings an agent can hide a secret in are
// undone — base64 and base64url (also line-wrapped, as in MIME parts), hex, percent-encoding, JSON/JS
// string escapes (\uXXXX, \xXX), UTF-16LE/BE, tokens with zero-width and other format characters
// (Unicode Cf, soft hyphen, variation selectors) inside — nested up to a depth, and, for a JSON
// document, the string values joined so a secret split across two fields is seen. The detectors
// are the same Scanner rules that run on raw bytes.
//
// Each encoded run found in a buffer is decoded; all decoded runs of one level are scanned in one
// pass (joined by a separator no decoder reads across), and the text-like ones are searched again
// for the next level. Masking goes back up: a secret in a decoded view is replaced there, and the run
// is rebuilt in its own encoding — spliced byte-exactly for encodings that map each decoded byte to
// its own source bytes (percent, escapes, UTF-16, format characters), re-encoded whole for base64 and
// hex (same alphabet, padding, case and line wrapping) — and every rebuilt run is decoded again and
// compared: a run that does not decode to exactly the masked view is `unmaskable` (the caller blocks).
// Past the depth or byte budget the buffer is `unscannable` (the caller fails closed).
//
// Pure and synchronous. It never records a value: findings carry rule, encoding chain, offset, length.
import { isUtf8 } from 'node:buffer';
import { replacementFor } from './masker.ts';
import type { Finding, Scanner } from './scanner.ts';
import type { AreaCode } from '../../../api/src/codes.ts';

export type ViewEncoding = 'base64' | 'base64url' | 'hex' | 'percent' | 'escape' | 'utf16le' | 'utf16be' | 'format-chars' | 'json-join';

export interface DecodeLimits {
  /** Levels of decoding (a view of a view …). A text-like encoded run still found at the last level makes the input unscannable. */
  maxDepth: number;
  /** Decoded bytes allowed over all levels, as a multiple of the input's length (plus 64 KiB). */
  budgetFactor: number;
  /** Encoded runs handled per call; more make the input unscannable. */
  maxRuns: number;
}

export const DEFAULT_DECODE_LIMITS: Readonly<DecodeLimits> = Object.freeze({ maxDepth: 4, budgetFactor: 4, maxRuns: 250_000 });

/** A secret seen in a decoded view: where its outermost encoded run sits in the input. */
export interface ViewFinding {
  rule: string;
  /** Encodings undone to see it, outermost first (empty: seen in the raw bytes, maskRaw only). */
  via: ViewEncoding[];
  offset: number;
  length: number;
}

export interface DecodedScan {
  /** The input with every secret found masked in its own encoding (mask mode); the input itself otherwise. */
  output: Buffer;
  findings: ViewFinding[];
  /** A secret that could not be masked in its encoding exactly: the caller must block. */
  unmaskable: ViewFinding | undefined;
  /** Why the input could not be decoded fully (`dlp.decode_too_deep`, `dlp.decode_budget`): fail closed. */
  unscannable: AreaCode<'dlp'> | undefined;
}

export interface DecodedScanOptions {
  /** `scan` reports only; `mask` also rebuilds the output. */
  mode: 'scan' | 'mask';
  /** Also report and mask secrets in the raw bytes (URLs and headers); bodies leave that to the stream masker. */
  maskRaw?: boolean;
  /** How a replacement is written into the raw input (URLs: percent-encoded). Default: as is. */
  rawFragment?: (replacement: Buffer) => Buffer;
  /** Join the string values of a JSON document (default: when the input starts like one). */
  json?: boolean;
  limits?: Partial<DecodeLimits>;
}

// ------------------------------------------------------------------------------------ runs

/** An encoded run inside one level's buffer, with what it decodes to. */
interface Run {
  start: number;
  end: number;
  encoding: ViewEncoding;
  decoded: Buffer;
  /** Rebuilds the run's source bytes with `edits` (in decoded coordinates, sorted, disjoint) applied. */
  rebuild(source: Buffer, edits: readonly Edit[]): Buffer;
  /** Decodes rebuilt source bytes again (the exactness check). */
  redecode(bytes: Buffer): Buffer | undefined;
}

interface Edit {
  start: number;
  end: number;
  replacement: Buffer;
  /** A secret replaced by its label, or a run rebuilt with the secrets inside it masked. */
  kind?: 'secret' | 'run';
}

const SEP = Buffer.from([0x0a, 0x01, 0x0a]);
const EMPTY = Buffer.alloc(0);

function isB64(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2f || c === 0x2d || c === 0x5f;
}
function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}
function hexVal(c: number): number {
  return c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x57;
}
/** Bytes that end a token (percent, escape and format-character runs). */
function isTokenStop(c: number): boolean {
  return c <= 0x20 || c === 0x22 || c === 0x27 || c === 0x3c || c === 0x3e || c === 0x60 || c === 0x7f;
}

/** Printable text (ASCII, whitespace, UTF-16 NULs, or valid UTF-8 without control bytes): worth decoding further. */
export function isTextLike(buf: Buffer, start = 0, end = buf.length): boolean {
  const n = end - start;
  if (n === 0) return false;
  let printable = 0;
  let high = 0;
  for (let i = start; i < end; i++) {
    const c = buf[i] ?? 0;
    if ((c >= 0x20 && c < 0x7f) || c === 0x09 || c === 0x0a || c === 0x0d || c === 0) printable++;
    else if (c >= 0x80) high++;
  }
  if (printable >= n * 0.85) return true;
  return printable + high >= n * 0.95 && isUtf8(buf.subarray(start, end));
}

// --- base64 / base64url, optionally line-wrapped (CRLF, LF, or the two-character escapes \r\n / \n)

const B64_MIN = 16;

// One pass over the bytes finds maximal runs of the base64 alphabet (joined over line breaks);
// hex runs are looked for inside them (hex is a subset of that alphabet).
const B64_CLASS = new Uint8Array(256);
for (let c = 0; c < 256; c++) B64_CLASS[c] = isB64(c) ? (isHex(c) ? 2 : 1) : 0;

/** Length of a line break at i (CRLF, LF, or their JSON escapes), 0 if none. */
function lineBreakAt(buf: Buffer, i: number): number {
  const c = buf[i];
  if (c === 0x0a) return 1;
  if (c === 0x0d && buf[i + 1] === 0x0a) return 2;
  if (c === 0x5c) {
    if (buf[i + 1] === 0x6e) return 2;
    if (buf[i + 1] === 0x72 && buf[i + 2] === 0x5c && buf[i + 3] === 0x6e) return 4;
  }
  return 0;
}

// Where a run of 16+ alphabet bytes starts (not inside a longer one): the regex engine finds
// these far faster than a loop over every byte, and short words cost one failed lookbehind.
const B64_START = /(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{16}/g;

function findBase64AndHex(buf: Buffer, text: string, out: Run[], skip: (start: number, end: number) => boolean): void {
  const n = buf.length;
  B64_START.lastIndex = 0;
  for (let m = B64_START.exec(text); m !== null; m = B64_START.exec(text)) {
    let start = m.index;
    let i = start + 16;
    while (i < n && B64_CLASS[buf[i]!] !== 0) i++;
    // A run glued to a JSON/JS escape (`\nQUtJ…`, `\u00e9QUtJ…`) starts after the escape.
    if (buf[start - 1] === 0x5c) {
      const c = buf[start]!;
      if (c === 0x75 && isHex(buf[start + 1] ?? 0) && isHex(buf[start + 2] ?? 0) && isHex(buf[start + 3] ?? 0) && isHex(buf[start + 4] ?? 0)) start += 5;
      else if (c === 0x6e || c === 0x72 || c === 0x74 || c === 0x62 || c === 0x66 || c === 0x2f) start += 1;
    }
    const firstEnd = i;
    B64_START.lastIndex = firstEnd;
    if (firstEnd - start < B64_MIN || skip(start, firstEnd)) continue;
    let lettersOnly = true;
    for (let k = start; k < firstEnd && lettersOnly; k++) {
      const c = buf[k]! | 0x20;
      if (c < 0x61 || c > 0x7a) lettersOnly = false;
    }
    findHexIn(buf, start, firstEnd, out);
    // Continuation lines (MIME wraps at 76, PEM at 64): a break followed by at least 4 more.
    let end = firstEnd;
    for (;;) {
      const br = lineBreakAt(buf, end);
      if (br === 0) break;
      let j = end + br;
      const lineStart = j;
      while (j < n && B64_CLASS[buf[j]!] !== 0) j++;
      if (j - lineStart < 4) break;
      findHexIn(buf, lineStart, j, out);
      end = j;
      lettersOnly = false;
    }
    let pad = 0;
    while (pad < 2 && buf[end] === 0x3d) {
      end++;
      pad++;
    }
    const run = base64Run(buf, start, end, lettersOnly && pad === 0);
    if (run) out.push(run);
    B64_START.lastIndex = end;
  }
}

interface B64Shape {
  url: boolean;
  padded: boolean;
  lineLength: number;
  sep: string;
}

/**
 * A base64 run, or undefined when it cannot be one. A run of letters alone (an identifier, a long
 * word) is kept only when it decodes to text: its binary decoding is noise, not data.
 */
function base64Run(buf: Buffer, start: number, end: number, lettersOnly: boolean): Run | undefined {
  const raw = buf.toString('latin1', start, end);
  const sepMatch = lettersOnly ? null : /\r\n|\n|\\r\\n|\\n/.exec(raw);
  const sep = sepMatch ? sepMatch[0] : '';
  const lines = sep ? raw.split(sep) : [raw];
  const body = sep ? lines.join('') : raw;
  const hasStd = !lettersOnly && /[+/]/.test(body);
  const hasUrl = !lettersOnly && /[-_]/.test(body);
  if (hasStd && hasUrl) return undefined;
  let coreLength = body.length;
  while (coreLength > 0 && body.charCodeAt(coreLength - 1) === 0x3d) coreLength--;
  const core = coreLength === body.length ? body : body.slice(0, coreLength);
  if (core.length < B64_MIN || core.length % 4 === 1 || (body.length !== core.length && body.length % 4 !== 0)) return undefined;
  const shape: B64Shape = { url: hasUrl, padded: body.length !== core.length, lineLength: lines.length > 1 ? (lines[0]?.length ?? 0) : 0, sep };
  const decoded = Buffer.from(core, hasUrl ? 'base64url' : 'base64');
  if (lettersOnly && !isTextLike(decoded)) return undefined;
  return {
    start,
    end,
    encoding: hasUrl ? 'base64url' : 'base64',
    decoded,
    rebuild: (_source, edits) => encodeBase64(applyEdits(decoded, edits), shape),
    redecode: (bytes) => {
      const s = bytes.toString('latin1').split(sep || '\u0000').join('');
      if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(s)) return undefined;
      return Buffer.from(s.replace(/=+$/, ''), shape.url ? 'base64url' : 'base64');
    },
  };
}

function encodeBase64(bytes: Buffer, shape: B64Shape): Buffer {
  let s = bytes.toString(shape.url ? 'base64url' : 'base64');
  if (shape.url && shape.padded) s += '='.repeat((4 - (s.length % 4)) % 4);
  if (!shape.url && !shape.padded) s = s.replace(/=+$/, '');
  if (shape.lineLength > 0 && shape.sep) {
    const lines: string[] = [];
    for (let i = 0; i < s.length; i += shape.lineLength) lines.push(s.slice(i, i + shape.lineLength));
    s = lines.join(shape.sep);
  }
  return Buffer.from(s, 'latin1');
}

// --- hex (inside a base64-alphabet run)

function findHexIn(buf: Buffer, from: number, to: number, out: Run[]): void {
  if (to - from < 24) return;
  let i = from;
  while (i < to) {
    if (B64_CLASS[buf[i] ?? 0] !== 2) {
      i++;
      continue;
    }
    const start = i;
    let digits = false;
    let letters = false;
    let lower = false;
    while (i < to && B64_CLASS[buf[i] ?? 0] === 2) {
      const c = buf[i] ?? 0;
      if (c <= 0x39) digits = true;
      else {
        letters = true;
        if (c >= 0x61) lower = true;
      }
      i++;
    }
    const len = (i - start) & ~1;
    // Digits only (a long number) or letters only (a word) is not hex data.
    if (len < 24 || !digits || !letters) continue;
    const end = start + len;
    const decoded = Buffer.from(buf.toString('latin1', start, end), 'hex');
    out.push({
      start,
      end,
      encoding: 'hex',
      decoded,
      rebuild: (_source, edits) => {
        const h = applyEdits(decoded, edits).toString('hex');
        return Buffer.from(lower ? h : h.toUpperCase(), 'latin1');
      },
      redecode: (bytes) => (/^(?:[0-9a-fA-F]{2})*$/.test(bytes.toString('latin1')) ? Buffer.from(bytes.toString('latin1'), 'hex') : undefined),
    });
  }
}

// --- runs whose every decoded byte comes from its own source bytes (spliced back exactly)

interface Mapped {
  decoded: Buffer;
  /** Source offset (relative to the run) where decoded byte i's unit starts / ends. */
  from: Int32Array;
  to: Int32Array;
}

type MapDecoder = (src: Buffer, always?: boolean) => Mapped | undefined;

function mappedRun(start: number, end: number, encoding: ViewEncoding, source: Buffer, decode: MapDecoder, fragment: (b: Buffer) => Buffer): Run | undefined {
  const m = decode(source.subarray(start, end));
  if (!m) return undefined;
  return {
    start,
    end,
    encoding,
    decoded: m.decoded,
    rebuild: (src, edits) => {
      const run = src.subarray(start, end);
      const parts: Buffer[] = [];
      let pos = 0;
      for (const e of edits) {
        const a = e.start < m.decoded.length ? (m.from[e.start] ?? run.length) : run.length;
        const b = e.end > e.start ? (m.to[e.end - 1] ?? run.length) : a;
        if (a < pos) continue;
        parts.push(run.subarray(pos, a), fragment(e.replacement));
        pos = b;
      }
      parts.push(run.subarray(pos));
      return Buffer.concat(parts);
    },
    redecode: (bytes) => decode(bytes, true)?.decoded,
  };
}

/** Decoded bytes and their source spans, in typed arrays (a decode per byte must not allocate). */
class MapBuilder {
  private bytes: Uint8Array;
  private from: Int32Array;
  private to: Int32Array;
  private n = 0;
  constructor(capacity: number) {
    const c = Math.max(16, capacity);
    this.bytes = new Uint8Array(c);
    this.from = new Int32Array(c);
    this.to = new Int32Array(c);
  }
  private grow(): void {
    const c = this.bytes.length * 2;
    const bytes = new Uint8Array(c);
    bytes.set(this.bytes);
    const from = new Int32Array(c);
    from.set(this.from);
    const to = new Int32Array(c);
    to.set(this.to);
    this.bytes = bytes;
    this.from = from;
    this.to = to;
  }
  push(b: number, from: number, to: number): void {
    if (this.n === this.bytes.length) this.grow();
    this.bytes[this.n] = b;
    this.from[this.n] = from;
    this.to[this.n] = to;
    this.n++;
  }
  pushAll(buf: Buffer, from: number, to: number): void {
    for (const b of buf) this.push(b, from, to);
  }
  done(): Mapped {
    return { decoded: Buffer.from(this.bytes.subarray(0, this.n)), from: this.from.subarray(0, this.n), to: this.to.subarray(0, this.n) };
  }
}

/** Token bounds around `i`: the run of non-stop bytes containing it, at most `max` each way. */
function isEscapeLetter(c: number): boolean {
  return c === 0x6e || c === 0x72 || c === 0x74 || c === 0x62 || c === 0x66 || c === 0x2f || c === 0x5c;
}

/**
 * Token bounds around `i`: the run of non-stop bytes containing it, at most `max` each way. With
 * `escapesEnd`, a JSON escape (`\n`, `\t`, …) also ends it: a token inside a JSON-escaped file
 * starts after the line break's `\n`, not at its `n`.
 */
function tokenAround(buf: Buffer, i: number, lo: number, hi: number, escapesEnd: boolean, max = 65536): [number, number] {
  let a = i;
  const floor = Math.max(lo, i - max);
  while (a > floor && !isTokenStop(buf[a - 1] ?? 0) && !(escapesEnd && (buf[a - 1] === 0x5c || (buf[a - 2] === 0x5c && isEscapeLetter(buf[a - 1] ?? 0))))) a--;
  let b = i;
  const ceil = Math.min(hi, i + max);
  while (b < ceil && !isTokenStop(buf[b] ?? 0) && !(escapesEnd && buf[b] === 0x5c)) b++;
  return [a, b];
}

/** Finds tokens around each hit of `needle` (merged when they touch) and builds mapped runs. */
function findTokens(buf: Buffer, text: string, from: number, to: number, needle: RegExp, escapesEnd: boolean, make: (a: number, b: number) => Run | undefined, out: Run[]): void {
  needle.lastIndex = from;
  let covered = from;
  for (let m = needle.exec(text); m !== null && m.index < to; m = needle.exec(text)) {
    if (m.index < covered) continue;
    const [a0, b] = tokenAround(buf, m.index, from, to, escapesEnd);
    // Tokens never overlap: one that touches the previous starts where that one ended.
    const a = Math.max(a0, covered);
    const run = make(a, b);
    if (run) out.push(run);
    covered = b;
    needle.lastIndex = Math.max(needle.lastIndex, b);
  }
}

/** Unescaped `"` (an even number of backslashes before it). */
function isQuote(buf: Buffer, i: number): boolean {
  if (buf[i] !== 0x22) return false;
  let bs = 0;
  for (let k = i - 1; k >= 0 && buf[k] === 0x5c; k--) bs++;
  return bs % 2 === 0;
}

const STRING_MAX = 65536;

/**
 * Escape runs: the string literal around each escape (up to an unescaped quote or a raw line
 * break, at most STRING_MAX bytes), decoded whole so rules read it as the receiver will.
 */
function findStrings(buf: Buffer, text: string, n: number, out: Run[]): void {
  ESCAPE_HIT.lastIndex = 0;
  let covered = 0;
  for (let m = ESCAPE_HIT.exec(text); m !== null; m = ESCAPE_HIT.exec(text)) {
    if (m.index < covered) continue;
    let a = m.index;
    const floor = Math.max(covered, m.index - STRING_MAX);
    while (a > floor && !isQuote(buf, a - 1) && buf[a - 1] !== 0x0a && buf[a - 1] !== 0x0d && buf[a - 1] !== 0x01) a--;
    let b = m.index;
    const ceil = Math.min(n, m.index + STRING_MAX);
    while (b < ceil && !isQuote(buf, b) && buf[b] !== 0x0a && buf[b] !== 0x0d && buf[b] !== 0x01) b++;
    // Never end inside an escape.
    let bs = 0;
    for (let k = b - 1; k >= a && buf[k] === 0x5c; k--) bs++;
    if (bs % 2 === 1) b--;
    if (b > a) {
      const run = mappedRun(a, b, 'escape', buf, decodeEscapes, escapeFragment);
      if (run) out.push(run);
    }
    covered = Math.max(b, m.index + 1);
    ESCAPE_HIT.lastIndex = covered;
  }
}

// percent-encoding: %XX decoded, every other byte kept (the structure of a query survives the splice)

function decodePercent(src: Buffer, always = false): Mapped | undefined {
  const mb = new MapBuilder(src.length);
  let any = false;
  for (let i = 0; i < src.length; ) {
    const c = src[i] ?? 0;
    if (c === 0x25 && i + 2 < src.length + 0 && isHex(src[i + 1] ?? 0) && isHex(src[i + 2] ?? 0)) {
      mb.push((hexVal(src[i + 1] ?? 0) << 4) | hexVal(src[i + 2] ?? 0), i, i + 3);
      i += 3;
      any = true;
    } else {
      mb.push(c, i, i + 1);
      i++;
    }
  }
  return any || always ? mb.done() : undefined;
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;
/** Percent-encodes every byte but the unreserved ones (decodes back exactly in any URL part). */
export function percentFragment(b: Buffer): Buffer {
  let s = '';
  for (const c of b) {
    const ch = String.fromCharCode(c);
    s += c < 0x80 && UNRESERVED.test(ch) ? ch : `%${c.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return Buffer.from(s, 'latin1');
}

// JSON / JS string escapes: \uXXXX (surrogate pairs joined), \xXX, \n \t \r \b \f \/ \\ \" \'

/** `\n` → LF and the other one-letter escapes; 0 where the letter is not one. */
const SIMPLE_ESCAPES = new Uint8Array(256);
for (const [k, v] of [[0x6e, 0x0a], [0x74, 0x09], [0x72, 0x0d], [0x62, 0x08], [0x66, 0x0c], [0x2f, 0x2f], [0x5c, 0x5c], [0x22, 0x22], [0x27, 0x27]] as const) SIMPLE_ESCAPES[k] = v;

function hex4(src: Buffer, i: number): number {
  if (i + 4 > src.length) return -1;
  let v = 0;
  for (let k = 0; k < 4; k++) {
    const c = src[i + k]!;
    if (!isHex(c)) return -1;
    v = (v << 4) | hexVal(c);
  }
  return v;
}

/** Appends the UTF-8 bytes of code point `cp`, all mapped to the source span [from, to). */
function pushCodePoint(mb: MapBuilder, cp: number, from: number, to: number): void {
  if (cp < 0x80) mb.push(cp, from, to);
  else if (cp < 0x800) {
    mb.push(0xc0 | (cp >> 6), from, to);
    mb.push(0x80 | (cp & 0x3f), from, to);
  } else if (cp < 0x10000) {
    mb.push(0xe0 | (cp >> 12), from, to);
    mb.push(0x80 | ((cp >> 6) & 0x3f), from, to);
    mb.push(0x80 | (cp & 0x3f), from, to);
  } else {
    mb.push(0xf0 | (cp >> 18), from, to);
    mb.push(0x80 | ((cp >> 12) & 0x3f), from, to);
    mb.push(0x80 | ((cp >> 6) & 0x3f), from, to);
    mb.push(0x80 | (cp & 0x3f), from, to);
  }
}

function decodeEscapes(src: Buffer, always = false): Mapped | undefined {
  const mb = new MapBuilder(src.length);
  let any = false;
  const n = src.length;
  for (let i = 0; i < n; ) {
    const c = src[i]!;
    if (c !== 0x5c || i + 1 >= n) {
      mb.push(c, i, i + 1);
      i++;
      continue;
    }
    const e = src[i + 1]!;
    if (e === 0x75) {
      let cp = hex4(src, i + 2);
      if (cp >= 0) {
        let end = i + 6;
        // A lone surrogate decodes to U+FFFD, as it does once the receiver writes it as UTF-8.
        if (cp >= 0xd800 && cp < 0xdc00 && src[end] === 0x5c && src[end + 1] === 0x75) {
          const lo = hex4(src, end + 2);
          if (lo >= 0xdc00 && lo < 0xe000) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            end += 6;
          }
        }
        if (cp >= 0xd800 && cp < 0xe000) cp = 0xfffd;
        pushCodePoint(mb, cp, i, end);
        i = end;
        any = true;
        continue;
      }
    } else if (e === 0x78 && i + 3 < n && isHex(src[i + 2]!) && isHex(src[i + 3]!)) {
      pushCodePoint(mb, (hexVal(src[i + 2]!) << 4) | hexVal(src[i + 3]!), i, i + 4);
      i += 4;
      any = true;
      continue;
    } else {
      const v = SIMPLE_ESCAPES[e]!;
      if (v !== 0) {
        mb.push(v, i, i + 2);
        i += 2;
        any = true;
        continue;
      }
    }
    mb.push(c, i, i + 1);
    i++;
  }
  return any || always ? mb.done() : undefined;
}

/** Escapes for a JSON (or JS) string: decodes back exactly. */
export function escapeFragment(b: Buffer): Buffer {
  const s = JSON.stringify(b.toString('utf8'));
  return Buffer.from(s.slice(1, -1), 'utf8');
}

// Format characters: Unicode Cf (zero-width space/joiners, bidi controls, word joiner, BOM, soft
// hyphen, tags …) and other invisible fillers (combining grapheme joiner, variation selectors,
// Hangul fillers). The view is the text around them (4 KiB either side) with all of them
// stripped; a rebuilt run has none where a secret was masked and keeps the rest byte for byte.

// Variation selectors and the combining grapheme joiner combine with what precedes them (hence the lint exception).
// eslint-disable-next-line no-misleading-character-class
const INVISIBLE = /[\p{Cf}\u034f\u115f\u1160\u3164\uffa0\ufe00-\ufe0f\u{e0100}-\u{e01ef}]/u;
/** UTF-8 encodings of every invisible code point, as latin1 strings (for a byte-level search). */
const INVISIBLE_UTF8 = ((): Set<string> => {
  const set = new Set<string>();
  const ranges: [number, number][] = [
    [0x80, 0xffff],
    [0x110b0, 0x110cf],
    [0x13430, 0x1343f],
    [0x1bca0, 0x1bca3],
    [0x1d170, 0x1d17f],
    [0xe0000, 0xe01ef],
  ];
  for (const [lo, hi] of ranges) {
    for (let cp = lo; cp <= hi; cp++) {
      if (cp >= 0xd800 && cp < 0xe000) continue;
      const ch = String.fromCodePoint(cp);
      if (INVISIBLE.test(ch)) set.add(Buffer.from(ch, 'utf8').toString('latin1'));
    }
  }
  return set;
})();

function utf8Len(lead: number): number {
  return lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
}

function decodeInvisible(src: Buffer, always = false): Mapped | undefined {
  const mb = new MapBuilder(src.length);
  let any = false;
  for (let i = 0; i < src.length; ) {
    const c = src[i] ?? 0;
    if (c >= 0xc2) {
      const n = utf8Len(c);
      if (INVISIBLE_UTF8.has(src.toString('latin1', i, i + n))) {
        i += n;
        any = true;
        continue;
      }
      for (let k = 0; k < n && i + k < src.length; k++) mb.push(src[i + k] ?? 0, i, i + n);
      i += n;
      continue;
    }
    mb.push(c, i, i + 1);
    i++;
  }
  return any || always ? mb.done() : undefined;
}

const HIGH_LEAD = new RegExp(`[${[...new Set([...INVISIBLE_UTF8].map((u) => u.charCodeAt(0)))].map((c) => `\\x${c.toString(16)}`).join('')}]`, 'g');

const INVISIBLE_CONTEXT = 4096;
const INVISIBLE_MAX_RUN = 1 << 20;

function findInvisible(buf: Buffer, text: string, from: number, to: number, out: Run[]): void {
  HIGH_LEAD.lastIndex = from;
  let covered = from;
  for (let m = HIGH_LEAD.exec(text); m !== null && m.index < to; m = HIGH_LEAD.exec(text)) {
    const i = m.index;
    if (i < covered) continue;
    const n = utf8Len(buf[i] ?? 0);
    if (!INVISIBLE_UTF8.has(text.slice(i, i + n))) continue;
    // The view reaches CONTEXT bytes either side of the invisible characters (further while more
    // follow): rules read names and neighbours, and a PEM block or a .ppk spans lines.
    // Not across the separator between decoded runs of one level (SEP).
    const sepBefore = buf.lastIndexOf(0x01, i);
    const sepAfter = buf.indexOf(0x01, i);
    const end = sepAfter < 0 ? to : Math.min(to, sepAfter - 1);
    const a = Math.max(from, covered, i - INVISIBLE_CONTEXT, sepBefore < 0 ? 0 : sepBefore + 2);
    let last = i + n;
    let b = Math.min(end, last + INVISIBLE_CONTEXT);
    HIGH_LEAD.lastIndex = last;
    for (let k = HIGH_LEAD.exec(text); k !== null && k.index < b && b - a < INVISIBLE_MAX_RUN; k = HIGH_LEAD.exec(text)) {
      const len = utf8Len(buf[k.index] ?? 0);
      if (!INVISIBLE_UTF8.has(text.slice(k.index, k.index + len))) continue;
      last = k.index + len;
      b = Math.min(end, last + INVISIBLE_CONTEXT);
    }
    const run = mappedRun(a, b, 'format-chars', buf, decodeInvisible, (r) => r);
    if (run) out.push(run);
    covered = b;
    HIGH_LEAD.lastIndex = b;
  }
}

// UTF-16LE/BE: runs of at least 8 code units that are text (ASCII or an invisible character).

function utf16Unit(buf: Buffer, i: number, le: boolean): number {
  return le ? (buf[i] ?? 0) | ((buf[i + 1] ?? 0) << 8) : ((buf[i] ?? 0) << 8) | (buf[i + 1] ?? 0);
}
function textUnit(u: number): boolean {
  return (u >= 0x20 && u < 0x7f) || u === 0x09 || u === 0x0a || u === 0x0d || (u >= 0x80 && u !== 0xfffe && (u < 0xd800 || u >= 0xe000) && INVISIBLE.test(String.fromCharCode(u)));
}

function decodeUtf16(le: boolean): MapDecoder {
  return (src) => {
    if (src.length % 2 !== 0) return undefined;
    const mb = new MapBuilder(src.length);
    for (let i = 0; i < src.length; i += 2) {
      const u = utf16Unit(src, i, le);
      mb.pushAll(Buffer.from(String.fromCharCode(u), 'utf8'), i, i + 2);
    }
    return mb.done();
  };
}

function utf16Fragment(r: Buffer, le: boolean): Buffer {
  const out = Buffer.from(r.toString('utf8'), 'utf16le');
  return le ? out : out.swap16();
}

function findUtf16(buf: Buffer, from: number, to: number, out: Run[]): void {
  let i = buf.indexOf(0, from);
  while (i !== -1 && i < to) {
    let found = false;
    for (const le of [true, false]) {
      // The unit this NUL belongs to: (text, 0) little-endian, (0, text) big-endian.
      let s = le ? i - 1 : i;
      if (s < from) continue;
      while (s - 2 >= from && textUnit(utf16Unit(buf, s - 2, le))) s -= 2;
      let e = s;
      while (e + 2 <= to && textUnit(utf16Unit(buf, e, le))) e += 2;
      if ((e - s) / 2 >= 8) {
        const run = mappedRun(s, e, le ? 'utf16le' : 'utf16be', buf, decodeUtf16(le), (r) => utf16Fragment(r, le));
        if (run) out.push(run);
        i = buf.indexOf(0, e);
        found = true;
        break;
      }
    }
    if (!found) i = buf.indexOf(0, i + 1);
  }
}

// ------------------------------------------------------------------------------ all finders

const PERCENT_HIT = /%[0-9A-Fa-f]{2}/g;
// Any escape: `\n` before a key id is enough to hide it from a rule that wants a word boundary.
const ESCAPE_HIT = /\\(?:u[0-9A-Fa-f]{4}|x[0-9A-Fa-f]{2}|[nrtbf"\\/'])/g;

/** Every encoded run in `buf` (sorted by start; runs of different encodings may overlap). */
function findRuns(buf: Buffer): Run[] {
  const text = buf.toString('latin1');
  const n = buf.length;
  // Escaped strings first: what lies wholly inside one is found in its decoded view one level
  // down (better: unescaped), so it is not decoded twice.
  const strings: Run[] = [];
  if (text.includes('\\')) findStrings(buf, text, n, strings);
  const inString = (a: number, b: number): boolean => {
    let lo = 0;
    let hi = strings.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = strings[mid]!;
      if (a < r.start) hi = mid - 1;
      else if (a >= r.end) lo = mid + 1;
      else return b <= r.end;
    }
    return false;
  };
  const out: Run[] = [];
  findBase64AndHex(buf, text, out, inString);
  if (text.includes('%')) findTokens(buf, text, 0, n, PERCENT_HIT, true, (a, b) => (inString(a, b) ? undefined : mappedRun(a, b, 'percent', buf, decodePercent, percentFragment)), out);
  findInvisible(buf, text, 0, n, out);
  findUtf16(buf, 0, n, out);
  const kept = strings.length ? out.filter((r) => !inString(r.start, r.end)) : out;
  kept.push(...strings);
  kept.sort((x, y) => x.start - y.start || y.end - x.end);
  return kept;
}

export function applyEdits(buf: Buffer, edits: readonly Edit[]): Buffer {
  if (edits.length === 0) return buf;
  const parts: Buffer[] = [];
  let pos = 0;
  for (const e of edits) {
    parts.push(buf.subarray(pos, e.start), e.replacement);
    pos = e.end;
  }
  parts.push(buf.subarray(pos));
  return Buffer.concat(parts);
}

/**
 * Sorted, disjoint edits. An edit inside another is dropped when the outer one hides it: a label
 * hides everything under it; a rebuilt run hides a secret only if the secret's bytes are gone from
 * it — otherwise `onUnsafe` (the caller blocks). Two that partly overlap become one over both,
 * replaced by a label.
 */
function resolveEdits(edits: Edit[], label: (e: Edit) => Buffer, source: Buffer, onUnsafe: () => void): Edit[] {
  edits.sort((a, b) => a.start - b.start || b.end - a.end);
  const out: Edit[] = [];
  for (const e of edits) {
    const last = out[out.length - 1];
    if (last && e.start < last.end) {
      if (e.end > last.end) out[out.length - 1] = { start: last.start, end: e.end, replacement: label(last), kind: 'secret' };
      else if (last.kind === 'run' && e.kind === 'secret' && e.end > e.start && last.replacement.includes(source.subarray(e.start, e.end))) onUnsafe();
      continue;
    }
    out.push(e);
  }
  return out;
}

// ------------------------------------------------------------------------------ JSON join

interface JsonString {
  /** Content bounds (inside the quotes) in the input. */
  start: number;
  end: number;
  key: boolean;
  /** The object or array it is in. */
  container: number;
}

/** String literals of a JSON document, in order; undefined when the input is not JSON-shaped. */
function jsonStrings(buf: Buffer, max: number): JsonString[] | undefined {
  let i = 0;
  while (i < buf.length && (buf[i] === 0x20 || buf[i] === 0x0a || buf[i] === 0x0d || buf[i] === 0x09)) i++;
  if (buf[i] !== 0x7b && buf[i] !== 0x5b) return undefined;
  const out: JsonString[] = [];
  // Containers (objects and arrays) by id, so values of one object can be joined.
  const stack: number[] = [];
  let nextId = 0;
  const structure = (from: number, to: number): void => {
    for (let k = from; k < to; k++) {
      const c = buf[k];
      if (c === 0x7b || c === 0x5b) stack.push(nextId++);
      else if (c === 0x7d || c === 0x5d) stack.pop();
    }
  };
  let q = buf.indexOf(0x22, i);
  structure(i, q === -1 ? buf.length : q);
  while (q !== -1) {
    let j = q + 1;
    for (;;) {
      const k = buf.indexOf(0x22, j);
      if (k === -1) return out;
      let bs = 0;
      for (let b = k - 1; b > q && buf[b] === 0x5c; b--) bs++;
      if (bs % 2 === 0) {
        j = k;
        break;
      }
      j = k + 1;
    }
    let after = j + 1;
    while (after < buf.length && (buf[after] === 0x20 || buf[after] === 0x0a || buf[after] === 0x0d || buf[after] === 0x09)) after++;
    out.push({ start: q + 1, end: j, key: buf[after] === 0x3a, container: stack[stack.length - 1] ?? -1 });
    if (out.length > max) return out;
    q = buf.indexOf(0x22, j + 1);
    structure(j + 1, q === -1 ? buf.length : q);
  }
  return out;
}

const identityMap = (src: Buffer): Mapped => {
  const from = new Int32Array(src.length);
  const to = new Int32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    from[i] = i;
    to[i] = i + 1;
  }
  return { decoded: src, from, to };
};

interface JoinResult {
  findings: ViewFinding[];
  edits: Edit[];
  decodedBytes: number;
}

/**
 * The values of a JSON document joined — those of one object or array in order (`{"a": "…AKIA",
 * "b": "…"}`), and those under the same key in order (a prompt's `content` across messages) — for
 * findings that span two or more values, and how to mask each piece (the first becomes the label,
 * the others empty). Values of unrelated places are not joined: a join across them makes up text
 * nobody sent (and false positives).
 */
function joinJson(buf: Buffer, scanner: Scanner, maxStrings: number): JoinResult {
  const strings = jsonStrings(buf, maxStrings);
  const result: JoinResult = { findings: [], edits: [], decodedBytes: 0 };
  if (!strings) return result;
  const values: JsonString[] = [];
  const keys: string[] = [];
  let key = '';
  for (const s of strings) {
    if (s.key) key = buf.toString('latin1', s.start, s.end);
    else if (s.end > s.start) {
      values.push(s);
      keys.push(key);
    }
  }
  if (values.length < 2) return result;
  const maps = values.map((v) => {
    const src = buf.subarray(v.start, v.end);
    return (src.includes(0x5c) ? decodeEscapes(src, true) : undefined) ?? identityMap(src);
  });
  const byKey = new Map<string, number[]>();
  const byContainer = new Map<number, number[]>();
  values.forEach((v, i) => {
    const k = byKey.get(keys[i]!);
    if (k) k.push(i);
    else byKey.set(keys[i]!, [i]);
    const c = byContainer.get(v.container);
    if (c) c.push(i);
    else byContainer.set(v.container, [i]);
  });
  for (const g of [...byContainer.values(), ...byKey.values()]) if (g.length >= 2) joinGroup(scanner, values, maps, g, result);
  return result;
}

function joinGroup(scanner: Scanner, values: readonly JsonString[], maps: readonly Mapped[], group: readonly number[], result: JoinResult): void {
  const offsets: number[] = [];
  let total = 0;
  for (const i of group) {
    offsets.push(total);
    total += maps[i]!.decoded.length;
  }
  result.decodedBytes += total;
  const joined = Buffer.concat(group.map((i) => maps[i]!.decoded));
  for (const f of scanner.scan(joined, 0, true).findings) {
    // The values holding each end of the finding.
    const a = upperBound(offsets, f.start) - 1;
    const b = upperBound(offsets, f.end - 1) - 1;
    if (a < 0) continue;
    if (a === b) {
      // Inside one value: the value's own scan finds it, unless its context sits in another
      // value (a key id in one field, its secret in the next).
      const own = maps[group[a]!]!.decoded;
      const s0 = f.start - offsets[a]!;
      const e0 = f.end - offsets[a]!;
      if (scanner.scan(own, 0, true).findings.some((g) => g.start < e0 && g.end > s0)) continue;
    }
    let offset = -1;
    let lastEnd = 0;
    for (let k = a; k <= b; k++) {
      const v = values[group[k]!]!;
      const m = maps[group[k]!]!;
      const s = Math.max(f.start - offsets[k]!, 0);
      const e = Math.min(f.end - offsets[k]!, m.decoded.length);
      if (e <= s) continue;
      const start = v.start + (m.from[s] ?? 0);
      const end = v.start + (m.to[e - 1] ?? m.decoded.length);
      result.edits.push({ start, end, replacement: offset < 0 ? replacementFor({ ...f, keepLength: false }) : EMPTY, kind: 'secret' });
      if (offset < 0) offset = start;
      lastEnd = end;
    }
    result.findings.push({ rule: f.rule, via: ['json-join'], offset, length: Math.max(0, lastEnd - offset) });
  }
}

function upperBound(xs: readonly number[], x: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((xs[mid] ?? 0) <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// ------------------------------------------------------------------------------ levels

interface Segment {
  start: number;
  end: number;
  /** The run (in the level above) this segment is the decoding of. */
  run: Run;
  via: ViewEncoding[];
  /** The outermost run's bounds in the input. */
  root: [number, number];
  text: boolean;
}

interface Level {
  buf: Buffer;
  /** Segments of this level (level 0 has none: the input is one text). */
  segments: Segment[];
  /** Raw findings in this level's bytes. */
  findings: Finding[];
  /** Runs found in this level (in text segments), per segment index (level 0: index 0). */
  runs: Run[];
  runSegment: number[];
}

function segmentAt(segments: readonly Segment[], pos: number): number {
  let lo = 0;
  let hi = segments.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = segments[mid]!;
    if (pos < s.start) hi = mid - 1;
    else if (pos >= s.end) lo = mid + 1;
    else return mid;
  }
  return -1;
}

/**
 * Scans (and in mask mode masks) what `input` says once decoded. See the header for what is
 * decoded and how masking stays exact. Bounded: decoded bytes ≤ budgetFactor × input + 64 KiB,
 * at most maxDepth levels and maxRuns runs; past any bound the result is `unscannable`.
 */
export function scanDecoded(input: Buffer, scanner: Scanner, opts: DecodedScanOptions): DecodedScan {
  const limits = { ...DEFAULT_DECODE_LIMITS, ...opts.limits };
  const join = (opts.json ?? true) ? joinJson(input, scanner, limits.maxRuns) : undefined;
  if (join && join.edits.length && opts.mode === 'mask') {
    // Secrets split across values are masked first, in the document itself; the masked document is
    // then scanned like any other (its runs may hold the same values, already masked).
    const joined = applyEdits(input, resolveEdits(join.edits, (e) => e.replacement, input, () => undefined));
    const rest = scanDecoded(joined, scanner, { ...opts, json: false });
    return { ...rest, findings: [...join.findings, ...rest.findings] };
  }
  const budget = input.length * limits.budgetFactor + 65536;
  const result: DecodedScan = { output: input, findings: [], unmaskable: undefined, unscannable: undefined };
  let decodedTotal = 0;
  let runCount = 0;

  const levels: Level[] = [];
  let cur: Level = { buf: input, segments: [], findings: opts.maskRaw ? scanner.scan(input, 0, true).findings : [], runs: [], runSegment: [] };
  for (let depth = 0; ; depth++) {
    levels.push(cur);
    const all = findRuns(cur.buf);
    for (const r of all) {
      const seg = depth === 0 ? 0 : segmentAt(cur.segments, r.start);
      if (seg < 0 || (depth > 0 && (!cur.segments[seg]!.text || r.end > cur.segments[seg]!.end))) continue;
      cur.runs.push(r);
      cur.runSegment.push(seg);
    }
    runCount += cur.runs.length;
    if (runCount > limits.maxRuns) {
      result.unscannable = 'dlp.decode_budget';
      break;
    }
    if (cur.runs.length === 0) break;
    if (depth >= limits.maxDepth) {
      // Encoded text still inside the last view: what it says was not looked at.
      if (cur.runs.some((r) => isTextLike(r.decoded))) result.unscannable = 'dlp.decode_too_deep';
      cur.runs = [];
      cur.runSegment = [];
      break;
    }
    const parts: Buffer[] = [];
    const segments: Segment[] = [];
    let pos = 0;
    for (let k = 0; k < cur.runs.length; k++) {
      const r = cur.runs[k]!;
      const parent = depth === 0 ? undefined : cur.segments[cur.runSegment[k]!];
      segments.push({
        start: pos,
        end: pos + r.decoded.length,
        run: r,
        via: [...(parent?.via ?? []), r.encoding],
        root: parent ? parent.root : [r.start, r.end],
        text: isTextLike(r.decoded),
      });
      parts.push(r.decoded, SEP);
      pos += r.decoded.length + SEP.length;
      decodedTotal += r.decoded.length;
    }
    if (decodedTotal > budget) {
      result.unscannable = 'dlp.decode_budget';
      break;
    }
    const buf = Buffer.concat(parts);
    cur = { buf, segments, findings: scanner.scan(buf, 0, true).findings, runs: [], runSegment: [] };
  }

  // Findings, by where their outermost run sits in the input.
  const seen = new Set<string>();
  const report = (f: ViewFinding): void => {
    const key = `${f.rule}|${f.offset}|${f.via.join('>')}`;
    if (seen.has(key)) return;
    seen.add(key);
    result.findings.push(f);
  };
  if (opts.maskRaw) for (const f of levels[0]!.findings) report({ rule: f.rule, via: [], offset: f.start, length: f.end - f.start });
  for (let L = 1; L < levels.length; L++) {
    const lvl = levels[L]!;
    for (const f of lvl.findings) {
      const s = segmentAt(lvl.segments, f.start);
      if (s < 0) continue;
      const seg = lvl.segments[s]!;
      report({ rule: f.rule, via: seg.via, offset: seg.root[0], length: seg.root[1] - seg.root[0] });
    }
  }
  for (const f of join?.findings ?? []) report(f);
  if (opts.mode !== 'mask' || result.findings.length === 0) return result;

  // Mask bottom-up: each level's edits rebuild the runs of the level above.
  const labelOf = (e: Edit): Buffer => (e.replacement.length > 0 && e.replacement[0] === 0x5b ? e.replacement : Buffer.from('[REDACTED]', 'latin1'));
  let rebuilt = new Map<Run, Buffer>();
  for (let L = levels.length - 1; L >= 1; L--) {
    const lvl = levels[L]!;
    const above = levels[L - 1]!;
    const perSegment = new Map<number, Edit[]>();
    const add = (s: number, e: Edit): void => {
      const list = perSegment.get(s) ?? [];
      list.push(e);
      perSegment.set(s, list);
    };
    for (const f of lvl.findings) {
      const s = segmentAt(lvl.segments, f.start);
      if (s < 0) continue;
      const seg = lvl.segments[s]!;
      add(s, { start: f.start - seg.start, end: Math.min(f.end, seg.end) - seg.start, replacement: replacementFor(f), kind: 'secret' });
    }
    for (let k = 0; k < lvl.runs.length; k++) {
      const r = lvl.runs[k]!;
      const bytes = rebuilt.get(r);
      if (!bytes) continue;
      const seg = lvl.segments[lvl.runSegment[k]!]!;
      add(lvl.runSegment[k]!, { start: r.start - seg.start, end: r.end - seg.start, replacement: bytes, kind: 'run' });
    }
    const next = new Map<Run, Buffer>();
    for (const [s, list] of perSegment) {
      const seg = lvl.segments[s]!;
      const unsafe = (): void => {
        result.unmaskable ??= { rule: lvl.findings[0]?.rule ?? 'unknown', via: seg.via, offset: seg.root[0], length: seg.root[1] - seg.root[0] };
      };
      const edits = resolveEdits(list, labelOf, seg.run.decoded, unsafe);
      const bytes = seg.run.rebuild(above.buf, edits);
      const expected = applyEdits(seg.run.decoded, edits);
      const again = seg.run.redecode(bytes);
      if (!again || !again.equals(expected)) {
        result.unmaskable ??= { rule: lvl.findings[0]?.rule ?? 'unknown', via: seg.via, offset: seg.root[0], length: seg.root[1] - seg.root[0] };
        continue;
      }
      next.set(seg.run, bytes);
    }
    rebuilt = next;
  }
  const top = levels[0]!;
  const fragment = opts.rawFragment ?? ((b: Buffer) => b);
  const edits: Edit[] = [];
  for (const f of top.findings) edits.push({ start: f.start, end: f.end, replacement: fragment(replacementFor(f)), kind: 'secret' });
  for (const r of top.runs) {
    const bytes = rebuilt.get(r);
    if (bytes) edits.push({ start: r.start, end: r.end, replacement: bytes, kind: 'run' });
  }
  const unsafe = (): void => {
    result.unmaskable ??= result.findings[0];
  };
  result.output = applyEdits(input, resolveEdits(edits, (e) => fragment(labelOf(e)), input, unsafe));
  return result;
}
