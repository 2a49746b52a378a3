// What the agent's AWS request says about its own signature: header-signed SigV4, a presigned URL,
// unsigned, or a shape sluice cannot re-sign (SigV2, SigV4A). Only the scope (region, service),
// the signed-header list and a presigned URL's expiry are taken from it — never the signature,
// which is discarded, and never the access key (the agent's is a placeholder). Pure; never throws.

export interface SigningScope {
  /** YYYYMMDD */
  date: string;
  region: string;
  service: string;
}

export type AgentSignature =
  | { kind: 'none' }
  | { kind: 'header'; accessKeyId: string; scope: SigningScope; signedHeaders: string[] }
  | { kind: 'presigned'; accessKeyId: string; scope: SigningScope; signedHeaders: string[]; signedAt: number; expiresSeconds: number }
  /** S3 SigV2 (legacy; AWS CLI v1 `s3 presign` still makes these): re-signed as SigV4. */
  | { kind: 'sigv2-header'; accessKeyId: string }
  | { kind: 'sigv2-presigned'; accessKeyId: string; expiresAt: number }
  | { kind: 'unsupported'; reason: string }
  | { kind: 'malformed'; reason: string };

/** Query parameters that carry a SigV4 presignature; sluice removes them and presigns anew. */
export const PRESIGN_PARAMS: ReadonlySet<string> = new Set([
  'x-amz-algorithm',
  'x-amz-credential',
  'x-amz-date',
  'x-amz-expires',
  'x-amz-signedheaders',
  'x-amz-signature',
  'x-amz-security-token',
]);

/** Query parameters of a SigV2 presigned URL (plus the token some clients add). */
export const SIGV2_PRESIGN_PARAMS: ReadonlySet<string> = new Set(['awsaccesskeyid', 'signature', 'expires', 'x-amz-security-token']);

export interface QueryParam {
  /** decoded name */
  name: string;
  /** decoded value ('' for a bare `?uploads`) */
  value: string;
}

/** Splits a raw query into decoded pairs (`+` is a literal plus, as SigV4 canonicalisation has it). */
export function parseQuery(raw: string): QueryParam[] | undefined {
  if (raw === '') return [];
  const out: QueryParam[] = [];
  for (const part of raw.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    try {
      out.push({ name: decodeURIComponent(eq < 0 ? part : part.slice(0, eq)), value: eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1)) });
    } catch {
      return undefined;
    }
  }
  return out;
}

function param(query: readonly QueryParam[], name: string): string | undefined {
  const lower = name.toLowerCase();
  return query.find((p) => p.name.toLowerCase() === lower)?.value;
}

const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** `20130524T000000Z` → ms since the epoch. */
export function parseAmzDate(text: string): number | undefined {
  const m = AMZ_DATE.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  const t = Date.UTC(y, mo - 1, d, h, mi, s);
  return Number.isFinite(t) ? t : undefined;
}

function parseCredential(credential: string): { accessKeyId: string; scope: SigningScope } | undefined {
  const parts = credential.split('/');
  if (parts.length !== 5 || parts[4] !== 'aws4_request') return undefined;
  const [accessKeyId, date, region, service] = parts as [string, string, string, string];
  if (!/^\d{8}$/.test(date) || !/^[a-z0-9-]{1,64}$/.test(region) || !/^[a-z0-9-]{1,64}$/.test(service)) return undefined;
  return { accessKeyId, scope: { date, region, service } };
}

function parseSignedHeaders(list: string): string[] | undefined {
  const names = list.split(';').map((h) => h.trim().toLowerCase());
  return names.every((n) => /^[a-z0-9-]+$/.test(n)) ? names : undefined;
}

function headerValue(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

/** Reads the agent's signature from its headers and decoded query. */
export function readAgentSignature(headers: Record<string, string | string[] | undefined>, query: readonly QueryParam[]): AgentSignature {
  const auth = headerValue(headers, 'authorization');
  if (auth !== undefined) {
    if (auth.startsWith('AWS4-ECDSA-P256-SHA256')) return { kind: 'unsupported', reason: 'SigV4A (AWS4-ECDSA-P256-SHA256) signatures cannot be re-signed' };
    if (auth.startsWith('AWS ')) {
      const akid = /^AWS ([^:\s]+):/.exec(auth)?.[1];
      return akid ? { kind: 'sigv2-header', accessKeyId: akid } : { kind: 'malformed', reason: 'the Authorization header is not a SigV2 authorization' };
    }
    if (!auth.startsWith('AWS4-HMAC-SHA256')) return { kind: 'none' };
    const credential = /Credential=([^,\s]+)/.exec(auth)?.[1];
    const signed = /SignedHeaders=([^,\s]+)/.exec(auth)?.[1];
    const parsed = credential === undefined ? undefined : parseCredential(credential);
    const signedHeaders = signed === undefined ? undefined : parseSignedHeaders(signed);
    if (!parsed || !signedHeaders) return { kind: 'malformed', reason: 'the Authorization header is not a SigV4 authorization (Credential/SignedHeaders)' };
    return { kind: 'header', accessKeyId: parsed.accessKeyId, scope: parsed.scope, signedHeaders };
  }
  const algorithm = param(query, 'X-Amz-Algorithm');
  if (algorithm === undefined) {
    const akid = param(query, 'AWSAccessKeyId');
    if (akid !== undefined && param(query, 'Signature') !== undefined) {
      const expires = Number(param(query, 'Expires') ?? 'NaN');
      if (!Number.isInteger(expires) || expires <= 0) return { kind: 'malformed', reason: 'the SigV2 presigned URL has no valid Expires' };
      return { kind: 'sigv2-presigned', accessKeyId: akid, expiresAt: expires * 1000 };
    }
    return { kind: 'none' };
  }
  if (algorithm !== 'AWS4-HMAC-SHA256') return { kind: 'unsupported', reason: `presigned URLs with ${algorithm.slice(0, 40)} cannot be re-signed` };
  const parsed = parseCredential(param(query, 'X-Amz-Credential') ?? '');
  const signedHeaders = parseSignedHeaders(param(query, 'X-Amz-SignedHeaders') ?? 'host');
  const signedAt = parseAmzDate(param(query, 'X-Amz-Date') ?? '');
  const expires = Number(param(query, 'X-Amz-Expires') ?? 'NaN');
  if (!parsed || !signedHeaders || signedAt === undefined || !Number.isInteger(expires) || expires < 1 || expires > 604_800) {
    return { kind: 'malformed', reason: 'the presigned URL lacks a valid X-Amz-Credential, X-Amz-Date or X-Amz-Expires' };
  }
  return { kind: 'presigned', accessKeyId: parsed.accessKeyId, scope: parsed.scope, signedHeaders, signedAt, expiresSeconds: expires };
}

/** How the agent declared its payload (x-amz-content-sha256). */
export type PayloadMode =
  | { mode: 'declared-hash'; hash: string }
  | { mode: 'unsigned' }
  | { mode: 'streaming-signed'; trailer: boolean }
  | { mode: 'streaming-unsigned-trailer' }
  | { mode: 'streaming-unsupported'; value: string }
  | { mode: 'undeclared' }
  | { mode: 'invalid'; value: string };

export function payloadMode(headers: Record<string, string | string[] | undefined>): PayloadMode {
  const value = headerValue(headers, 'x-amz-content-sha256');
  if (value === undefined) return { mode: 'undeclared' };
  if (/^[0-9a-f]{64}$/.test(value)) return { mode: 'declared-hash', hash: value };
  switch (value) {
    case 'UNSIGNED-PAYLOAD':
      return { mode: 'unsigned' };
    case 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD':
      return { mode: 'streaming-signed', trailer: false };
    case 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER':
      return { mode: 'streaming-signed', trailer: true };
    case 'STREAMING-UNSIGNED-PAYLOAD-TRAILER':
      return { mode: 'streaming-unsigned-trailer' };
    case 'STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD':
    case 'STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER':
      return { mode: 'streaming-unsupported', value };
    default:
      return { mode: 'invalid', value: value.slice(0, 80) };
  }
}
