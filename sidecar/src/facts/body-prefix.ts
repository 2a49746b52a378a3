// Turns the buffered prefix of a request body into the bytes a fact parser reads: undoes a
// gzip/deflate/br Content-Encoding on a truncated stream, with the output capped. It must never
// throw and never inflate past the cap (a small compressed prefix can expand enormously).
import { brotliDecompressSync, constants, gunzipSync, inflateSync } from 'node:zlib';
import { headerOf } from './request.ts';
import type { FactsRequest } from './request.ts';

type Encoding = 'identity' | 'gzip' | 'deflate' | 'br' | 'unreadable';

/** Content encodings whose truncated prefix can be decoded; anything else is unreadable. */
export function bodyEncoding(req: FactsRequest): Encoding {
  const value = headerOf(req, 'content-encoding')?.trim().toLowerCase();
  if (value === undefined || value === '' || value === 'identity') return 'identity';
  if (value === 'gzip' || value === 'x-gzip') return 'gzip';
  if (value === 'deflate') return 'deflate';
  if (value === 'br') return 'br';
  return 'unreadable';
}

/**
 * The decoded prefix, at most `maxOutput` bytes, or undefined when the encoding is unknown or
 * the stream is corrupt. A prefix that ends mid-stream decodes as far as it goes.
 */
export function decodedBodyPrefix(req: FactsRequest, prefix: Buffer, maxOutput: number): Buffer | undefined {
  const encoding = bodyEncoding(req);
  if (encoding === 'unreadable') return undefined;
  if (encoding === 'identity') return prefix.length > maxOutput ? prefix.subarray(0, maxOutput) : prefix;
  // A prefix that inflates past the cap is retried shorter: the caller gets what fits.
  for (let input = prefix; input.length > 0; input = input.subarray(0, input.length >> 1)) {
    try {
      return inflatePrefix(encoding, input, maxOutput);
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_BUFFER_TOO_LARGE') return undefined;
    }
  }
  return Buffer.alloc(0);
}

/**
 * A whole body decoded, or undefined when it is not all there: an unknown encoding, a corrupt or
 * cut stream, or more than `maxOutput` decoded bytes. Parsers that judge a body as complete use
 * this, never the prefix decoder above, whose retry-shorter answer is a cut body that looks whole.
 */
export function decodedWholeBody(req: FactsRequest, body: Buffer, maxOutput: number): Buffer | undefined {
  const encoding = bodyEncoding(req);
  if (encoding === 'unreadable') return undefined;
  if (encoding === 'identity') return body.length <= maxOutput ? body : undefined;
  try {
    // The default finish flush: a stream that does not end where the body ends throws.
    if (encoding === 'br') return brotliDecompressSync(body, { maxOutputLength: maxOutput });
    return (encoding === 'gzip' ? gunzipSync : inflateSync)(body, { maxOutputLength: maxOutput });
  } catch {
    return undefined;
  }
}

function inflatePrefix(encoding: 'gzip' | 'deflate' | 'br', input: Buffer, maxOutputLength: number): Buffer {
  if (encoding === 'br') return brotliDecompressSync(input, { finishFlush: constants.BROTLI_OPERATION_FLUSH, maxOutputLength });
  const opts = { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength };
  return encoding === 'gzip' ? gunzipSync(input, opts) : inflateSync(input, opts);
}
