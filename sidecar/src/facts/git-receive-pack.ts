// Parses the command section at the start of a git receive-pack request body (pkt-line framed:
// optional shallow lines, the ref update commands with capabilities after a NUL on the first one
// or a signed push certificate, a flush-pkt, then push options when negotiated). It reads only a
// prefix and says how many more bytes it needs; it must never read past `maxBytes`, never throw,
// and never report refs it did not see (a truncated section yields no refs, not some refs).
// Grammar: git Documentation/gitprotocol-pack.txt, "Reference Update Request and Packfile Transfer".

export interface RefUpdate {
  ref: string;
  old: string;
  new: string;
}

export type ReceivePackParse =
  | { status: 'complete'; refs: RefUpdate[]; capabilities: string[]; pushOptions: string[]; bytes: number }
  | { status: 'incomplete'; needBytes: number }
  | { status: 'too-large' }
  | { status: 'invalid'; reason: string };

/** Largest pkt-line git writes (LARGE_PACKET_MAX); a longer length prefix is not a pkt-line. */
const MAX_PKT_LEN = 65520;
const OBJECT_ID = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
const TOO_LARGE: ReceivePackParse = { status: 'too-large' };

type Pkt = { kind: 'data'; payload: string } | { kind: 'flush' } | { kind: 'special' };
/** A pkt-line read, or the parse result when the prefix ends, overruns the cap or is not pkt-lines. */
type Read = { pkt: Pkt; next: number } | { stop: ReceivePackParse };

function readPkt(buf: Buffer, at: number, maxBytes: number): Read {
  if (at + 4 > maxBytes) return { stop: TOO_LARGE };
  if (at + 4 > buf.length) return { stop: { status: 'incomplete', needBytes: at + 4 - buf.length } };
  const hex = buf.toString('latin1', at, at + 4);
  if (!/^[0-9a-f]{4}$/i.test(hex)) return { stop: { status: 'invalid', reason: 'bad pkt-line length' } };
  const len = parseInt(hex, 16);
  if (len === 0) return { pkt: { kind: 'flush' }, next: at + 4 };
  if (len < 4) return { pkt: { kind: 'special' }, next: at + 4 };
  if (len > MAX_PKT_LEN) return { stop: { status: 'invalid', reason: 'pkt-line longer than 65520 bytes' } };
  if (at + len > maxBytes) return { stop: TOO_LARGE };
  if (at + len > buf.length) return { stop: { status: 'incomplete', needBytes: at + len - buf.length } };
  return { pkt: { kind: 'data', payload: buf.toString('utf8', at + 4, at + len) }, next: at + len };
}

function parseCommand(line: string): RefUpdate | undefined {
  const parts = line.split(' ');
  if (parts.length !== 3) return undefined;
  const [old, neu, ref] = parts as [string, string, string];
  if (!OBJECT_ID.test(old) || !OBJECT_ID.test(neu) || old.length !== neu.length || ref === '') return undefined;
  return { ref, old, new: neu };
}

function stripLf(text: string): string {
  return text.endsWith('\n') ? text.slice(0, -1) : text;
}

/**
 * Parses the command section of `prefix`. `maxBytes` is the hard cap: a section that does not
 * end within it is 'too-large'. 'incomplete' carries the minimum number of further bytes needed.
 */
export function parseReceivePackCommands(prefix: Buffer, maxBytes: number): ReceivePackParse {
  const refs: RefUpdate[] = [];
  let capabilities: string[] = [];
  let at = 0;
  let first = true;
  let inCert = false;
  let certBody = false;
  for (;;) {
    const r = readPkt(prefix, at, maxBytes);
    if ('stop' in r) return r.stop;
    at = r.next;
    if (r.pkt.kind === 'special') return { status: 'invalid', reason: 'unexpected delimiter pkt in receive-pack request' };
    if (r.pkt.kind === 'flush') {
      if (inCert) return { status: 'invalid', reason: 'push certificate not terminated' };
      break;
    }
    let line = r.pkt.payload;
    if (first) {
      first = false;
      const nul = line.indexOf('\0');
      if (nul >= 0) {
        capabilities = stripLf(line.slice(nul + 1)).split(' ').filter((c) => c !== '');
        line = line.slice(0, nul);
      }
      if (line === 'push-cert') {
        inCert = true;
        continue;
      }
    }
    line = stripLf(line);
    if (inCert) {
      // Commands follow the blank line that ends the certificate header; signature lines do not parse as commands.
      if (line === 'push-cert-end') inCert = false;
      else if (!certBody) certBody = line === '';
      else {
        const cmd = parseCommand(line);
        if (cmd) refs.push(cmd);
      }
      continue;
    }
    if (line.startsWith('shallow ') && refs.length === 0) {
      first = true; // capabilities ride on the first command, after any shallow lines
      continue;
    }
    const cmd = parseCommand(line);
    if (!cmd) return { status: 'invalid', reason: 'malformed ref update command' };
    refs.push(cmd);
  }
  const pushOptions: string[] = [];
  if (refs.length > 0 && capabilities.includes('push-options')) {
    for (;;) {
      const r = readPkt(prefix, at, maxBytes);
      if ('stop' in r) return r.stop;
      at = r.next;
      if (r.pkt.kind === 'flush') break;
      if (r.pkt.kind === 'special') return { status: 'invalid', reason: 'unexpected delimiter pkt in push options' };
      pushOptions.push(stripLf(r.pkt.payload));
    }
  }
  return { status: 'complete', refs, capabilities, pushOptions, bytes: at };
}
