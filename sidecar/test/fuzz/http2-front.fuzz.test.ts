// Fuzzing the HTTP/2 front through a real TLS connection (ALPN h2) to the real sidecar's
// transparent port: raw frames written by hand — header blocks (HPACK literals) with pseudo-header
// mistakes RFC 9113 §8 forbids (missing, repeated, late, unknown pseudo-headers; upper-case names;
// connection-specific fields; TE other than trailers; CR/LF/NUL and edge whitespace in values;
// Content-Length that disagrees with DATA), split into CONTINUATION frames, bodies in DATA frames,
// and stray frames (PING, PRIORITY, WINDOW_UPDATE 0, RST_STREAM, SETTINGS, unknown types, frames on
// stream 0 or even streams). For every input the sidecar stays up; nothing reaches the upstream
// but streams that are well-formed by RFC 9113 §8, with the same method, canonical path and body,
// and what reaches it is what was decided; a session the sidecar ends for a protocol error is
// recorded.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { canonicalRequestTarget } from '../../src/proxy/request-target.ts';
import { startFrontHarness } from './front-harness.ts';
import type { FrontHarness } from './front-harness.ts';
import { fuzz, mutated, printReports } from './fuzz-harness.ts';

let h: FrontHarness;
let ca: Buffer;

beforeAll(async () => {
  h = await startFrontHarness();
  ca = readFileSync(h.ca);
}, 60_000);

afterAll(async () => {
  printReports();
  await h?.close();
});

// ---- frames and HPACK literals -------------------------------------------------------------------

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const T = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

function hpackInt(n: number): Buffer {
  if (n < 127) return Buffer.from([n]);
  const out = [127];
  n -= 127;
  while (n >= 128) {
    out.push((n % 128) + 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** Literal header field without indexing, new name, no Huffman: every byte goes as given. */
function hpack(fields: [string, string][]): Buffer {
  return Buffer.concat(fields.flatMap(([n, v]) => [Buffer.from([0]), hpackInt(Buffer.byteLength(n, 'latin1')), Buffer.from(n, 'latin1'), hpackInt(Buffer.byteLength(v, 'latin1')), Buffer.from(v, 'latin1')]));
}

// ---- the reference: is a request's field list well-formed by RFC 9113 §8? -----------------------

const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

interface GenStream {
  id: number;
  fields: [string, string][];
  body: string[];
  /** header block split into this many CONTINUATION pieces */
  pieces: number;
  endOnHeaders: boolean;
}

/**
 * Regular fields whose value holds CR, LF or NUL or starts or ends with whitespace, or whose name
 * is not a token (RFC 9113 §8.2.1): node:http2 (nghttp2) drops such a field and
 * lets the rest of the request through; they must then not reach the upstream either.
 */
function droppedFields(s: GenStream): string[] {
  return s.fields.filter(([n, v]) => !n.startsWith(':') && (/[\0\r\n]/.test(v) || /^[ \t]|[ \t]$/.test(v) || /[^!#$%&'*+.^_`|~0-9A-Za-z-]/.test(n))).map(([n]) => n);
}

function wellFormed(s: GenStream): boolean {
  const pseudo = new Map<string, number>();
  let regular = false;
  const dropped = new Set(droppedFields(s));
  for (const [n, v] of s.fields) {
    if (dropped.has(n) && !n.startsWith(':')) continue;
    if (n !== n.toLowerCase() || n === '' || /[\0\r\n: ]/.test(n.slice(n.startsWith(':') ? 1 : 0))) return false;
    if (/[\0\r\n]/.test(v) || /^[ \t]|[ \t]$/.test(v)) return false;
    if (n.startsWith(':')) {
      if (regular || ![':method', ':scheme', ':authority', ':path'].includes(n)) return false;
      pseudo.set(n, (pseudo.get(n) ?? 0) + 1);
      continue;
    }
    regular = true;
    if (CONNECTION_SPECIFIC.has(n)) return false;
    if (n === 'te' && v !== 'trailers') return false;
  }
  if ([...pseudo.values()].some((c) => c > 1)) return false;
  if (!pseudo.has(':method') || !pseudo.has(':scheme') || !pseudo.has(':path')) return false;
  if (s.fields.find(([n]) => n === ':path')?.[1] === '') return false;
  const cl = s.fields.filter(([n]) => n === 'content-length').map(([, v]) => v);
  const bodyLength = s.body.reduce((a, b) => a + Buffer.byteLength(b, 'latin1'), 0);
  if (cl.length > 1 || (cl.length === 1 && (!/^\d+$/.test(cl[0]!) || Number(cl[0]) !== bodyLength))) return false;
  return true;
}

function streamBytes(s: GenStream): Buffer {
  const block = hpack(s.fields);
  const cut = Math.max(1, Math.ceil(block.length / s.pieces));
  const parts: Buffer[] = [];
  for (let at = 0; at < block.length || parts.length === 0; at += cut) parts.push(block.subarray(at, at + cut));
  const noBody = s.endOnHeaders || s.body.length === 0;
  const out = [frame(T.HEADERS, (noBody ? END_STREAM : 0) | (parts.length === 1 ? END_HEADERS : 0), s.id, parts[0]!)];
  for (let i = 1; i < parts.length; i++) out.push(frame(T.CONTINUATION, i === parts.length - 1 ? END_HEADERS : 0, s.id, parts[i]!));
  if (!noBody) s.body.forEach((b, i) => out.push(frame(T.DATA, i === s.body.length - 1 ? END_STREAM : 0, s.id, Buffer.from(b, 'latin1'))));
  return Buffer.concat(out);
}

// ---- generator ----------------------------------------------------------------------------------

/** Mostly a good value, one time in five a bad one. */
function rarely<V>(good: V[], bad: V[]): fc.Arbitrary<V> {
  return fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...good) }, { weight: 1, arbitrary: fc.constantFrom(...bad) });
}

const pseudoSet = fc
  .record({
    method: rarely(['GET', 'POST', 'PUT'], ['get', 'CONNECT', 'BREW']),
    scheme: rarely(['https'], ['http', '']),
    authority: rarely<string | undefined>(['github.com', 'github.com:443'], ['exfil.example', 'GitHub.com', undefined]),
    path: rarely(['/', '/a', '/a/../b', '/deny', '/q?x=1', '/%2e%2e/x'], ['/x#frag', '', '*', '/a b', 'a', '/../../x']),
    order: rarely(['normal'], ['late', 'dup-path', 'dup-method', 'no-method', 'unknown']),
  })
  .map((p) => {
    const f: [string, string][] = [[':method', p.method], [':scheme', p.scheme], [':path', p.path]];
    if (p.authority !== undefined) f.push([':authority', p.authority]);
    if (p.order === 'dup-path') f.push([':path', '/deny']);
    if (p.order === 'dup-method') f.push([':method', 'DELETE']);
    if (p.order === 'no-method') f.shift();
    if (p.order === 'unknown') f.push([':protocol', 'websocket']);
    return { fields: f, late: p.order === 'late' };
  });
const GOOD_REGULAR: [string, string][] = [
  ['host', 'github.com'],
  ['x-a', 'b'],
  ['te', 'trailers'],
  ['content-type', 'application/json'],
  ['accept', '*/*'],
];
const BAD_REGULAR: [string, string][] = [
  ['host', 'exfil.example'],
  ['X-Upper', '1'],
  ['connection', 'close'],
  ['transfer-encoding', 'chunked'],
  ['te', 'gzip'],
  ['x-nul', 'a\0b'],
  ['x-crlf', 'a\r\nx-injected: 1'],
  ['x-space', ' padded '],
  ['upgrade', 'h2c'],
  ['x-original-url', '/admin'],
];
const stream = fc
  .record({
    pseudo: pseudoSet,
    regular: fc.tuple(fc.subarray(GOOD_REGULAR, { maxLength: 2 }), fc.oneof({ weight: 3, arbitrary: fc.constant([] as [string, string][]) }, { weight: 1, arbitrary: fc.subarray(BAD_REGULAR, { minLength: 1, maxLength: 1 }) })).map(([g, b]) => [...g, ...b]),
    body: fc.array(fc.constantFrom('hello', '{"a":1}', '', 'x'.repeat(100)), { maxLength: 3 }),
    cl: rarely(['none', 'right'], ['wrong', 'twice', 'bad']),
    pieces: fc.integer({ min: 1, max: 3 }),
    endOnHeaders: fc.boolean(),
  })
  .map((r) => {
    const regular: [string, string][] = [...r.regular];
    const len = r.body.reduce((a, b) => a + b.length, 0);
    if (r.cl === 'right') regular.push(['content-length', String(len)]);
    if (r.cl === 'wrong') regular.push(['content-length', String(len + 5)]);
    if (r.cl === 'twice') regular.push(['content-length', String(len)], ['content-length', String(len)]);
    if (r.cl === 'bad') regular.push(['content-length', '+1']);
    const fields: [string, string][] = r.pseudo.late ? [regular[0] ?? ['x-a', 'b'], ...r.pseudo.fields, ...regular.slice(1)] : [...r.pseudo.fields, ...regular];
    return { fields, body: r.body, pieces: r.pieces, endOnHeaders: r.endOnHeaders && r.body.length === 0 };
  });
const stray = fc.constantFrom(
  frame(T.PING, 0, 0, Buffer.alloc(8, 1)),
  frame(T.PING, 0, 1, Buffer.alloc(8, 1)),
  frame(T.WINDOW_UPDATE, 0, 0, Buffer.from([0, 0, 0, 0])),
  frame(T.WINDOW_UPDATE, 0, 1, Buffer.from([0, 0, 0, 1])),
  frame(T.RST_STREAM, 0, 1, Buffer.from([0, 0, 0, 8])),
  frame(T.PRIORITY, 0, 3, Buffer.from([0, 0, 0, 3, 16])),
  frame(T.SETTINGS, 0, 0, Buffer.from([0, 4, 0xff, 0xff, 0xff, 0xff])),
  frame(T.SETTINGS, 0, 1, Buffer.alloc(0)),
  frame(0xfa, 0, 0, Buffer.from('unknown')),
  frame(T.DATA, 0, 0, Buffer.from('data on stream 0')),
  frame(T.HEADERS, END_HEADERS | END_STREAM, 2, hpack([[':method', 'GET'], [':scheme', 'https'], [':path', '/even'], [':authority', 'github.com']])),
  frame(T.CONTINUATION, END_HEADERS, 1, Buffer.alloc(0)),
  frame(T.GOAWAY, 0, 0, Buffer.from([0, 0, 0, 0, 0, 0, 0, 0])),
);

interface H2Input {
  streams: GenStream[];
  bytes: Buffer;
}

const h2input: fc.Arbitrary<H2Input> = fc
  .record({ streams: fc.array(stream, { minLength: 1, maxLength: 3 }), strays: fc.array(fc.tuple(fc.nat(), stray), { maxLength: 1 }), mutate: fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }) })
  .chain((r) => {
    const streams: GenStream[] = r.streams.map((s, i) => ({ ...s, id: 1 + 2 * i }));
    const frames = streams.map(streamBytes);
    for (const [at, f] of r.strays) frames.splice(at % (frames.length + 1), 0, f);
    const bytes = Buffer.concat([frame(T.SETTINGS, 0, 0, Buffer.alloc(0)), ...frames]);
    return (r.mutate ? mutated(fc.constant(bytes)) : fc.constant(bytes)).map((b) => ({ streams, bytes: b }));
  });

// ---- one exchange ----------------------------------------------------------------------------------

interface Outcome {
  goaway?: number;
  closedStreams: Set<number>;
}

function exchange(input: H2Input): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port: h.sidecar.addresses.transparent!.port, servername: 'github.com', ca, ALPNProtocols: ['h2'] });
    const outcome: Outcome = { closedStreams: new Set() };
    const opened = new Set(input.streams.map((x) => x.id));
    let got = Buffer.alloc(0);
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(bound);
      s.destroy();
      resolve(outcome);
    };
    // Streams whose body the sidecar is still waiting for are left to the bound.
    const bound = setTimeout(finish, 1500);
    s.on('error', () => undefined);
    s.on('close', finish);
    s.on('secureConnect', () => {
      if (s.alpnProtocol !== 'h2') {
        settled = true;
        clearTimeout(bound);
        s.destroy();
        reject(new Error(`ALPN chose ${String(s.alpnProtocol)}, not h2`));
        return;
      }
      s.write(Buffer.concat([PREFACE, input.bytes]));
    });
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      while (got.length >= 9) {
        const len = got.readUIntBE(0, 3);
        if (got.length < 9 + len) break;
        const type = got[3]!;
        const flags = got[4]!;
        const id = got.readUInt32BE(5) & 0x7fffffff;
        const payload = got.subarray(9, 9 + len);
        got = got.subarray(9 + len);
        if (type === T.GOAWAY) {
          outcome.goaway = payload.length >= 8 ? payload.readUInt32BE(4) : -1;
          finish();
          return;
        }
        if (type === T.RST_STREAM || ((type === T.DATA || type === T.HEADERS) && flags & END_STREAM)) outcome.closedStreams.add(id);
        // Answer PINGs and SETTINGS like a client would, so the session is not held up.
        if (type === T.SETTINGS && !(flags & 1)) s.write(frame(T.SETTINGS, 1, 0, Buffer.alloc(0)));
      }
      if ([...opened].every((id) => outcome.closedStreams.has(id))) finish();
    });
  });
}

async function check(input: H2Input): Promise<void> {
  const marks = h.mark();
  const outcome = await exchange(input);
  await h.quiet();
  const decided = h.decided.slice(marks.decided);
  const decidedIds = new Set(decided.map((d) => d.id));
  const stray = h.heads.slice(marks.heads).filter((x) => !x.ctx);
  if (stray.length) throw new Error(`the upstream received requests no decision stamped: ${JSON.stringify(stray)}`);
  const heads = h.heads.filter((x) => x.ctx && decidedIds.has(x.ctx));
  const complete = h.complete.filter((c) => decidedIds.has(String(c.headers['x-fuzz-ctx'])));
  const context = () => JSON.stringify({ streams: input.streams.map((s) => ({ id: s.id, fields: s.fields, body: s.body, wellFormed: wellFormed(s) })), forwarded: heads, upstreamHeaders: complete.map((c) => c.headers) });
  const candidates = input.streams.filter((s) => wellFormed(s));
  if (heads.length) seen.forwarded++;
  if (outcome.goaway) seen.goaway++;
  if (input.streams.some((s) => !wellFormed(s))) seen.malformedStreams++;
  const field = (s: GenStream, n: string) => s.fields.find(([k]) => k === n)?.[1];
  for (const head of heads) {
    const i = candidates.findIndex((s) => {
      const c = canonicalRequestTarget(field(s, ':path') ?? '');
      return field(s, ':method') === head.method && c.ok && c.target.pathAndQuery === head.url;
    });
    if (i < 0) throw new Error(`forwarded ${head.method} ${head.url}, which no well-formed stream of the input asked for: ${context()}`);
    const s = candidates.splice(i, 1)[0]!;
    const body = Buffer.from(s.endOnHeaders ? '' : s.body.join(''), 'latin1');
    const done = complete.find((c) => c.headers['x-fuzz-ctx'] === head.ctx);
    if (done && !done.body.equals(body)) throw new Error(`forwarded a body that differs from the stream's DATA: ${context()}`);
    for (const n of droppedFields(s)) if (done && n in done.headers) throw new Error(`forwarded the field ${n} whose value RFC 9113 forbids: ${context()}`);
  }
  for (const head of heads) {
    const d = decided.find((x) => x.id === head.ctx)!;
    expect({ method: d.method, path: d.path }).toEqual({ method: head.method, path: head.url });
  }
  if (outcome.goaway !== undefined && outcome.goaway !== 0) {
    const codes = h.malformed.slice(marks.malformed).map((m) => m.code);
    if (!codes.includes('http.h2_protocol_error')) throw new Error(`the session ended with GOAWAY error ${outcome.goaway} but no refusal was recorded: ${context()}`);
  }
}

/** How many runs forwarded something, ended in GOAWAY, or held a malformed stream: not vacuous. */
const seen = { forwarded: 0, goaway: 0, malformedStreams: 0 };

describe('HTTP/2 front', () => {
  test('hand-made frames: only well-formed streams are forwarded, as decided; protocol errors recorded', async () => {
    await fuzz('http2-front', h2input, 250, (input) => check(input));
    // Still up and serving after all of it.
    const ok: GenStream = { id: 1, fields: [[':method', 'GET'], [':scheme', 'https'], [':path', '/alive'], [':authority', 'github.com']], body: [], pieces: 1, endOnHeaders: true };
    await check({ streams: [ok], bytes: Buffer.concat([frame(T.SETTINGS, 0, 0, Buffer.alloc(0)), streamBytes(ok)]) });
    expect(h.heads.at(-1)).toMatchObject({ method: 'GET', url: '/alive' });
    process.stdout.write(`http2 fuzz: ${seen.forwarded} runs forwarded, ${seen.goaway} ended in a GOAWAY error, ${seen.malformedStreams} held a malformed stream\n`);
    expect(seen.forwarded).toBeGreaterThan(15);
    expect(seen.malformedStreams).toBeGreaterThan(30);
  }, 180_000);
});

// ---- published HTTP/2 downgrade-smuggling vectors ---------------------------------------------------
// Kettle, "HTTP/2: The Sequel is Always Worse" (2021) and RFC 9113 §8.1/§8.2: a length, framing or
// line break smuggled through an HTTP/2 request into the HTTP/1.1 request sent upstream. Each
// carries GET /smuggled in a place an HTTP/1.1 upstream could read as a request of its own.
const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: github.com\r\n\r\n';
const base: [string, string][] = [[':method', 'POST'], [':scheme', 'https'], [':path', '/'], [':authority', 'github.com']];
const H2_VECTORS: Record<string, { fields: [string, string][]; body: string[] }> = {
  'H2.CL: content-length 0 with a body': { fields: [...base, ['content-length', '0']], body: [SMUGGLED] },
  'H2.CL: content-length shorter than the DATA': { fields: [...base, ['content-length', '2']], body: [`xx${SMUGGLED}`] },
  'H2.TE: transfer-encoding chunked': { fields: [...base, ['transfer-encoding', 'chunked']], body: [`0\r\n\r\n${SMUGGLED}`] },
  'CRLF in a field value': { fields: [...base, ['x-a', `b\r\nTransfer-Encoding: chunked`]], body: [`0\r\n\r\n${SMUGGLED}`] },
  'CRLF in a field name': { fields: [...base, ['x-a\r\ntransfer-encoding', 'chunked']], body: [`0\r\n\r\n${SMUGGLED}`] },
  'request line in :method': { fields: [[':method', `GET /smuggled HTTP/1.1\r\nHost: github.com\r\n\r\nGET`], [':scheme', 'https'], [':path', '/'], [':authority', 'github.com']], body: [] },
  'request line in :path': { fields: [[':method', 'GET'], [':scheme', 'https'], [':path', `/ HTTP/1.1\r\nHost: github.com\r\n\r\nGET /smuggled`], [':authority', 'github.com']], body: [] },
  'space in :path': { fields: [[':method', 'GET'], [':scheme', 'https'], [':path', '/x HTTP/1.1'], [':authority', 'github.com']], body: [] },
  'line break in :authority': { fields: [[':method', 'GET'], [':scheme', 'https'], [':path', '/'], [':authority', 'github.com\r\nX: y']], body: [] },
  'URL in :scheme': { fields: [[':method', 'GET'], [':scheme', 'https://exfil.example/smuggled?'], [':path', '/'], [':authority', 'github.com']], body: [] },
  'Host disagreeing with :authority': { fields: [[':method', 'GET'], [':scheme', 'https'], [':path', '/smuggled'], [':authority', 'github.com'], ['host', 'exfil.example']], body: [] },
  'pseudo-header after a field': { fields: [[':method', 'GET'], [':scheme', 'https'], ['x-a', 'b'], [':path', '/smuggled'], [':authority', 'github.com']], body: [] },
};

describe('published HTTP/2 smuggling vectors', () => {
  test.each(Object.keys(H2_VECTORS))('%s: refused or forwarded as one request, never desynchronised', async (name) => {
    const v = H2_VECTORS[name]!;
    const s: GenStream = { id: 1, fields: v.fields, body: v.body, pieces: 1, endOnHeaders: v.body.length === 0 };
    const marks = h.mark();
    await check({ streams: [s], bytes: Buffer.concat([frame(T.SETTINGS, 0, 0, Buffer.alloc(0)), streamBytes(s)]) });
    expect(h.heads.slice(marks.heads).filter((x) => x.url.includes('smuggled') && name !== 'Host disagreeing with :authority')).toEqual([]);
    for (const c of h.complete.slice(marks.complete)) expect(c.headers['transfer-encoding']).toBeUndefined();
  });
});
