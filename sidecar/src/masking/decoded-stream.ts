// Decoded views for request bodies larger than the decoding window, as a stream with bounded
// memory: the body is cut into segments of at most `window` bytes, each cut at a byte no encoded
// run reads across (a space, tab, comma, brace or bracket, not escaped and not inside UTF-16), and
// each segment is masked in its encodings by scanDecoded before it is passed on. Raw secrets are
// left to the MaskingTransform that follows it (it has its own carry across chunks).
//
// Guarantee: an encoded secret is masked when its encoded run lies inside one segment; a run
// longer than half the window with no cut point in it, a run that would decode past the bounds,
// or a secret that cannot be masked exactly in its encoding fails the stream (DlpStreamError,
// with a stable code) so nothing unscanned follows. Secrets split across JSON fields are joined
// only within the first segment (where the document starts). It never emits an unscanned byte.
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { scanDecoded } from './decoded-views.ts';
import type { DecodeLimits, ViewFinding } from './decoded-views.ts';
import type { Masker } from './masker.ts';
import type { Code } from '../../../api/src/codes.ts';

export class DlpStreamError extends Error {
  readonly code: Code;
  constructor(code: Code, message: string) {
    super(message);
    this.code = code;
  }
}

export interface DecodedStreamOptions {
  masker: Masker;
  /** Largest segment decoded at once (bytes). */
  window: number;
  limits?: Partial<DecodeLimits>;
  /** Called per secret found in a decoded view; offsets are body offsets. Must not throw. */
  onFinding?: (f: ViewFinding) => void;
}

function isCut(buf: Buffer, i: number): boolean {
  const c = buf[i];
  if (c !== 0x20 && c !== 0x09 && c !== 0x2c && c !== 0x7b && c !== 0x7d && c !== 0x5b && c !== 0x5d) return false;
  return buf[i - 1] !== 0x5c && buf[i - 1] !== 0 && buf[i + 1] !== 0;
}

/** Where to end a segment of `buf` (≤ window): just after the last cut byte in its second half; -1 if none. */
export function segmentEnd(buf: Buffer, window: number): number {
  const hi = Math.min(buf.length, window) - 1;
  const lo = Math.floor(window / 2);
  for (let i = hi; i >= lo; i--) if (isCut(buf, i)) return i + 1;
  return -1;
}

export class DecodedViewsTransform extends Transform {
  private readonly opts: DecodedStreamOptions;
  private pending: Buffer[] = [];
  private size = 0;
  private base = 0;

  constructor(opts: DecodedStreamOptions) {
    super();
    this.opts = opts;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.pending.push(chunk);
    this.size += chunk.length;
    try {
      while (this.size >= this.opts.window) {
        const buf = Buffer.concat(this.pending);
        const end = segmentEnd(buf, this.opts.window);
        if (end < 0) throw new DlpStreamError('dlp.undecodable_body', `request body has an unbroken run longer than ${Math.floor(this.opts.window / 2)} bytes: it cannot be decoded and scanned for secrets`);
        this.segment(buf.subarray(0, end));
        const rest = Buffer.from(buf.subarray(end));
        this.pending = rest.length ? [rest] : [];
        this.size = rest.length;
      }
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      if (this.size > 0) this.segment(Buffer.concat(this.pending));
      this.pending = [];
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  private segment(seg: Buffer): void {
    const r = scanDecoded(seg, this.opts.masker.scanner, { mode: 'mask', json: this.base === 0, ...(this.opts.limits ? { limits: this.opts.limits } : {}) });
    if (r.unscannable) throw new DlpStreamError(r.unscannable, `request body cannot be decoded within sluice's bounds (${r.unscannable})`);
    if (r.unmaskable) throw new DlpStreamError('dlp.unmaskable_secret', `request body holds a secret (${r.unmaskable.rule}, ${r.unmaskable.via.join(' in ')}) that cannot be masked in its encoding`);
    for (const f of r.findings) this.opts.onFinding?.({ ...f, offset: this.base + f.offset });
    this.base += seg.length;
    if (r.output.length) this.push(r.output);
  }
}
