// Fuzzing the receive-pack command parser (facts/git-receive-pack.ts), which decides whether a
// push is a probe: pkt-line streams of commands (SHA-1/SHA-256 ids, either case, capabilities
// after a NUL), shallow lines, flushes, push options, and signed push certificates whose text is
// split into pkt-lines at random points (the blank line ending the header inside a line — issue
// 16's push hidden in a certificate), followed by a packfile; then byte-mutated.
// Properties: it never throws and never reads past the cap; "complete with no refs" (the answer
// that lets a push through as a probe) is never given when an independent, simpler reading finds
// a command line anywhere in the section (a pkt-line, or a line of the concatenated text);
// bytes after the section never change the result; an 'incomplete' prefix stays incomplete until
// it has the bytes it asked for.
import { afterAll, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { parseReceivePackCommands } from '../../src/facts/git-receive-pack.ts';
import type { ReceivePackParse } from '../../src/facts/git-receive-pack.ts';
import { fuzz, mutated, printReports } from './fuzz-harness.ts';

afterAll(printReports);

const pkt = (payload: string): string => (payload.length + 4).toString(16).padStart(4, '0') + payload;
const hex = fc.oneof(
  fc.constantFrom('0'.repeat(40), 'a'.repeat(40), 'B'.repeat(40), '1'.repeat(64), 'c'.repeat(64), '0'.repeat(39), 'g'.repeat(40)),
  fc.stringMatching(/^[0-9a-f]{40}$/),
);
const ref = fc.constantFrom('refs/heads/main', 'refs/tags/v1', 'refs/heads/ü', 'HEAD', '', 'refs/heads/a b', 'refs/heads/x\0y');
const command = fc.tuple(hex, hex, ref).map(([a, b, r]) => `${a} ${b} ${r}`);
const caps = fc.option(fc.constantFrom('\0report-status side-band-64k', '\0push-options', '\0 push-cert=123 atomic', '\0'), { nil: '' });

const CERT_HEAD = ['certificate version 0.1\n', 'pusher A U Thor <a@example.com> 1700000000 +0000\n', 'pushee https://github.com/acme/app.git\n', 'nonce 1700000000-abc\n'];
const SIG = ['-----BEGIN PGP SIGNATURE-----\n', 'iQEzBAABCAAdFiEE\n', '-----END PGP SIGNATURE-----\n'];
const certText = fc
  .record({
    head: fc.subarray(CERT_HEAD),
    blank: fc.constantFrom('\n', '', '\n\n', ' \n'),
    commands: fc.array(command.map((c) => `${c}\n`), { maxLength: 3 }),
    sig: fc.constantFrom(SIG, [], ['-----BEGIN SSH SIGNATURE-----\n', 'x\n'], ['-----BEGIN PGP MESSAGE-----\n']),
    after: fc.array(command.map((c) => `${c}\n`), { maxLength: 1 }),
  })
  .map((c) => [...c.head, c.blank, ...c.commands, ...c.sig, ...c.after].join(''));
/** Certificate text split into pkt-lines at arbitrary points (each at most 200 bytes). */
const certPkts = fc.tuple(certText, fc.array(fc.integer({ min: 1, max: 200 }), { maxLength: 12 }), fc.boolean()).map(([text, sizes, end]) => {
  const out: string[] = [];
  let at = 0;
  for (const n of [...sizes, 200]) {
    while (at < text.length && out.length < 64) {
      out.push(pkt(text.slice(at, at + n)));
      at += n;
      if (n !== 200) break;
    }
  }
  return `${pkt('push-cert\0report-status')}${out.join('')}${end ? pkt('push-cert-end\n') : ''}`;
});

const item = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(command, caps, fc.boolean()).map(([c, cap, nl]) => pkt(`${c}${cap}${nl ? '\n' : ''}`)) },
  { weight: 1, arbitrary: hex.map((h) => pkt(`shallow ${h}`)) },
  { weight: 2, arbitrary: certPkts },
  { weight: 2, arbitrary: fc.constant('0000') },
  { weight: 1, arbitrary: fc.constantFrom(pkt('ci.skip'), pkt('\n'), '0001', '0002', '0003', 'ffff', pkt('ERR x'), pkt('PACK'), pkt(`\0report-status`)) },
);
const body = fc.tuple(fc.array(item, { minLength: 1, maxLength: 8 }), fc.constantFrom('', 'PACK\0\0\0\x02\0\0\0\0', '0000')).map(([items, tail]) => Buffer.from(items.join('') + tail, 'latin1'));
const input = fc.record({ body: fc.oneof({ weight: 3, arbitrary: body }, { weight: 1, arbitrary: mutated(body) }), cap: fc.oneof(fc.constant(64 * 1024), fc.integer({ min: 8, max: 2048 })) });

const COMMAND_LINE = /^(?:[0-9a-fA-F]{40} [0-9a-fA-F]{40}|[0-9a-fA-F]{64} [0-9a-fA-F]{64}) /;

/**
 * A simpler reading of the section (up to the first flush): a pkt-line outside a certificate
 * whose text is a command, or a line of a certificate's concatenated text after its first blank
 * line (where git's queue_commands_from_cert starts) that looks like one — signature or not.
 */
function oracleSeesCommand(buf: Buffer): boolean {
  const texts: string[] = [];
  for (let at = 0; at + 4 <= buf.length; ) {
    const len = parseInt(buf.toString('latin1', at, at + 4), 16);
    if (len === 0 || !(len >= 4) || at + len > buf.length) break;
    const payload = buf.toString('latin1', at + 4, at + len);
    const cut = payload.indexOf('\0');
    texts.push(cut >= 0 ? payload.slice(0, cut) : payload);
    at += len;
  }
  let cert: string | undefined;
  for (const t of texts) {
    if (cert !== undefined) {
      if (t === 'push-cert-end\n') {
        if (certCommands(cert)) return true;
        cert = undefined;
      } else cert += t;
      continue;
    }
    if (t.replace(/\n$/, '') === 'push-cert') cert = '';
    else if (COMMAND_LINE.test(t)) return true;
  }
  return cert !== undefined && certCommands(cert);
}

function certCommands(cert: string): boolean {
  const blank = cert.indexOf('\n\n');
  return blank >= 0 && cert.slice(blank + 2).split('\n').some((l) => COMMAND_LINE.test(l));
}

function check(r: ReceivePackParse, buf: Buffer, cap: number): void {
  expect(['complete', 'incomplete', 'too-large', 'invalid']).toContain(r.status);
  if (r.status === 'complete') {
    expect(r.bytes).toBeLessThanOrEqual(Math.min(cap, buf.length));
    for (const u of r.refs) expect(u.old.length === u.new.length && /^[0-9a-f]+$/.test(u.old + u.new)).toBe(true);
  }
  if (r.status === 'incomplete') {
    expect(r.needBytes).toBeGreaterThan(0);
    expect(buf.length + r.needBytes).toBeLessThanOrEqual(cap);
  }
}

test('receive-pack sections: never a probe when a command is there, stable under what follows and how it is cut', async () => {
  await fuzz('git-receive-pack', input, 4000, ({ body: buf, cap }) => {
    const r = parseReceivePackCommands(buf, cap);
    check(r, buf, cap);
    if (r.status === 'complete') {
      const section = buf.subarray(0, r.bytes);
      if (r.refs.length === 0) expect({ probe: true, commandInSection: oracleSeesCommand(section) }).toEqual({ probe: true, commandInSection: false });
      // The section alone, or followed by anything, reads the same.
      expect(parseReceivePackCommands(section, cap)).toEqual(r);
      expect(parseReceivePackCommands(Buffer.concat([section, Buffer.from(`${pkt('0'.repeat(40) + ' ' + 'f'.repeat(40) + ' refs/heads/x')}0000`)]), cap)).toEqual(r);
    }
    if (r.status === 'incomplete' && r.needBytes > 1) {
      const longer = Buffer.concat([buf, Buffer.alloc(r.needBytes - 1, 0x30)]);
      expect(parseReceivePackCommands(longer, cap).status).toBe('incomplete');
    }
    // Any prefix is never read as more permissive than the whole: a probe prefix is a probe whole.
    for (const cut of [1, 4, 8, Math.floor(buf.length / 2)]) {
      if (cut >= buf.length) continue;
      const p = parseReceivePackCommands(buf.subarray(0, cut), cap);
      check(p, buf.subarray(0, cut), cap);
      if (p.status === 'complete') expect(parseReceivePackCommands(buf, cap)).toEqual(p);
    }
  });
});
