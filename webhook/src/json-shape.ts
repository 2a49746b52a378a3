// Shape checks over parsed JSON for the admission path's hand-written validators (see
// admission-review.ts): what a zod schema would accept, asked without building zod's copy. Each is
// conservative — true only where the schema surely accepts and its output equals the input — so a
// caller that falls back to the schema on false keeps the schema's decisions and messages exactly.
// Never lenient: a value these pass must be one the schema passes unchanged.

export type Json = Record<string, unknown>;

/** Object.prototype of this realm or another one (a test runner's vm context, structuredClone's). */
function isObjectPrototype(p: unknown): boolean {
  return p === Object.prototype || (typeof p === 'object' && p !== null && Object.getPrototypeOf(p) === null && Object.hasOwn(p, 'isPrototypeOf') && Object.hasOwn(p, 'hasOwnProperty'));
}

export function plain(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && isObjectPrototype(Object.getPrototypeOf(v)) && !Object.hasOwn(v, '__proto__') && !Object.hasOwn(v, 'constructor');
}
export const optString = (v: unknown) => v === undefined || typeof v === 'string';
export const nonEmpty = (v: unknown) => typeof v === 'string' && v.length > 0;

export function stringRecord(v: unknown): boolean {
  if (!plain(v)) return false;
  for (const k in v) if (typeof v[k] !== 'string') return false;
  return true;
}

/** Every element (holes included: zod reads them as undefined) passes `each`. */
export function listOf(v: unknown, each: (e: unknown) => boolean, min = 0): boolean {
  if (!Array.isArray(v) || v.length < min) return false;
  for (let i = 0; i < v.length; i++) if (!each(v[i])) return false;
  return true;
}
export const optListOf = (v: unknown, each: (e: unknown) => boolean) => v === undefined || listOf(v, each);
export const isString = (v: unknown): v is string => typeof v === 'string';
