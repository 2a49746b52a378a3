// Which parts of the input a policy can read, found in the Rego sources policy.wasm is compiled
// from. The decision cache keys on exactly these parts, so the answer must never be too small:
// every `input` in the code yields the path its reference names as far as it is a constant
// (input.request.headers[h] reads all of request.headers), a bare `input` (passed to a function,
// iterated, imported whole) means the whole input, and anything the scanner does not understand
// (template strings) means the whole input too. Comments and string literals are skipped.
// The Rego copies inside a WASM bundle are rewritten by opa build (the entrypoint's rules are
// dropped), so the scan runs on the sources at build time (`make policy`) and the result travels
// in the bundle bound to the exact policy.wasm by its SHA-256: a bundle whose WASM is not the one
// scanned, or that has no such member, gets no cache. It never evaluates anything.
import { createHash } from 'node:crypto';

export type InputPath = readonly string[];

/** Either the smallest set of paths covering every read (none a prefix of another), or why it is the whole input. */
export type InputReads = { paths: InputPath[]; whole?: undefined } | { paths?: undefined; whole: string };

const IDENT_START = /[A-Za-z_]/;
const IDENT_PART = /[A-Za-z0-9_]/;

export function inputReads(modules: readonly { path: string; text: string }[]): InputReads {
  if (modules.length === 0) return { whole: 'the bundle carries no Rego sources' };
  const found: InputPath[] = [];
  for (const module of modules) {
    const scanned = scanModule(module.text);
    if (typeof scanned === 'string') return { whole: `${module.path}: ${scanned}` };
    found.push(...scanned);
  }
  return minimal(found);
}

/** The bundle member text (INPUT_READS_MEMBER) recording what the sources of `wasm` read. */
export function inputReadsMember(reads: InputReads, wasm: Uint8Array): string {
  return `${JSON.stringify({ wasm_sha256: sha256(wasm), ...(reads.whole === undefined ? { paths: reads.paths } : { whole: reads.whole }) })}\n`;
}

/** What the bundle member says the policy reads, trusted only for the very WASM it names. */
export function bundledInputReads(member: string | undefined, wasm: Uint8Array): InputReads {
  if (member === undefined) return { whole: 'the bundle does not say which input its policy reads (not built by make policy)' };
  let doc: { wasm_sha256?: unknown; paths?: unknown; whole?: unknown };
  try {
    doc = JSON.parse(member) as typeof doc;
  } catch {
    return { whole: 'the bundle\'s input-reads member is not JSON' };
  }
  if (doc === null || typeof doc !== 'object' || doc.wasm_sha256 !== sha256(wasm)) return { whole: 'the bundle\'s input-reads member was made for another policy.wasm' };
  if (typeof doc.whole === 'string') return { whole: doc.whole };
  const paths = doc.paths;
  if (!Array.isArray(paths) || !paths.every((p): p is string[] => Array.isArray(p) && p.length > 0 && p.every((seg) => typeof seg === 'string'))) {
    return { whole: 'the bundle\'s input-reads member lists no valid paths' };
  }
  return minimal(paths);
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Every input path one module reads, or why it may read the whole input. */
function scanModule(text: string): InputPath[] | string {
  const paths: InputPath[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '#') {
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? text.length : nl + 1;
    } else if (c === '"') {
      const end = endOfQuoted(text, i);
      if (end < 0) return 'an unterminated string';
      i = end;
    } else if (c === '`') {
      const end = text.indexOf('`', i + 1);
      if (end < 0) return 'an unterminated raw string';
      i = end + 1;
    } else if (c === '$' && (text[i + 1] === '"' || text[i + 1] === '`')) {
      // A template string interpolates expressions, `input` among them, inside its quotes.
      return 'a template string';
    } else if (IDENT_START.test(c)) {
      let end = i + 1;
      while (end < text.length && IDENT_PART.test(text[end]!)) end++;
      // `x.input` is a field named input of something else; any other `input` is the document.
      if (text.slice(i, end) === 'input' && text[i - 1] !== '.') {
        const ref = readRef(text, end);
        if (ref.path.length === 0) return `reads the whole input at offset ${i}`;
        paths.push(ref.path);
        end = ref.end;
      }
      i = end;
    } else {
      i++;
    }
  }
  return paths;
}

/** Index just past the closing quote of the "…" string opening at `start`, or -1. */
function endOfQuoted(text: string, start: number): number {
  for (let j = start + 1; j < text.length; j++) {
    const c = text[j];
    if (c === '\\') j++;
    else if (c === '"') return j + 1;
    else if (c === '\n') return -1;
  }
  return -1;
}

/** The constant part of the reference continuing at `at` (after `input`): .name and ["string"] steps. */
function readRef(text: string, at: number): { path: string[]; end: number } {
  const path: string[] = [];
  let i = at;
  for (;;) {
    if (text[i] === '.' && IDENT_START.test(text[i + 1] ?? '')) {
      let end = i + 2;
      while (end < text.length && IDENT_PART.test(text[end]!)) end++;
      path.push(text.slice(i + 1, end));
      i = end;
    } else if (text[i] === '[') {
      const key = stringKey(text, i + 1);
      if (key === undefined) break;
      path.push(key.value);
      i = key.end;
    } else {
      break;
    }
  }
  return { path, end: i };
}

/** A string literal (and nothing else) up to `]`; undefined for any other key (a variable, a number, an expression). */
function stringKey(text: string, at: number): { value: string; end: number } | undefined {
  let i = at;
  while (text[i] === ' ' || text[i] === '\t') i++;
  let value: string;
  if (text[i] === '"') {
    const end = endOfQuoted(text, i);
    if (end < 0) return undefined;
    try {
      value = JSON.parse(text.slice(i, end)) as string;
    } catch {
      return undefined;
    }
    i = end;
  } else if (text[i] === '`') {
    const end = text.indexOf('`', i + 1);
    if (end < 0) return undefined;
    value = text.slice(i + 1, end);
    i = end + 1;
  } else {
    return undefined;
  }
  while (text[i] === ' ' || text[i] === '\t') i++;
  return text[i] === ']' ? { value, end: i + 1 } : undefined;
}

/** Drops duplicates and every path that another one is a prefix of (reading x covers x.y). */
function minimal(paths: InputPath[]): InputReads {
  const sorted = [...paths].sort((a, b) => a.length - b.length);
  const kept: InputPath[] = [];
  for (const p of sorted) {
    if (!kept.some((k) => k.every((seg, n) => p[n] === seg))) kept.push(p);
  }
  kept.sort((a, b) => (a.join('\u0000') < b.join('\u0000') ? -1 : 1));
  return { paths: kept };
}
