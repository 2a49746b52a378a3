// Re-signs an agent's AWS request with real temporary credentials. The agent signed with the
// placeholder credentials the webhook gave it; its signature (header or presigned query) is
// dropped and a new SigV4 signature is made with @smithy/signature-v4 over the same request:
// same method, path, query, the headers the agent signed (plus host and every x-amz-* header),
// and a payload hash chosen by how the agent declared its body (see payloadMode). The session
// token goes in x-amz-security-token (or X-Amz-Security-Token for a presigned URL). The access key
// the agent named is never trusted, and nothing of its signature is forwarded. For an S3 bucket the
// policy counts as own, the signed request also makes S3 check the bucket's owner
// (bucketOwnerHeaders): bucket names are global. It never lets the agent pick that owner.
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream';
import type { Readable } from 'node:stream';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { CredentialError } from '../errors.ts';
import { PRESIGN_PARAMS, SIGV2_PRESIGN_PARAMS, parseQuery, payloadMode, readAgentSignature } from './agent-signature.ts';
import type { AgentSignature, QueryParam, SigningScope } from './agent-signature.ts';
import { resignAwsChunked } from './aws-chunked.ts';
import { EMPTY_SHA256, declaredHashGuard, readBounded, replay } from './payload.ts';
import { PROVIDER } from './index.ts';

export { PROVIDER };

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** ms since the epoch */
  expiresAt: number;
  /** The 12-digit account the credentials act in (the assumed role's), for S3 bucket owner checks. */
  account?: string;
}

export interface AwsRequest {
  method: string;
  /** Host header as sent upstream: name[:port] */
  host: string;
  /** origin-form path and query, as received */
  path: string;
  headers: Readonly<Record<string, string | string[]>>;
  body: Readable | null;
}

export interface ResignOptions {
  now: Date;
  maxSignedBodyBytes: number;
  maxChunkBytes: number;
  /** Region and service from the request's facts, for SigV2 requests (their signature names neither). */
  fallbackScope?: { region: string; service: string };
  /** Accounts S3 must check own the bucket(s) (see bucketOwnerHeaders); none: no check added. */
  bucketOwners?: BucketOwners;
}

/**
 * S3 bucket names are global: a bucket called like an own one (`acme-*`) can belong to anyone, and
 * the organisation's credentials may be allowed to write there by that account's bucket policy.
 * With these accounts set, the re-signed request carries (signed) `x-amz-expected-bucket-owner`
 * and, for a copy, `x-amz-source-expected-bucket-owner`: S3 refuses with 403 AccessDenied when
 * the bucket belongs to another account.
 */
export interface BucketOwners {
  /** the account that must own the request's bucket */
  bucket?: string;
  /** the account that must own a copy's source bucket (only used when x-amz-copy-source is sent) */
  copySource?: string;
}

const EXPECTED_OWNER = 'x-amz-expected-bucket-owner';
const SOURCE_EXPECTED_OWNER = 'x-amz-source-expected-bucket-owner';

/**
 * The owner-check headers to add to an S3 request (lower-case names), from the accounts the
 * policy asked for. Only S3 gets them (other services, and S3 calls the policy named no bucket
 * for, get nothing). The agent's own header is kept when it names the same account and refused
 * when it names another: silently replacing it would change what the agent asked S3 to check,
 * and keeping it would let the agent pick whose bucket passes.
 */
export function bucketOwnerHeaders(
  service: string,
  headers: Readonly<Record<string, string>>,
  owners: BucketOwners | undefined,
  query: readonly QueryParam[] = [],
): Record<string, string> {
  const out: Record<string, string> = {};
  if (!owners || service !== 's3') return out;
  const want = (name: string, account: string | undefined): void => {
    if (account === undefined) return;
    // A presigned URL may carry x-amz-* headers hoisted into its query: the agent's too.
    const sent = [headers[name], ...query.filter((p) => p.name.toLowerCase() === name).map((p) => p.value)].filter((v) => v !== undefined);
    if (sent.some((v) => v.trim() !== account)) {
      throw new CredentialError('credentials.aws_bucket_owner_conflict', PROVIDER, `${PROVIDER}: the request's ${name} names another account than the organisation's owner of the bucket (${account})`);
    }
    out[name] = account;
  };
  want(EXPECTED_OWNER, owners.bucket);
  if (headers['x-amz-copy-source'] !== undefined || query.some((p) => p.name.toLowerCase() === 'x-amz-copy-source')) want(SOURCE_EXPECTED_OWNER, owners.copySource);
  return out;
}

export interface ResignedRequest {
  path: string;
  headers: Record<string, string>;
  body: Readable | Buffer | null;
  /** What was re-signed (audit/metrics): header, presigned, or none for an unsigned request. */
  signature: 'header' | 'presigned' | 'none';
}

/** Headers the agent's signature produced; never forwarded (sluice makes its own). */
const AGENT_AUTH_HEADERS = new Set(['authorization', 'x-amz-date', 'x-amz-security-token', 'date']);

/** Services whose canonical URI is the path as sent (not normalised and escaped again). */
const S3_SERVICES = new Set(['s3', 's3-object-lambda']);

/** RFC 3986 escaping, as SigV4 canonicalises. */
export function escapeUri(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function queryRecord(params: readonly QueryParam[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const { name, value } of params) {
    const prev = out[name];
    out[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return out;
}

export function serializeQuery(query: Record<string, string | string[] | null | undefined>): string {
  const parts: string[] = [];
  for (const [name, value] of Object.entries(query)) {
    if (value === null || value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) parts.push(`${escapeUri(name)}=${escapeUri(v)}`);
  }
  return parts.join('&');
}

function flatHeaders(headers: Readonly<Record<string, string | string[]>>, drop: ReadonlySet<string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (drop.has(lower)) continue;
    out[lower] = Array.isArray(value) ? value.join(',') : value;
  }
  return out;
}

/** The headers to sign: what the agent signed, plus host, every x-amz-* and content-md5. */
function signingSets(headers: Record<string, string>, agentSigned: readonly string[]): { signable: Set<string>; unsignable: Set<string> } {
  const signable = new Set(agentSigned);
  signable.add('host');
  for (const name of Object.keys(headers)) if (name.startsWith('x-amz-') || name === 'content-md5') signable.add(name);
  const unsignable = new Set(Object.keys(headers).filter((n) => !signable.has(n)));
  return { signable, unsignable };
}

function splitPath(path: string): { pathname: string; rawQuery: string } {
  const q = path.indexOf('?');
  return q < 0 ? { pathname: path, rawQuery: '' } : { pathname: path.slice(0, q), rawQuery: path.slice(q + 1) };
}

function signerFor(creds: AwsCredentials, scope: SigningScope): SignatureV4 {
  return new SignatureV4({
    credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey, sessionToken: creds.sessionToken },
    region: scope.region,
    service: scope.service,
    sha256: Hash.bind(null, 'sha256'),
    uriEscapePath: !S3_SERVICES.has(scope.service),
    applyChecksum: false,
  });
}

function hostParts(host: string): { hostname: string; port?: number } {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(host);
  return m?.[2] ? { hostname: m[1]!, port: Number(m[2]) } : { hostname: m?.[1] ?? host };
}

function malformed(reason: string): CredentialError {
  return new CredentialError('credentials.aws_signature_malformed', PROVIDER, `${PROVIDER}: ${reason}`);
}

/** What the agent's request carries, for the provider to decide before fetching credentials. */
export function inspectAwsRequest(req: Pick<AwsRequest, 'path' | 'headers'>): AgentSignature {
  const query = parseQuery(splitPath(req.path).rawQuery);
  if (!query) return { kind: 'malformed', reason: 'the query string is not valid percent-encoding' };
  return readAgentSignature(req.headers, query);
}

export async function resignAwsRequest(req: AwsRequest, creds: AwsCredentials, o: ResignOptions): Promise<ResignedRequest> {
  const { pathname, rawQuery } = splitPath(req.path);
  const query = parseQuery(rawQuery);
  if (!query) throw malformed('the query string is not valid percent-encoding');
  const agent = readAgentSignature(req.headers, query);
  switch (agent.kind) {
    case 'none':
      return { path: req.path, headers: flatHeaders(req.headers, new Set()), body: req.body, signature: 'none' };
    case 'unsupported':
      throw new CredentialError('credentials.aws_signature_unsupported', PROVIDER, `${PROVIDER}: ${agent.reason}`);
    case 'malformed':
      throw malformed(agent.reason);
    case 'presigned':
      return represign(req, pathname, query, { scope: agent.scope, signedHeaders: agent.signedHeaders, end: agent.signedAt + agent.expiresSeconds * 1000, strip: PRESIGN_PARAMS }, creds, o);
    case 'header':
      return resignHeaders(req, pathname, query, agent, creds, o);
    case 'sigv2-presigned':
      return represign(req, pathname, query, { scope: sigv2Scope(o), signedHeaders: ['host'], end: agent.expiresAt, strip: SIGV2_PRESIGN_PARAMS }, creds, o);
    case 'sigv2-header':
      return resignHeaders(req, pathname, query, { kind: 'header', accessKeyId: agent.accessKeyId, scope: sigv2Scope(o), signedHeaders: ['host', 'content-md5', 'content-type'] }, creds, o);
  }
}

/** SigV2 exists only for S3 here; the scope comes from the host (facts), and the result is SigV4. */
function sigv2Scope(o: ResignOptions): SigningScope {
  const f = o.fallbackScope;
  if (!f || f.service !== 's3') {
    throw new CredentialError('credentials.aws_signature_unsupported', PROVIDER, `${PROVIDER}: SigV2 signatures are re-signed only for S3 (as SigV4)`);
  }
  return { date: '', region: f.region, service: 's3' };
}

async function resignHeaders(
  req: AwsRequest,
  pathname: string,
  query: readonly QueryParam[],
  agent: Extract<AgentSignature, { kind: 'header' }>,
  creds: AwsCredentials,
  o: ResignOptions,
): Promise<ResignedRequest> {
  const scope = agent.scope;
  const s3 = S3_SERVICES.has(scope.service);
  const headers = flatHeaders(req.headers, AGENT_AUTH_HEADERS);
  headers.host = req.host;
  Object.assign(headers, bucketOwnerHeaders(scope.service, headers, o.bucketOwners, query));
  let body: Readable | Buffer | null = req.body;
  let bodyToHash: Buffer | undefined;
  const mode = payloadMode(headers);
  switch (mode.mode) {
    case 'declared-hash':
      if (body) body = guarded(body, mode.hash);
      break;
    case 'unsigned':
    case 'streaming-unsigned-trailer':
    case 'streaming-signed':
      break;
    case 'streaming-unsupported':
      throw new CredentialError('credentials.aws_signature_unsupported', PROVIDER, `${PROVIDER}: ${mode.value} bodies (SigV4A streaming) cannot be re-signed`);
    case 'invalid':
      throw malformed(`x-amz-content-sha256 "${mode.value}" is neither a SHA-256 nor a known payload mode`);
    case 'undeclared': {
      if (!body) {
        if (s3) headers['x-amz-content-sha256'] = EMPTY_SHA256;
        break;
      }
      const read = await readBounded(body, o.maxSignedBodyBytes);
      if (read.complete) {
        bodyToHash = read.body;
        body = read.body;
        headers['content-length'] = String(read.body.length);
      } else if (s3) {
        headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
        body = replay(read.prefix, body);
      } else {
        throw new CredentialError('credentials.aws_body_too_large', PROVIDER, `${PROVIDER}: a ${scope.service} request body over ${o.maxSignedBodyBytes} bytes cannot be hashed for signing`);
      }
      if (s3 && bodyToHash) headers['x-amz-content-sha256'] = createHash('sha256').update(bodyToHash).digest('hex');
      break;
    }
  }
  const { signable, unsignable } = signingSets(headers, agent.signedHeaders);
  const signer = signerFor(creds, scope);
  const { hostname, port } = hostParts(req.host);
  const signed = await signer.sign(
    { method: req.method, protocol: 'https:', hostname, port, path: pathname, query: queryRecord(query), headers, body: bodyToHash },
    { signingDate: o.now, signingRegion: scope.region, signingService: scope.service, signableHeaders: signable, unsignableHeaders: unsignable },
  );
  const out = flatHeaders(signed.headers, new Set());
  if (mode.mode === 'streaming-signed' && body && !Buffer.isBuffer(body)) {
    const seed = /Signature=([0-9a-f]{64})/.exec(out.authorization ?? '')?.[1];
    const longDate = out['x-amz-date'];
    if (!seed || !longDate) throw new CredentialError('credentials.internal_error', PROVIDER, `${PROVIDER}: the signer produced no seed signature`);
    const chunked = resignAwsChunked({
      longDate,
      scope: `${longDate.slice(0, 8)}/${scope.region}/${scope.service}/aws4_request`,
      seedSignature: seed,
      trailer: mode.trailer,
      maxChunkBytes: o.maxChunkBytes,
      sign: (stringToSign) => signer.sign(stringToSign, { signingDate: o.now, signingRegion: scope.region, signingService: scope.service }),
    });
    body = pipeline(body, chunked, () => undefined);
  }
  return { path: req.path, headers: out, body, signature: 'header' };
}

function guarded(body: Readable, hash: string): Readable {
  return pipeline(body, declaredHashGuard(hash), () => undefined);
}

interface PresignShape {
  scope: SigningScope;
  signedHeaders: readonly string[];
  /** when the agent's URL stops being valid (ms) */
  end: number;
  /** query parameters of the agent's presignature */
  strip: ReadonlySet<string>;
}

async function represign(req: AwsRequest, pathname: string, query: readonly QueryParam[], agent: PresignShape, creds: AwsCredentials, o: ResignOptions): Promise<ResignedRequest> {
  const now = o.now.getTime();
  const end = agent.end;
  if (now >= end) {
    throw new CredentialError('credentials.aws_presign_expired', PROVIDER, `${PROVIDER}: the presigned URL expired at ${new Date(end).toISOString()}`);
  }
  // The new URL need only live as long as the agent's would have, and cannot outlive the credentials.
  const expiresIn = Math.max(1, Math.min(Math.ceil((end - now) / 1000), Math.floor((creds.expiresAt - now) / 1000), 604_800));
  const scope = agent.scope;
  const kept = query.filter((p) => !agent.strip.has(p.name.toLowerCase()));
  const headers = flatHeaders(req.headers, AGENT_AUTH_HEADERS);
  headers.host = req.host;
  // The sidecar sends the presigned request itself, so the owner check goes on as a signed header.
  const owners = bucketOwnerHeaders(scope.service, headers, o.bucketOwners, kept);
  Object.assign(headers, owners);
  const toSign: Record<string, string> = { ...headers };
  // S3 presigned URLs sign no payload; smithy takes the payload hash from this header.
  if (S3_SERVICES.has(scope.service) && toSign['x-amz-content-sha256'] === undefined) toSign['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
  const signable = new Set([...agent.signedHeaders, 'host', ...Object.keys(owners)]);
  const unsignable = new Set(Object.keys(toSign).filter((n) => !signable.has(n)));
  const { hostname, port } = hostParts(req.host);
  const presigned = await signerFor(creds, scope).presign(
    { method: req.method, protocol: 'https:', hostname, port, path: pathname, query: queryRecord(kept), headers: toSign },
    {
      signingDate: o.now,
      expiresIn,
      signingRegion: scope.region,
      signingService: scope.service,
      signableHeaders: signable,
      unsignableHeaders: unsignable,
      unhoistableHeaders: new Set(Object.keys(toSign)),
    },
  );
  const q = serializeQuery(presigned.query as Record<string, string | string[]>);
  return { path: `${pathname}?${q}`, headers, body: req.body, signature: 'presigned' };
}
