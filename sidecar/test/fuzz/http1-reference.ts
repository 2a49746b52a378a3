// An independent, deliberately plain reading of HTTP/1.1 request bytes (RFC 9112), used by the
// fuzzing suite as the reference a real server would agree with: where the message boundaries
// are, and which messages are unambiguous. It is strict where RFC 9112 says a server must reject
// or where servers are known to disagree (request smuggling): bare CR or LF, obs-fold,
// whitespace before the colon, Transfer-Encoding together with Content-Length, a transfer coding
// list that does not end in exactly one chunked, several or non-decimal Content-Lengths, chunk
// sizes that are not plain hex or are absurdly long, NUL and other controls in fields. Anything
// sluice forwards must be a message this reading accepts, with the same method, body and target.
// Test code only: it is a yardstick, never on the request path.

export interface RefMessage {
  method: string;
  target: string;
  headers: [string, string][];
  body: Buffer;
  /** framed soundly but one a server must refuse (e.g. two Host fields): never to be forwarded */
  refused?: string;
}

export interface RefParse {
  messages: RefMessage[];
  /** clean: the bytes end after a message; incomplete: a message is cut; error: a message is
   *  one a server must refuse; opaque: CONNECT/Upgrade — what follows is not HTTP */
  end: 'clean' | 'incomplete' | 'error' | 'opaque';
  error?: string;
  /**
   * The message that was cut or refused in its body, after a head that was fine: a streaming
   * proxy may have sent that head on before the body went wrong (it must then abort it).
   */
  partial?: { method: string; target: string };
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([\x21-\x7e]+) HTTP\/1\.[01]$/;
/** field-value: visible bytes and obs-text with single spaces/tabs inside, no controls. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const MAX_CHUNK_HEX = 8;

class Refusal extends Error {}
class Cut extends Error {}
type Head = { method: string; target: string };
class InBody extends Error {
  readonly head: Head;
  readonly cut: boolean;
  constructor(head: Head, cause: Refusal | Cut) {
    super(cause.message);
    this.head = head;
    this.cut = cause instanceof Cut;
  }
}

function fail(reason: string): never {
  throw new Refusal(reason);
}

/** Reads one CRLF-terminated line at `at` (no bare CR or LF inside); throws Cut when it does not end. */
function line(buf: Buffer, at: number, max: number): { text: string; next: number } {
  const lf = buf.indexOf(0x0a, at);
  if (lf < 0) {
    if (buf.length - at > max) fail('line too long');
    throw new Cut();
  }
  if (lf - at > max) fail('line too long');
  if (lf === at || buf[lf - 1] !== 0x0d) fail('bare LF');
  const text = buf.toString('latin1', at, lf - 1);
  if (text.includes('\r')) fail('bare CR');
  return { text, next: lf + 1 };
}

function parseOne(buf: Buffer, start: number, maxHeaderBytes: number): { message: RefMessage; next: number; opaque: boolean } {
  let at = start;
  const headLimit = start + maxHeaderBytes;
  const request = line(buf, at, maxHeaderBytes);
  at = request.next;
  const m = REQUEST_LINE.exec(request.text);
  if (!m) fail(`bad request line: ${JSON.stringify(request.text.slice(0, 80))}`);
  const [, method, target] = m as unknown as [string, string, string];
  const headers: [string, string][] = [];
  for (;;) {
    if (at > headLimit) fail('header block too large');
    const l = line(buf, at, maxHeaderBytes);
    at = l.next;
    if (l.text === '') break;
    if (l.text[0] === ' ' || l.text[0] === '\t') fail('obs-fold');
    const colon = l.text.indexOf(':');
    if (colon <= 0) fail('field line without a name');
    const name = l.text.slice(0, colon);
    if (!TOKEN.test(name)) fail(`bad field name ${JSON.stringify(name)}`);
    const value = l.text.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (!FIELD_VALUE.test(value)) fail(`control byte in ${name}`);
    headers.push([name.toLowerCase(), value]);
  }
  if (at > headLimit) fail('header block too large');
  const all = (n: string) => headers.filter(([k]) => k === n).map(([, v]) => v);
  const refused = all('host').length !== 1 ? 'not exactly one Host' : undefined;
  const te = all('transfer-encoding');
  const cl = all('content-length');
  const upgrade = all('upgrade').length > 0 || method === 'CONNECT';
  if (te.length > 0) {
    if (cl.length > 0) fail('Transfer-Encoding with Content-Length');
    const codings = te
      .join(',')
      .split(',')
      .map((c) => c.trim().toLowerCase());
    if (codings.some((c) => !TOKEN.test(c))) fail('bad transfer coding');
    if (codings.at(-1) !== 'chunked' || codings.filter((c) => c === 'chunked').length !== 1) fail('transfer codings do not end in one chunked');
  } else if (cl.length > 0) {
    if (cl.length > 1) fail('several Content-Length fields');
    if (!/^\d{1,15}$/.test(cl[0]!)) fail(`bad Content-Length ${JSON.stringify(cl[0])}`);
  }
  try {
    const r = readBody(buf, at, method, target, headers, te, cl, upgrade, maxHeaderBytes);
    if (refused) r.message.refused = refused;
    return r;
  } catch (err) {
    if (err instanceof Refusal || err instanceof Cut) throw new InBody({ method, target }, err);
    throw err;
  }
}

function readBody(buf: Buffer, start: number, method: string, target: string, headers: [string, string][], te: string[], cl: string[], upgrade: boolean, maxHeaderBytes: number): { message: RefMessage; next: number; opaque: boolean } {
  let at = start;
  let body: Buffer;
  if (te.length > 0) {
    const chunks: Buffer[] = [];
    for (;;) {
      const sizeLine = line(buf, at, 1024);
      at = sizeLine.next;
      const sm = /^([0-9a-fA-F]+)((?:[ \t]*;[ \t]*[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:[ \t]*=[ \t]*(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+|"[^"\\]*"))?)*)[ \t]*$/.exec(sizeLine.text);
      if (!sm) fail(`bad chunk size line ${JSON.stringify(sizeLine.text.slice(0, 40))}`);
      const hex = sm[1]!.replace(/^0+(?=.)/, '');
      if (hex.length > MAX_CHUNK_HEX) fail('chunk size too large');
      const size = parseInt(hex, 16);
      if (size === 0) {
        // trailer section
        for (;;) {
          const t = line(buf, at, maxHeaderBytes);
          at = t.next;
          if (t.text === '') break;
          if (t.text[0] === ' ' || t.text[0] === '\t' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e\x80-\xff]*$/.test(t.text)) fail('bad trailer');
        }
        break;
      }
      if (at + size + 2 > buf.length) throw new Cut();
      chunks.push(buf.subarray(at, at + size));
      at += size;
      if (buf[at] !== 0x0d || buf[at + 1] !== 0x0a) fail('chunk data not followed by CRLF');
      at += 2;
    }
    body = Buffer.concat(chunks);
  } else if (cl.length > 0) {
    const n = Number(cl[0]);
    if (at + n > buf.length) throw new Cut();
    body = buf.subarray(at, at + n);
    at += n;
  } else {
    body = Buffer.alloc(0);
  }
  return { message: { method, target, headers, body: Buffer.from(body) }, next: at, opaque: upgrade };
}

/** Reads `buf` as pipelined requests, stopping at the first one that is cut, refused or opaque. */
export function referenceParse(buf: Buffer, maxHeaderBytes = 32 * 1024): RefParse {
  const messages: RefMessage[] = [];
  let at = 0;
  for (;;) {
    // RFC 9112 §2.2: at least one empty line before a request line may be ignored.
    while (buf[at] === 0x0d && buf[at + 1] === 0x0a) at += 2;
    if (at >= buf.length) return { messages, end: 'clean' };
    try {
      const r = parseOne(buf, at, maxHeaderBytes);
      messages.push(r.message);
      at = r.next;
      if (r.opaque) return { messages, end: 'opaque' };
    } catch (err) {
      if (err instanceof InBody) return { messages, end: err.cut ? 'incomplete' : 'error', ...(err.cut ? {} : { error: err.message }), partial: err.head };
      if (err instanceof Cut) return { messages, end: 'incomplete' };
      if (err instanceof Refusal) return { messages, end: 'error', error: err.message };
      throw err;
    }
  }
}
