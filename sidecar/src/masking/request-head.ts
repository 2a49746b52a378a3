// Outbound DLP on what a request carries outside its body: the path, each query parameter and
// every header line (name and value: custom headers, User-Agent, cookies), through the same rules
// and the same decoded views as bodies (percent-encoding, base64, hex, escapes, format characters).
// Pure: returns the masked head and what was found where; the stage decides mask or block.
//
// Not scanned: the headers named in `exemptHeaders` (by default Authorization and
// Proxy-Authorization, which carry the request's own credential and which credential injection
// replaces, and the AWS session token that belongs to a SigV4 Authorization) and the SigV4
// presigned-URL parameters that play the same part in a query. It never returns a value it found.
import type { Masker } from './masker.ts';
import { percentFragment, scanDecoded } from './decoded-views.ts';
import type { DecodeLimits, ViewEncoding } from './decoded-views.ts';

export const DEFAULT_EXEMPT_HEADERS: readonly string[] = Object.freeze(['authorization', 'proxy-authorization', 'x-amz-security-token']);

/** Query parameters that are a presigned request's own credential (SigV4 in a URL). */
const EXEMPT_QUERY = new Set(['x-amz-credential', 'x-amz-signature', 'x-amz-security-token']);

export interface HeadFinding {
  rule: string;
  /** `path`, `query`, or `header:<name>` */
  where: string;
  via: ViewEncoding[];
  offset: number;
}

export interface MaskedHead {
  path: string;
  headers: Record<string, string | string[]>;
  findings: HeadFinding[];
  /** Where a secret could not be masked in its encoding exactly, or a header name holds one. */
  unmaskable: HeadFinding | undefined;
  /** Where decoding stopped at its bounds (fail closed). */
  unscannable: { where: string; reason: string } | undefined;
}

export interface HeadOptions {
  exemptHeaders?: readonly string[];
  limits?: Partial<DecodeLimits>;
}

type Found = { output: string; findings: HeadFinding[]; unmaskable: boolean; unscannable: string | undefined };

function scanOnce(input: Buffer, masker: Masker, where: string, fragment: ((b: Buffer) => Buffer) | undefined, limits: Partial<DecodeLimits> | undefined): Found & { bytes: Buffer } {
  const r = scanDecoded(input, masker.scanner, { mode: 'mask', maskRaw: true, json: false, ...(fragment ? { rawFragment: fragment } : {}), ...(limits ? { limits } : {}) });
  return {
    bytes: r.findings.length ? r.output : input,
    output: '',
    findings: r.findings.map((f) => ({ rule: f.rule, where, via: f.via, offset: f.offset })),
    unmaskable: r.unmaskable !== undefined,
    unscannable: r.unscannable,
  };
}

/**
 * Twice when the text has slashes: as it is (base64 holds `/`), then with every `/` read as a line
 * break — in a path or a User-Agent a slash separates words, and rules will not start a key id
 * after a `/` (in base64 that is noise). Neither URLs nor header values can hold a line break, so
 * the second pass maps back exactly.
 */
export function scanText(text: string, masker: Masker, where: string, fragment: ((b: Buffer) => Buffer) | undefined, limits?: Partial<DecodeLimits>): Found {
  const first = scanOnce(Buffer.from(text, 'latin1'), masker, where, fragment, limits);
  let bytes = first.bytes;
  const found = { ...first };
  if (bytes.includes(0x2f) && !bytes.includes(0x0a)) {
    const slashed = Buffer.from(bytes);
    for (let i = 0; i < slashed.length; i++) if (slashed[i] === 0x2f) slashed[i] = 0x0a;
    const second = scanOnce(slashed, masker, where, fragment, limits);
    if (second.findings.length) {
      bytes = Buffer.from(second.bytes);
      for (let i = 0; i < bytes.length; i++) if (bytes[i] === 0x0a) bytes[i] = 0x2f;
      found.findings = [...first.findings, ...second.findings];
      found.unmaskable ||= second.unmaskable;
      found.unscannable ??= second.unscannable;
    }
  }
  found.output = found.findings.length ? bytes.toString('latin1') : text;
  return found;
}

/** Header values may not hold line breaks or NULs: a rebuilt value that would is not sent. */
const BAD_HEADER_BYTES = /[\r\n\0]/;

/**
 * Scans and masks `pathAndQuery` (origin-form) and `headers` (lower-case names). Masked values stay
 * valid where they go: replacements in a URL are percent-encoded, header values never gain CR/LF.
 */
export function maskRequestHead(pathAndQuery: string, headers: Readonly<Record<string, string | string[]>>, masker: Masker, opts: HeadOptions = {}): MaskedHead {
  const exempt = new Set(opts.exemptHeaders ?? DEFAULT_EXEMPT_HEADERS);
  const out: MaskedHead = { path: pathAndQuery, headers: { ...headers }, findings: [], unmaskable: undefined, unscannable: undefined };
  const take = (f: Found, where: string): void => {
    out.findings.push(...f.findings);
    if (f.unmaskable && !out.unmaskable) out.unmaskable = f.findings[0] ?? { rule: 'unknown', where, via: [], offset: 0 };
    if (f.unscannable && !out.unscannable) out.unscannable = { where, reason: f.unscannable };
  };

  const q = pathAndQuery.indexOf('?');
  const pathPart = q >= 0 ? pathAndQuery.slice(0, q) : pathAndQuery;
  const path = scanText(pathPart, masker, 'path', percentFragment, opts.limits);
  take(path, 'path');
  let query = '';
  if (q >= 0) {
    // Parameter by parameter, so a presigned URL's own signature stays as it is.
    const pairs = pathAndQuery.slice(q + 1).split('&');
    const masked = pairs.map((pair) => {
      const eq = pair.indexOf('=');
      const name = decodeName(eq >= 0 ? pair.slice(0, eq) : pair);
      if (EXEMPT_QUERY.has(name.toLowerCase())) return pair;
      const f = scanText(pair, masker, 'query', percentFragment, opts.limits);
      take(f, 'query');
      return f.output;
    });
    query = `?${masked.join('&')}`;
  }
  out.path = `${path.output}${query}`;

  for (const [name, value] of Object.entries(headers)) {
    if (exempt.has(name)) continue;
    const values = Array.isArray(value) ? value : [value];
    const where = `header:${name}`;
    const maskedValues = values.map((v) => {
      // Name and value together: `X-Api-Token: …` is what header rules look for, and a name can carry a secret too.
      const line = `${name}: ${v}`;
      const f = scanText(line, masker, where, undefined, opts.limits);
      take(f, where);
      if (f.output === line) return v;
      if (!f.output.startsWith(`${name}: `) || BAD_HEADER_BYTES.test(f.output)) {
        out.unmaskable ??= f.findings[0] ?? { rule: 'unknown', where, via: [], offset: 0 };
        return v;
      }
      return f.output.slice(name.length + 2);
    });
    out.headers[name] = Array.isArray(value) ? maskedValues : (maskedValues[0] ?? '');
  }
  return out;
}

function decodeName(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}
