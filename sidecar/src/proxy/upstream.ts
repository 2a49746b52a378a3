// The sidecar's only way out: an undici Agent (keep-alive pools per origin) that dials the name
// the request carried — resolved by the sidecar itself, or through a configured override — and
// verifies upstream TLS against the system roots plus configured extra roots. A failed
// verification is an error with a stable code, never a downgrade.
import { readFileSync } from 'node:fs';
import { createSecureContext, rootCertificates } from 'node:tls';
import type { SecureContext } from 'node:tls';
import { Agent, buildConnector } from 'undici';
import type { Dispatcher } from 'undici';
import { codeStatus } from '../../../api/src/codes.ts';
import type { AreaCode } from '../../../api/src/codes.ts';

export interface UpstreamOptions {
  extraRootsFiles: readonly string[];
  resolve: Readonly<Record<string, string>>;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

export class UpstreamError extends Error {
  readonly code: AreaCode<'upstream'>;
  /** The code's status in the catalogue (api/src/codes.ts). */
  readonly status: number;
  constructor(code: AreaCode<'upstream'>, message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'UpstreamError';
    this.code = code;
    this.status = codeStatus(code);
  }
}

const TLS_VERIFY_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REVOKED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'HOSTNAME_MISMATCH',
]);

/** Maps an undici/net/tls failure to the status and stable code the agent and audit see. */
export function classifyUpstreamError(err: unknown, origin: string): UpstreamError {
  const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  const code = e.code ?? e.cause?.code ?? '';
  const detail = e.cause?.message ?? e.message ?? String(err);
  if (TLS_VERIFY_CODES.has(code)) {
    return new UpstreamError('upstream.tls_verify_failed', `upstream ${origin} failed TLS verification: ${detail} (${code})`, err);
  }
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'ETIMEDOUT') {
    return new UpstreamError('upstream.timeout', `upstream ${origin} timed out (${code})`, err);
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new UpstreamError('upstream.dns_failed', `cannot resolve ${origin} (${code})`, err);
  }
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'UND_ERR_SOCKET') {
    return new UpstreamError('upstream.connect_failed', `cannot reach ${origin}: ${detail} (${code})`, err);
  }
  return new UpstreamError('upstream.error', `upstream ${origin} failed: ${detail}${code ? ` (${code})` : ''}`, err);
}

function splitAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
  return { host, port: Number(address.slice(colon + 1)) };
}

/**
 * One context for every upstream connection (undici's and upgraded streams'): passing `ca`
 * instead re-parses ~150 roots per new TLS connection.
 */
export function upstreamSecureContext(extraRootsFiles: readonly string[]): SecureContext {
  return createSecureContext({ ca: [...rootCertificates, ...extraRootsFiles.map((f) => readFileSync(f, 'utf8'))] });
}

/**
 * The upstream dispatcher. HTTP/1.1 unless `allowH2`: the gateway keeps a second, HTTP/2-capable
 * agent for gRPC, which has no HTTP/1.1 form.
 */
export function createUpstreamAgent(options: UpstreamOptions, secureContext: SecureContext = upstreamSecureContext(options.extraRootsFiles), o: { allowH2?: boolean } = {}): Agent {
  const base = buildConnector({ secureContext, timeout: options.connectTimeoutMs, rejectUnauthorized: true, maxCachedSessions: 256 });
  const connect: buildConnector.connector = (opts, callback) => {
    const port = opts.port || (opts.protocol === 'https:' ? '443' : '80');
    const override = options.resolve[`${opts.hostname}:${port}`] ?? options.resolve[opts.hostname];
    if (!override) {
      base(opts, callback);
      return;
    }
    const to = splitAddress(override);
    // Dial the override but keep the real name for SNI and certificate verification.
    base({ ...opts, hostname: to.host, port: String(to.port), servername: opts.protocol === 'https:' ? opts.hostname : undefined }, callback);
  };
  return new Agent({
    connect,
    headersTimeout: options.headersTimeoutMs,
    bodyTimeout: options.bodyTimeoutMs,
    keepAliveTimeout: options.keepAliveTimeoutMs,
    allowH2: o.allowH2 ?? false,
  });
}

export type UpstreamResponse = Dispatcher.ResponseData;
