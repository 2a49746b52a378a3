// `make demo` as a new user sees it: the real sidecar in front of real git and curl. Every step's
// verdict line is asserted (verdict, code, masked rule names), then the replay and verify of the
// recorded session — so a demo that prints FAIL, or a right answer read wrongly (an HTTP/2 status
// line the parser did not know), fails here instead of on a user's first run.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from '@jest/globals';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');

let out: string;
beforeAll(async () => {
  // Not a TTY: no colour codes. The demo must finish well inside its own curl timeouts.
  const r = await run(process.execPath, [join(ROOT, 'sidecar', 'src', 'demo', 'main.ts')], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  out = r.stdout;
}, 150_000);

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
    ['publish a package', /^DENY {2}registry\.write_denied: /],
    ['upload the source to a paste site', /^DENY {2}net\.not_allowlisted: refused at CONNECT/],
    ['connect to an IP address', /^DENY {2}net\.ip_literal_denied: /],
    ['push a commit', /^HOLD {2}git reports: .*403/],
  ])('%s', (say, expected) => {
    expect(verdict(say)).toMatch(expected);
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
    expect(replay).toMatch(/session_end/);
    expect(out).toMatch(/^ok: session [0-9a-f-]+: \d+ events, seq 0\.\.\d+, chain intact, ended; head [0-9a-f]{64}$/m);
  });
});
