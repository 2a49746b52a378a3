// RFC 6902 operations as the injector emits them, and RFC 6901 pointers built from path segments.
export interface JsonPatchOp {
  op: 'add' | 'remove' | 'replace';
  path: string;
  value?: unknown;
}

/** A JSON pointer from raw segments: `~` and `/` inside a segment are escaped. */
export function pointer(...segments: readonly (string | number)[]): string {
  // Called for every op of every admission review: most segments need no escaping, so skip the
  // two regex passes for those (this was half of planInjection's time).
  let out = '';
  for (const segment of segments) out += `/${escapeSegment(String(segment))}`;
  return out;
}

function escapeSegment(s: string): string {
  if (!s.includes('~') && !s.includes('/')) return s;
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}
