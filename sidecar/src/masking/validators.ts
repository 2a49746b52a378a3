// Second-stage checks a candidate secret must pass after its pattern matched: checksums, structure
// decoding and randomness. They are named so rules written as data can refer to them. Each takes the
// candidate value only and must stay cheap and pure: no I/O, no logging of the value.
import { crc32 } from 'node:zlib';

export type Validator = (value: string) => boolean;

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** CRC32 of `data` as six base62 digits, zero-padded: the checksum suffix GitHub and npm tokens carry. */
export function base62Crc32(data: string): string {
  let n = crc32(data);
  let out = '';
  while (n > 0) {
    out = BASE62.charAt(n % 62) + out;
    n = Math.floor(n / 62);
  }
  return out.padStart(6, '0');
}

/**
 * GitHub classic-format tokens (ghp_, gho_, ghu_, ghs_, ghr_) and npm granular tokens (npm_) are a
 * prefix, 30 random base62 characters and the CRC32 of those 30 as six base62 digits. A random
 * 40-character string passes with probability 62^-6, which is what removes look-alikes.
 */
export function hasTokenChecksum(value: string): boolean {
  const sep = value.indexOf('_');
  const body = value.slice(sep + 1);
  if (body.length !== 36) return false;
  return base62Crc32(body.slice(0, 30)) === body.slice(30);
}

function decodeBase64Url(part: string): string | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(part)) return undefined;
  return Buffer.from(part, 'base64url').toString('utf8');
}

/** A JWS compact token: header and payload are base64url JSON objects and the header names an algorithm. */
export function isSignedJwt(value: string): boolean {
  const parts = value.split('.');
  if (parts.length !== 3) return false;
  const [h, p, sig] = parts as [string, string, string];
  if (sig.length < 16) return false;
  try {
    const header = JSON.parse(decodeBase64Url(h) ?? '') as unknown;
    const payload = JSON.parse(decodeBase64Url(p) ?? '') as unknown;
    if (typeof header !== 'object' || header === null || typeof payload !== 'object' || payload === null) return false;
    const alg = (header as Record<string, unknown>).alg;
    return typeof alg === 'string' && alg.toLowerCase() !== 'none';
  } catch {
    return false;
  }
}

/**
 * Atlassian API tokens end in `=` and eight upper-case hex digits: the CRC32 of everything before
 * those digits, prefix and `=` included. A look-alike passes with probability 16^-8.
 */
export function hasCrc32HexSuffix(value: string): boolean {
  const sum = value.slice(-8);
  if (value.length <= 8 || !/^[0-9A-F]{8}$/.test(sum)) return false;
  return crc32(value.slice(0, -8)).toString(16).toUpperCase().padStart(8, '0') === sum;
}

const HEX_ORDER = '0123456789abcdef';

/** Longest run of hex digits that step up (or down) by one: `1234567`, `abcdef0` in fillers. */
function longestHexStep(hex: string): number {
  let best = 1;
  let up = 1;
  let down = 1;
  for (let i = 1; i < hex.length; i++) {
    const a = HEX_ORDER.indexOf(hex.charAt(i - 1));
    const b = HEX_ORDER.indexOf(hex.charAt(i));
    up = b === a + 1 ? up + 1 : 1;
    down = b === a - 1 ? down + 1 : 1;
    best = Math.max(best, up, down);
  }
  return best;
}

/**
 * Keys that are a prefix and random hex (Shopify, Databricks, Twilio, Datadog, Mailgun, Heroku
 * UUIDs). The hex digits (runs of four or more, so `dapi`/`key-` and UUID dashes drop out) must
 * number at least 32, mix digits and letters, carry ≥ 2.5 bits a digit and hold no seven-long
 * ascending or descending run. Documentation fillers (`0000…`, `1234567890abcdef…`, `deadbeef…`)
 * fail; a random 32-digit key fails with probability below 1e-5 (measured: lowest entropy of 10^6
 * random keys 2.76 bits, 4 in 10^6 with such a run).
 */
export function looksRandomHex(value: string): boolean {
  const hex = (value.match(/[0-9a-f]{4,}/gi) ?? []).join('').toLowerCase();
  if (hex.length < 32 || !/[0-9]/.test(hex) || !/[a-f]/.test(hex)) return false;
  return shannonEntropy(hex) >= 2.5 && longestHexStep(hex) < 7;
}

/** Base64 of a PEM private key (kubeconfig client-key-data, Helm values): decode the head and look. */
export function isBase64PrivateKey(value: string): boolean {
  const head = Buffer.from(value.slice(0, 64), 'base64').toString('latin1');
  return /^-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(head);
}

/** Shannon entropy in bits per character. */
export function shannonEntropy(value: string): number {
  const counts = new Map<number, number>();
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  let h = 0;
  for (const n of counts.values()) {
    const p = n / value.length;
    h -= p * Math.log2(p);
  }
  return h;
}

// Identifiers and names (my-app-tls-secret, spec.template.name, DynamoDBHttpAuthSchemeProvider,
// INACCESSIBLE_ENCRYPTION_CREDENTIALS, v1.2.3) are made of words: case-delimited letter runs of
// three or more with a word's share of vowels, short acronyms and short numbers. Generated
// base62/base64/hex values break into many one- and two-letter runs with few vowels.
const WORD_TOKENS = /[A-Z]{2,}(?![a-z])|[A-Z]?[a-z]+|[A-Z]|[0-9]+/g;

function vowelShare(t: string): number {
  let v = 0;
  for (let i = 0; i < t.length; i++) if ('aeiouyAEIOUY'.includes(t.charAt(i))) v++;
  return v / t.length;
}

const SHORT_ABBREVIATION = /^(?:https?|html|xml|css|sql|dns|tcp|udp|src|dst|ctx|cfg|msg|pkg|npm|cmd|ptr|len|str|num|btn|img|jwt|rpc|grpc|ssh|ssl|tls|url|uri|std|lib|bin|dll|rgb|svg|pdf|mp[34]|js|ts|db|id|io|ui|ok|os|fs|vm|pr|to|of|is|in|on|at|by|or|as|if|do|go|up|no|my|me|we|v[0-9])$/i;

/**
 * True when `value` reads like words: every case/separator-delimited part is a word, an acronym, a
 * short number or a known abbreviation, allowing one odd two-letter fragment per two words.
 */
export function isWordlike(value: string): boolean {
  const tokens = value.match(WORD_TOKENS);
  if (!tokens) return true;
  let words = 0;
  let fragments = 0;
  let wordLetters = 0;
  let alnum = 0;
  for (const t of tokens) {
    alnum += t.length;
    const c = t.charCodeAt(0);
    const upper = t === t.toUpperCase();
    if (c >= 48 && c <= 57) {
      if (t.length > 4) return false;
    } else if (SHORT_ABBREVIATION.test(t)) {
      words++;
      wordLetters += t.length;
    } else if (t.length <= 2) {
      if (!upper) fragments++;
    } else if (upper && t.length <= 5) {
      words++;
      wordLetters += t.length;
    } else if (vowelShare(t) >= 0.15 && !CONSONANT_RUN.test(t)) {
      words++;
      wordLetters += t.length;
    } else {
      return false;
    }
  }
  // Hex digests are digits with a few "words" (cafe, bead, 3f9a): words must carry the value.
  return fragments * 2 <= words && wordLetters >= 0.6 * alnum;
}

// Five consonants in a row: rare inside words (Dutch "wachtwoord" has four), common in noise.
const CONSONANT_RUN = /[b-df-hj-np-tv-xz]{5}/i;

// `credentials.AccessKeyId`, `process.env.TOKEN`: a member expression in code, not a value.
const DOTTED_IDENTIFIERS = /^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+$/;

/**
 * Looks machine-generated: long enough, high entropy for its length, at least two character classes
 * and not a sequence of words. This is the gate of the keyword-context fallback.
 */
export function looksRandom(value: string): boolean {
  if (value.length < 16) return false;
  if (isWordlike(value) || DOTTED_IDENTIFIERS.test(value)) return false;
  let classes = 0;
  if (/[a-z]/.test(value)) classes++;
  if (/[A-Z]/.test(value)) classes++;
  if (/[0-9]/.test(value)) classes++;
  if (/[^A-Za-z0-9]/.test(value)) classes++;
  if (classes < 2) return false;
  // Entropy of a random string is bounded by log2(length); demand most of what its length allows.
  // Hex digits carry at most 4 bits a character, so hex values get a lower bar.
  const threshold = /^[0-9a-fA-F]+$/.test(value) ? Math.min(3.0, Math.log2(value.length) - 1.3) : Math.min(3.5, Math.log2(value.length) - 0.9);
  return shannonEntropy(value) >= threshold;
}

// Values that stand in for a secret in docs, templates and examples. Matched against the value only.
const PLACEHOLDER =
  /EXAMPLE|example|^(?:x+|X+|\*+|\.+|-+|0+|<[^>]*>|\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*|\{\{[^}]*\}\}|%\(?[a-z_]*\)?s|%s|null|none|undefined|true|false|password|passwd|pass|secret|changeme|redacted|REDACTED|placeholder|dummy|test|your[-_a-z]*|my[-_]?(?:password|secret|token)|\[REDACTED[^\]]*\]?)$/i;

/** True for values that are obviously not real secrets: EXAMPLE keys, template variables, fillers. */
export function isPlaceholder(value: string): boolean {
  return PLACEHOLDER.test(value);
}

/**
 * A hand-written password: not a single word (i18n labels such as "Passwort" are not passwords) and
 * not a template. Random values pass too.
 */
export function looksLikePassword(value: string): boolean {
  if (value.length < 6 || CONSTANT_NAME.test(value) || DOTTED_IDENTIFIERS.test(value)) return false;
  if (/[0-9]/.test(value) || /[^A-Za-z0-9]/.test(value)) return true;
  return !isWordlike(value);
}

// SOME_CONSTANT: a reference to a constant in code, not a literal.
const CONSTANT_NAME = /^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$/;

export const VALIDATORS: Readonly<Record<string, Validator>> = Object.freeze({
  'token-checksum': hasTokenChecksum,
  jwt: isSignedJwt,
  'base64-private-key': isBase64PrivateKey,
  random: looksRandom,
  'random-hex': looksRandomHex,
  'crc32-suffix': hasCrc32HexSuffix,
  password: looksLikePassword,
});

export type ValidatorName = keyof typeof VALIDATORS;
