// Headers that belong to one connection, not to the request: never forwarded either way
// (RFC 9110 §7.6.1), plus those undici sets itself.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  'expect',
  'host',
]);

type Headers = Record<string, string | string[] | undefined>;

const NOTHING_MORE: ReadonlySet<string> = new Set();
const ONLY_CLOSE: ReadonlySet<string> = new Set(['close']);

/** The field names a Connection header lists (hop-by-hop too); none without one, the usual case. */
function connectionTokens(headers: Headers): ReadonlySet<string> {
  const value = headers.connection;
  if (value === undefined) return NOTHING_MORE;
  // Nearly every message says just `keep-alive` (already hop-by-hop) or `close`: no Set built.
  if (typeof value === 'string') {
    const only = value.trim().toLowerCase();
    if (only === 'keep-alive') return NOTHING_MORE;
    if (only === 'close') return ONLY_CLOSE;
  }
  const text = Array.isArray(value) ? value.join(',') : value;
  return new Set(text.split(',').map((t) => t.trim().toLowerCase()).filter(Boolean));
}

/** A copy of the end-to-end fields (runs twice per request: the request's and the response's). */
export function endToEndHeaders(headers: Headers, extraDrop: ReadonlySet<string> = NOTHING_MORE): Record<string, string | string[]> {
  const named = connectionTokens(headers);
  const out: Record<string, string | string[]> = {};
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    // HTTP/2 pseudo-headers (:method, :path, :authority, :scheme, :status) never cross over.
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name) || extraDrop.has(name) || name.charCodeAt(0) === 0x3a) continue;
    out[name] = value;
  }
  return out;
}
