// The framing of a response whose masking is decided by its bytes (response-body.ts): its head
// waits for the first bytes, so what the agent is told about the body is true of what it gets.
// - A body passed as is (binary by its bytes under a label sluice passes): every header kept —
//   Content-Length, ETag, digests — since not a byte changes.
// - A body short enough to mask whole (its Content-Length, or its end, within `wholeBytes`):
//   masked first; unchanged, every header kept; changed, an exact Content-Length, the ETag made
//   weak (the same resource, not the same bytes) and the digests of the original dropped.
// - A longer body streamed through masking: no Content-Length (chunked, or close-delimited on
//   HTTP/1.0), a weak ETag and no digests, no ranges — its bytes may change, and the head is out
//   before anyone knows.
// It never relays a byte the chosen stages did not see, and holds at most `wholeBytes` (twice:
// in and out) of one body.
import { Readable } from 'node:stream';
import type { Transform } from 'node:stream';
import { DEFAULT_RESPONSE_LIMITS } from './response-body.ts';

type Headers = Record<string, string | string[]>;

/** Digests of the representation: wrong once a byte changes. */
export const DIGEST_HEADERS: readonly string[] = ['content-md5', 'digest', 'content-digest', 'repr-digest'];
const DIGESTS = DIGEST_HEADERS;

export interface SniffedResponseOptions {
  /** Bytes read before the body's kind is decided (response-body.ts's sniffBytes). */
  sniffBytes?: number;
  /** A body up to this long is masked whole, so its length and validators can be exact. */
  wholeBytes?: number;
}

export const DEFAULT_WHOLE_BYTES = 256 * 1024;

export type Framing = 'kept' | 'recomputed' | 'streamed';

export interface SniffedResponse {
  headers: Headers;
  body: Readable;
  /** kept: as the upstream framed it; recomputed: masked whole, new length; streamed: no length. */
  framing: Framing;
}

/**
 * Reads the first `n` bytes of `body` (fewer when it ends first). `body` is returned as a stream
 * again that yields them and then the rest, with back-pressure.
 */
export async function readBodyPrefix(body: Readable, n: number): Promise<{ prefix: Buffer; ended: boolean; body: Readable }> {
  const it = (body as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let size = 0;
  let ended = false;
  while (size < n) {
    const r = await it.next();
    if (r.done) {
      ended = true;
      break;
    }
    const c = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    chunks.push(c);
    size += c.length;
  }
  const prefix = Buffer.concat(chunks);
  async function* again(): AsyncGenerator<Buffer> {
    if (prefix.length) yield prefix;
    if (ended) return;
    for (let r = await it.next(); !r.done; r = await it.next()) yield typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
  }
  return { prefix, ended, body: Readable.from(again(), { objectMode: false }) };
}

/** A strong entity tag made weak (W/"x"); a weak one as it is; anything that is not a tag dropped. */
export function weakEtag(value: string): string | undefined {
  const v = value.trim();
  if (/^W\/"[^"]*"$/.test(v)) return v;
  if (/^"[^"]*"$/.test(v)) return `W/${v}`;
  return undefined;
}

function without(headers: Headers, names: readonly string[]): Headers {
  const out: Headers = {};
  for (const [k, v] of Object.entries(headers)) if (!names.includes(k.toLowerCase())) out[k] = v;
  return out;
}

function withWeakEtag(headers: Headers): Headers {
  const out = without(headers, ['etag']);
  const etag = headers.etag;
  const weak = typeof etag === 'string' ? weakEtag(etag) : undefined;
  if (weak) out.etag = weak;
  return out;
}

/** The head of a body whose bytes may change as it streams: no length, digests or ranges, a weak validator. */
export function streamedHeaders(headers: Headers): Headers {
  return { ...withWeakEtag(without(headers, ['content-length', 'accept-ranges', ...DIGESTS])), 'accept-ranges': 'none' };
}

/** The head of a body masked whole: as sent when nothing changed; else its exact length, a weak validator, no digests. */
export function wholeHeaders(headers: Headers, output: Buffer, changed: boolean): Headers {
  if (!changed) return headers;
  return { ...withWeakEtag(without(headers, ['content-length', ...DIGESTS])), 'content-length': String(output.length) };
}

function declaredLength(headers: Headers): number | undefined {
  const v = headers['content-length'];
  if (typeof v !== 'string' || !/^\d{1,15}$/.test(v.trim())) return undefined;
  return Number(v);
}

/** Runs `source` through `stages`, collecting what comes out; the first stage error rejects. */
function collect(source: Readable, stages: Transform[], input: Buffer[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const chain = [source, ...stages];
    const fail = (err: Error) => {
      for (const s of chain) s.destroy();
      reject(err);
    };
    for (const s of chain) s.once('error', fail);
    source.on('data', (c: Buffer) => input.push(c));
    const last = stages.reduce<Readable>((from, to) => from.pipe(to), source);
    last.on('data', (c: Buffer) => out.push(c));
    last.once('end', () => resolve(Buffer.concat(out)));
  });
}

/**
 * The head and body the agent gets for a response masked by its bytes: `choose` (response-body.ts's
 * sniffedStagesChooser) picks the stages from the first bytes; none means the body passes unchanged.
 * Rejects with the stages' error (a DlpStreamError with its code) for a body masked whole; a
 * streamed body fails as a stream, like any masked response.
 */
export async function sniffedResponse(headers: Headers, upstream: Readable, choose: (prefix: Buffer) => Transform[], o: SniffedResponseOptions = {}): Promise<SniffedResponse> {
  const sniffBytes = o.sniffBytes ?? DEFAULT_RESPONSE_LIMITS.sniffBytes;
  const wholeBytes = o.wholeBytes ?? DEFAULT_WHOLE_BYTES;
  const { prefix, ended, body } = await readBodyPrefix(upstream, sniffBytes);
  const stages = choose(prefix);
  if (!stages.length) return { headers, body, framing: 'kept' };
  const length = declaredLength(headers);
  if (ended || (length !== undefined && length <= wholeBytes)) {
    const input: Buffer[] = [];
    const output = await collect(body, stages, input);
    const changed = !output.equals(Buffer.concat(input));
    return { headers: wholeHeaders(headers, output, changed), body: Readable.from([output]), framing: changed ? 'recomputed' : 'kept' };
  }
  const last = stages.reduce<Readable>((from, to) => from.pipe(to), body);
  // An error anywhere fails the stream the agent's body is read from.
  for (const s of [body, ...stages]) s.once('error', (err: Error) => last.destroy(err));
  return { headers: streamedHeaders(headers), body: last, framing: 'streamed' };
}
