// Turns an agent's HTTP request plus what its connection claimed into the policy's view of it
// (RequestSummary), and rejects requests whose claims disagree. Pure: no sockets, no clock.
// The destination is always a name the request itself carries (SNI, CONNECT target, Host or
// absolute URL); the address the agent dialled is never trusted.
import { isIP } from 'node:net';
import type { RequestSummary } from '../../../api/src/index.ts';
import { codeStatus } from '../../../api/src/codes.ts';
import type { Code } from '../../../api/src/codes.ts';
import type { ConnectionInfo } from './connection-info.ts';
import { canonicalRequestTarget, targetOverride } from './request-target.ts';

/** Header values the policy and the audit never see in clear. */
const REDACTED_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'api-key',
  'x-amz-security-token',
  'x-goog-api-key',
  'private-token',
  'x-auth-token',
]);

export type SummaryResult =
  | { ok: true; summary: RequestSummary; pathAndQuery: string }
  | { ok: false; status: number; code: Code; reason: string };

export interface RawRequest {
  method: string;
  /** Request target as sent: origin-form (/path?q) or absolute-form (http://host/path). */
  url: string;
  /** Node's lower-cased header object. */
  headers: Record<string, string | string[] | undefined>;
}

/** Splits "host[:port]" / "[v6]:port"; lower-cases, strips a trailing dot. */
export function splitHostPort(authority: string, defaultPort: number): { host: string; port: number } | undefined {
  const a = authority.trim();
  let host: string;
  let portText: string | undefined;
  if (a.startsWith('[')) {
    const end = a.indexOf(']');
    if (end < 0) return undefined;
    host = a.slice(1, end);
    const rest = a.slice(end + 1);
    if (rest && !rest.startsWith(':')) return undefined;
    portText = rest ? rest.slice(1) : undefined;
  } else {
    const colon = a.lastIndexOf(':');
    if (colon >= 0 && a.indexOf(':') === colon) {
      host = a.slice(0, colon);
      portText = a.slice(colon + 1);
    } else if (colon >= 0) {
      host = a; // bare IPv6 without brackets
    } else {
      host = a;
    }
  }
  host = host.toLowerCase().replace(/\.$/, '');
  if (!host || /[\s/@?#\\]/.test(host)) return undefined;
  let port = defaultPort;
  if (portText !== undefined && portText !== '') {
    if (!/^\d{1,5}$/.test(portText)) return undefined;
    port = Number(portText);
    if (port < 1 || port > 65535) return undefined;
  }
  return { host, port };
}

function parseQuery(search: string): Record<string, string[]> {
  const query: Record<string, string[]> = {};
  if (!search) return query;
  for (const [k, v] of new URLSearchParams(search)) (query[k] ??= []).push(v);
  return query;
}

export function policyHeaders(headers: RawRequest['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[name] = REDACTED_HEADERS.has(name) ? '[redacted]' : Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/** A refusal answered with its code's status in the catalogue (api/src/codes.ts) unless told otherwise. */
const deny = (code: Code, reason: string, status = codeStatus(code)): SummaryResult => ({ ok: false, status, code, reason });

export function summarizeRequest(req: RawRequest, conn: ConnectionInfo): SummaryResult {
  const defaultPort = conn.scheme === 'https' ? 443 : 80;
  let authority: string | undefined;
  // One canonical target for facts, policy, audit and forwarding (request-target.ts).
  const canonical = targetOverride(req.headers) ?? canonicalRequestTarget(req.url);
  if (!canonical.ok) return deny(canonical.code, canonical.reason, canonical.status);
  const t = canonical.target;
  const pathAndQuery = t.pathAndQuery;
  if (t.form === 'absolute') {
    // absolute-form: only for plain HTTP through the explicit proxy
    if (t.scheme !== 'http' || conn.scheme !== 'http' || conn.via !== 'proxy' || conn.connectTarget) {
      return deny('http.bad_target', 'absolute-form requests are accepted only as plain HTTP through the proxy port');
    }
    if (t.authority!.includes('@')) return deny('http.credentials_in_url', 'credentials in the proxy request URL are not allowed');
    authority = t.authority!;
  }
  const hostHeader = req.headers.host;
  if (typeof hostHeader !== 'string' || hostHeader === '') return deny('http.no_host', 'request has no Host header');
  const fromHost = splitHostPort(hostHeader, conn.connectTarget?.port ?? defaultPort);
  if (!fromHost) return deny('http.bad_host', 'Host header is not a valid authority');
  let target = fromHost;
  if (authority !== undefined) {
    const fromUrl = splitHostPort(authority, 80);
    if (!fromUrl) return deny('http.bad_target', 'request URL has no valid host');
    // 403 here, while the catalogue's 400 is what HTTP/2's Host-vs-:authority conflict gets (stages/summarize.ts)
    if (fromUrl.host !== fromHost.host) return deny('net.host_mismatch', `URL host ${fromUrl.host} differs from Host header ${fromHost.host}`, 403);
    target = fromUrl;
  }
  // Every name the connection claimed must agree with the Host: otherwise the request is fronted.
  if (conn.sni !== undefined && conn.sni !== target.host) {
    return deny('net.sni_host_mismatch', `TLS server name ${conn.sni} differs from Host ${target.host} (domain fronting)`);
  }
  if (conn.connectTarget && conn.connectTarget.host !== target.host) {
    return deny('net.connect_host_mismatch', `CONNECT target ${conn.connectTarget.host} differs from Host ${target.host}`);
  }
  if (conn.fakeIpName !== undefined && !(conn.fakeIpNames ?? [conn.fakeIpName]).includes(target.host)) {
    return deny('net.dns_host_mismatch', `connection was for ${conn.fakeIpName} but Host is ${target.host}`);
  }
  const port = conn.connectTarget?.port ?? target.port;
  return {
    ok: true,
    pathAndQuery,
    summary: {
      method: req.method,
      scheme: conn.scheme,
      host: target.host,
      port,
      path: t.path,
      query: parseQuery(t.query),
      headers: policyHeaders(req.headers),
      ip_literal: isIP(target.host) !== 0,
    },
  };
}

/** The connection-level view (CONNECT or TLS SNI) the policy decides on before any request. */
export function connectSummary(host: string, port: number): RequestSummary {
  return { method: 'CONNECT', scheme: 'https', host, port, path: '', query: {}, headers: {}, ip_literal: isIP(host) !== 0 };
}

/**
 * The names a client may use for a fake IP that was handed out for `resolved`: the name itself
 * and, when it ends with one of the resolver's search domains, the name without it (a client
 * resolving "github.com" with ndots:5 first asks for "github.com.<ns>.svc.cluster.local").
 */
export function namesForResolved(resolved: string, searchDomains: readonly string[]): string[] {
  const names = [resolved];
  for (const domain of searchDomains) {
    const suffix = `.${domain.toLowerCase().replace(/\.$/, '')}`;
    if (resolved.endsWith(suffix) && resolved.length > suffix.length) names.push(resolved.slice(0, -suffix.length));
  }
  return names;
}

/** The `search` domains of a resolv.conf (the pod's resolver expands names with them). */
export function parseResolvConfSearch(text: string): string[] {
  const domains: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(search|domain)\s+(.+)$/.exec(line);
    if (m) domains.push(...m[2]!.trim().split(/\s+/));
  }
  return domains;
}
