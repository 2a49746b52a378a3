// The spool's on-disk format that both its writer (the sidecar) and its readers (the sidecar's
// shipper, `kubectl sluice sessions|replay`) rely on: session ids and newline-framed segments.
// Pure functions over bytes; never touches a file.

/** Session ids become a Loki label value and a file-name-safe token. */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const NEWLINE = 0x0a;

/** Lines of a buffer up to its last newline (a tail without newline is an unfinished write). */
export function completeLines(buf: Buffer): { lines: string[]; consumed: number } {
  const last = buf.lastIndexOf(NEWLINE);
  if (last < 0) return { lines: [], consumed: 0 };
  const text = buf.toString('utf8', 0, last);
  return { lines: text.length ? text.split('\n') : [''], consumed: last + 1 };
}
