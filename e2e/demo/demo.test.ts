// `make demo` as a new user sees it: the real sidecar in front of real git and curl. Every step's
// verdict line is asserted (verdict, code, masked rule names), then the replay and verify of the
// recorded session — so a demo that prints FAIL, or a right answer read wrongly (an HTTP/2 status
// line the parser did not know), fails here instead of on a user's first run. Held requests go
// through the approval round trip (demo/approvals-api.ts, no cluster): the pod's
// creator is refused by the webhook's rules, a second approver's decision releases the request.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from '@jest/globals';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');

let out: string;
beforeAll(async () => {
  // Not a TTY: no colour codes. The demo must finish well inside its own curl timeouts.
  const r = await run(process.execPath, [join(ROOT, 'demo', 'main.ts')], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  out = r.stdout;
}, 150_000);

/** Everything a step printed: its `▶ say` heading up to the next heading or blank line. */
function section(say: string): string {
  const at = out.indexOf(`▶ ${say}\n`);
  if (at < 0) throw new Error(`the demo printed no step "${say}":\n${out}`);
  const rest = out.slice(at + say.length + 3);
  const end = rest.search(/^(▶|$)/m);
  return rest.slice(0, end < 0 ? undefined : end);
}

/** The line printed under a step's `▶ say` heading. */
function verdict(say: string): string {
  const lines = out.split('\n');
  const at = lines.indexOf(`▶ ${say}`);
  if (at < 0) throw new Error(`the demo printed no step "${say}":\n${out}`);
  return lines[at + 1]!.trim();
}

describe('make demo', () => {
  it('never prints FAIL', () => {
    expect(out).not.toMatch(/^\s*FAIL/m);
  });

  it.each([
    ['clone the repository', /^ALLOW clone the repository succeeded$/],
    ['install a dependency', /^ALLOW upstream answered 200$/],
    ['ask the model for help', /^ALLOW upstream answered 200$/],
    ['read the deployment settings (they contain AWS keys)', /^ALLOW upstream answered 200; masked 2 secret\(s\): aws-access-key-id, aws-secret-access-key$/],
    ['read a credentials file', /^HOLD {2}paths\.credential_read_held: /],
    ['push a commit', /^HOLD {2}git\.push_requires_approval: git push to acme\/app \(refs\/heads\/main\) needs approval$/],
    ['publish a package', /^DENY {2}registry\.write_denied: /],
    ['upload the source to a paste site', /^DENY {2}net\.not_allowlisted: refused at CONNECT/],
    ['connect to an IP address', /^DENY {2}net\.ip_literal_denied: /],
  ])('%s', (say, expected) => {
    expect(verdict(say)).toMatch(expected);
  });

  it('a held push: the approver sees it, the pod’s creator cannot approve it, a second approver can, and the push goes through', () => {
    const step = section('push a commit');
    const name = /^ {8}waiting for approval (coder-0-[0-9a-f]{6}): git push acme\/app refs\/heads\/main on github\.com$/m.exec(step)?.[1];
    expect(name).toBeDefined();
    expect(step).toMatch(new RegExp(`^ {4}${name} +coder-0 +alice@example\\.com +git push acme/app refs/heads/main on github\\.com +session `, 'm'));
    const alice = step.indexOf(`$ kubectl sluice approve ${name}   # as alice@example.com, who created the pod`);
    const bob = step.indexOf(`$ kubectl sluice approve ${name}   # as bob@example.com, an approver`);
    expect(alice).toBeGreaterThan(0);
    expect(bob).toBeGreaterThan(alice);
    expect(step.slice(alice, bob)).toMatch(
      /error: forbidden: admission webhook "approvals\.sluice\.io" denied the request: sluice approval\.self_approval: status\.state: alice@example\.com created pod coder-0 and cannot approve its requests/,
    );
    expect(step.slice(bob)).toContain(`approved agents/${name}: git push acme/app refs/heads/main on github.com (scope session, by bob@example.com)`);
    expect(step.trimEnd().split('\n').pop()).toBe('  then: ALLOW push a commit succeeded');
  });

  it('a held credentials read denied by an approver is refused with the reason', () => {
    const step = section('read a credentials file');
    expect(step).toMatch(/\$ kubectl sluice deny coder-0-[0-9a-f]{6} --reason 'credentials stay out of the agent' {3}# as bob@example\.com, an approver/);
    expect(step.trimEnd().split('\n').pop()).toBe('  then: DENY  approval.denied: denied by bob@example.com: credentials stay out of the agent');
  });

  it('shows the agent the masked settings, never the keys', () => {
    expect(out).toContain('"aws_access_key_id":"[REDACTED:aws-access-key-id]"');
    expect(out).not.toContain('AKIAQ4T7ZK2MWX3RPL6N');
    expect(out).not.toContain('wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8Lk3Tq9V');
  });

  it('replays the recorded session and verifies its chain', () => {
    const replay = out.slice(out.indexOf('▶ kubectl sluice replay'));
    expect(replay).toMatch(/#0 +session_start pod /);
    expect(replay).toMatch(/GET https:\/\/raw\.githubusercontent\.com\/acme\/app\/main\/deploy\/settings\.json → allow /);
    expect(replay).toMatch(/response +200 .*masked 2 \(aws-access-key-id×1, aws-secret-access-key×1\)/);
    expect(replay).toMatch(/POST https:\/\/github\.com\/acme\/app\.git\/git-receive-pack \[git push acme\/app refs\/heads\/main\] → hold git\.push_requires_approval/);
    // The approval steps are in the chain: requested, decided by bob, then the released push answered.
    expect(replay).toMatch(/approval +req=\S+ code=git\.push_requires_approval name=coder-0-[0-9a-f]{6} .*type=requested/);
    expect(replay).toMatch(/approval +decidedBy=bob@example\.com name=coder-0-[0-9a-f]{6} outcome=approved .*scope=session type=decided/);
    expect(replay).toMatch(/approval +code=approval\.denied decidedBy=bob@example\.com .*outcome=denied .*type=decided/);
    expect(replay).not.toMatch(/decidedBy=alice/);
    expect(replay).toMatch(/session_end/);
    expect(out).toMatch(/^ok: session [0-9a-f-]+: \d+ events, seq 0\.\.\d+, chain intact, ended; head [0-9a-f]{64}$/m);
  });
});
