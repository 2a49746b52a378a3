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

function connectionTokens(headers: Headers): Set<string> {
  const value = headers.connection;
  const text = Array.isArray(value) ? value.join(',') : (value ?? '');
  return new Set(text.split(',').map((t) => t.trim().toLowerCase()).filter(Boolean));
}

export function endToEndHeaders(headers: Headers, extraDrop: ReadonlySet<string> = new Set()): Record<string, string | string[]> {
  const named = connectionTokens(headers);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    // HTTP/2 pseudo-headers (:method, :path, :authority, :scheme, :status) never cross over.
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name) || extraDrop.has(name) || name.startsWith(':')) continue;
    out[name] = value;
  }
  return out;
}
