// An independent SigV4 implementation for tests, written from the AWS documentation
// ("Create a signed AWS API request", "Authenticating requests: using query parameters",
// S3 "sigv4-streaming"/"sigv4-streaming-trailers") with node:crypto only — no smithy — so it can
// both play the agent (sign with placeholder keys) and check what the sidecar produced. If the
// sidecar's canonicalisation were wrong, this and the sidecar would disagree. Test code only.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export interface RefCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface RefRequest {
  method: string;
  /** origin-form path and query as on the wire */
  path: string;
  /** lower-case names; must include host */
  headers: Record<string, string>;
  body?: Buffer;
}

const S3 = new Set(['s3', 's3-object-lambda']);
export const EMPTY_HASH = createHash('sha256').update('').digest('hex');

export function rfc3986(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();

export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
}

function splitPath(path: string): { pathname: string; query: string } {
  const q = path.indexOf('?');
  return q < 0 ? { pathname: path, query: '' } : { pathname: path.slice(0, q), query: path.slice(q + 1) };
}

export function canonicalUri(pathname: string, service: string): string {
  if (S3.has(service)) return pathname.split('/').map((s) => rfc3986(decodeURIComponent(s))).join('/') || '/';
  const out: string[] = [];
  for (const seg of pathname.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(rfc3986(seg));
  }
  const joined = `/${out.join('/')}`;
  return pathname.endsWith('/') && out.length ? `${joined}/` : joined;
}

export function canonicalQuery(query: string, omit: string[] = []): string {
  const pairs: [string, string][] = [];
  for (const part of query.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const name = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
    if (omit.includes(name)) continue;
    pairs.push([rfc3986(name), rfc3986(eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1)))]);
  }
  pairs.sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

function canonicalHeaders(headers: Record<string, string>, signed: string[]): string {
  return signed.map((h) => `${h}:${(headers[h] ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
}

function stringToSign(longDate: string, scope: string, canonicalRequest: string): string {
  return ['AWS4-HMAC-SHA256', longDate, scope, sha256(canonicalRequest)].join('\n');
}

/** Signs with the Authorization header (the agent's way). Adds x-amz-date and the token. */
export function refSignHeaders(req: RefRequest, creds: RefCredentials, region: string, service: string, longDate: string): RefRequest {
  const headers: Record<string, string> = { ...req.headers, 'x-amz-date': longDate };
  if (creds.sessionToken) headers['x-amz-security-token'] = creds.sessionToken;
  if (S3.has(service) && !headers['x-amz-content-sha256']) headers['x-amz-content-sha256'] = sha256(req.body ?? '');
  const payload = headers['x-amz-content-sha256'] ?? sha256(req.body ?? '');
  const signed = Object.keys(headers).filter((h) => h !== 'user-agent' && h !== 'expect').sort();
  const { pathname, query } = splitPath(req.path);
  const canonical = [req.method, canonicalUri(pathname, service), canonicalQuery(query), canonicalHeaders(headers, signed), signed.join(';'), payload].join('\n');
  const scope = `${longDate.slice(0, 8)}/${region}/${service}/aws4_request`;
  const sig = hmac(signingKey(creds.secretAccessKey, longDate.slice(0, 8), region, service), stringToSign(longDate, scope, canonical)).toString('hex');
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${signed.join(';')}, Signature=${sig}`;
  return { ...req, headers };
}

/** A presigned URL path (the agent's `aws s3 presign`). */
export function refPresign(req: RefRequest, creds: RefCredentials, region: string, service: string, longDate: string, expires: number): string {
  const scope = `${longDate.slice(0, 8)}/${region}/${service}/aws4_request`;
  const { pathname, query } = splitPath(req.path);
  const params: [string, string][] = [
    ['X-Amz-Algorithm', 'AWS4-HMAC-SHA256'],
    ['X-Amz-Credential', `${creds.accessKeyId}/${scope}`],
    ['X-Amz-Date', longDate],
    ['X-Amz-Expires', String(expires)],
    ['X-Amz-SignedHeaders', 'host'],
  ];
  if (creds.sessionToken) params.push(['X-Amz-Security-Token', creds.sessionToken]);
  const q = [query, ...params.map(([k, v]) => `${rfc3986(k)}=${rfc3986(v)}`)].filter(Boolean).join('&');
  const canonical = [req.method, canonicalUri(pathname, service), canonicalQuery(q), canonicalHeaders(req.headers, ['host']), 'host', S3.has(service) ? 'UNSIGNED-PAYLOAD' : EMPTY_HASH].join('\n');
  const sig = hmac(signingKey(creds.secretAccessKey, longDate.slice(0, 8), region, service), stringToSign(longDate, scope, canonical)).toString('hex');
  return `${pathname}?${q}&X-Amz-Signature=${sig}`;
}

export interface Verdict {
  ok: boolean;
  reason?: string;
  accessKeyId?: string;
  /** header-signed: the signature (seed for aws-chunked) and what chunks need */
  signature?: string;
  longDate?: string;
  scope?: string;
  signedHeaders?: string[];
}

const eq = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

/** Checks a request signed with the Authorization header or a presigned URL against `lookup`'s credentials. */
export function refVerify(req: RefRequest, lookup: (accessKeyId: string) => RefCredentials | undefined, now: number = Date.now()): Verdict {
  const { pathname, query } = splitPath(req.path);
  const auth = req.headers.authorization;
  if (auth) {
    const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
    if (!m) return { ok: false, reason: 'authorization is not SigV4' };
    const [, akid, date, region, service, signedList, sig] = m as unknown as [string, string, string, string, string, string, string];
    const creds = lookup(akid);
    if (!creds) return { ok: false, reason: `unknown access key ${akid}` };
    const longDate = req.headers['x-amz-date'] ?? '';
    if (longDate.slice(0, 8) !== date) return { ok: false, reason: 'x-amz-date does not match the scope date' };
    const signed = signedList.split(';');
    if (!signed.includes('host')) return { ok: false, reason: 'host is not signed' };
    for (const h of Object.keys(req.headers)) if (h.startsWith('x-amz-') && !signed.includes(h)) return { ok: false, reason: `${h} is not signed` };
    if (creds.sessionToken && req.headers['x-amz-security-token'] !== creds.sessionToken) return { ok: false, reason: 'session token missing or wrong' };
    const payload = req.headers['x-amz-content-sha256'] ?? sha256(req.body ?? '');
    if (/^[0-9a-f]{64}$/.test(payload) && req.body && sha256(req.body) !== payload) return { ok: false, reason: 'body does not match x-amz-content-sha256' };
    const canonical = [req.method, canonicalUri(pathname, service), canonicalQuery(query), canonicalHeaders(req.headers, signed), signed.join(';'), payload].join('\n');
    const scope = `${date}/${region}/${service}/aws4_request`;
    const want = hmac(signingKey(creds.secretAccessKey, date, region, service), stringToSign(longDate, scope, canonical)).toString('hex');
    if (!eq(want, sig)) return { ok: false, reason: 'signature does not match', accessKeyId: akid };
    return { ok: true, accessKeyId: akid, signature: sig, longDate, scope, signedHeaders: signed };
  }
  const params = new URLSearchParams(query.replace(/\+/g, '%2B'));
  const credential = params.get('X-Amz-Credential');
  const sig = params.get('X-Amz-Signature');
  if (!credential || !sig) return { ok: false, reason: 'not signed' };
  const [akid, date, region, service] = credential.split('/') as [string, string, string, string];
  const creds = lookup(akid);
  if (!creds) return { ok: false, reason: `unknown access key ${akid}` };
  if (creds.sessionToken && params.get('X-Amz-Security-Token') !== creds.sessionToken) return { ok: false, reason: 'session token missing or wrong' };
  const longDate = params.get('X-Amz-Date') ?? '';
  const expires = Number(params.get('X-Amz-Expires'));
  const at = Date.UTC(+longDate.slice(0, 4), +longDate.slice(4, 6) - 1, +longDate.slice(6, 8), +longDate.slice(9, 11), +longDate.slice(11, 13), +longDate.slice(13, 15));
  if (!(now < at + expires * 1000)) return { ok: false, reason: 'presigned URL expired' };
  const signed = (params.get('X-Amz-SignedHeaders') ?? '').split(';');
  const canonical = [req.method, canonicalUri(pathname, service), canonicalQuery(query, ['X-Amz-Signature']), canonicalHeaders(req.headers, signed), signed.join(';'), S3.has(service) ? 'UNSIGNED-PAYLOAD' : EMPTY_HASH].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const want = hmac(signingKey(creds.secretAccessKey, date, region, service), stringToSign(longDate, scope, canonical)).toString('hex');
  if (!eq(want, sig)) return { ok: false, reason: 'presigned signature does not match', accessKeyId: akid };
  return { ok: true, accessKeyId: akid, longDate, scope, signedHeaders: signed };
}

/** Checks every chunk (and trailer) signature of an aws-chunked body; returns the decoded payload. */
export function refVerifyChunked(body: Buffer, key: Buffer, longDate: string, scope: string, seed: string): { ok: boolean; reason?: string; payload?: Buffer } {
  let at = 0;
  let prev = seed;
  const out: Buffer[] = [];
  for (;;) {
    const eol = body.indexOf('\r\n', at);
    if (eol < 0) return { ok: false, reason: 'truncated chunk header' };
    const m = /^([0-9a-fA-F]+);chunk-signature=([0-9a-f]{64})$/.exec(body.subarray(at, eol).toString('latin1'));
    if (!m) return { ok: false, reason: 'bad chunk header' };
    const size = parseInt(m[1]!, 16);
    const data = body.subarray(eol + 2, eol + 2 + size);
    const want = hmac(key, ['AWS4-HMAC-SHA256-PAYLOAD', longDate, scope, prev, EMPTY_HASH, sha256(data)].join('\n')).toString('hex');
    if (want !== m[2]) return { ok: false, reason: `chunk signature ${out.length} does not match` };
    prev = want;
    out.push(data);
    at = eol + 2 + size;
    if (size === 0) break;
    if (body.subarray(at, at + 2).toString('latin1') !== '\r\n') return { ok: false, reason: 'chunk not followed by CRLF' };
    at += 2;
  }
  const rest = body.subarray(at).toString('latin1');
  if (rest === '\r\n') return { ok: true, payload: Buffer.concat(out) };
  const lines = rest.split(/\r?\n/).filter((l) => l !== '');
  const sigLine = lines.find((l) => l.startsWith('x-amz-trailer-signature:'));
  if (!sigLine) return { ok: false, reason: 'trailers without a signature' };
  const canonical = lines.filter((l) => l !== sigLine).map((l) => `${l.slice(0, l.indexOf(':')).trim().toLowerCase()}:${l.slice(l.indexOf(':') + 1).trim()}\n`).join('');
  const want = hmac(key, ['AWS4-HMAC-SHA256-TRAILER', longDate, scope, prev, sha256(canonical)].join('\n')).toString('hex');
  if (want !== sigLine.slice('x-amz-trailer-signature:'.length).trim()) return { ok: false, reason: 'trailer signature does not match' };
  return { ok: true, payload: Buffer.concat(out) };
}
