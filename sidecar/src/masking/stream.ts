// Streaming redaction: a node:stream Transform that masks a body as it flows, with bounded memory.
// It holds back only the bytes whose verdict is not final yet (a secret may straddle the chunk
// boundary): at most the scanner's maxCarry plus the look-behind context, never the whole body.
// It must never emit a byte of a secret, and never report the value, only rule/offset/length.
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { applyFindings } from './masker.ts';
import type { Direction, Masker, Redaction } from './masker.ts';

export interface MaskingTransformOptions {
  masker: Masker;
  direction: Direction;
  /** Called once per redaction, in stream order. Must not throw. */
  onRedaction?: (r: Redaction) => void;
  /**
   * Record separator for event streams (`\n\n` for text/event-stream, `\n` for NDJSON): everything up
   * to the last separator is emitted at once, so a streamed LLM answer is not held back waiting for
   * more data. Secrets are assumed not to span records.
   */
  flushAt?: string;
}

const EMPTY: Buffer = Buffer.alloc(0);

/**
 * The pure core of streaming redaction: feed chunks, get masked bytes back. Holds at most the
 * scanner's maxCarry plus its look-behind context between calls.
 */
export class StreamMasker {
  private readonly masker: Masker;
  private readonly direction: Direction;
  private readonly onRedaction: ((r: Redaction) => void) | undefined;
  private readonly flushAt: Buffer | undefined;
  private readonly contextBytes: number;
  /** Bytes kept from earlier chunks: the first `contextLength` were already emitted (look-behind only). */
  private pending: Buffer = EMPTY;
  private contextLength = 0;
  /** Stream offset of pending[0]. */
  private base = 0;
  redactions = 0;
  bytesIn = 0;

  constructor(opts: MaskingTransformOptions) {
    this.masker = opts.masker;
    this.direction = opts.direction;
    this.onRedaction = opts.onRedaction;
    this.flushAt = opts.flushAt ? Buffer.from(opts.flushAt, 'latin1') : undefined;
    this.contextBytes = opts.masker.scanner.contextBytes;
  }

  /** Bytes held back, waiting for more data to decide. */
  get held(): number {
    return this.pending.length - this.contextLength;
  }

  write(data: Buffer): Buffer {
    this.bytesIn += data.length;
    const buf = this.pending.length > 0 ? Buffer.concat([this.pending, data]) : data;
    return this.process(buf, false);
  }

  end(): Buffer {
    const out = this.process(this.pending, true);
    this.pending = EMPTY;
    return out;
  }

  private process(buf: Buffer, final: boolean): Buffer {
    const from = this.contextLength;
    let scanned = buf;
    let isFinal = final;
    if (!final && this.flushAt) {
      // Scan only complete records, as if they ended the stream; the partial record waits.
      const last = buf.lastIndexOf(this.flushAt);
      if (last >= from) {
        scanned = buf.subarray(0, last + this.flushAt.length);
        isFinal = true;
      }
    }
    const { findings, safeEnd } = this.masker.scanner.scan(scanned, from, isFinal);
    let emitTo = isFinal ? scanned.length : safeEnd;
    for (const f of findings) if (f.start < emitTo && f.end > emitTo) emitTo = f.end;
    let out: Buffer = EMPTY;
    if (emitTo > from) {
      const emitted = findings.filter((f) => f.start < emitTo);
      for (const f of emitted) {
        this.redactions++;
        this.onRedaction?.({ rule: f.rule, direction: this.direction, offset: this.base + f.start, length: f.end - f.start });
      }
      // A chunk with nothing to hide goes out as a view of the input: no copy on the clean path.
      out = applyFindings(buf, emitted, from, emitTo);
    } else {
      emitTo = from;
    }
    if (final) return out;
    const keepFrom = Math.max(0, emitTo - this.contextBytes);
    // Copy the kept tail so a large input chunk is not retained by a small slice of it.
    this.pending = keepFrom < buf.length ? Buffer.from(buf.subarray(keepFrom)) : EMPTY;
    this.contextLength = emitTo - keepFrom;
    this.base += keepFrom;
    return out;
  }
}

/** node:stream shell around StreamMasker. */
export class MaskingTransform extends Transform {
  readonly core: StreamMasker;

  constructor(opts: MaskingTransformOptions) {
    super();
    this.core = new StreamMasker(opts);
  }

  override _transform(chunk: Buffer | string, encoding: BufferEncoding, callback: TransformCallback): void {
    const out = this.core.write(typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk);
    if (out.length > 0) this.push(out);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    const out = this.core.end();
    if (out.length > 0) this.push(out);
    callback();
  }
}

/** A Transform that masks what flows through it with `masker`'s rules. */
export function maskingTransform(opts: MaskingTransformOptions): MaskingTransform {
  return new MaskingTransform(opts);
}
