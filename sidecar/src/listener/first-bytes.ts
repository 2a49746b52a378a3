// Classifies a redirected connection from its first bytes, without consuming them: a TLS
// ClientHello (→ SNI and offered ALPN), a plain HTTP/1.x request (→ Host comes later from the
// parser), or something else (refused). Pure; bounded: a hello larger than MAX_HELLO_BYTES is
// treated as malformed rather than buffered without end.

export const MAX_HELLO_BYTES = 16 * 1024;

export type FirstBytes =
  | { kind: 'need-more' }
  | { kind: 'tls'; sni: string | undefined; alpn: string[] }
  | { kind: 'http'; method: string }
  | { kind: 'opaque'; reason: string };

const HTTP_METHOD = /^(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH|TRACE|CONNECT|PROPFIND|PROPPATCH|MKCOL|COPY|MOVE|LOCK|UNLOCK|REPORT|SEARCH) /;

export function classifyFirstBytes(buf: Buffer): FirstBytes {
  if (buf.length === 0) return { kind: 'need-more' };
  if (buf[0] === 0x16) return parseClientHello(buf);
  // HTTP: a method token and a space; wait for enough bytes to see one.
  const head = buf.subarray(0, 16).toString('latin1');
  const m = HTTP_METHOD.exec(head);
  if (m) return { kind: 'http', method: m[1]! };
  if (buf.length < 10 && /^[A-Z]*$/.test(head)) return { kind: 'need-more' };
  if (buf[0] === 0x50 && head.startsWith('PRI * HTTP/2')) return { kind: 'opaque', reason: 'cleartext HTTP/2 (h2c) is not supported' };
  return { kind: 'opaque', reason: 'neither TLS nor HTTP' };
}

/** Parses a TLS record holding a ClientHello far enough to read server_name and ALPN. */
export function parseClientHello(buf: Buffer): FirstBytes {
  if (buf.length < 5) return { kind: 'need-more' };
  if (buf[0] !== 0x16) return { kind: 'opaque', reason: 'not a TLS handshake record' };
  if (buf[1] !== 0x03) return { kind: 'opaque', reason: 'unsupported TLS record version' };
  const recordLen = buf.readUInt16BE(3);
  // A ClientHello may span several records; we read only the first record's fragment, which in
  // practice always holds the extensions we need. Hellos beyond the bound are refused.
  if (recordLen > MAX_HELLO_BYTES) return { kind: 'opaque', reason: 'TLS record too large for a ClientHello' };
  if (buf.length < 5 + recordLen) return { kind: 'need-more' };
  const hs = buf.subarray(5, 5 + recordLen);
  try {
    return readHandshake(hs);
  } catch {
    return { kind: 'opaque', reason: 'malformed ClientHello' };
  }
}

class Reader {
  pos = 0;
  readonly buf: Buffer;
  constructor(buf: Buffer) {
    this.buf = buf;
  }
  u8(): number {
    if (this.pos + 1 > this.buf.length) throw new RangeError('short');
    return this.buf[this.pos++]!;
  }
  u16(): number {
    if (this.pos + 2 > this.buf.length) throw new RangeError('short');
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u24(): number {
    return (this.u8() << 16) | this.u16();
  }
  bytes(n: number): Buffer {
    if (this.pos + n > this.buf.length) throw new RangeError('short');
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
}

function readHandshake(hs: Buffer): FirstBytes {
  const r = new Reader(hs);
  if (r.u8() !== 0x01) return { kind: 'opaque', reason: 'first handshake message is not a ClientHello' };
  const len = r.u24();
  const body = new Reader(r.bytes(Math.min(len, hs.length - 4)));
  body.u16(); // legacy_version
  body.bytes(32); // random
  body.bytes(body.u8()); // session id
  body.bytes(body.u16()); // cipher suites
  body.bytes(body.u8()); // compression methods
  let sni: string | undefined;
  const alpn: string[] = [];
  if (body.pos === body.buf.length) return { kind: 'tls', sni, alpn };
  const ext = new Reader(body.bytes(body.u16()));
  while (ext.pos < ext.buf.length) {
    const type = ext.u16();
    const data = new Reader(ext.bytes(ext.u16()));
    if (type === 0x0000) {
      const list = new Reader(data.bytes(data.u16()));
      while (list.pos < list.buf.length) {
        const nameType = list.u8();
        const name = list.bytes(list.u16());
        // latin1: one character per byte, as sent ('ascii' maps 0xAA to '*'); the handoff refuses
        // any name that is not a hostname.
        if (nameType === 0) sni = name.toString('latin1').toLowerCase();
      }
    } else if (type === 0x0010) {
      const list = new Reader(data.bytes(data.u16()));
      while (list.pos < list.buf.length) alpn.push(list.bytes(list.u8()).toString('ascii'));
    }
  }
  return { kind: 'tls', sni, alpn };
}
