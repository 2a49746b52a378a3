// Keeps injected credentials from reaching the agent through the back door: an upstream that
// echoes request headers (a debug endpoint, an S3 SignatureDoesNotMatch error quoting the
// canonical request with its security token) would otherwise hand the agent what sluice put on
// the request. Every occurrence of an injected value (raw or percent-encoded) in the response
// headers and in an uncompressed body is overwritten with `*` of the same length, so
// Content-Length stays true. Matches across chunk boundaries; memory is one needle's length.
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import type { ResponseHook } from '../proxy/request-context.ts';

/** Values shorter than this are not searched for (they would match by chance). */
const MIN_SECRET_LENGTH = 8;

export function echoNeedles(secrets: readonly string[]): Buffer[] {
  const set = new Set<string>();
  for (const s of secrets) {
    if (s.length < MIN_SECRET_LENGTH) continue;
    set.add(s);
    set.add(encodeURIComponent(s));
  }
  return [...set].map((s) => Buffer.from(s, 'utf8'));
}

/** Overwrites every needle in `buf`; the offsets it overwrote. */
function maskInPlace(buf: Buffer, needles: readonly Buffer[]): number[] {
  const hits: number[] = [];
  for (const n of needles) {
    let at = buf.indexOf(n);
    while (at >= 0) {
      buf.fill(0x2a, at, at + n.length);
      hits.push(at);
      at = buf.indexOf(n, at + n.length);
    }
  }
  return hits;
}

/**
 * A Transform that overwrites every needle in the stream; `onHit` gets each overwritten
 * occurrence's offset in the whole stream (for the audit's redactions, which never hold a value).
 */
export function redactingTransform(needles: readonly Buffer[], onHit?: (offsets: number[]) => void): Transform {
  const keep = Math.max(0, ...needles.map((n) => n.length)) - 1;
  let carry = Buffer.alloc(0);
  /** Stream offset of the first byte of `carry` (everything before it has been passed on). */
  let at = 0;
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      const buf = carry.length ? Buffer.concat([carry, chunk]) : Buffer.from(chunk);
      const hits = maskInPlace(buf, needles);
      if (hits.length) onHit?.(hits.map((h) => at + h));
      const cut = Math.max(0, buf.length - keep);
      carry = buf.subarray(cut);
      at += cut;
      cb(null, buf.subarray(0, cut));
    },
    flush(cb: TransformCallback) {
      cb(null, carry);
    },
  });
}

function maskString(value: string, secrets: readonly string[]): string {
  let out = value;
  for (const s of secrets) if (s.length >= MIN_SECRET_LENGTH && out.includes(s)) out = out.split(s).join('*'.repeat(s.length));
  return out;
}

/** Needles per credential (the same credential serves many requests): a small bounded memo. */
const needleMemo = new Map<string, Buffer[]>();
function needlesFor(secrets: readonly string[]): Buffer[] {
  const key = secrets.join('\u0000');
  let needles = needleMemo.get(key);
  if (!needles) {
    needles = echoNeedles(secrets);
    if (needleMemo.size >= 64) needleMemo.delete(needleMemo.keys().next().value!);
    needleMemo.set(key, needles);
  }
  return needles;
}

/**
 * `secrets` here are the needles as text: raw and percent-encoded (a Location with a presigned
 * URL). `onMasked` is called once per header field value that held one.
 */
function maskHeaders(headers: Record<string, string | string[]>, secrets: readonly string[], shortest: number, onMasked?: () => void): Record<string, string | string[]> {
  let out: Record<string, string | string[]> | undefined;
  const mask = (v: string): string => {
    const masked = maskString(v, secrets);
    if (masked !== v) onMasked?.();
    return masked;
  };
  for (const [name, value] of Object.entries(headers)) {
    const values = Array.isArray(value) ? value : [value];
    if (!values.some((v) => v.length >= shortest && secrets.some((s) => v.includes(s)))) continue;
    out ??= { ...headers };
    out[name] = Array.isArray(value) ? value.map(mask) : mask(value);
  }
  return out ?? headers;
}

/** Where an echo was overwritten: a response header field value, or the body at this offset. */
export type EchoHit = { where: 'header' } | { where: 'body'; offset: number };

/** The response hook for one request whose upstream received `secrets`; `onHit` hears of every echo it overwrote. */
export function redactEchoesHook(secrets: readonly string[], onHit?: (hits: EchoHit[]) => void): ResponseHook {
  const needles = needlesFor(secrets);
  const texts = needles.map((n) => n.toString('utf8'));
  const shortest = Math.min(...needles.map((n) => n.length));
  const onBody = onHit && ((offsets: number[]) => onHit(offsets.map((offset) => ({ where: 'body' as const, offset }))));
  return ({ headers }) => {
    if (needles.length === 0) return { headers };
    const out = maskHeaders(headers, texts, shortest, onHit && (() => onHit([{ where: 'header' }])));
    const encoding = String(headers['content-encoding'] ?? 'identity').toLowerCase();
    if (encoding !== 'identity' && encoding !== '') return { headers: out };
    // A body shorter than every needle cannot hold one.
    const length = Number(headers['content-length'] ?? NaN);
    if (Number.isInteger(length) && length < shortest) return { headers: out };
    return { headers: out, transforms: [redactingTransform(needles, onBody)] };
  };
}
