// What a response body is, decided by its bytes, and the stages that mask it on its way to the
// agent. The Content-Type is the upstream's word, and the agent can often choose it (S3's
// response-content-type, GitHub's Accept variants, a server of its own on an allowed host): a
// text body labelled image/png or application/octet-stream is masked like text, a text body that
// is itself gzip (without a Content-Encoding saying so) is unpacked, masked and packed again, and
// every text body is scanned with its decoded views (base64 as GitHub's contents API and
// Kubernetes Secrets send it, hex, percent, JSON escapes, UTF-16), not only raw. Content codings
// are bounded: a body that inflates past the bound (a decompression bomb) fails the stream, which
// cuts the response; nothing past the bound reaches the agent unscanned. It never relays a byte
// it has not scanned, except bodies whose first bytes are a binary format's signature.
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import * as zlib from 'node:zlib';
import { DlpStreamError, segmentEnd } from './decoded-stream.ts';
import { scanDecoded } from './decoded-views.ts';
import type { DecodeLimits, ViewFinding } from './decoded-views.ts';
import type { Masker, Redaction } from './masker.ts';
import { maskingTransform } from './stream.ts';

export interface ResponseLimits {
  /** Bytes read before a body's kind is decided. */
  sniffBytes: number;
  /** Largest run of bytes decoded at once; a longer unbroken run fails the stream. */
  window: number;
  /** A decoded body may grow to this many bytes whatever its ratio… */
  inflateFreeBytes: number;
  /** …and past it to at most this many times its encoded size. */
  inflateRatio: number;
}

export const DEFAULT_RESPONSE_LIMITS: ResponseLimits = { sniffBytes: 512, window: 4 * 1024 * 1024, inflateFreeBytes: 16 * 1024 * 1024, inflateRatio: 200 };

export type BodyKind = 'text' | 'gzip' | 'binary';

/** Signatures of binary formats (at offset 0 unless noted): a body that starts so is not text. */
const MAGIC: readonly (readonly number[])[] = [
  [0x89, 0x50, 0x4e, 0x47], // PNG
  [0xff, 0xd8, 0xff], // JPEG
  [0x47, 0x49, 0x46, 0x38], // GIF
  [0x52, 0x49, 0x46, 0x46], // RIFF (WebP, WAV, AVI)
  [0x00, 0x61, 0x73, 0x6d], // WebAssembly
  [0x50, 0x4b, 0x03, 0x04], // zip, jar, wheel, docx
  [0x50, 0x4b, 0x05, 0x06], // empty zip
  [0x28, 0xb5, 0x2f, 0xfd], // zstd
  [0x42, 0x5a, 0x68], // bzip2
  [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], // xz
  [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c], // 7z
  [0x7f, 0x45, 0x4c, 0x46], // ELF
  [0xcf, 0xfa, 0xed, 0xfe], // Mach-O
  [0x4d, 0x5a], // PE
  [0x00, 0x01, 0x00, 0x00], // TrueType
  [0x4f, 0x54, 0x54, 0x4f], // OpenType
  [0x77, 0x4f, 0x46, 0x46], // WOFF
  [0x77, 0x4f, 0x46, 0x32], // WOFF2
  [0x4f, 0x67, 0x67, 0x53], // Ogg
  [0x66, 0x4c, 0x61, 0x43], // FLAC
  [0x49, 0x44, 0x33], // MP3 (ID3)
  [0x1a, 0x45, 0xdf, 0xa3], // Matroska, WebM
  [0x25, 0x50, 0x44, 0x46], // PDF
];

function startsWith(b: Buffer, sig: readonly number[], at = 0): boolean {
  if (b.length < at + sig.length) return false;
  for (let i = 0; i < sig.length; i++) if (b[at + i] !== sig[i]) return false;
  return true;
}

/**
 * What a body is by its first bytes: `gzip` (a gzip member), `binary` (a known binary format's
 * signature, an ISO-BMFF `ftyp` box, a tar header, NUL bytes that are not UTF-16 text, or control
 * bytes other than whitespace and ESC), or
 * `text` (everything else: it is scanned).
 */
/** A known file format by its signature (gzip, or a binary format); undefined when none matches. */
export function fileSignatureKind(prefix: Buffer): 'gzip' | 'binary' | undefined {
  if (startsWith(prefix, [0x1f, 0x8b, 0x08])) return 'gzip';
  if (MAGIC.some((sig) => startsWith(prefix, sig))) return 'binary';
  if (startsWith(prefix, [0x66, 0x74, 0x79, 0x70], 4)) return 'binary'; // MP4, MOV, HEIC, AVIF
  if (prefix.length >= 262 && prefix.subarray(257, 262).toString('latin1') === 'ustar') return 'binary'; // tar
  return undefined;
}

export function sniffResponseBody(prefix: Buffer): BodyKind {
  const signature = fileSignatureKind(prefix);
  if (signature) return signature;
  // NULs mark binary data, except UTF-16 text (every other byte NUL), which decoded views read;
  // so do other control bytes than whitespace and ESC (text never holds them).
  let nul = 0;
  let evenNul = 0;
  let control = 0;
  for (let i = 0; i < prefix.length; i++) {
    const c = prefix[i]!;
    if (c === 0) {
      nul++;
      if (i % 2 === 0) evenNul++;
    } else if (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0b && c !== 0x0c && c !== 0x0d && c !== 0x1b) control++;
  }
  const utf16 = nul > 0 && prefix.length >= 8 && (evenNul === nul || evenNul === 0) && nul >= prefix.length / 2 - 2;
  if ((nul > 0 && !utf16) || control > 0) return 'binary';
  return 'text';
}

/**
 * Counts what enters a decoder (`encoded`) and fails the stream after it (`check`) once the
 * decoded bytes pass the inflation bound. One pair per decoding chain.
 */
export function inflationGuard(limits: ResponseLimits): { encoded: Transform; decoded: Transform } {
  let inBytes = 0;
  let outBytes = 0;
  const encoded = new Transform({
    transform(chunk: Buffer, _e, cb) {
      inBytes += chunk.length;
      cb(null, chunk);
    },
  });
  const decoded = new Transform({
    transform(chunk: Buffer, _e, cb) {
      outBytes += chunk.length;
      if (outBytes > limits.inflateFreeBytes && outBytes > inBytes * limits.inflateRatio) {
        cb(new DlpStreamError('masking.decompression_bomb', `the response inflates past ${limits.inflateRatio}× its encoded size (${outBytes} bytes from ${inBytes}): it is cut, not scanned`));
        return;
      }
      cb(null, chunk);
    },
  });
  return { encoded, decoded };
}

export interface ResponseMaskOptions {
  masker: Masker;
  onRedaction: (r: Redaction) => void;
  onFinding: (f: ViewFinding) => void;
  /** Event streams and JSON lines: records are released as they complete. */
  flushAt?: string;
  limits?: Partial<ResponseLimits>;
  decodeLimits?: Partial<DecodeLimits>;
}

/**
 * Decoded views over a response stream: each chunk is scanned up to its last cut byte (a byte no
 * encoded run crosses, see decoded-stream.ts), so a streamed response (a watch, an event stream)
 * flows on as it arrives, and a run is never split between two scans. An unbroken run past half
 * the window, a run that decodes past the bounds, or a secret that cannot be masked in its
 * encoding fails the stream.
 */
export class ResponseDecodedViews extends Transform {
  readonly #o: ResponseMaskOptions;
  readonly #window: number;
  #pending: Buffer = Buffer.alloc(0);
  #base = 0;

  constructor(o: ResponseMaskOptions) {
    super();
    this.#o = o;
    this.#window = o.limits?.window ?? DEFAULT_RESPONSE_LIMITS.window;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.#pending = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
      const end = lastCut(this.#pending);
      if (end > 0) {
        this.#segment(this.#pending.subarray(0, end));
        this.#pending = Buffer.from(this.#pending.subarray(end));
      }
      if (this.#pending.length > this.#window / 2) {
        const cut = segmentEnd(this.#pending, this.#window);
        if (cut < 0) throw new DlpStreamError('dlp.undecodable_body', `the response has an unbroken run longer than ${Math.floor(this.#window / 2)} bytes: it cannot be decoded and scanned for secrets`);
        this.#segment(this.#pending.subarray(0, cut));
        this.#pending = Buffer.from(this.#pending.subarray(cut));
      }
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      if (this.#pending.length) this.#segment(this.#pending);
      this.#pending = Buffer.alloc(0);
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  #segment(seg: Buffer): void {
    const r = scanDecoded(seg, this.#o.masker.scanner, { mode: 'mask', json: this.#base === 0, ...(this.#o.decodeLimits ? { limits: this.#o.decodeLimits } : {}) });
    if (r.unscannable) throw new DlpStreamError(r.unscannable, `the response cannot be decoded within sluice's bounds (${r.unscannable})`);
    if (r.unmaskable) throw new DlpStreamError('dlp.unmaskable_secret', `the response holds a secret (${r.unmaskable.rule}, ${r.unmaskable.via.join(' in ')}) that cannot be masked in its encoding`);
    for (const f of r.findings) this.#o.onFinding({ ...f, offset: this.#base + f.offset });
    this.#base += seg.length;
    if (r.output.length) this.push(r.output);
  }
}

/** Just after the last byte of `buf` that no encoded run crosses; 0 when there is none. */
function lastCut(buf: Buffer): number {
  for (let i = buf.length - 1; i >= 1; i--) {
    const c = buf[i];
    if (c !== 0x20 && c !== 0x09 && c !== 0x2c && c !== 0x7b && c !== 0x7d && c !== 0x5b && c !== 0x5d && c !== 0x0a) continue;
    // An escaped byte, or a byte of UTF-16 text, is part of a run.
    if (buf[i - 1] === 0x5c || buf[i - 1] === 0 || (i + 1 < buf.length && buf[i + 1] === 0)) continue;
    // A newline inside wrapped base64 (MIME, PEM) is part of its run: cut only after a line that is not.
    if (c === 0x0a && /^[A-Za-z0-9+/=]{16,}\r?$/.test(buf.subarray(Math.max(0, lineStart(buf, i)), i).toString('latin1'))) continue;
    return i + 1;
  }
  return 0;
}

function lineStart(buf: Buffer, nl: number): number {
  const prev = buf.lastIndexOf(0x0a, nl - 1);
  return prev + 1;
}

/** Text: decoded views, then the raw masker (which keeps its own carry across chunks). */
export function textMaskingStages(o: ResponseMaskOptions): Transform[] {
  return [new ResponseDecodedViews(o), maskingTransform({ masker: o.masker, direction: 'response', onRedaction: o.onRedaction, ...(o.flushAt ? { flushAt: o.flushAt } : {}) })];
}

/**
 * Holds the first bytes of a body, asks `choose` which stages the body goes through (none:
 * passed as is), and runs the whole body through them. Errors of the inner stages fail this one.
 */
export class SniffedStages extends Transform {
  readonly #choose: (prefix: Buffer) => Transform[];
  readonly #sniffBytes: number;
  #held: Buffer[] = [];
  #heldBytes = 0;
  #first: Transform | undefined;
  #decided = false;
  #innerDone: Promise<void> | undefined;

  constructor(choose: (prefix: Buffer) => Transform[], sniffBytes = DEFAULT_RESPONSE_LIMITS.sniffBytes) {
    super();
    this.#choose = choose;
    this.#sniffBytes = sniffBytes;
  }

  #decide(): void {
    this.#decided = true;
    let stages: Transform[];
    try {
      stages = this.#choose(Buffer.concat(this.#held));
    } catch (err) {
      this.destroy(err as Error);
      return;
    }
    if (!stages.length) return;
    for (let i = 0; i + 1 < stages.length; i++) stages[i]!.pipe(stages[i + 1]!);
    const last = stages.at(-1)!;
    last.on('data', (d: Buffer) => this.push(d));
    this.#innerDone = new Promise((resolve, reject) => {
      last.once('end', resolve);
      for (const s of stages) s.once('error', reject);
    });
    this.#innerDone.catch((err: unknown) => {
      for (const s of stages) s.destroy();
      this.destroy(err as Error);
    });
    this.#first = stages[0];
  }

  #write(data: Buffer, cb: TransformCallback): void {
    if (!this.#first) {
      this.push(data);
      cb();
      return;
    }
    if (this.#first.write(data)) cb();
    else this.#first.once('drain', () => cb());
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.#decided) {
      this.#write(chunk, cb);
      return;
    }
    this.#held.push(chunk);
    this.#heldBytes += chunk.length;
    if (this.#heldBytes < this.#sniffBytes) {
      cb();
      return;
    }
    this.#decide();
    const held = Buffer.concat(this.#held);
    this.#held = [];
    this.#write(held, cb);
  }

  override _flush(cb: TransformCallback): void {
    if (!this.#decided) {
      this.#decide();
      const held = Buffer.concat(this.#held);
      this.#held = [];
      if (!this.#first) {
        if (held.length) this.push(held);
        cb();
        return;
      }
      if (held.length) this.#first.write(held);
    }
    if (!this.#first || !this.#innerDone) {
      cb();
      return;
    }
    this.#first.end();
    this.#innerDone.then(() => cb(), (err: unknown) => cb(err as Error));
  }
}

/** Media types whose bodies are text by their label: a gzip member inside one is unpacked and masked. */
export function textLikeMediaType(mediaType: string): boolean {
  return (
    mediaType === '' ||
    mediaType.startsWith('text/') ||
    /^application\/(json|xml|javascript|ecmascript|yaml|x-yaml|toml|x-ndjson|jsonl|json-seq|x-www-form-urlencoded|graphql|problem\+json|sql)$/.test(mediaType) ||
    /\+(json|xml|yaml)$/.test(mediaType)
  );
}

/**
 * The stage for a body whose content codings are undone, chosen by its first bytes:
 * - text (whatever its label): decoded views and the raw masker;
 * - a gzip member: under a text-like label (`unpackGzip`) unpacked within the inflation bound,
 *   masked as text and packed again; otherwise as binary;
 * - binary: under a label sluice masks (`binary: 'raw'`) through the raw masker, as before; under a
 *   binary label (`'pass'`: images, archives, octet-stream) passed as is.
 */
export function sniffedMaskingStage(o: ResponseMaskOptions, binary: 'pass' | 'raw', unpackGzip: boolean): Transform {
  const limits = { ...DEFAULT_RESPONSE_LIMITS, ...o.limits };
  return new SniffedStages(sniffedStagesChooser(o, binary, unpackGzip), limits.sniffBytes);
}

/** The stages for a body by its first bytes (sniffedMaskingStage's choice; none: passed as is, unchanged). */
export function sniffedStagesChooser(o: ResponseMaskOptions, binary: 'pass' | 'raw', unpackGzip: boolean): (prefix: Buffer) => Transform[] {
  const limits = { ...DEFAULT_RESPONSE_LIMITS, ...o.limits };
  const raw = (): Transform[] => (binary === 'raw' ? [maskingTransform({ masker: o.masker, direction: 'response', onRedaction: o.onRedaction })] : []);
  return (prefix) => {
    const kind = sniffResponseBody(prefix);
    if (kind === 'text') return textMaskingStages(o);
    if (kind === 'gzip' && unpackGzip) {
      const guard = inflationGuard(limits);
      return [guard.encoded, zlib.createGunzip(), guard.decoded, ...textMaskingStages(o), zlib.createGzip({ level: 4 })];
    }
    // Passing unmasked needs a real file signature: a NUL or control byte alone is something an
    // upstream echoing the agent's input can put in the first bytes of text, so that gets the raw masker.
    if (binary === 'pass' && kind === 'binary' && fileSignatureKind(prefix) === undefined) {
      return [maskingTransform({ masker: o.masker, direction: 'response', onRedaction: o.onRedaction })];
    }
    return raw();
  };
}
