// The receive-pack command parser against git itself: each body is fed to the real
// `git receive-pack --stateless-rpc` (what git http-backend runs for a push) on a fresh bare
// repository, and the refs git actually created must be among the refs the parser reported. A
// body the parser calls a probe (complete, no refs) must change nothing in git. Shapes: push
// certificates whose header ends inside a pkt-line, a flush inside a certificate, commands both
// signed and unsigned, capabilities on a later line, shallow lines between commands, upper-case
// object ids, NULs inside certificate lines, signature markers, delimiters.
import { beforeAll, describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deriveFacts } from '../../src/facts/derive-facts.ts';
import { parseReceivePackCommands } from '../../src/facts/git-receive-pack.ts';

const ZERO = '0'.repeat(40);
let dir: string;
let base: string;
let next: string;
let pack: Buffer;
let seq = 0;

const env = { PATH: process.env.PATH, GIT_CONFIG_NOSYSTEM: '1', HOME: tmpdir(), GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' };
const git = (cwd: string, args: string[], input?: string): string => execFileSync('git', args, { cwd, env, input, encoding: 'utf8' }).trim();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-receive-pack-'));
  git(dir, ['init', '-q', '--bare', '-b', 'main', 'seed.git']);
  git(dir, ['init', '-q', '-b', 'main', 'work']);
  const work = join(dir, 'work');
  writeFileSync(join(work, 'a'), 'a\n');
  git(work, ['add', 'a']);
  git(work, ['commit', '-qm', 'a']);
  git(work, ['push', '-q', join(dir, 'seed.git'), 'main']);
  writeFileSync(join(work, 'b'), 'b\n');
  git(work, ['add', 'b']);
  git(work, ['commit', '-qm', 'b']);
  base = git(work, ['rev-parse', 'HEAD~1']);
  next = git(work, ['rev-parse', 'HEAD']);
  pack = execFileSync('git', ['pack-objects', '--revs', '--stdout', '-q'], { cwd: work, env, input: `${next}\n^${base}\n` });
});

/** Runs the real receive-pack on a copy of the seed repository; returns the refs it changed. */
function gitExecutes(body: Buffer): string[] {
  const repo = join(dir, `r${seq++}.git`);
  cpSync(join(dir, 'seed.git'), repo, { recursive: true });
  spawnSync('git', ['receive-pack', '--stateless-rpc', repo], { env, input: body });
  const refs = git(repo, ['for-each-ref', '--format=%(refname) %(objectname)']).split('\n');
  return refs.filter((l) => l !== `refs/heads/main ${base}` && l !== '').map((l) => l.split(' ')[0]!);
}

const pkt = (s: string | Buffer): Buffer => {
  const b = typeof s === 'string' ? Buffer.from(s, 'latin1') : s;
  return Buffer.concat([Buffer.from((b.length + 4).toString(16).padStart(4, '0')), b]);
};
const body = (...parts: (Buffer | string)[]): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p)));
const cmd = (ref: string, extra = '') => `${ZERO} ${next} ${ref}${extra}\n`;
const certHeader = 'certificate version 0.1\npusher agent 1700000000 +0000\npushee https://github.com/acme/app.git\nnonce 1700000000-abc\n';

const CASES: Array<[string, () => Buffer]> = [
  ['header blank line inside a pkt-line (issue 16, attack 1)', () => body(pkt('push-cert\0report-status\n'), pkt(`${certHeader}\n`), pkt(cmd('refs/heads/hidden')), pkt('push-cert-end\n'), '0000', pack)],
  ['the whole certificate in one pkt-line', () => body(pkt('push-cert\0report-status\n'), pkt(`${certHeader}\n${cmd('refs/heads/onepkt')}`), pkt('push-cert-end\n'), '0000', pack)],
  ['a flush inside the certificate ends the command list', () => body(pkt('push-cert\0report-status\n'), pkt(certHeader), pkt('\n'), pkt(cmd('refs/heads/flushed')), '0000', pack)],
  ['unsigned commands and a certificate', () => body(pkt(cmd('refs/heads/plain', '\0report-status')), pkt('push-cert\n'), pkt('x\n\n'), pkt(cmd('refs/heads/signed')), pkt('push-cert-end\n'), '0000', pack)],
  ['two certificates', () => body(pkt('push-cert\0report-status\n'), pkt('x\n'), pkt('push-cert-end\n'), pkt('push-cert\n'), pkt('\n'), pkt(cmd('refs/heads/second')), pkt('push-cert-end\n'), '0000', pack)],
  ['capabilities on the second command', () => body(pkt(cmd('refs/heads/one')), pkt(cmd('refs/heads/two', '\0report-status')), '0000', pack)],
  ['shallow lines between commands', () => body(pkt(cmd('refs/heads/s1', '\0report-status')), pkt(`shallow ${base}\n`), pkt(cmd('refs/heads/s2')), '0000', pack)],
  ['upper-case object ids', () => body(pkt(`${ZERO} ${next.toUpperCase()} refs/heads/upper\0report-status\n`), '0000', pack)],
  ['a NUL inside a certificate line cuts that line', () => body(pkt('push-cert\0report-status\n'), pkt('certificate version 0.1\n\0junk'), pkt('\n'), pkt(cmd('refs/heads/nulcert')), pkt('push-cert-end\n'), '0000', pack)],
  ['a ref name with a space', () => body(pkt(cmd('refs/heads/a b', '\0report-status')), '0000', pack)],
  ['command lines after a signature marker', () => body(pkt('push-cert\0report-status\n'), pkt(`${certHeader}\n`), pkt('-----BEGIN SSH SIGNATURE-----\n'), pkt(cmd('refs/heads/aftersig')), pkt('push-cert-end\n'), '0000', pack)],
  ['a delimiter instead of a flush', () => body(pkt(cmd('refs/heads/delim', '\0report-status')), '0001', pack)],
  ['a push option section', () => body(pkt(cmd('refs/heads/opts', '\0report-status push-options')), '0000', pkt('ci.skip\n'), '0000', pack)],
  ['the probe git sends before a large push', () => body('0000')],
  ['a flush before the commands', () => body('0000', pkt(cmd('refs/heads/late', '\0report-status')), '0000', pack)],
  ['an empty certificate', () => body(pkt('push-cert\0report-status\n'), pkt('push-cert-end\n'), '0000', pack)],
];

describe('the parser reports every ref git executes', () => {
  test.each(CASES)('%s', (_name, make) => {
    const b = make();
    const executed = gitExecutes(b);
    const parsed = parseReceivePackCommands(b, 65536);
    const facts = deriveFacts({ method: 'POST', host: 'github.com', path: '/acme/app.git/git-receive-pack', query: {}, headers: {} }, b).git!;
    if (parsed.status === 'complete') {
      // Known refs: exactly what git executed (git may refuse some, never run more).
      for (const ref of executed) expect(parsed.refs.map((r) => r.ref)).toContain(ref);
      expect(facts.refs).toEqual(parsed.refs);
    } else {
      // Unknown refs: the policy holds the push, whatever git would do.
      expect(facts.refs).toBeUndefined();
    }
    // A probe (known and empty) is the only thing let through unheld: git must change nothing.
    if (facts.refs?.length === 0) expect(executed).toEqual([]);
    expect(facts.operation).toBe('push');
  });

  test('the certificate attacks are read as the pushes they are', () => {
    // git runs them (the cases above would pass vacuously if it did not)
    expect(gitExecutes(CASES[0]![1]())).toEqual(['refs/heads/hidden']);
    expect(gitExecutes(CASES[3]![1]())).toEqual(['refs/heads/plain', 'refs/heads/signed']);
    expect(gitExecutes(CASES[2]![1]())).toEqual(['refs/heads/flushed']);
    const hidden = parseReceivePackCommands(CASES[0]![1](), 65536);
    expect(hidden.status === 'complete' && hidden.refs).toEqual([{ ref: 'refs/heads/hidden', old: ZERO, new: next }]);
    const both = parseReceivePackCommands(CASES[3]![1](), 65536);
    expect(both.status === 'complete' && both.refs.map((r) => r.ref)).toEqual(['refs/heads/plain', 'refs/heads/signed']);
    const upper = parseReceivePackCommands(CASES[7]![1](), 65536);
    expect(upper.status === 'complete' && upper.refs[0]!.new).toBe(next);
  });
});

describe('what the parser cannot read is never a probe', () => {
  const push = (b: Buffer, headers: Record<string, string> = {}) =>
    deriveFacts({ method: 'POST', host: 'github.com', path: '/acme/app.git/git-receive-pack', query: {}, headers }, b).git!;

  test.each([
    ['truncated inside a pkt-line', () => pkt(cmd('refs/heads/x', '\0report-status')).subarray(0, 20)],
    ['truncated before the flush', () => pkt(cmd('refs/heads/x', '\0report-status'))],
    ['a certificate without its blank line', () => body(pkt('push-cert\0report-status\n'), pkt(certHeader), pkt('push-cert-end\n'), '0000')],
    ['a certificate that never ends', () => body(pkt('push-cert\0report-status\n'), pkt(`${certHeader}\n`))],
    ['a length of 3', () => body('0003', '0000')],
    ['an error packet', () => body(pkt('ERR nope'), '0000')],
    ['mixed hash lengths', () => body(pkt(`${ZERO} ${'b'.repeat(64)} refs/heads/x\n`), '0000')],
    ['an empty pkt-line', () => body('0004', '0000')],
  ])('%s', (_name, make) => {
    expect(push(make()).refs).toBeUndefined();
  });

  test('a content-encoded body whose raw bytes also read as pkt-lines is ambiguous', () => {
    const raw = body(pkt(cmd('refs/heads/x', '\0report-status')), '0000');
    expect(push(raw, { 'content-encoding': 'br' }).refs).toBeUndefined();
    expect(push(body('0000'), { 'content-encoding': 'br' }).refs).toBeUndefined();
  });

  test('over the size bound the refs are unknown', () => {
    const many = body(...Array.from({ length: 800 }, (_, i) => pkt(cmd(`refs/tags/t${i}`))), '0000');
    expect(many.length).toBeGreaterThan(65536);
    expect(push(many.subarray(0, 65536)).refs).toBeUndefined();
  });
});

// Generated command sections (seeded fast-check) through real git: unsigned commands, shallow lines
// and capabilities around a push certificate whose pieces (header, blank lines, commands,
// signature markers, NULs) land in pkt-lines one by one or joined, ended by push-cert-end or a
// flush. Whatever the shape, a section the parser calls complete lists every ref git updated, and
// a probe (complete, no refs) changes nothing.
describe('generated sections against git (property)', () => {
  let n = 0;
  const unsigned = fc.constantFrom('cmd', 'caps', 'shallow', 'nul-cmd');
  const certPart = fc.constantFrom('header', 'blank', 'header-blank', 'cmd', 'sig', 'nul', 'cmd-no-lf');
  const section = fc.record({
    before: fc.array(unsigned, { maxLength: 3 }),
    cert: fc.option(fc.record({ parts: fc.array(certPart, { maxLength: 6 }), join: fc.boolean(), end: fc.constantFrom('end', 'flush') })),
    after: fc.array(unsigned, { maxLength: 2 }),
  });

  const unsignedLine = (u: string): Buffer => {
    const ref = `refs/heads/g${n++}`;
    if (u === 'caps') return pkt(cmd(ref, '\0report-status'));
    if (u === 'shallow') return pkt(`shallow ${base}\n`);
    if (u === 'nul-cmd') return pkt(`${ZERO} ${next} ${ref}\0junk\0more\n`);
    return pkt(cmd(ref));
  };
  const certText = (p: string): string => {
    const ref = `refs/heads/c${n++}`;
    if (p === 'header') return certHeader;
    if (p === 'blank') return '\n';
    if (p === 'header-blank') return `${certHeader}\n`;
    if (p === 'sig') return '-----BEGIN PGP SIGNATURE-----\n';
    if (p === 'nul') return `${ZERO} ${next} ${ref}\0x\n`;
    if (p === 'cmd-no-lf') return `${ZERO} ${next} ${ref}`;
    return cmd(ref);
  };

  function render(s: { before: string[]; cert: { parts: string[]; join: boolean; end: string } | null; after: string[] }): Buffer {
    const out: Buffer[] = s.before.map(unsignedLine);
    if (s.cert) {
      out.push(pkt(out.length === 0 ? 'push-cert\0report-status\n' : 'push-cert\n'));
      const texts = s.cert.parts.map(certText);
      if (s.cert.join && texts.length) out.push(pkt(texts.join('')));
      else out.push(...texts.map(pkt));
      if (s.cert.end === 'end') out.push(pkt('push-cert-end\n'));
    }
    if (!s.cert || s.cert.end === 'end') out.push(...s.after.map(unsignedLine));
    return Buffer.concat([...out, Buffer.from('0000'), pack]);
  }

  test('complete sections list every ref git updates; probes change nothing', () => {
    fc.assert(
      fc.property(section, (s) => {
        const b = render(s);
        const parsed = parseReceivePackCommands(b, 65536);
        const executed = gitExecutes(b);
        if (parsed.status !== 'complete') return;
        for (const ref of executed) expect(parsed.refs.map((r) => r.ref)).toContain(ref);
        if (parsed.refs.length === 0) expect(executed).toEqual([]);
      }),
      { seed: 0x9e7, numRuns: 100 },
    );
  }, 120_000);
});
