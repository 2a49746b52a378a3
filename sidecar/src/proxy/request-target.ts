// The one canonical form of a request target. Facts, the policy input, the audit and the request
// sent upstream all use what this returns, so no server can read a target as something the
// policy did not see. Pure: no sockets, no clock, never throws.
//
// Refused (400, a stable code each): what RFC 9112 §3.2 / RFC 9113 §8.3.1 do not allow in a
// request target — a fragment, whitespace, control bytes, non-ASCII bytes — plus backslashes
// (WHATWG URL parsers and some servers read them as `/`), malformed or NUL escapes, dot segments
// that climb above the root, and encodings servers disagree on: an encoded slash or backslash
// (`%2F`, `%5C`) next to dot segments, a dot segment with `;params` (`..;/`, Tomcat and Jetty
// read it as `..`), a path starting with `//` (WHATWG URL parsers read a host name there). Normalised, because every server reads the result alike: dot segments,
// including percent-encoded dots (`%2e%2E`), are resolved (RFC 3986 §5.2.4). Everything else is
// forwarded byte for byte — encoded slashes on their own (`@scope%2Fname` on npm,
// `group%2Fproject` on GitLab) stay encoded, `//` inside the path stays, the query is untouched — so signatures
// over the path (AWS SigV4) still hold. Header fields that replace the target on some servers
// (X-Original-URL, X-Rewrite-URL) are refused too. It must never rewrite a target into one that
// means something else, and never pass one it could not read.
import type { Catalogued } from '../../../api/src/codes.ts';

/** Stable codes of the refusals (answered 400 with `x-sluice-decision: deny; code=…`). */
export type TargetErrorCode = Catalogued<
  | 'http.target_fragment'
  | 'http.target_bad_char'
  | 'http.target_bad_escape'
  | 'http.target_above_root'
  | 'http.target_ambiguous'
  | 'http.target_form'
  | 'http.target_override'
>;

export interface CanonicalTarget {
  /** origin-form (`/path?query`) or absolute-form (`http://authority/path?query`, proxy port only) */
  form: 'origin' | 'absolute';
  /** absolute-form: the scheme, lower-case */
  scheme?: string;
  /** absolute-form: the authority as sent (userinfo included, for the caller to refuse) */
  authority?: string;
  /** canonical path, starts with `/`, still percent-encoded */
  path: string;
  /** the query after `?` as sent ('' when none or empty) */
  query: string;
  /** origin-form target to forward: path plus `?query` when the request had a `?` */
  pathAndQuery: string;
}

export type TargetResult = { ok: true; target: CanonicalTarget } | { ok: false; status: 400; code: TargetErrorCode; reason: string };

const refuse = (code: TargetErrorCode, reason: string): TargetResult => ({ ok: false, status: 400, code, reason });

/** An encoded slash or backslash, which some servers decode into a separator. */
const ENCODED_SEPARATOR = /%2f|%5c/i;
const ABSOLUTE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?]*)(.*)$/s;

/** First byte that RFC 9112 does not allow in a request target (or a backslash), with its reason. */
function badByte(raw: string): TargetResult | undefined {
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x23) return refuse('http.target_fragment', 'the request target carries a fragment (#), which is never sent to a server');
    if (c <= 0x20 || c === 0x7f) return refuse('http.target_bad_char', `the request target contains a control or space byte (0x${c.toString(16).padStart(2, '0')})`);
    if (c > 0x7e) return refuse('http.target_bad_char', 'the request target contains a non-ASCII byte; percent-encode it');
    if (c === 0x5c) return refuse('http.target_bad_char', 'the request target contains a backslash, which servers read differently');
  }
  return undefined;
}

function checkEscapes(text: string, inPath: boolean): TargetResult | undefined {
  for (let i = text.indexOf('%'); i >= 0; i = text.indexOf('%', i + 1)) {
    const hex = text.slice(i + 1, i + 3);
    if (!/^[0-9a-fA-F]{2}$/.test(hex)) {
      // A stray % in a query is common and harmless (parsers keep it literal); in a path it is not.
      if (inPath) return refuse('http.target_bad_escape', 'the request path has a % that does not start a valid escape');
      continue;
    }
    if (inPath && hex === '00') return refuse('http.target_bad_escape', 'the request path contains an encoded NUL (%00)');
  }
  return undefined;
}

/** '.' or '..' when a raw segment is a dot segment (dots possibly percent-encoded), else undefined. */
function dotSegment(seg: string): '.' | '..' | undefined {
  // Only a segment that starts with a dot, plain or encoded, and is at most `%2e%2e` long can be
  // one: every other segment (nearly all) is answered without a copy or a regex.
  const c = seg.charCodeAt(0);
  if ((c !== 0x2e && c !== 0x25) || seg.length > 6) return undefined;
  const dots = seg.replace(/%2e/gi, '.');
  return dots === '.' || dots === '..' ? dots : undefined;
}

/** RFC 3986 remove_dot_segments over raw segments, refusing a climb above the root and ambiguous dots. */
function canonicalPath(path: string): TargetResult | string {
  const segments = path.split('/').slice(1);
  const out: string[] = [];
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    const semi = seg.indexOf(';');
    if (semi >= 0 && dotSegment(seg.slice(0, semi))) {
      return refuse('http.target_ambiguous', `the path segment "${seg}" is a dot segment with parameters, which some servers resolve as ${dotSegment(seg.slice(0, semi))}`);
    }
    if (seg.includes('%') && ENCODED_SEPARATOR.test(seg) && seg.split(/%2f|%5c/i).some((part) => dotSegment(part.split(';')[0]!))) {
      return refuse('http.target_ambiguous', `the path segment "${seg}" holds an encoded slash next to a dot segment, which servers resolve differently`);
    }
    const dots = dotSegment(seg);
    if (dots === undefined) {
      out.push(seg);
      continue;
    }
    if (dots === '..') {
      if (out.length === 0) return refuse('http.target_above_root', 'the request path climbs above the root with ..');
      out.pop();
    }
    // A trailing dot segment names the directory: "/a/b/.." is "/a/", "/a/." is "/a/".
    if (i === segments.length - 1) out.push('');
  }
  return `/${out.join('/')}`;
}

/**
 * The canonical target of a request other than CONNECT (whose authority-form target the CONNECT
 * handler reads). Absolute-form is returned as such; whether it is acceptable on this connection
 * is the caller's decision.
 */
export function canonicalRequestTarget(raw: string): TargetResult {
  const bad = badByte(raw);
  if (bad) return bad;
  let form: CanonicalTarget['form'] = 'origin';
  let scheme: string | undefined;
  let authority: string | undefined;
  let rest = raw;
  if (!raw.startsWith('/')) {
    const m = ABSOLUTE.exec(raw);
    if (raw === '*') return refuse('http.target_form', 'asterisk-form (OPTIONS *) requests are not forwarded');
    if (!m) return refuse('http.target_form', 'the request target is neither origin-form (/path) nor absolute-form (http://host/path); authority-form is only for CONNECT');
    form = 'absolute';
    scheme = m[1]!.toLowerCase();
    authority = m[2]!;
    rest = m[3]!;
    if (rest === '' || rest.startsWith('?')) rest = `/${rest}`;
  }
  const q = rest.indexOf('?');
  const rawPath = q >= 0 ? rest.slice(0, q) : rest;
  const query = q >= 0 ? rest.slice(q + 1) : '';
  const escapes = checkEscapes(rawPath, true) ?? checkEscapes(query, false);
  if (escapes) return escapes;
  const path = canonicalPath(rawPath);
  if (typeof path !== 'string') return path;
  // WHATWG URL parsers (new URL(target, base), common in Node and Deno servers) read "//x/…" as
  // the authority x and the path "/…": a path whose first segment the facts saw is gone.
  if (path.startsWith('//')) return refuse('http.target_ambiguous', 'the request path starts with //, which URL parsers read as a host name');
  const target: CanonicalTarget = { form, path, query, pathAndQuery: q >= 0 ? `${path}?${query}` : path };
  if (scheme !== undefined) target.scheme = scheme;
  if (authority !== undefined) target.authority = authority;
  return { ok: true, target };
}

/**
 * Header fields some servers and frameworks (IIS URL Rewrite, Symfony, Zend, some reverse-proxy
 * setups) take as the real request target in place of the request line. An agent has no reason to
 * send them; a server that honours one would run a target the policy never saw.
 */
const TARGET_OVERRIDE_HEADERS = ['x-original-url', 'x-rewrite-url', 'x-override-url'];

/** A refusal when the request carries a header that replaces its target on some servers. */
export function targetOverride(headers: Record<string, unknown>): TargetResult | undefined {
  const name = TARGET_OVERRIDE_HEADERS.find((h) => headers[h] !== undefined);
  return name ? refuse('http.target_override', `the ${name} header replaces the request target on some servers and is not forwarded`) : undefined;
}
