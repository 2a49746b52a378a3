// Masks text bound for the audit trail (paths, facts, reasons, event details): the raw rules and
// every decoded view, so a secret an agent put in a URL, a header or a DNS name — plain or encoded —
// is stored as `[REDACTED:rule]`. Text that cannot be decoded within the bounds, or whose secret
// cannot be masked in its encoding, is replaced whole. Pure; it never returns what it found.
import { scanDecoded } from './decoded-views.ts';
import type { Masker } from './masker.ts';
import { scanText } from './request-head.ts';

/** What undecodable or unmaskable text is recorded as. */
export const UNRECORDABLE = '[REDACTED:undecodable]';

/** Shorter strings cannot hold a secret any rule finds (the shortest is over 8 bytes). */
const MIN_LENGTH = 8;

export function maskAuditText(text: string, masker: Masker): string {
  if (text.length < MIN_LENGTH) return text;
  if (text.includes('/') && !/[\n\u0100-\uffff]/.test(text)) {
    // Paths and names: slashes separate words (see scanText).
    const r = scanText(text, masker, 'audit', undefined);
    return r.unscannable || r.unmaskable ? UNRECORDABLE : r.output;
  }
  const r = scanDecoded(Buffer.from(text, 'utf8'), masker.scanner, { mode: 'mask', maskRaw: true, json: true });
  if (r.unscannable || r.unmaskable) return UNRECORDABLE;
  return r.findings.length ? r.output.toString('utf8') : text;
}

/** A deep copy of `value` with every string masked by maskAuditText (object keys included). */
export function maskAuditValue<T>(value: T, masker: Masker): T {
  if (typeof value === 'string') return maskAuditText(value, masker) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => maskAuditValue(v, masker)) as T;
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[maskAuditText(k, masker)] = maskAuditValue(v, masker);
    return out as T;
  }
  return value;
}
