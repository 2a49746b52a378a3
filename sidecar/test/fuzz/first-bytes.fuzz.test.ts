// Fuzzing the first-bytes classifier (transparent port): TLS ClientHellos built field by field
// (SNI, ALPN, extensions, several names, odd lengths) and then mutated, plain HTTP prefixes and
// random bytes. Properties: it never throws and always returns a known kind; an intact hello
// yields exactly its (lower-cased) server name and ALPN list; every strict prefix of an intact
// hello asks for more bytes (so the handoff decides on the whole record, never on a part);
// classification is a function of the bytes (the same answer twice).
import { afterAll, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { classifyFirstBytes, MAX_HELLO_BYTES } from '../../src/listener/first-bytes.ts';
import type { FirstBytes } from '../../src/listener/first-bytes.ts';
import { fuzz, mutated, printReports } from './fuzz-harness.ts';

afterAll(printReports);

const u16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
const vec8 = (b: Buffer) => Buffer.concat([Buffer.from([b.length]), b]);
const vec16 = (b: Buffer) => Buffer.concat([u16(b.length), b]);

interface Hello {
  sni: string[] | undefined;
  alpn: string[] | undefined;
  extra: { type: number; data: Buffer }[];
  sessionId: Buffer;
  ciphers: number;
}

function helloBytes(h: Hello): Buffer {
  const exts: Buffer[] = [];
  for (const e of h.extra) exts.push(Buffer.concat([u16(e.type), vec16(e.data)]));
  if (h.sni) {
    const list = Buffer.concat(h.sni.map((n) => Buffer.concat([Buffer.from([0]), vec16(Buffer.from(n, 'latin1'))])));
    exts.push(Buffer.concat([u16(0), vec16(vec16(list))]));
  }
  if (h.alpn) {
    const list = Buffer.concat(h.alpn.map((p) => vec8(Buffer.from(p, 'latin1'))));
    exts.push(Buffer.concat([u16(0x10), vec16(vec16(list))]));
  }
  const body = Buffer.concat([
    Buffer.from([0x03, 0x03]),
    Buffer.alloc(32, 7),
    vec8(h.sessionId),
    vec16(Buffer.alloc(h.ciphers * 2, 0x13)),
    vec8(Buffer.from([0])),
    vec16(Buffer.concat(exts)),
  ]);
  const hs = Buffer.concat([Buffer.from([0x01, (body.length >> 16) & 0xff, (body.length >> 8) & 0xff, body.length & 0xff]), body]);
  return Buffer.concat([Buffer.from([0x16, 0x03, 0x01]), u16(hs.length), hs]);
}

const label = fc.stringMatching(/^[a-zA-Z0-9-]{1,20}$/);
const hostName = fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join('.'));
const hello: fc.Arbitrary<Hello> = fc.record({
  sni: fc.option(fc.array(hostName, { minLength: 1, maxLength: 2 }), { nil: undefined }),
  alpn: fc.option(fc.array(fc.constantFrom('h2', 'http/1.1', 'h3', 'x'), { minLength: 1, maxLength: 3 }), { nil: undefined }),
  extra: fc.array(fc.record({ type: fc.integer({ min: 1, max: 0xffff }).filter((t) => t !== 0x10), data: fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)) }), { maxLength: 3 }),
  sessionId: fc.uint8Array({ maxLength: 32 }).map((a) => Buffer.from(a)),
  ciphers: fc.integer({ min: 1, max: 20 }),
});

const KINDS = new Set(['need-more', 'tls', 'http', 'opaque']);

function checkShape(r: FirstBytes): void {
  expect(KINDS.has(r.kind)).toBe(true);
  if (r.kind === 'tls') {
    expect(r.sni === undefined || typeof r.sni === 'string').toBe(true);
    expect(Array.isArray(r.alpn)).toBe(true);
  }
}

test('intact ClientHellos: the server name and ALPN exactly, and every strict prefix waits for more', async () => {
  await fuzz('first-bytes-hello', hello, 400, (h) => {
    const bytes = helloBytes(h);
    const r = classifyFirstBytes(bytes);
    if (bytes.length - 5 > MAX_HELLO_BYTES) {
      expect(r.kind).toBe('opaque');
      return;
    }
    // With several names the last host_name entry is the one the parser keeps.
    expect(r).toEqual({ kind: 'tls', sni: h.sni?.at(-1)?.toLowerCase(), alpn: h.alpn ?? [] });
    for (let cut = 1; cut < bytes.length; cut += Math.max(1, Math.floor(bytes.length / 16))) {
      expect({ cut, kind: classifyFirstBytes(bytes.subarray(0, cut)).kind }).toEqual({ cut, kind: 'need-more' });
    }
  });
});

const httpLike = fc
  .tuple(fc.constantFrom('GET', 'POST', 'CONNECT', 'PRI', 'get', 'G', 'BREW', ''), fc.constantFrom(' / HTTP/1.1\r\n', ' * HTTP/2.0\r\n\r\nSM\r\n\r\n', ' ', '\r\n', ''))
  .map(([m, rest]) => Buffer.from(m + rest, 'latin1'));

test('mutated hellos, HTTP-like prefixes and random bytes never throw and classify the same way twice', async () => {
  const input = fc.oneof(
    mutated(hello.map(helloBytes)),
    mutated(httpLike),
    fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
    fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.concat([Buffer.from([0x16, 0x03]), Buffer.from(a)])),
  );
  await fuzz('first-bytes-any', input, 3000, (bytes) => {
    const r = classifyFirstBytes(bytes);
    checkShape(r);
    expect(classifyFirstBytes(Buffer.from(bytes))).toEqual(r);
    if (r.kind === 'tls') expect(bytes[0]).toBe(0x16);
    if (r.kind === 'http') expect(bytes.subarray(0, r.method.length + 1).toString('latin1')).toBe(`${r.method} `);
  });
});
