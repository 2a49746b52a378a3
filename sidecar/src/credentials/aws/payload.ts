// Request bodies under a re-signed AWS request. A body whose hash the agent declared is streamed
// through a guard that hashes it and holds the last chunk back until the hash is known: a body
// that does not match what sluice signed never reaches the upstream whole (the stream fails and
// the upstream request is aborted). A body whose hash must be computed is read into memory within
// a bound. Nothing here looks at what the body says.
import { createHash } from 'node:crypto';
import { PassThrough, Transform } from 'node:stream';
import type { Readable, TransformCallback } from 'node:stream';

export class PayloadMismatchError extends Error {
  constructor() {
    super('the request body does not match its declared x-amz-content-sha256');
    this.name = 'PayloadMismatchError';
  }
}

/** Passes the body through, failing at its end if its SHA-256 is not `expectedHex`. */
export function declaredHashGuard(expectedHex: string): Transform {
  const hash = createHash('sha256');
  let held: Buffer | undefined;
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      hash.update(chunk);
      if (held) this.push(held);
      held = chunk;
      cb();
    },
    flush(cb: TransformCallback) {
      if (hash.digest('hex') !== expectedHex) {
        cb(new PayloadMismatchError());
        return;
      }
      if (held) this.push(held);
      cb();
    },
  });
}

export type BoundedRead = { complete: true; body: Buffer } | { complete: false; prefix: Buffer };

/**
 * Reads the whole body if it is at most `maxBytes`; otherwise stops at the first chunk past the
 * bound and hands back what was read, leaving the rest unread in the stream (see `replay`).
 */
export function readBounded(body: Readable, maxBytes: number): Promise<BoundedRead> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      body.off('readable', onReadable);
      body.off('end', onEnd);
      body.off('error', onError);
    };
    function onReadable() {
      let chunk: Buffer | null;
      while ((chunk = body.read() as Buffer | null) !== null) {
        chunks.push(chunk);
        size += chunk.length;
        if (size > maxBytes) {
          cleanup();
          resolve({ complete: false, prefix: Buffer.concat(chunks, size) });
          return;
        }
      }
    }
    function onEnd() {
      cleanup();
      resolve({ complete: true, body: Buffer.concat(chunks, size) });
    }
    function onError(err: Error) {
      cleanup();
      reject(err);
    }
    if (body.readableEnded) {
      resolve({ complete: true, body: Buffer.alloc(0) });
      return;
    }
    body.on('readable', onReadable);
    body.once('end', onEnd);
    body.once('error', onError);
  });
}

/** A stream of `prefix` followed by the unread rest of `rest`. */
export function replay(prefix: Buffer, rest: Readable): Readable {
  const out = new PassThrough();
  out.write(prefix);
  if (rest.readableEnded) out.end();
  else rest.pipe(out);
  rest.once('error', (err) => out.destroy(err));
  return out;
}

export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
