// Fuzzing the HTTP/1.1 front through a real socket to the real sidecar (transparent port, plain
// HTTP): pipelined requests built from the request-smuggling vocabulary (framing headers and their
// obfuscations, chunk sizes and extensions, odd targets, versions, line endings), then mutated at
// the byte level; plus the published smuggling vectors as fixed cases. For every input:
//  - the sidecar answers or closes (no hang) and stays up;
//  - nothing reaches the upstream that an independent strict reading (http1-reference.ts) does
//    not read as a message with the same method, body and canonical target — a request hidden
//    in a body, a second message read out of a chunk, a target sluice did not canonicalise;
//  - what reaches the upstream is what sluice decided (method and path just before forwarding);
//  - every answer sluice gives carries its decision header and a request id it recorded (pipeline
//    answers and the parser's own refusals); every other answer is the upstream's.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { connect } from 'node:net';
import { canonicalRequestTarget } from '../../src/proxy/request-target.ts';
import { recordedIds, startFrontHarness } from './front-harness.ts';
import type { FrontHarness } from './front-harness.ts';
import { fuzz, mutated, printReports } from './fuzz-harness.ts';
import { referenceParse } from './http1-reference.ts';
import type { RefMessage } from './http1-reference.ts';

let h: FrontHarness;

beforeAll(async () => {
  h = await startFrontHarness();
}, 60_000);

afterAll(async () => {
  printReports();
  await h?.close();
});

interface Response {
  status: number;
  headers: Record<string, string>;
}

/** Reads HTTP/1.1 responses off the wire: interim 1xx skipped, bodies by Content-Length or chunks. */
function parseResponses(buf: Buffer): Response[] {
  const out: Response[] = [];
  let at = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', at);
    if (end < 0) return out;
    const lines = buf.toString('latin1', at, end).split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? NaN);
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const c = l.indexOf(':');
      if (c > 0) headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
    }
    at = end + 4;
    if (status >= 100 && status < 200) continue;
    if (headers['transfer-encoding']?.includes('chunked')) {
      for (;;) {
        const le = buf.indexOf('\r\n', at);
        if (le < 0) return out;
        const size = parseInt(buf.toString('latin1', at, le), 16);
        at = le + 2 + size + 2;
        if (size === 0) break;
      }
    } else {
      at += Number(headers['content-length'] ?? 0);
    }
    if (at > buf.length) return out;
    out.push({ status, headers });
  }
}

/** Sends `bytes` in the given chunks; returns the responses once `expected` came or the sidecar closed. */
function exchange(bytes: Buffer, splits: number[], expected: number): Promise<Response[]> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: h.sidecar.addresses.transparent!.port });
    let got = Buffer.alloc(0);
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      if (err) reject(err);
      else resolve(parseResponses(got));
    };
    const timer = setTimeout(() => finish(new Error('the sidecar neither answered nor closed within 5 s')), 5000);
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (expected > 0 && parseResponses(got).length >= expected) finish();
    });
    s.on('error', () => undefined);
    s.on('close', () => finish());
    s.on('connect', () => {
      let at = 0;
      for (const p of [...splits.map((x) => (bytes.length ? x % bytes.length : 0)).filter((x) => x > 0).sort((a, b) => a - b), bytes.length]) {
        if (p > at) s.write(bytes.subarray(at, p));
        at = Math.max(at, p);
      }
    });
  });
}

function sameTarget(m: RefMessage, url: string): boolean {
  if (m.refused) return false;
  const c = canonicalRequestTarget(m.target);
  return c.ok && c.target.form === 'origin' && c.target.pathAndQuery === url;
}

/** One input through the sidecar, checked against the reference reading. */
async function check(bytes: Buffer, splits: number[] = []): Promise<void> {
  const ref = referenceParse(bytes);
  const marks = h.mark();
  const expected = ref.messages.length + (ref.end === 'error' ? 1 : 0);
  const responses = await exchange(bytes, splits, expected);
  await h.quiet();
  const decidedIds = new Set(h.decided.slice(marks.decided).map((d) => d.id));
  const stray = h.heads.slice(marks.heads).filter((x) => !x.ctx);
  if (stray.length) throw new Error(`the upstream received requests no decision stamped: ${JSON.stringify(stray)}`);
  // Heads are attributed by the id the forwarding stage stamped, whenever they arrived.
  const heads = h.heads.filter((x) => x.ctx && decidedIds.has(x.ctx));
  const complete = h.complete.filter((c) => decidedIds.has(String(c.headers['x-fuzz-ctx'])));
  const decided = h.decided.slice(marks.decided);
  const ids = recordedIds(h, marks);
  const context = () => JSON.stringify({ input: bytes.toString('latin1'), reference: { end: ref.end, error: ref.error, messages: ref.messages.map((m) => `${m.method} ${m.target} (${m.body.length} bytes)`) }, forwarded: heads });

  // Nothing reaches the upstream that the reference does not read the same way.
  const unmatched = [...ref.messages];
  let partialSeen = false;
  for (const head of heads) {
    const i = unmatched.findIndex((m) => m.method === head.method && sameTarget(m, head.url));
    if (i >= 0) {
      unmatched.splice(i, 1);
      continue;
    }
    // A head sent on before its body went wrong: only for the message the reference cut or
    // refused in its body, and never completed upstream (checked below).
    const p = ref.partial;
    if (p && !partialSeen && p.method === head.method && sameTarget({ method: p.method, target: p.target, headers: [], body: Buffer.alloc(0) }, head.url)) {
      partialSeen = true;
      if (complete.some((c) => c.headers['x-fuzz-ctx'] === head.ctx)) throw new Error(`a request whose body the reference cannot read completed upstream: ${context()}`);
      continue;
    }
    throw new Error(`forwarded ${head.method} ${head.url}, which the reference reading of the bytes does not hold: ${context()}`);
  }
  for (const c of complete) {
    if (!ref.messages.some((m) => m.method === c.method && sameTarget(m, c.url) && m.body.equals(c.body))) {
      throw new Error(`forwarded a body (${c.body.length} bytes) for ${c.method} ${c.url} that differs from the message's body: ${context()}`);
    }
    expect(c.headers.host).toBe('github.com');
  }
  // What went upstream is what was decided.
  const pending = [...decided];
  for (const head of heads) {
    const i = pending.findIndex((d) => d.method === head.method && d.path === head.url);
    if (i < 0) throw new Error(`forwarded ${head.method} ${head.url} that no decision covered: ${context()}`);
    expect(pending[i]!.path.split('?')[0]).toBe(pending[i]!.summaryPath);
    pending.splice(i, 1);
  }
  // Every sluice answer is recorded; anything else is the upstream's 200.
  for (const r of responses) {
    if (r.headers['x-sluice-decision']) {
      const id = r.headers['x-sluice-request-id'];
      if (!id || !ids.has(id)) throw new Error(`sluice answered ${r.status} (${r.headers['x-sluice-decision']}) without recording it: ${context()}`);
    } else if (r.status !== 200) {
      throw new Error(`an answer (${r.status}) without sluice's decision header that is not the upstream's: ${context()}`);
    }
  }
}

// ---- the generator: requests from the smuggling vocabulary --------------------------------------

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'get', 'BREW'];
const TARGETS = ['/', '/a', '/a/../b', '/a/./b', '/%2e%2e/x', '/a%2Fb', '/deny', '/x?y=1&z', '/x#frag', '//evil', '/a b', '/\\x', 'http://github.com/abs', '*', '/%00', '/%zz', '/\u00e9', '/..;/x', '/a?b#c', '/git-receive-pack'];
const VERSIONS = ['HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/1.2', 'HTTP/2.0', 'http/1.1'];
const HOSTS = ['Host: github.com', 'Host: github.com', 'Host: github.com:80', 'Host: GitHub.com', 'Host: exfil.example', 'Host: github.com\r\nHost: github.com', '', 'Host : github.com', 'Host: github.com@exfil.example'];
const EXTRA = ['X-A: b', 'Expect: 100-continue', 'Connection: close', 'Connection: keep-alive', 'X-Original-URL: /admin', 'X-Nul: a\0b', 'X-Tab:\tb', 'Te: trailers', 'Content-Type: application/json', 'Upgrade: websocket\r\nConnection: Upgrade'];
type Framing = { kind: 'none' } | { kind: 'cl'; lines: (n: number) => string[] } | { kind: 'te'; lines: string[]; alsoCl?: (n: number) => string[] };
const FRAMINGS: Framing[] = [
  { kind: 'none' },
  { kind: 'cl', lines: (n) => [`Content-Length: ${n}`] },
  { kind: 'cl', lines: (n) => [`Content-Length: ${n + 3}`] },
  { kind: 'cl', lines: (n) => [`Content-Length: ${Math.max(0, n - 2)}`] },
  { kind: 'cl', lines: (n) => [`Content-Length: ${n}`, `Content-Length: ${n}`] },
  { kind: 'cl', lines: (n) => [`Content-Length: ${n}`, `Content-Length: ${n + 1}`] },
  { kind: 'cl', lines: (n) => [`Content-Length: +${n}`] },
  { kind: 'cl', lines: (n) => [`Content-Length: ${n} `] },
  { kind: 'cl', lines: (n) => [`Content-Length: 0${n}`] },
  { kind: 'cl', lines: (n) => [`Content-Length: ${n}, ${n}`] },
  { kind: 'cl', lines: (n) => [`Content-Length : ${n}`] },
  { kind: 'cl', lines: () => ['Content-Length: 99999999999999999999'] },
  { kind: 'te', lines: ['Transfer-Encoding: chunked'] },
  { kind: 'te', lines: ['Transfer-Encoding: chunked'], alsoCl: (n) => [`Content-Length: ${n}`] },
  { kind: 'te', lines: ['Transfer-Encoding : chunked'] },
  { kind: 'te', lines: ['Transfer-Encoding: chunked, identity'] },
  { kind: 'te', lines: ['Transfer-Encoding: identity, chunked'] },
  { kind: 'te', lines: ['Transfer-Encoding: gzip, chunked'] },
  { kind: 'te', lines: ['Transfer-Encoding:\tchunked'] },
  { kind: 'te', lines: ['Transfer-Encoding: \x0bchunked'] },
  { kind: 'te', lines: ['Transfer-Encoding: xchunked'] },
  { kind: 'te', lines: ['Transfer-Encoding: chunkedchunked'] },
  { kind: 'te', lines: ['Transfer-Encoding: "chunked"'] },
  { kind: 'te', lines: ['Transfer-Encoding: cHuNkEd'] },
  { kind: 'te', lines: ['Transfer-Encoding: chunked', 'Transfer-Encoding: x'] },
  { kind: 'te', lines: ['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'] },
  { kind: 'te', lines: ['Transfer-Encoding:', ' chunked'] },
  { kind: 'te', lines: ['X: y\nTransfer-Encoding: chunked'] },
  { kind: 'te', lines: ['Transfer_Encoding: chunked'] },
  { kind: 'te', lines: ['Transfer-Encoding: chunked\0'] },
];
const CHUNK_SIZE = [(n: number) => n.toString(16), (n: number) => n.toString(16).toUpperCase(), (n: number) => `00${n.toString(16)}`, (n: number) => `${n.toString(16)};ext=val`, (n: number) => `${n.toString(16)} ;x`, (n: number) => `${n.toString(16)};a="b c"`, (n: number) => `${n.toString(16)};`, (n: number) => `0x${n.toString(16)}`, (n: number) => `-${n}`, (n: number) => `1000000000000000${n.toString(16)}`, (n: number) => `${(n + 1).toString(16)}`, (n: number) => `${n.toString(16)}\n`];
const LAST = ['0\r\n\r\n', '0\r\n\r\n', '0;x=y\r\n\r\n', '0\r\nX-Trailer: v\r\n\r\n', '0\r\nContent-Length: 5\r\n\r\n', '0\r\n', '0\n\n', '00000\r\n\r\n'];

const message = fc
  .record({
    method: fc.constantFrom(...METHODS),
    target: fc.constantFrom(...TARGETS),
    version: fc.constantFrom(...VERSIONS),
    host: fc.constantFrom(...HOSTS),
    extra: fc.subarray(EXTRA, { maxLength: 2 }),
    framing: fc.constantFrom(...FRAMINGS),
    body: fc.oneof(fc.constant(''), fc.constantFrom('hello', 'GET /deny HTTP/1.1\r\nHost: github.com\r\n\r\n', '0\r\n\r\n', '{"a":1}'), fc.string({ maxLength: 20 })),
    chunks: fc.array(fc.integer({ min: 0, max: CHUNK_SIZE.length - 1 }), { minLength: 1, maxLength: 3 }),
    last: fc.constantFrom(...LAST),
    eol: fc.constantFrom('\r\n', '\r\n', '\r\n', '\r\n', '\n'),
  })
  .map((m) => {
    const headLines = [`${m.method} ${m.target} ${m.version}`, ...(m.host ? [m.host] : []), ...m.extra];
    let body = m.body;
    if (m.framing.kind === 'cl') headLines.push(...m.framing.lines(Buffer.byteLength(body, 'latin1')));
    if (m.framing.kind === 'te') {
      headLines.push(...m.framing.lines);
      const parts = m.chunks.map((_, i) => body.slice(Math.floor((i * body.length) / m.chunks.length), Math.floor(((i + 1) * body.length) / m.chunks.length)));
      const encoded = parts.map((p, i) => (p.length ? `${CHUNK_SIZE[m.chunks[i]!]!(Buffer.byteLength(p, 'latin1'))}\r\n${p}\r\n` : '')).join('') + m.last;
      if (m.framing.alsoCl) headLines.push(...m.framing.alsoCl(Buffer.byteLength(encoded, 'latin1')));
      body = encoded;
    }
    return `${headLines.join(m.eol)}\r\n\r\n${body}`;
  });

const pipelined = fc.array(message, { minLength: 1, maxLength: 3 }).map((ms) => Buffer.from(ms.join(''), 'latin1'));
const input = fc.record({ bytes: fc.oneof({ weight: 3, arbitrary: pipelined }, { weight: 1, arbitrary: mutated(pipelined) }), splits: fc.array(fc.nat(), { maxLength: 3 }) });

describe('HTTP/1.1 front', () => {
  test('generated and mutated pipelines: no desync, nothing unread forwarded, every answer recorded', async () => {
    await fuzz('http1-front', input, 400, ({ bytes, splits }) => check(bytes, splits));
    // Still up and serving after all of it.
    await check(Buffer.from('GET /alive HTTP/1.1\r\nHost: github.com\r\n\r\n'));
    expect(h.heads.at(-1)).toMatchObject({ method: 'GET', url: '/alive' });
  }, 120_000);
});

// ---- published request-smuggling vectors -------------------------------------------------------
// From the request-smuggling literature (Linhart et al. 2005; Kettle, "HTTP Desync Attacks" 2019),
// RFC 9112 §6.1/§6.3/§7.1/§11.2, and the Node.js/llhttp suites and advisories they led to
// (test-http-chunked-smuggling: bare LF in a chunk extension; test-http-invalid-te, HackerOne
// 735748: CL with "TE: eee, chunked"; HackerOne 1524555: "chunkedchunked"; CVE-2020-8287: two TE
// fields; CVE-2022-32214/32215: bare LF and multi-line TE; CVE-2023-30589: bare CR).
// Each is sent with a smuggled GET /smuggled behind it; the checks above apply, and the smuggled
// request must never reach the upstream.
const H = 'Host: github.com\r\n';
const SMUGGLED = `GET /smuggled HTTP/1.1\r\n${H}\r\n`;
const VECTORS: Record<string, string> = {
  'CL.TE': `POST / HTTP/1.1\r\n${H}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`,
  'TE.CL': `POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n${(SMUGGLED.length + 0).toString(16)}\r\n${SMUGGLED}\r\n0\r\n\r\n`,
  'TE: chunked, identity': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${SMUGGLED}`,
  'TE with space before colon': `POST / HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n${SMUGGLED}`,
  'TE with tab value': `POST / HTTP/1.1\r\n${H}Transfer-Encoding:\tchunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n${SMUGGLED}`,
  'TE with vertical tab': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: \x0bchunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n${SMUGGLED}`,
  'TE xchunked': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n${SMUGGLED}`,
  'TE chunkedchunked': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunkedchunked\r\n\r\n${(SMUGGLED.length + 2).toString(16)}\r\n${SMUGGLED}\r\n\r\n0\r\n\r\n`,
  'TE eee, chunked with CL': `POST / HTTP/1.1\r\n${H}Content-Length: 10\r\nTransfer-Encoding: eee, chunked\r\n\r\nHELLOWORLD${SMUGGLED}`,
  'two TE fields': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\n0\r\n\r\n${SMUGGLED}`,
  'TE obs-fold': `POST / HTTP/1.1\r\n${H}Transfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n${SMUGGLED}`,
  'TE after bare LF': `POST / HTTP/1.1\r\n${H}X: y\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n${SMUGGLED}`,
  'TE with NUL': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\0\r\nContent-Length: 5\r\n\r\n0\r\n\r\n${SMUGGLED}`,
  'duplicate CL': `POST / HTTP/1.1\r\n${H}Content-Length: 0\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`,
  'CL with plus sign': `POST / HTTP/1.1\r\n${H}Content-Length: +${SMUGGLED.length}\r\n\r\n${SMUGGLED}`,
  'CL with inner space': `POST / HTTP/1.1\r\n${H}Content-Length: 1 ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`,
  'CL list': `POST / HTTP/1.1\r\n${H}Content-Length: 0, ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`,
  'CL with space before colon': `POST / HTTP/1.1\r\n${H}Content-Length : ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`,
  'GET with a body holding a request': `GET / HTTP/1.1\r\n${H}Content-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`,
  'chunk extension with bare LF': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n2;\nxx\r\n${(SMUGGLED.length + 7).toString(16)}\r\n0\r\n\r\n${SMUGGLED}`,
  'chunk extension with quoted CRLF': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n2;a="\r\nxx"\r\nxx\r\n0\r\n\r\n${SMUGGLED}`,
  'oversized chunk size': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n10000000000000001\r\nx\r\n0\r\n\r\n${SMUGGLED}`,
  'chunk size with 0x': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0x2\r\nxx\r\n0\r\n\r\n${SMUGGLED}`,
  'chunk data without CRLF': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n2\r\nxxxx0\r\n\r\n${SMUGGLED}`,
  'bare LF line ends': `POST / HTTP/1.1\nHost: github.com\nContent-Length: 0\n\n${SMUGGLED}`,
  'bare CR in header': `POST / HTTP/1.1\r\n${H}X: a\rTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n${SMUGGLED}`,
  'Content-Length in trailer': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`,
  'TE on HTTP/1.0': `POST / HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`,
  'NUL in header name': `POST / HTTP/1.1\r\n${H}Content\0Length: 5\r\n\r\n${SMUGGLED}`,
  'request line with tab': `GET\t/ HTTP/1.1\r\n${H}\r\n${SMUGGLED}`,
  'absolute-form target naming another host': `GET http://exfil.example/ HTTP/1.1\r\n${H}\r\n${SMUGGLED}`,
  'fragment in target': `POST /acme/app.git/git-receive-pack#/git-upload-pack HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n${SMUGGLED}`,
};

describe('published request-smuggling vectors', () => {
  test.each(Object.keys(VECTORS))('%s: refused or read unambiguously, never desynchronised', async (name) => {
    const bytes = Buffer.from(VECTORS[name]!, 'latin1');
    const marks = h.mark();
    await check(bytes);
    const ref = referenceParse(bytes);
    // The smuggled request reaches the upstream only where the reference reads it as a request of its own.
    const smuggled = h.heads.slice(marks.heads).some((x) => x.url === '/smuggled');
    if (smuggled) expect(ref.messages.some((m) => m.target === '/smuggled')).toBe(true);
  });
});
