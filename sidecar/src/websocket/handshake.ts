// The HTTP side of a protocol upgrade, pure: which upgrade an agent asks for (only WebSocket is
// relayed, because only WebSocket is inspected; h2c and every other protocol are refused), the
// RFC 6455 opening handshake checked both ways, the request head sluice sends upstream and the
// 101 it sends the agent. It never forwards an extension offer: permessage-deflate (RFC 7692)
// would put compressed, context-carrying payloads on the wire that could only be inspected by
// inflating them with a per-connection dictionary; stripping the offer costs bandwidth only, and
// a server may not use an extension nobody offered, so one that does is refused.
import { createHash, randomBytes } from 'node:crypto';
import type { Code } from '../../../api/src/codes.ts';

export interface UpgradeRefusal {
  status: number;
  code: Code;
  reason: string;
}

type Headers = Record<string, string | string[] | undefined>;

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** The longest upstream response head read before the 101 (or anything else) is judged. */
export const MAX_RESPONSE_HEAD_BYTES = 16 * 1024;

function one(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function tokens(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter(Boolean);
}

/** What the `Upgrade` field asks for, lower-case, as the policy sees it (`facts.upgrade.protocol`). */
export function upgradeProtocol(headers: Headers): string {
  return tokens(one(headers, 'upgrade')).join(',');
}

/**
 * The upgrade protocol sluice can carry (only `websocket`), or why not: an HTTP/1.0 request
 * (`httpVersion`, the request line's: the caller passes IncomingMessage.httpVersion), h2c (cleartext HTTP/2
 * would take the connection past the HTTP/1.1 parser that every request is decided on) and any
 * other protocol (its bytes could not be inspected) are refused whatever the policy says.
 */
export function checkUpgradeRequest(method: string, headers: Headers, httpVersion?: string): UpgradeRefusal | undefined {
  const asked = tokens(one(headers, 'upgrade'));
  // RFC 9110 §7.8: an Upgrade in an HTTP/1.0 request is to be ignored; RFC 6455 §4.1 needs 1.1.
  // Carried, it would be a 101 to a client that cannot have asked for one.
  if (httpVersion !== undefined && httpVersion !== '1.1') {
    return { status: 400, code: 'ws.bad_handshake', reason: `an upgrade needs HTTP/1.1; this request is HTTP/${httpVersion.slice(0, 8)}` };
  }
  // An opening handshake has no body; node:http hands any that comes with the socket as if it
  // were the upgraded protocol's first bytes, and sluice's own handshake upstream carries none.
  const length = one(headers, 'content-length')?.trim();
  if ((length !== undefined && length !== '0') || one(headers, 'transfer-encoding') !== undefined) {
    return { status: 400, code: 'http.upgrade_body', reason: 'an upgrade request with a body (Content-Length or Transfer-Encoding) is refused: the opening handshake carries none' };
  }
  if (asked.some((t) => t.startsWith('h2c') || t.startsWith('h2'))) {
    return { status: 400, code: 'http.upgrade_h2c', reason: 'an upgrade to HTTP/2 (h2c) is refused: HTTP/2 is offered through TLS ALPN only' };
  }
  if (asked.length !== 1 || asked[0] !== 'websocket') {
    return { status: 403, code: 'http.upgrade_protocol', reason: `an upgrade to "${asked.join(', ').slice(0, 64)}" is refused: only WebSocket upgrades can be inspected` };
  }
  if (method !== 'GET') return { status: 400, code: 'ws.bad_handshake', reason: 'a WebSocket opening handshake must be a GET (RFC 6455 §4.1)' };
  if (one(headers, 'sec-websocket-version')?.trim() !== '13') return { status: 400, code: 'ws.bad_handshake', reason: 'only WebSocket version 13 is supported' };
  const key = one(headers, 'sec-websocket-key')?.trim() ?? '';
  if (!/^[A-Za-z0-9+/]{22}==$/.test(key)) return { status: 400, code: 'ws.bad_handshake', reason: 'Sec-WebSocket-Key is not 16 bytes in base64' };
  return undefined;
}

/** The offered subprotocols (Sec-WebSocket-Protocol), as the policy sees them. */
export function offeredSubprotocols(headers: Headers): string[] {
  return (one(headers, 'sec-websocket-protocol') ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
}

export function acceptFor(key: string): string {
  return createHash('sha1').update(key.trim() + GUID).digest('base64');
}

/** Headers that belong to the WebSocket handshake itself: sluice writes them, never copies them (nor scans them: see gateway). */
export const HANDSHAKE_HEADERS: ReadonlySet<string> = new Set(['sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-accept']);

/** Framing of a body the handshake sent upstream never has (a body is refused: checkUpgradeRequest). */
const BODY_FRAMING: ReadonlySet<string> = new Set(['content-length', 'transfer-encoding']);

/** A fresh Sec-WebSocket-Key for the upstream handshake. */
export function newKey(): string {
  return randomBytes(16).toString('base64');
}

/**
 * The opening handshake sent upstream: `endToEnd` (the agent's end-to-end headers, already
 * through outbound DLP, the offered subprotocols among them), sluice's own key (the agent's 16 "random" bytes would otherwise be a
 * channel out of DLP's sight), version 13, and no extension offer.
 */
export function upstreamRequestHead(pathAndQuery: string, hostHeader: string, endToEnd: Record<string, string | string[]>, key: string): string {
  const lines = [`GET ${pathAndQuery} HTTP/1.1`, `host: ${hostHeader}`, 'connection: Upgrade', 'upgrade: websocket', `sec-websocket-version: 13`, `sec-websocket-key: ${key}`];
  for (const [name, value] of Object.entries(endToEnd)) {
    if (HANDSHAKE_HEADERS.has(name) || BODY_FRAMING.has(name)) continue;
    for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${v}`);
  }
  return `${lines.join('\r\n')}\r\n\r\n`;
}

export interface ResponseHead {
  status: number;
  headers: Record<string, string[]>;
  /** Bytes after the head (the first frames, when the server sent them with its 101). */
  rest: Buffer;
}

/** The upstream's response head once `buf` holds all of it; undefined: wait; an error: refuse. */
export function parseResponseHead(buf: Buffer): ResponseHead | undefined | { error: string } {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return buf.length > MAX_RESPONSE_HEAD_BYTES ? { error: `the upstream's response head exceeds ${MAX_RESPONSE_HEAD_BYTES} bytes` } : undefined;
  if (end > MAX_RESPONSE_HEAD_BYTES) return { error: `the upstream's response head exceeds ${MAX_RESPONSE_HEAD_BYTES} bytes` };
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (!m) return { error: 'the upstream did not answer with an HTTP/1.1 status line' };
  const headers: Record<string, string[]> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0 || /[\s]/.test(line.slice(0, colon))) return { error: 'the upstream sent a malformed header line' };
    const name = line.slice(0, colon).toLowerCase();
    (headers[name] ??= []).push(line.slice(colon + 1).trim());
  }
  return { status: Number(m[1]), headers, rest: buf.subarray(end + 4) };
}

/**
 * Whether the upstream's answer completes the handshake the agent started: 101, the upgrade to
 * websocket, the accept value for sluice's key, no extension, and a subprotocol only among
 * those offered. Returns the chosen subprotocol or the reason it does not.
 */
export function checkUpstreamAccept(head: ResponseHead, agentHeaders: Headers, key: string): { protocol: string | undefined } | { error: string } {
  if (head.status !== 101) return { error: `the upstream answered ${head.status} instead of switching protocols` };
  const h = (n: string) => head.headers[n]?.join(', ');
  if (!tokens(h('upgrade')).includes('websocket') || !tokens(h('connection')).includes('upgrade')) return { error: 'the upstream switched to something other than WebSocket' };
  if (h('sec-websocket-accept') !== acceptFor(key)) return { error: "the upstream's Sec-WebSocket-Accept does not answer the key" };
  if (h('sec-websocket-extensions')) return { error: 'the upstream negotiated an extension nobody offered' };
  const protocol = h('sec-websocket-protocol');
  if (protocol !== undefined && !offeredSubprotocols(agentHeaders).includes(protocol)) return { error: 'the upstream chose a subprotocol the agent did not offer' };
  return { protocol };
}

/** The 101 sluice sends the agent (its own head, not the upstream's). */
export function agentSwitchHead(agentHeaders: Headers, protocol: string | undefined, extra: Record<string, string>): string {
  const lines = ['HTTP/1.1 101 Switching Protocols', 'upgrade: websocket', 'connection: Upgrade', `sec-websocket-accept: ${acceptFor(one(agentHeaders, 'sec-websocket-key') ?? '')}`];
  if (protocol) lines.push(`sec-websocket-protocol: ${protocol}`);
  for (const [k, v] of Object.entries(extra)) lines.push(`${k}: ${v}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}
