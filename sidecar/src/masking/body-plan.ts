// Decides, from a message's headers alone, how a body is masked: scan it or pass it (binary media),
// refuse it (an encoding or partial range we cannot scan: never pass unscanned), which codecs to
// decode and re-encode, and which headers no longer hold once bytes may change. Pure: the proxy
// applies the plan; body-codecs.ts builds the streams.

export type ContentCoding = 'gzip' | 'deflate' | 'br' | 'zstd';

export interface HeaderChanges {
  /** Lower-case header names to drop. */
  remove: string[];
  /** Lower-case header names to set (replacing any value). */
  set: Record<string, string>;
}

export type BodyAction =
  /** Stream through decode → mask → encode. */
  | 'mask'
  /** Git push: hand the (decoded) body to the packfile scanner, forward only on a clean verdict. */
  | 'scan-pack'
  /** Forward untouched: nothing to scan (binary media by policy, no body, or masking off). */
  | 'pass'
  /** Do not forward: the body cannot be scanned (unknown coding, partial content). Fail closed. */
  | 'refuse';

export interface BodyPlan {
  action: BodyAction;
  /** Stable reason code for audit/metrics, e.g. `masking.unknown_encoding`. */
  reason: string;
  /** Codings to undo, in the order to apply the decoders (reverse of Content-Encoding). */
  decode: ContentCoding[];
  /** Codings to re-apply after masking, in order; empty when the body goes out decoded. */
  encode: ContentCoding[];
  headerChanges: HeaderChanges;
  /** Record separator for event streams, so records are released as they complete. */
  flushAt?: string;
}

export interface BodyPlanOptions {
  /** Re-encode with the original codings (default) or send the masked body decoded. */
  reencode?: boolean;
  /** Media types (prefix match, lower-case) passed unscanned; default: images, audio, video, fonts. */
  passTypes?: readonly string[];
  /** What to do with a coding we cannot decode: refuse (default) or pass unscanned. */
  unknownEncoding?: 'refuse' | 'pass';
  /** HTTP status of a response (206 partial content cannot be masked consistently). */
  status?: number;
  /** The codings this runtime can decode (zstd depends on the Node build). */
  supported?: readonly ContentCoding[];
}

export const DEFAULT_PASS_TYPES: readonly string[] = Object.freeze([
  'image/',
  'audio/',
  'video/',
  'font/',
  'application/font-',
  'application/vnd.ms-fontobject',
  'application/wasm',
]);

const KNOWN_CODINGS = new Set<string>(['gzip', 'x-gzip', 'deflate', 'br', 'zstd']);
// Validators and digests of the original representation are wrong once a byte may change.
const STALE_WHEN_MASKED = ['content-length', 'etag', 'content-md5', 'digest', 'content-digest', 'repr-digest'];

type Headers = Readonly<Record<string, string | string[] | undefined>>;

function header(headers: Headers, name: string): string {
  const v = headers[name];
  return (Array.isArray(v) ? v.join(', ') : (v ?? '')).trim();
}

function parseCodings(value: string): string[] {
  return value
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
}

function plan(action: BodyAction, reason: string, rest: Partial<BodyPlan> = {}): BodyPlan {
  return { action, reason, decode: [], encode: [], headerChanges: { remove: [], set: {} }, ...rest };
}

/**
 * Plans masking for one body. `headers` are the message's own headers (lower-case names): a
 * response's for a response body, a request's for a request body.
 */
export function planBodyMasking(headers: Headers, opts: BodyPlanOptions = {}): BodyPlan {
  const supported = new Set<string>(opts.supported ?? ['gzip', 'deflate', 'br', 'zstd']);
  const contentType = header(headers, 'content-type').toLowerCase();
  const mediaType = contentType.split(';')[0]?.trim() ?? '';
  if (mediaType === 'application/x-git-receive-pack-request') {
    return withCodings(plan('scan-pack', 'masking.git_push'), headers, opts, supported);
  }
  // No body, nothing to hide: keep Content-Length and ETag, which clients rely on (the AWS CLI
  // reads an upload's ETag from an empty 200).
  if (opts.status === 204 || opts.status === 304 || header(headers, 'content-length') === '0') {
    return plan('pass', 'masking.empty_body');
  }
  if (mediaType.startsWith('application/x-git-')) {
    // Fetched packs and ref advertisements are checksummed git data: changing a byte breaks them.
    return plan('pass', 'masking.git_data');
  }
  if (opts.status === 206 || header(headers, 'content-range') !== '') {
    return plan('refuse', 'masking.partial_content');
  }
  const passTypes = opts.passTypes ?? DEFAULT_PASS_TYPES;
  if (mediaType !== '' && passTypes.some((p) => mediaType.startsWith(p))) {
    return plan('pass', 'masking.binary_type');
  }
  if (mediaType.startsWith('application/grpc')) {
    // Length-prefixed (and often per-message compressed) frames: a redaction that changes a length
    // breaks the stream and compressed messages cannot be scanned. Refused unless passTypes lists
    // it (accepting unscanned gRPC for that sidecar).
    return plan('refuse', 'masking.grpc_unsupported');
  }
  const result = withCodings(plan('mask', 'masking.scan'), headers, opts, supported);
  if (result.action !== 'mask') return result;
  if (mediaType === 'text/event-stream') result.flushAt = '\n\n';
  else if (mediaType === 'application/x-ndjson' || mediaType === 'application/jsonl' || mediaType === 'application/json-seq') {
    result.flushAt = '\n';
  }
  return result;
}

function withCodings(base: BodyPlan, headers: Headers, opts: BodyPlanOptions, supported: Set<string>): BodyPlan {
  const codings = parseCodings(header(headers, 'content-encoding'));
  const unknown = codings.filter((c) => !KNOWN_CODINGS.has(c) || !supported.has(c === 'x-gzip' ? 'gzip' : c));
  if (unknown.length > 0) {
    return opts.unknownEncoding === 'pass' ? plan('pass', 'masking.unknown_encoding') : plan('refuse', 'masking.unknown_encoding');
  }
  const normal = codings.map((c) => (c === 'x-gzip' ? 'gzip' : c) as ContentCoding);
  const reencode = opts.reencode ?? true;
  const remove = [...STALE_WHEN_MASKED];
  const set: Record<string, string> = {};
  if (base.action === 'mask') set['accept-ranges'] = 'none';
  if (normal.length > 0 && !reencode) remove.push('content-encoding');
  return {
    ...base,
    decode: [...normal].reverse(),
    encode: reencode ? normal : [],
    headerChanges: { remove, set },
  };
}

/** Header changes for a body whose bytes may change: validators and digests dropped, no ranges. */
export function maskedBodyHeaderChanges(): HeaderChanges {
  return { remove: [...STALE_WHEN_MASKED], set: { 'accept-ranges': 'none' } };
}

/**
 * Changes to the outbound request when its response will be masked: no ranges (offsets of a masked
 * body differ from the origin's), and only codings we can decode.
 */
export function planRequestForMaskedResponse(requestHeaders: Headers, supported: readonly ContentCoding[] = ['gzip', 'deflate', 'br']): HeaderChanges {
  const remove = ['range', 'if-range'];
  const set: Record<string, string> = {};
  const accept = header(requestHeaders, 'accept-encoding');
  if (accept !== '') {
    const kept = accept
      .split(',')
      .map((c) => c.trim())
      .filter((c) => {
        const name = (c.split(';')[0] ?? '').trim().toLowerCase();
        return name === 'identity' || name === '*' ? false : (supported as readonly string[]).includes(name === 'x-gzip' ? 'gzip' : name);
      });
    if (kept.length > 0) set['accept-encoding'] = kept.join(', ');
    else remove.push('accept-encoding');
  }
  return { remove, set };
}

/** Applies header changes to a plain header object (returns a new one). */
export function applyHeaderChanges<T extends string | string[] | undefined>(headers: Readonly<Record<string, T>>, changes: HeaderChanges): Record<string, T | string> {
  const out: Record<string, T | string> = {};
  const drop = new Set(changes.remove);
  for (const [k, v] of Object.entries(headers)) if (!drop.has(k.toLowerCase())) out[k] = v;
  for (const [k, v] of Object.entries(changes.set)) out[k] = v;
  return out;
}

/**
 * Plans outbound DLP for a request body from what it is, not from the Content-Type the agent
 * chose: a git push (by the request's facts, its Content-Type, or bytes that read as receive-pack
 * commands) goes to the pack scanner; a body whose first bytes are compressed or packed data
 * without a Content-Encoding saying so (gzip, zstd, zip, a git pack) cannot be read by the
 * text scanner and is refused; everything else — git fetch requests, binary types included — is
 * scanned as text with its decoded views (sniffRequestBody then looks at the bytes themselves).
 */
export function planRequestBodyMasking(headers: Headers, opts: { isPush: boolean; supported?: readonly ContentCoding[] }): BodyPlan {
  const supported = new Set<string>(opts.supported ?? ['gzip', 'deflate', 'br', 'zstd']);
  const mediaType = (header(headers, 'content-type').toLowerCase().split(';')[0] ?? '').trim();
  if (opts.isPush || mediaType === 'application/x-git-receive-pack-request') {
    return withCodings(plan('scan-pack', 'masking.git_push'), headers, { reencode: false }, supported);
  }
  if (header(headers, 'content-length') === '0') return plan('pass', 'masking.empty_body');
  if (mediaType.startsWith('application/grpc')) return plan('refuse', 'masking.grpc_unsupported');
  return withCodings(plan('mask', 'masking.scan'), headers, { reencode: false }, supported);
}

/** What the first bytes of a (content-decoded) request body are, when that decides its scanner. */
export function sniffRequestBody(prefix: Buffer): 'receive-pack' | 'compressed' | 'text' {
  if (looksLikeReceivePack(prefix)) return 'receive-pack';
  const b0 = prefix[0] ?? -1;
  const b1 = prefix[1] ?? -1;
  if (b0 === 0x1f && b1 === 0x8b && prefix[2] === 0x08) return 'compressed'; // gzip
  if (b0 === 0x28 && b1 === 0xb5 && prefix[2] === 0x2f && prefix[3] === 0xfd) return 'compressed'; // zstd
  if (b0 === 0x50 && b1 === 0x4b && prefix[2] === 0x03 && prefix[3] === 0x04) return 'compressed'; // zip
  if (prefix.subarray(0, 4).toString('latin1') === 'PACK' && prefix[4] === 0 && prefix[5] === 0 && prefix[6] === 0 && (prefix[7] === 2 || prefix[7] === 3)) return 'compressed'; // a bare git pack
  // A zlib stream has a two-byte header only: too weak a signature to refuse a body by.
  return 'text';
}

/** A pkt-line holding `<old-oid> <new-oid> <ref>` (optionally after push-cert/shallow lines). */
function looksLikeReceivePack(prefix: Buffer): boolean {
  const text = prefix.subarray(0, 4096).toString('latin1');
  return /^(?:[0-9a-f]{4}(?:shallow [0-9a-f]{40,64}\n?|push-cert\0?[^\n]*\n?))*[0-9a-f]{4}[0-9a-f]{40,64} [0-9a-f]{40,64} \S/.test(text) || /^[0-9a-f]{4}push-cert/.test(text);
}
