// Builds the stream stages for a BodyPlan: decoders for the body's content codings, the masking
// transform, and encoders that restore the codings. Encoders favour speed over ratio: they sit on
// the request path. Nothing here buffers a whole body.
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import * as zlib from 'node:zlib';
import type { BodyPlan, ContentCoding } from './body-plan.ts';
import { maskingTransform } from './stream.ts';
import type { MaskingTransformOptions } from './stream.ts';

type ZlibExtras = typeof zlib & {
  createZstdDecompress?: () => Transform;
  createZstdCompress?: () => Transform;
};
const z = zlib as ZlibExtras;

/** Codings this Node build can decode and encode. */
export const SUPPORTED_CODINGS: readonly ContentCoding[] = Object.freeze(
  ['gzip', 'deflate', 'br', ...(typeof z.createZstdDecompress === 'function' ? ['zstd' as const] : [])] as ContentCoding[],
);

/**
 * `Content-Encoding: deflate` is specified as zlib-wrapped, but some servers send raw deflate.
 * Sniff the first byte (a zlib header has CM=8 in its low nibble and a valid check) and pick.
 */
class DeflateDecoder extends Transform {
  private inner: zlib.Inflate | zlib.InflateRaw | undefined;
  private finishedInner: Promise<void> | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!this.inner) {
      const b0 = chunk[0] ?? 0;
      const b1 = chunk[1] ?? 0;
      const zlibWrapped = (b0 & 0x0f) === 8 && ((b0 << 8) | b1) % 31 === 0;
      const inner = zlibWrapped ? zlib.createInflate() : zlib.createInflateRaw();
      this.inner = inner;
      inner.on('data', (d: Buffer) => this.push(d));
      this.finishedInner = new Promise((resolve, reject) => {
        inner.on('end', resolve);
        inner.on('error', reject);
      });
      this.finishedInner.catch((err: unknown) => this.destroy(err as Error));
    }
    if (this.inner.write(chunk)) cb();
    else this.inner.once('drain', cb);
  }

  override _flush(cb: TransformCallback): void {
    if (!this.inner || !this.finishedInner) {
      cb();
      return;
    }
    this.inner.end();
    this.finishedInner.then(() => cb(), (err: unknown) => cb(err as Error));
  }
}

export function createDecoder(coding: ContentCoding): Transform {
  switch (coding) {
    case 'gzip':
      return zlib.createGunzip();
    case 'deflate':
      return new DeflateDecoder();
    case 'br':
      return zlib.createBrotliDecompress();
    case 'zstd':
      if (!z.createZstdDecompress) throw new Error('zstd is not supported by this Node build');
      return z.createZstdDecompress();
  }
}

export function createEncoder(coding: ContentCoding): Transform {
  switch (coding) {
    case 'gzip':
      return zlib.createGzip({ level: 4 });
    case 'deflate':
      return zlib.createDeflate({ level: 4 });
    case 'br':
      return zlib.createBrotliCompress({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 } });
    case 'zstd':
      if (!z.createZstdCompress) throw new Error('zstd is not supported by this Node build');
      return z.createZstdCompress();
  }
}

/** The stages to pipe a body through for a `mask` plan: decoders, masking, encoders. */
export function maskingStages(plan: BodyPlan, opts: MaskingTransformOptions): Transform[] {
  if (plan.action !== 'mask') throw new Error(`maskingStages: plan action is ${plan.action}, not mask`);
  return [
    ...plan.decode.map(createDecoder),
    maskingTransform({ ...opts, ...(plan.flushAt ? { flushAt: plan.flushAt } : {}) }),
    ...plan.encode.map(createEncoder),
  ];
}
