// RFC 6902 operations as the injector emits them, and RFC 6901 pointers built from path segments.
export interface JsonPatchOp {
  op: 'add' | 'remove' | 'replace';
  path: string;
  value?: unknown;
}

/** A JSON pointer from raw segments: `~` and `/` inside a segment are escaped. */
export function pointer(...segments: readonly (string | number)[]): string {
  return segments.map((s) => `/${String(s).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}
