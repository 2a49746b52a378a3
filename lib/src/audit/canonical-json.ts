// RFC 8785 (JSON Canonicalization Scheme) serialisation for the record path. The `canonicalize`
// package is the reference: verification hashes with it, and a unit test proves this function's
// output is byte-identical to it over the golden events and generated values. This one exists
// because the audit hot path serialises every event: it sorts keys into fresh objects and lets
// V8's native JSON.stringify write them, which is several times faster than the reference's
// generic walk. It must never produce output the reference would not: whatever JSON.stringify
// would write differently (integer-like keys, toJSON, lone surrogates, non-plain objects) is
// handed to the reference.
import canonicalize from 'canonicalize';

/** Thrown inside the walk when only the reference can serialise the value faithfully. */
class NeedsReference extends Error {}

/** JSON.stringify writes a lone surrogate as \udXXX; RFC 8785 (and the reference) refuse it. */
const SURROGATE_ESCAPE = /\\ud[89a-f]/;

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

function sortedCopy(value: unknown): unknown {
  switch (typeof value) {
    case 'number':
      if (!Number.isFinite(value)) throw new RangeError(Number.isNaN(value) ? 'NaN is not allowed' : 'Infinity is not allowed');
      return value;
    case 'object':
      break;
    default:
      // strings, booleans, undefined, functions and symbols: JSON.stringify writes or omits them as
      // RFC 8785 does; bigint throws in both.
      return value;
  }
  if (value === null) return null;
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype) throw new NeedsReference();
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      const c = sortedCopy(v);
      if (c !== v && !out) out = value.slice(0, i) as unknown[];
      if (out) out[i] = c;
    }
    return out ?? value;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) throw new NeedsReference();
  const obj = value as Record<string, unknown>;
  if (typeof obj.toJSON === 'function') throw new NeedsReference();
  const keys = Object.keys(obj);
  let sorted = true;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    // Integer-like keys are enumerated in numeric order whatever the insertion order, so an
    // object holding one cannot be written in code-unit order by JSON.stringify.
    if (key.length && isDigit(key.charCodeAt(0))) throw new NeedsReference();
    if (i > 0 && keys[i - 1]! > key) sorted = false;
  }
  if (!sorted) {
    keys.sort();
    const out: Record<string, unknown> = {};
    for (const key of keys) out[key] = sortedCopy(obj[key]);
    return out;
  }
  // Already in order (the common case for records built field by field in order): copy only if
  // something below has to change.
  let out: Record<string, unknown> | undefined;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const v = obj[key];
    const c = sortedCopy(v);
    if (c !== v && !out) {
      out = {};
      for (let j = 0; j < i; j++) out[keys[j]!] = obj[keys[j]!];
    }
    if (out) out[key] = c;
  }
  return out ?? obj;
}

/**
 * Canonical JSON of `value` (undefined for a value JSON has no form for). Throws for what RFC 8785
 * forbids: NaN, Infinity, bigint, lone surrogates, cycles.
 */
export function canonicalJson(value: unknown): string | undefined {
  let text: string | undefined;
  try {
    text = JSON.stringify(sortedCopy(value));
  } catch (err) {
    if (err instanceof NeedsReference) return canonicalize(value);
    throw err;
  }
  if (text !== undefined && SURROGATE_ESCAPE.test(text)) return canonicalize(value);
  return text;
}
