// Reads chosen top-level members of a JSON object from a prefix of its text, without parsing the
// rest: nested values are skipped by tracking strings and bracket depth. LLM request bodies put
// `model` anywhere (Python SDKs send it after `messages`), so the scan must walk past megabytes
// of prompt cheaply. It must never throw, never allocate beyond the wanted values, and never
// report a member that is not at depth 1 of the outermost object.

export type ScalarValue = string | number | boolean | null;

export interface TopLevelScan {
  values: Map<string, ScalarValue>;
  /** The outermost object closed within the prefix: absent members are truly absent. */
  complete: boolean;
  /** The text is not a JSON object (as far as the prefix shows). */
  invalid: boolean;
}

const MAX_KEY = 256;
const MAX_VALUE = 4096;

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/** Index after the closing quote of the string starting at `at` (a quote), or -1 if cut off. */
function skipString(buf: Buffer, at: number): number {
  for (let i = at + 1; i < buf.length; i++) {
    const c = buf[i]!;
    if (c === 0x5c) i++;
    else if (c === 0x22) return i + 1;
  }
  return -1;
}

function decodeString(buf: Buffer, start: number, end: number): string | undefined {
  try {
    const v: unknown = JSON.parse(buf.toString('utf8', start, end));
    return typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Index after a nested value that starts at `at` with `{` or `[`, or -1 if cut off or malformed. */
function skipNested(buf: Buffer, at: number): number {
  let depth = 0;
  for (let i = at; i < buf.length; i++) {
    const c = buf[i]!;
    if (c === 0x22) {
      const next = skipString(buf, i);
      if (next < 0) return -1;
      i = next - 1;
    } else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) {
      depth--;
      if (depth === 0) return i + 1;
      if (depth < 0) return -1;
    }
  }
  return -1;
}

/** Index after a bare literal/number starting at `at`, or -1 if it may continue past the prefix. */
function skipLiteral(buf: Buffer, at: number): number {
  for (let i = at; i < buf.length; i++) {
    const c = buf[i]!;
    if (c === 0x2c || c === 0x7d || c === 0x5d || isWs(c)) return i;
  }
  return -1;
}

function parseLiteral(text: string): ScalarValue | undefined {
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (text === 'null') return null;
  if (/^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/.test(text)) return Number(text);
  return undefined;
}

/**
 * Scans `buf` (a prefix of a JSON document) for the top-level members named in `wanted` whose
 * values are scalars. A repeated member keeps its last value, as the JSON parsers of the model
 * APIs do, so the scan never stops early: a later duplicate cannot hide behind the first.
 */
export function scanTopLevelJson(buf: Buffer, wanted: ReadonlySet<string>): TopLevelScan {
  const values = new Map<string, ScalarValue>();
  const out = (complete: boolean, invalid: boolean): TopLevelScan => ({ values, complete, invalid });
  let i = 0;
  const ws = (): void => {
    while (i < buf.length && isWs(buf[i]!)) i++;
  };
  if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) i = 3; // UTF-8 BOM
  ws();
  if (i >= buf.length) return out(false, false);
  if (buf[i] !== 0x7b) return out(false, true);
  i++;
  ws();
  if (buf[i] === 0x7d) return out(true, false);
  for (;;) {
    ws();
    if (i >= buf.length) return out(false, false);
    if (buf[i] !== 0x22) return out(false, true);
    const keyEnd = skipString(buf, i);
    if (keyEnd < 0) return out(false, false);
    const key = keyEnd - i <= MAX_KEY + 2 ? decodeString(buf, i, keyEnd) : undefined;
    i = keyEnd;
    ws();
    if (i >= buf.length) return out(false, false);
    if (buf[i] !== 0x3a) return out(false, true);
    i++;
    ws();
    if (i >= buf.length) return out(false, false);
    const c = buf[i]!;
    const want = key !== undefined && wanted.has(key);
    let end: number;
    if (c === 0x22) {
      end = skipString(buf, i);
      if (end < 0) return out(false, false);
      if (want && end - i <= MAX_VALUE + 2) {
        const v = decodeString(buf, i, end);
        if (v === undefined) return out(false, true);
        values.set(key, v);
      }
    } else if (c === 0x7b || c === 0x5b) {
      end = skipNested(buf, i);
      if (end < 0) return out(false, false);
    } else {
      end = skipLiteral(buf, i);
      if (end < 0) return out(false, false);
      const v = parseLiteral(buf.toString('latin1', i, end));
      if (v === undefined) return out(false, true);
      if (want) values.set(key, v);
    }
    i = end;
    ws();
    if (i >= buf.length) return out(false, false);
    if (buf[i] === 0x2c) {
      i++;
      continue;
    }
    if (buf[i] === 0x7d) return out(true, false);
    return out(false, true);
  }
}
