// Re-signs an S3 `aws-chunked` body whose chunks carry SigV4 signatures
// (x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]). Each chunk's signature
// chains from the previous one, starting at the request's seed signature, so the agent's chunk
// signatures (made with placeholder credentials) are replaced one by one with signatures from the
// real key, and a signed trailer (`x-amz-trailer-signature`) likewise. Every other byte is kept as
// sent — sizes, data, trailer lines — so the body's length, which the agent declared and signed in
// Content-Length, does not change. A chunk is held in memory only until its signature is known
// (bounded by maxChunkBytes); malformed framing fails the stream, which aborts the upstream request.
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const MAX_LINE = 4096;
const SIZE_LINE = /^([0-9a-fA-F]{1,16});chunk-signature=([0-9a-f]{64})$/;
const TRAILER_SIGNATURE = 'x-amz-trailer-signature';

export interface ChunkResignOptions {
  /** x-amz-date of the request, e.g. 20130524T000000Z */
  longDate: string;
  /** 20130524/us-east-1/s3/aws4_request */
  scope: string;
  /** The request's own (new) signature: the chain starts here. */
  seedSignature: string;
  /** The body ends with signed trailing headers. */
  trailer: boolean;
  maxChunkBytes: number;
  /** HMAC-SHA256 of a string with the request's signing key, hex. */
  sign: (stringToSign: string) => Promise<string>;
}

export class AwsChunkedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AwsChunkedError';
  }
}

type State = 'size' | 'data' | 'data-end' | 'trailer' | 'done';

export function chunkStringToSign(o: { longDate: string; scope: string }, previous: string, data: readonly Buffer[]): string {
  const h = createHash('sha256');
  for (const d of data) h.update(d);
  return ['AWS4-HMAC-SHA256-PAYLOAD', o.longDate, o.scope, previous, EMPTY_SHA256, h.digest('hex')].join('\n');
}

export function trailerStringToSign(o: { longDate: string; scope: string }, previous: string, canonicalTrailers: string): string {
  return ['AWS4-HMAC-SHA256-TRAILER', o.longDate, o.scope, previous, createHash('sha256').update(canonicalTrailers).digest('hex')].join('\n');
}

/** A Transform from the agent's aws-chunked body to the same body with sluice's signatures. */
export function resignAwsChunked(o: ChunkResignOptions): Transform {
  let state: State = 'size';
  let line: Buffer = Buffer.alloc(0);
  let sizeText = '';
  let remaining = 0;
  let data: Buffer[] = [];
  let previous = o.seedSignature;
  let canonicalTrailers = '';
  let trailerSigned = false;

  const fail = (why: string) => new AwsChunkedError(`aws-chunked body: ${why}`);

  /** Reads up to and including LF into `line`; returns the offset after it, or -1 if not yet. */
  const takeLine = (buf: Buffer, at: number): number => {
    const lf = buf.indexOf(0x0a, at);
    const end = lf < 0 ? buf.length : lf + 1;
    line = line.length ? Buffer.concat([line, buf.subarray(at, end)]) : buf.subarray(at, end);
    if (line.length > MAX_LINE) throw fail('a framing line is too long');
    return lf < 0 ? -1 : end;
  };

  async function step(buf: Buffer, push: (b: Buffer) => void): Promise<void> {
    let at = 0;
    while (at < buf.length) {
      switch (state) {
        case 'size': {
          const next = takeLine(buf, at);
          if (next < 0) return;
          at = next;
          const text = line.toString('latin1');
          line = Buffer.alloc(0);
          if (!text.endsWith('\r\n')) throw fail('a chunk header does not end in CRLF');
          const m = SIZE_LINE.exec(text.slice(0, -2));
          if (!m) throw fail('a chunk header is not `<hex size>;chunk-signature=<64 hex>`');
          sizeText = m[1]!;
          remaining = parseInt(sizeText, 16);
          if (remaining > o.maxChunkBytes) throw fail(`a chunk of ${remaining} bytes exceeds the ${o.maxChunkBytes}-byte bound`);
          data = [];
          if (remaining > 0) {
            state = 'data';
          } else {
            const sig = await o.sign(chunkStringToSign(o, previous, []));
            previous = sig;
            push(Buffer.from(`${sizeText};chunk-signature=${sig}\r\n`, 'latin1'));
            state = o.trailer ? 'trailer' : 'data-end';
          }
          break;
        }
        case 'data': {
          const n = Math.min(remaining, buf.length - at);
          data.push(buf.subarray(at, at + n));
          at += n;
          remaining -= n;
          if (remaining === 0) {
            const sig = await o.sign(chunkStringToSign(o, previous, data));
            previous = sig;
            push(Buffer.from(`${sizeText};chunk-signature=${sig}\r\n`, 'latin1'));
            for (const d of data) push(d);
            data = [];
            state = 'data-end';
          }
          break;
        }
        case 'data-end': {
          const next = takeLine(buf, at);
          if (next < 0) return;
          at = next;
          if (line.length !== 2 || line[0] !== 0x0d) throw fail('chunk data is not followed by CRLF');
          push(line);
          line = Buffer.alloc(0);
          state = sizeText.replace(/^0+/, '') === '' ? 'done' : 'size';
          break;
        }
        case 'trailer': {
          const next = takeLine(buf, at);
          if (next < 0) return;
          at = next;
          const raw = line;
          line = Buffer.alloc(0);
          const text = raw.toString('latin1').replace(/\r?\n$/, '');
          if (text === '') {
            // Some clients put an empty line between the checksum and its signature.
            push(raw);
            if (trailerSigned || canonicalTrailers === '') state = 'done';
            break;
          }
          const colon = text.indexOf(':');
          if (colon <= 0) throw fail('a trailer line is not `name:value`');
          const name = text.slice(0, colon).trim().toLowerCase();
          const value = text.slice(colon + 1).trim();
          if (trailerSigned) throw fail('a trailer follows the trailer signature');
          if (name === TRAILER_SIGNATURE) {
            if (!/^[0-9a-f]{64}$/.test(value)) throw fail('the trailer signature is not 64 hex digits');
            const sig = await o.sign(trailerStringToSign(o, previous, canonicalTrailers));
            push(Buffer.from(raw.toString('latin1').replace(value, sig), 'latin1'));
            trailerSigned = true;
          } else {
            canonicalTrailers += `${name}:${value}\n`;
            push(raw);
          }
          break;
        }
        case 'done': {
          if (buf.subarray(at).some((b) => b !== 0x0d && b !== 0x0a)) throw fail('bytes after the final chunk');
          push(buf.subarray(at));
          return;
        }
      }
    }
  }

  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      step(chunk, (b) => this.push(b)).then(
        () => cb(),
        (err: unknown) => cb(err as Error),
      );
    },
    flush(cb: TransformCallback) {
      if (state !== 'done') cb(fail(state === 'trailer' && !trailerSigned ? 'the signed trailer is missing' : 'the body ends before its final chunk'));
      else cb();
    },
  });
}
