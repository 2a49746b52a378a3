// An agent request arrives as HTTP/1.1 (node:http's IncomingMessage) or as an HTTP/2 stream
// through node:http2's compatibility API. The stages read both through these helpers, so the
// policy sees the same request head either way: pseudo-headers never reach a stage or an
// upstream, :authority is the Host, and a body is whatever the stream says it is.
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';

export type AgentRequest = IncomingMessage | Http2ServerRequest;
export type AgentResponse = ServerResponse | Http2ServerResponse;

export function isHttp2(req: AgentRequest): req is Http2ServerRequest {
  return req.httpVersionMajor === 2;
}

export interface AgentHead {
  method: string;
  /** origin-form (or, on HTTP/1.1, absolute-form) request target */
  url: string;
  /** header fields without pseudo-headers; on HTTP/2, `host` is :authority */
  headers: IncomingHttpHeaders;
  /** an HTTP/2 request whose Host field names another authority than :authority */
  conflict?: string;
}

/** HTTP/2 heads, built once per stream (their header fields are a copy). */
const heads = new WeakMap<AgentRequest, AgentHead>();

/** The request head as the policy sees it (an HTTP/2 one computed once per request). */
export function agentHead(req: AgentRequest): AgentHead {
  // HTTP/1.1: the request's own fields, nothing copied; building this small object costs less than
  // a WeakMap entry per request (and the collector's work on it).
  if (!isHttp2(req)) return { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers };
  const known = heads.get(req);
  if (known) return known;
  const headers: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(req.headers)) if (!name.startsWith(':')) headers[name] = value;
  const authority = req.headers[':authority'];
  let conflict: string | undefined;
  if (typeof authority === 'string' && authority !== '') {
    // RFC 9113 §8.3.1: a Host that names another authority makes the request malformed.
    if (typeof headers.host === 'string' && headers.host.toLowerCase() !== authority.toLowerCase()) conflict = `Host ${headers.host} differs from :authority ${authority}`;
    headers.host = authority;
  }
  const head: AgentHead = { method: req.method, url: req.url, headers, ...(conflict ? { conflict } : {}) };
  heads.set(req, head);
  return head;
}

/** Whether the agent sends a body: framing on HTTP/1.1, the absence of END_STREAM on HTTP/2. */
export function requestHasBody(req: AgentRequest): boolean {
  if (isHttp2(req)) return !req.stream.endAfterHeaders;
  const h = req.headers;
  return h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0');
}

/** writeHead on either protocol (the two signatures do not unify in the type system). */
export function writeResponseHead(res: AgentResponse, status: number, headers: OutgoingHttpHeaders): void {
  if ('stream' in res) res.writeHead(status, headers);
  else res.writeHead(status, headers);
}

/** gRPC (application/grpc, +proto, +json, …) over HTTP/2: must reach its upstream over HTTP/2 too. */
export function isGrpc(req: AgentRequest): boolean {
  const type = req.headers['content-type'];
  return isHttp2(req) && typeof type === 'string' && /^application\/grpc(\+|;|$)/i.test(type);
}

/**
 * Whether a response was ended and flushed. `writableFinished` alone is not enough: node:http2's
 * compatibility response reports it true once a stream has closed, even one reset mid-body.
 */
export function responseCompleted(res: { writableEnded: boolean; writableFinished: boolean }): boolean {
  return res.writableEnded && res.writableFinished;
}

/** Whether the agent's side of this exchange is gone (an HTTP/2 response has no `destroyed` of its own). */
export function responseGone(res: AgentResponse): boolean {
  return 'stream' in res ? res.stream.destroyed : res.destroyed || (res.socket?.destroyed ?? false);
}
