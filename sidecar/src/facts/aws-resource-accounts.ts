// Whose resources an AWS request addresses: the 12-digit accounts named by the ARNs, queue URLs,
// partial Lambda ARNs and account ids that say where a call lands — in the query, a form (query
// protocol), JSON (JSON 1.0/1.1) or CBOR (Smithy RPC v2) body, the x-amz-* headers, a Lambda
// function in the path and the host (account-prefixed endpoints, S3 access points). The re-signed
// request runs with the organisation's credentials, so a resource of another account (an
// EventBridge bus, a Kinesis stream, a KMS key, a DynamoDB table shared with "*") receives
// whatever the agent sends. It must never throw and never report fewer accounts than the service
// would act on: a value it cannot read makes the whole answer unknown (undefined), never [].
import { decodedWholeBody } from './body-prefix.ts';
import { decodePercent, hostName } from './request.ts';
import type { FactsRequest } from './request.ts';

const ACCOUNT = /^\d{12}$/;
/** arn:partition:service:region:account:resource; the account field may be empty (S3 buckets). */
const ARN = /^arn:([a-z-]+):([a-z0-9-]+):([a-z0-9-]*):([^:]*):(.+)$/s;
const QUEUE_URL = /^https?:\/\/[^/?#]+\/(\d{12})\/[^/?#]+\/?$/;
/** Lambda's partial ARN form: `123456789012:function:name(:qualifier)`. */
const PARTIAL_FUNCTION = /^(\d{12}):function:[^:]+(:[^:]+)?$/;

/**
 * Keys whose value names the resource a call acts on (besides every key ending in `Arn`/`ARN`):
 * a name there resolves in the caller's own account, an ARN or URL in the account it names.
 * Data-carrying keys (a DynamoDB item, a message body, an event's `Resources`) are not here: an
 * ARN stored as data addresses nothing.
 */
const RESOURCE_KEYS = new Set([
  'TableName',
  'FunctionName',
  'KeyId',
  'DestinationKeyId',
  'SourceKeyId',
  'EventBusName',
  'SecretId',
  'Name',
  'QueueUrl',
  'Endpoint',
  'StreamName',
  'LogGroupIdentifier',
  'logGroupIdentifier',
  'ResourceId',
]);
/** Keys whose value is an account id that the call addresses. */
const ACCOUNT_KEYS = new Set([
  'QueueOwnerAWSAccountId',
  'registryId',
  'RegistryId',
  'AccountId',
  'accountId',
  'ExpectedBucketOwner',
  'ExpectedSourceBucketOwner',
]);
/** x-amz-* headers that never name a resource (the copy source is judged by the copy rule). */
const IGNORED_HEADERS = new Set(['x-amz-copy-source', 'x-amz-date', 'x-amz-content-sha256', 'x-amz-security-token', 'x-amz-target', 'x-amz-user-agent']);
const ACCOUNT_HEADERS = new Set(['x-amz-expected-bucket-owner', 'x-amz-source-expected-bucket-owner']);

const MAX_DEPTH = 64;

/** Unreadable: the caller must treat the request's resources as unknown. */
class Unreadable extends Error {}

function resourceKey(key: string): boolean {
  return RESOURCE_KEYS.has(key) || /arn$/i.test(key);
}

/** The account an ARN names; '' for an ARN without one; throws Unreadable for an ARN-like value it cannot read. */
function arnAccount(value: string): string | undefined {
  const v = value.trim();
  if (!/^arn:/i.test(v)) return undefined;
  const m = ARN.exec(v);
  if (!m) throw new Unreadable();
  const account = m[4]!;
  if (account === '') return '';
  if (!ACCOUNT.test(account)) throw new Unreadable();
  return account;
}

/** Accounts one value under `key` names (none for a plain name, which resolves in the caller's account). */
function addValue(out: Set<string>, key: string, value: string): void {
  if (ACCOUNT_KEYS.has(key)) {
    if (!ACCOUNT.test(value.trim())) throw new Unreadable();
    out.add(value.trim());
    return;
  }
  if (!resourceKey(key)) return;
  const account = arnAccount(value);
  if (account) out.add(account);
  if (account !== undefined) return;
  const queue = QUEUE_URL.exec(value.trim());
  if (queue) out.add(queue[1]!);
  else if (/^https?:/i.test(value.trim()) && key === 'QueueUrl') throw new Unreadable();
  const partial = PARTIAL_FUNCTION.exec(value.trim());
  if (partial) out.add(partial[1]!);
}

/** An object key that is itself an ARN (DynamoDB BatchWriteItem's RequestItems by table ARN). */
function addKey(out: Set<string>, key: string): void {
  const account = arnAccount(key);
  if (account) out.add(account);
}

// --- JSON: every string value with the key it sits under, duplicates included -----------------------

interface Frame {
  array: boolean;
  /** The key of the value being read (objects), or the key the array itself sits under. */
  key: string;
  expectKey: boolean;
}

/**
 * Walks a JSON text that JSON.parse accepted, giving every (key, string) pair. Walking the text,
 * not the parsed value, sees each value of a key sent twice (JSON.parse keeps only the last; a
 * service may read the first).
 */
function jsonPairs(text: string, out: Set<string>): void {
  JSON.parse(text); // validity; a SyntaxError is unreadable
  const stack: Frame[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      const s = JSON.parse(text.slice(i, end + 1)) as string;
      i = end;
      const top = stack[stack.length - 1];
      if (top === undefined) continue;
      if (!top.array && top.expectKey) {
        top.key = s;
        top.expectKey = false;
        addKey(out, s);
      } else addValue(out, top.key, s);
    } else if (c === '{' || c === '[') {
      if (stack.length >= MAX_DEPTH) throw new Unreadable();
      const parentKey = stack[stack.length - 1]?.key ?? '';
      stack.push({ array: c === '[', key: parentKey, expectKey: c === '{' });
    } else if (c === '}' || c === ']') {
      stack.pop();
    } else if (c === ',') {
      const top = stack[stack.length - 1];
      if (top && !top.array) top.expectKey = true;
    }
  }
}

// --- CBOR (Smithy RPC v2): the same pairs ----------------------------------------------------------

interface Cursor {
  buf: Buffer;
  at: number;
}

function need(c: Cursor, n: number): void {
  if (c.at + n > c.buf.length) throw new Unreadable();
}

/** The argument of an initial byte: a length, count or value; -1 for indefinite. */
function argument(c: Cursor, info: number): number {
  if (info < 24) return info;
  if (info === 24) {
    need(c, 1);
    return c.buf[c.at++]!;
  }
  if (info === 25) {
    need(c, 2);
    const v = c.buf.readUInt16BE(c.at);
    c.at += 2;
    return v;
  }
  if (info === 26) {
    need(c, 4);
    const v = c.buf.readUInt32BE(c.at);
    c.at += 4;
    return v;
  }
  if (info === 27) {
    need(c, 8);
    const v = c.buf.readBigUInt64BE(c.at);
    c.at += 8;
    if (v > BigInt(c.buf.length)) return Number.MAX_SAFE_INTEGER; // only a length could matter, and none is that long
    return Number(v);
  }
  if (info === 31) return -1;
  throw new Unreadable();
}

/** Reads one item; returns its text when it is a text string, else undefined. */
function cborItem(c: Cursor, key: string, out: Set<string>, depth: number): string | undefined {
  if (depth > MAX_DEPTH) throw new Unreadable();
  need(c, 1);
  const initial = c.buf[c.at++]!;
  const major = initial >> 5;
  const info = initial & 0x1f;
  if (major === 7) {
    if (info === 31) throw new Unreadable(); // a stray break
    argument(c, info);
    return undefined;
  }
  const n = argument(c, info);
  switch (major) {
    case 0:
    case 1:
      return undefined;
    case 2:
    case 3: {
      let bytes: Buffer;
      if (n < 0) {
        const parts: Buffer[] = [];
        for (;;) {
          need(c, 1);
          if (c.buf[c.at] === 0xff) {
            c.at++;
            break;
          }
          const chunk = c.buf[c.at]! >> 5;
          if (chunk !== major) throw new Unreadable();
          const before = c.at;
          cborItem(c, '', new Set(), depth + 1);
          parts.push(chunkBytes(c.buf, before, c.at));
        }
        bytes = Buffer.concat(parts);
      } else {
        need(c, n);
        bytes = c.buf.subarray(c.at, c.at + n);
        c.at += n;
      }
      if (major === 2) return undefined;
      const text = bytes.toString('utf8');
      if (!Buffer.from(text, 'utf8').equals(bytes)) throw new Unreadable();
      return text;
    }
    case 4:
      for (let i = 0; n < 0 || i < n; i++) {
        if (n < 0 && atBreak(c)) break;
        const s = cborItem(c, key, out, depth + 1);
        if (s !== undefined) addValue(out, key, s);
      }
      return undefined;
    case 5:
      for (let i = 0; n < 0 || i < n; i++) {
        if (n < 0 && atBreak(c)) break;
        const k = cborItem(c, '', out, depth + 1);
        if (k !== undefined) addKey(out, k);
        const s = cborItem(c, k ?? '', out, depth + 1);
        if (s !== undefined) addValue(out, k ?? '', s);
      }
      return undefined;
    case 6: {
      const s = cborItem(c, key, out, depth + 1);
      if (s !== undefined) addValue(out, key, s);
      return undefined;
    }
    default:
      throw new Unreadable();
  }
}

function atBreak(c: Cursor): boolean {
  need(c, 1);
  if (c.buf[c.at] !== 0xff) return false;
  c.at++;
  return true;
}

/** The payload of one definite-length string chunk read from `from` to `to`. */
function chunkBytes(buf: Buffer, from: number, to: number): Buffer {
  const c: Cursor = { buf, at: from + 1 };
  const n = argument(c, buf[from]! & 0x1f);
  if (n < 0) throw new Unreadable();
  return buf.subarray(c.at, to);
}

function cborPairs(body: Buffer, out: Set<string>): void {
  const c: Cursor = { buf: body, at: 0 };
  const s = cborItem(c, '', out, 0);
  if (s !== undefined || c.at !== body.length) throw new Unreadable();
}

// --- XML (S3 bucket configuration): every text that is an ARN, and <Account>/<AccountId> -----------

const XML_ACCOUNT_ELEMENTS = new Set(['Account', 'AccountId', 'ExpectedBucketOwner']);
// A tag skips quoted attribute values whole (a `>` inside quotes does not end it) and cannot run
// past another `<`; anything else that starts with `<` is a stray one (group 4): unreadable. Linear.
const XML_TOKEN = /<(\/?)([A-Za-z_][\w.:-]*)(?![\w.:-])(?:[^<>"']|"[^"<]*"|'[^'<]*')*>|([^<]+)|(<)/g;

function xmlText(raw: string): string {
  return raw.replace(/&(#x[0-9a-fA-F]+|#\d+|amp|lt|gt|quot|apos);/g, (_m, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(Math.min(parseInt(e.slice(2), 16), 0x10ffff));
    if (e.startsWith('#')) return String.fromCodePoint(Math.min(parseInt(e.slice(1), 10), 0x10ffff));
    return ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[e]!;
  });
}

function xmlPairs(text: string, out: Set<string>): void {
  // Comments, CDATA, DOCTYPE and processing instructions can split or hide a text node: unreadable.
  const body = text.replace(/^\uFEFF?\s*<\?xml[^>]*\?>/, '');
  if (body.includes('<!') || body.includes('<?')) throw new Unreadable();
  let element = '';
  for (const m of body.matchAll(XML_TOKEN)) {
    if (m[4] !== undefined) throw new Unreadable();
    if (m[2] !== undefined) {
      element = m[1] === '/' ? '' : m[2].slice(m[2].indexOf(':') + 1);
      continue;
    }
    const value = xmlText(m[3]!).trim();
    if (value === '') continue;
    if (XML_ACCOUNT_ELEMENTS.has(element)) addValue(out, 'AccountId', value);
    else addValue(out, 'Arn', value);
  }
}

// --- form bodies and queries -----------------------------------------------------------------------

/** The parameter a query-protocol name stands for: `Entries.member.1.QueueUrl` → `QueueUrl`. */
function paramKey(name: string): string {
  const parts = name.split('.');
  for (let i = parts.length - 1; i >= 0; i--) {
    const p = parts[i]!;
    if (p !== '' && !/^\d+$/.test(p) && p !== 'member' && p !== 'entry') return p;
  }
  return name;
}

function paramPairs(params: Iterable<[string, string]>, out: Set<string>): void {
  for (const [name, value] of params) addValue(out, paramKey(name), value);
}

// --- host, path, headers ---------------------------------------------------------------------------

const ACCESS_POINT_LABELS = new Set(['s3-accesspoint', 's3-accesspoint-fips', 's3-object-lambda']);

/** Accounts the host names: a leading account label (`123456789012.dkr.ecr…`) or an access point (`name-123456789012.s3-accesspoint…`). */
export function hostAccounts(rawHost: string): string[] {
  const labels = hostName(rawHost).split('.');
  const out: string[] = [];
  if (ACCOUNT.test(labels[0] ?? '')) out.push(labels[0]!);
  if (labels.length > 1 && ACCESS_POINT_LABELS.has(labels[1]!)) {
    const m = /-(\d{12})$/.exec(labels[0]!);
    if (!m) throw new Unreadable();
    out.push(m[1]!);
  }
  return out;
}

export type AwsBodyKind = 'json' | 'form' | 'cbor' | 'xml';

export interface ResourceInputs {
  /** Decoded path segments that name the resource (Lambda's FunctionName, an S3 bucket). */
  pathResources?: string[];
  /** The SQS queue URL path's account. */
  pathAccount?: string;
  /** What the body is, when it carries parameters; absent for REST bodies (object data, a Lambda payload). */
  bodyKind?: AwsBodyKind;
}

/**
 * Every account the request's resources name, sorted; [] when it names none (its resources
 * resolve in the caller's own account); undefined when a value could not be read, or the body
 * that carries parameters was not seen whole.
 */
export function resourceAccounts(req: FactsRequest, inputs: ResourceInputs, body: Buffer | undefined, bodyComplete: boolean, maxBytes: number): string[] | undefined {
  const out = new Set<string>();
  try {
    for (const a of hostAccounts(req.host)) out.add(a);
    if (inputs.pathAccount !== undefined) out.add(inputs.pathAccount);
    for (const r of inputs.pathResources ?? []) addValue(out, 'FunctionName', r);
    for (const [name, value] of Object.entries(req.headers)) {
      if (!name.startsWith('x-amz-') || IGNORED_HEADERS.has(name) || typeof value !== 'string') continue;
      if (ACCOUNT_HEADERS.has(name)) addValue(out, 'AccountId', value);
      else addValue(out, 'Arn', decodePercent(value) ?? value);
    }
    paramPairs(
      Object.entries(req.query).flatMap(([n, vs]) => (Array.isArray(vs) ? vs.map((v): [string, string] => [n, v]) : [])),
      out,
    );
    if (inputs.bodyKind !== undefined) {
      if (!bodyComplete) return undefined;
      // Decoded whole or not at all: a body cut at the cap would hide what follows the cut.
      const decoded = body === undefined ? Buffer.alloc(0) : decodedWholeBody(req, body, maxBytes);
      if (decoded === undefined) return undefined;
      if (decoded.length > 0) {
        if (inputs.bodyKind === 'json') jsonPairs(decoded.toString('utf8'), out);
        else if (inputs.bodyKind === 'cbor') cborPairs(decoded, out);
        else if (inputs.bodyKind === 'xml') xmlPairs(decoded.toString('utf8'), out);
        else paramPairs(new URLSearchParams(decoded.toString('latin1')).entries(), out);
      }
    }
  } catch {
    // Unreadable, a SyntaxError from a string JSON.parse would not read: unknown.
    return undefined;
  }
  return [...out].sort();
}
