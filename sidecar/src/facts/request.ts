// The request shape every fact deriver reads, and the few helpers they share for reading it.
// Derivers are pure functions over this shape: they must never throw on hostile input, never
// allocate in proportion to anything but a bounded body prefix, and never do I/O.

export interface FactsRequest {
  /** HTTP method as sent (compared upper-case). */
  method: string;
  /** Lower-case destination name (SNI/Host) or IP literal; a `:port` suffix is tolerated. */
  host: string;
  /**
   * Request path without the query, still percent-encoded: the canonical target the proxy
   * forwards (sidecar/src/proxy/request-target.ts: no fragment, dot segments resolved).
   */
  path: string;
  /** Decoded query parameters; repeated names keep every value in order. */
  query: Record<string, string[]>;
  /** Lower-case header names, as in api/ RequestSummary. */
  headers: Record<string, string>;
}

export function headerOf(req: FactsRequest, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === 'string' ? value : undefined;
}

export function queryOf(req: FactsRequest, name: string): string | undefined {
  const values = req.query[name];
  return Array.isArray(values) && typeof values[0] === 'string' ? values[0] : undefined;
}

export function hasQuery(req: FactsRequest, name: string): boolean {
  return Array.isArray(req.query[name]);
}

/** Host without a port, lower-case, without a trailing dot; IPv6 brackets removed. */
export function hostName(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end > 0 ? h.slice(1, end) : h;
  }
  const colon = h.lastIndexOf(':');
  if (colon > 0 && h.indexOf(':') === colon && /^\d+$/.test(h.slice(colon + 1))) h = h.slice(0, colon);
  return h.endsWith('.') ? h.slice(0, -1) : h;
}

/** decodeURIComponent that reports failure instead of throwing. */
export function decodePercent(text: string): string | undefined {
  if (!text.includes('%')) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

/**
 * Path segments the way a server that normalises paths sees them: percent-decoded per segment,
 * empty segments dropped, `.` and `..` resolved. Undefined when the path is not decodable or
 * climbs above the root, so a fact is never derived from a path the server would read otherwise.
 */
export function normalisedSegments(path: string): string[] | undefined {
  const out: string[] = [];
  for (const raw of path.split('/')) {
    if (raw === '') continue;
    const seg = decodePercent(raw);
    if (seg === undefined || seg.includes('/') || seg.includes('\0')) return undefined;
    if (seg === '.') continue;
    if (seg === '..') {
      if (out.length === 0) return undefined;
      out.pop();
      continue;
    }
    out.push(seg);
  }
  return out;
}

/** Percent-decoding that never fails: escapes become bytes, read as UTF-8 when valid, else latin1. */
function decodeLoose(text: string): string {
  if (!text.includes('%')) return text;
  const bytes = Buffer.from(text.replace(/%([0-9a-fA-F]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1');
  const utf8 = bytes.toString('utf8');
  return utf8.includes('\ufffd') ? bytes.toString('latin1') : utf8;
}

/**
 * Path segments as the most liberal server could read them, for classifiers whose facts gate
 * what the upstream executes (a git push): percent-decoded, encoded slashes and backslashes
 * (`%2F`, `%5C`) taken as separators, `;params` dropped from each segment (Tomcat, Jetty), the
 * path cut at a NUL (C servers), empty segments and `.` dropped, `..` resolved and clamped at
 * the root. Reading a path more liberally than an upstream can only classify more, never less.
 */
export function liberalSegments(path: string): string[] {
  const out: string[] = [];
  for (const raw of path.split('/')) {
    const decoded = decodeLoose(raw);
    const nul = decoded.indexOf('\0');
    for (const part of (nul >= 0 ? decoded.slice(0, nul) : decoded).split(/[/\\]/)) {
      const semi = part.indexOf(';');
      const seg = semi >= 0 ? part.slice(0, semi) : part;
      if (seg === '' || seg === '.') continue;
      if (seg === '..') out.pop();
      else out.push(seg);
    }
    if (nul >= 0) break;
  }
  return out;
}

/** Declared body length from Content-Length, when it is a single valid number. */
export function declaredBodyLength(req: FactsRequest): number | undefined {
  const value = headerOf(req, 'content-length');
  if (value === undefined || !/^\d{1,15}$/.test(value.trim())) return undefined;
  return Number(value.trim());
}
