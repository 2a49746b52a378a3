// The request shape every fact deriver reads, and the few helpers they share for reading it.
// Derivers are pure functions over this shape: they must never throw on hostile input, never
// allocate in proportion to anything but a bounded body prefix, and never do I/O.

export interface FactsRequest {
  /** HTTP method as sent (compared upper-case). */
  method: string;
  /** Lower-case destination name (SNI/Host) or IP literal; a `:port` suffix is tolerated. */
  host: string;
  /** Request path as sent on the wire (still percent-encoded), without the query. */
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

/** Declared body length from Content-Length, when it is a single valid number. */
export function declaredBodyLength(req: FactsRequest): number | undefined {
  const value = headerOf(req, 'content-length');
  if (value === undefined || !/^\d{1,15}$/.test(value.trim())) return undefined;
  return Number(value.trim());
}
