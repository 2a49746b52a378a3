// Reads at most a bounded prefix of a request body without consuming the rest: facts (refs of a
// push, the AWS action in a form body, the LLM model) need the first bytes; everything after is
// streamed on untouched. The stream is left paused for the forwarder.
import type { Readable } from 'node:stream';

export interface BodyPrefix {
  prefix: Buffer;
  /** the whole body was read (it ended within the prefix) */
  ended: boolean;
}

/** Reads until `enough(prefix)` is true, the stream ends, or `cap` bytes have been read. */
export function readBodyPrefix(stream: Readable, enough: (prefix: Buffer) => boolean, cap: number): Promise<BodyPrefix> {
  return new Promise((resolve, reject) => {
    let prefix: Buffer = Buffer.alloc(0);
    const cleanup = () => {
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('error', onError);
    };
    const onEnd = () => {
      cleanup();
      resolve({ prefix, ended: true });
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onReadable = () => {
      let chunk: Buffer | null;
      while ((chunk = stream.read() as Buffer | null) !== null) {
        prefix = prefix.length ? Buffer.concat([prefix, chunk]) : chunk;
        if (prefix.length >= cap || enough(prefix)) {
          cleanup();
          // 'end' may already be pending; readableEnded tells us the body is complete
          resolve({ prefix, ended: stream.readableEnded });
          return;
        }
      }
    };
    if (stream.readableEnded) {
      resolve({ prefix, ended: true });
      return;
    }
    stream.on('readable', onReadable);
    stream.on('end', onEnd);
    stream.on('error', onError);
  });
}
