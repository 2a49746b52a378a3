// The few DER (ASN.1) shapes an X.509 certificate is made of, as plain functions over bytes: an
// encoder for what the pod CA writes, and a reader that walks a certificate it loaded. Pure: no
// keys, no I/O. It never guesses: a length or tag that does not fit throws (the caller refuses
// the certificate).

/** A DER element: tag, length and contents. */
export function tlv(tag: number, contents: Uint8Array): Buffer {
  const n = contents.length;
  let head: number[];
  if (n < 0x80) head = [tag, n];
  else if (n < 0x100) head = [tag, 0x81, n];
  else if (n < 0x10000) head = [tag, 0x82, n >> 8, n & 0xff];
  else if (n < 0x1000000) head = [tag, 0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  else throw new RangeError('DER element too long');
  return Buffer.concat([Buffer.from(head), contents]);
}

export const sequence = (...items: Uint8Array[]): Buffer => tlv(0x30, Buffer.concat(items));
export const set = (...items: Uint8Array[]): Buffer => tlv(0x31, Buffer.concat(items));
export const octetString = (bytes: Uint8Array): Buffer => tlv(0x04, bytes);
export const utf8String = (text: string): Buffer => tlv(0x0c, Buffer.from(text, 'utf8'));
export const boolean = (value: boolean): Buffer => tlv(0x01, Buffer.from([value ? 0xff : 0x00]));
/** [n] EXPLICIT: a constructed context-specific wrapper. */
export const explicit = (n: number, inner: Uint8Array): Buffer => tlv(0xa0 | n, inner);
/** [n] IMPLICIT on a primitive: the context tag replaces the universal one. */
export const implicit = (n: number, contents: Uint8Array): Buffer => tlv(0x80 | n, contents);

/** A non-negative INTEGER from big-endian bytes (leading zeros dropped, a 0x00 added when the top bit is set). */
export function unsignedInteger(bytes: Uint8Array): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const trimmed = Buffer.from(bytes.subarray(i));
  return tlv(0x02, trimmed[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

export const smallInteger = (n: number): Buffer => unsignedInteger(Buffer.from([n >> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]));

export function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out = [40 * parts[0]! + parts[1]!];
  for (const p of parts.slice(2)) {
    const bytes = [p & 0x7f];
    for (let v = p >>> 7; v > 0; v >>>= 7) bytes.unshift(0x80 | (v & 0x7f));
    out.push(...bytes);
  }
  return tlv(0x06, Buffer.from(out));
}

/** A BIT STRING of whole bytes (a key, a signature). */
export const bitString = (bytes: Uint8Array): Buffer => tlv(0x03, Buffer.concat([Buffer.from([0]), bytes]));

/**
 * A named-bit BIT STRING (KeyUsage): bit 0 is the most significant bit of the first byte; trailing
 * zero bits are dropped as DER requires.
 */
export function namedBits(bits: number[]): Buffer {
  const top = Math.max(...bits);
  const bytes = Buffer.alloc((top >> 3) + 1);
  for (const b of bits) bytes[b >> 3]! |= 0x80 >> (b & 7);
  return tlv(0x03, Buffer.concat([Buffer.from([7 - (top & 7)]), bytes]));
}

/** UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5), to the second. */
export function time(date: Date): Buffer {
  const iso = date.toISOString(); // 2026-12-08T01:02:03.456Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '') + 'Z'; // 20261208010203Z
  const year = date.getUTCFullYear();
  if (year < 1950 || year > 9999) throw new RangeError(`certificate time out of range: ${iso}`);
  return year < 2050 ? tlv(0x17, Buffer.from(digits.slice(2), 'ascii')) : tlv(0x18, Buffer.from(digits, 'ascii'));
}

/** One element read from `buf` at `offset`: its tag, where its contents start and end. */
export interface Element {
  tag: number;
  start: number;
  /** first byte of the contents */
  body: number;
  end: number;
}

export function read(buf: Uint8Array, offset: number): Element {
  if (offset + 2 > buf.length) throw new RangeError('DER: truncated element');
  const tag = buf[offset]!;
  let len = buf[offset + 1]!;
  let body = offset + 2;
  if (len & 0x80) {
    const count = len & 0x7f;
    if (count === 0 || count > 4 || body + count > buf.length) throw new RangeError('DER: bad length');
    len = 0;
    for (let i = 0; i < count; i++) len = len * 256 + buf[body + i]!;
    body += count;
  }
  const end = body + len;
  if (end > buf.length) throw new RangeError('DER: element runs past its container');
  return { tag, start: offset, body, end };
}

/** The elements directly inside a constructed element. */
export function children(buf: Uint8Array, parent: Element): Element[] {
  const out: Element[] = [];
  for (let at = parent.body; at < parent.end; ) {
    const e = read(buf, at);
    out.push(e);
    at = e.end;
  }
  return out;
}
