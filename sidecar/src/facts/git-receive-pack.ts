// Reads the command section at the start of a git receive-pack request body the way git's own
// receive-pack does (builtin/receive-pack.c, read_head_info / queue_command /
// queue_commands_from_cert): pkt-lines up to the first flush, shallow lines anywhere, ref update
// commands with capabilities after a NUL on any line, signed push certificates whose text is the
// concatenation of their pkt-lines (so the blank line ending the certificate header may sit inside
// any pkt-line), then push options when negotiated; the packfile follows.
//
// It must report every command some git would execute: 'complete' with no refs is the one answer
// that lets a push through as a probe, so it is given only when the section provably carries no
// command. Whatever it cannot read exactly — a truncated or oversized section, a line git would
// die on, a certificate whose end is read differently by different git versions — is 'invalid',
// 'incomplete' or 'too-large', which the facts report as unknown refs (held). It reads only the
// given prefix, never past `maxBytes`, never throws.
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

/** Largest pkt-line git writes or reads (LARGE_PACKET_MAX); a longer length prefix is not a pkt-line. */
const MAX_PKT_LEN = 65520;
const TOO_LARGE: ReceivePackParse = { status: 'too-large' };
/**
 * Lines that start a signature inside a signed buffer (gpg-interface.c): git takes the last line
 * starting with one of these as the end of the certificate's commands. Versions differ in which
 * markers they know, so lines after any of them that read as commands make the section ambiguous.
 */
const SIGNATURE_MARKERS = ['-----BEGIN PGP SIGNATURE-----', '-----BEGIN PGP MESSAGE-----', '-----BEGIN SIGNED MESSAGE-----', '-----BEGIN SSH SIGNATURE-----'];
/** old SP new SP ref — object ids of one hash algorithm (SHA-1 or SHA-256), hex of either case. */
const COMMAND = /^(?:([0-9a-fA-F]{40}) ([0-9a-fA-F]{40})|([0-9a-fA-F]{64}) ([0-9a-fA-F]{64})) /;
const SHALLOW = /^shallow (?:[0-9a-fA-F]{64}|[0-9a-fA-F]{40})/;

/** Payloads are latin1 strings (one char per byte) so offsets and NULs stay byte-exact. */
type Pkt = { kind: 'data'; payload: string } | { kind: 'flush' };
/** A pkt-line read, or the parse result when the prefix ends, overruns the cap or is not pkt-lines. */
type Read = { pkt: Pkt; next: number } | { stop: ReceivePackParse };

const invalid = (reason: string): { stop: ReceivePackParse } => ({ stop: { status: 'invalid', reason } });

function readPkt(buf: Buffer, at: number, maxBytes: number): Read {
  if (at + 4 > maxBytes) return { stop: TOO_LARGE };
  if (at + 4 > buf.length) return { stop: { status: 'incomplete', needBytes: at + 4 - buf.length } };
  const hex = buf.toString('latin1', at, at + 4);
  if (!/^[0-9a-fA-F]{4}$/.test(hex)) return invalid('bad pkt-line length');
  const len = parseInt(hex, 16);
  if (len === 0) return { pkt: { kind: 'flush' }, next: at + 4 };
  // 0001 (delim) and 0002 (response-end) end git's command loop like a flush, but other servers
  // (JGit) read them as lines: no client sends them in a push, so the section is not read as a probe.
  if (len === 1 || len === 2) return invalid('delimiter packet in a receive-pack request');
  if (len === 3) return invalid('pkt-line length 3');
  if (len > MAX_PKT_LEN) return invalid('pkt-line longer than 65520 bytes');
  if (at + len > maxBytes) return { stop: TOO_LARGE };
  if (at + len > buf.length) return { stop: { status: 'incomplete', needBytes: at + len - buf.length } };
  const payload = buf.toString('latin1', at + 4, at + len);
  // git's reader dies on an error packet (PACKET_READ_DIE_ON_ERR_PACKET).
  if (payload.startsWith('ERR ')) return invalid('error packet in a receive-pack request');
  return { pkt: { kind: 'data', payload }, next: at + len };
}

/** Bytes read as latin1 back to the UTF-8 text git wrote. */
function utf8(latin1: string): string {
  return Buffer.from(latin1, 'latin1').toString('utf8');
}

/** queue_command: old and new object ids of one length, a space after each, the rest is the ref name. */
function parseCommand(line: string): RefUpdate | undefined {
  const m = COMMAND.exec(line);
  if (!m) return undefined;
  const old = (m[1] ?? m[3])!.toLowerCase();
  const neu = (m[2] ?? m[4])!.toLowerCase();
  return { ref: utf8(line.slice(m[0].length)), old, new: neu };
}

function chomp(text: string): string {
  return text.endsWith('\n') ? text.slice(0, -1) : text;
}

/** Whether a certificate line starts a signature (gpg-interface.c get_format_by_sig). */
function startsSignature(line: string): boolean {
  return SIGNATURE_MARKERS.some((m) => line.startsWith(m));
}

/**
 * queue_commands_from_cert: the commands are the lines after the first "\n\n" of the whole
 * certificate text and before the last line that starts a signature; each must be a command.
 */
function commandsFromCert(cert: string): RefUpdate[] | string {
  const blank = cert.indexOf('\n\n');
  if (blank < 0) return 'push certificate without a blank line after its header';
  const lines: { start: number; text: string }[] = [];
  for (let at = 0; at < cert.length; ) {
    const eol = cert.indexOf('\n', at);
    const end = eol < 0 ? cert.length : eol;
    lines.push({ start: at, text: cert.slice(at, end) });
    at = end + 1;
  }
  let sigStart = cert.length;
  for (const l of lines) if (startsSignature(l.text)) sigStart = l.start;
  const boc = blank + 2;
  const refs: RefUpdate[] = [];
  for (const l of lines) {
    if (l.start < boc) continue;
    if (l.start < sigStart) {
      const cmd = parseCommand(l.text);
      if (!cmd) return 'malformed ref update command in push certificate';
      refs.push(cmd);
    } else if (COMMAND.test(l.text)) {
      // A git that does not know this signature marker reads these lines as commands.
      return 'ref update command after a signature marker in push certificate';
    }
  }
  return refs;
}

/**
 * Parses the command section of `prefix`. `maxBytes` is the hard cap: a section that does not
 * end within it is 'too-large'. 'incomplete' carries the minimum number of further bytes needed.
 */
export function parseReceivePackCommands(prefix: Buffer, maxBytes: number): ReceivePackParse {
  const refs: RefUpdate[] = [];
  const capabilities = new Set<string>();
  let cert = '';
  let at = 0;
  commands: for (;;) {
    const r = readPkt(prefix, at, maxBytes);
    if ('stop' in r) return r.stop;
    at = r.next;
    if (r.pkt.kind !== 'data') break;
    const line = chomp(r.pkt.payload);
    // git checks the shallow prefix before looking for capabilities (pktlen > 8 after chomping).
    if (line.length > 8 && line.startsWith('shallow ')) {
      if (!SHALLOW.test(line)) return { status: 'invalid', reason: 'malformed shallow line' };
      continue;
    }
    // Capabilities may follow a NUL on any line; the line itself ends at the NUL (strlen).
    const nul = line.indexOf('\0');
    const text = nul >= 0 ? line.slice(0, nul) : line;
    if (nul >= 0) for (const c of line.slice(nul + 1).split(' ')) if (c !== '') capabilities.add(c);
    if (text === 'push-cert') {
      // The certificate is the concatenation of its pkt-lines, each up to its first NUL, until
      // "push-cert-end\n"; a flush inside it ends the whole command list.
      for (;;) {
        const c = readPkt(prefix, at, maxBytes);
        if ('stop' in c) return c.stop;
        at = c.next;
        if (c.pkt.kind === 'flush') break commands;
        if (c.pkt.payload === 'push-cert-end\n') break;
        const end = c.pkt.payload.indexOf('\0');
        cert += end >= 0 ? c.pkt.payload.slice(0, end) : c.pkt.payload;
      }
      continue;
    }
    const cmd = parseCommand(text);
    if (!cmd) return { status: 'invalid', reason: 'malformed ref update command' };
    refs.push(cmd);
  }
  if (cert !== '') {
    const signed = commandsFromCert(cert);
    if (typeof signed === 'string') return { status: 'invalid', reason: signed };
    refs.push(...signed);
  }
  const pushOptions: string[] = [];
  if (refs.length > 0 && capabilities.has('push-options')) {
    for (;;) {
      const r = readPkt(prefix, at, maxBytes);
      if ('stop' in r) return r.stop;
      at = r.next;
      if (r.pkt.kind !== 'data') break;
      pushOptions.push(utf8(chomp(r.pkt.payload)));
    }
  }
  return { status: 'complete', refs, capabilities: [...capabilities], pushOptions, bytes: at };
}
