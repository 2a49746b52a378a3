// The approval verbs as a user meets them before any cluster is involved: the table format, the
// standing-grant filter behind `revoke`, flag mistakes (exit 2, naming the flag), a missing
// kubeconfig (exit 2) and an unreachable API server (exit 1). Against a real API server, as alice,
// bob and mallory: e2e/approvals.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, jest, test } from '@jest/globals';
import type { ApprovalRequest, ApprovalRequestStatus } from '../../api/src/index.ts';
import { approvalsTable, shortDuration } from '../src/commands/approvals.ts';
import { standingGrants } from '../src/commands/revoke.ts';
import { sampleApproval } from '../../testkit/approvals/sample-approval.ts';

const bin = join(import.meta.dirname, '..', 'bin', 'kubectl-sluice.js');
// Each case starts the real CLI (about half a second, several under a loaded parallel run).
jest.setTimeout(30_000);
const NOW = Date.parse('2030-01-01T12:00:00Z');

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { PATH: process.env.PATH, HOME: mkdtempSync(join(tmpdir(), 'cli-home-')), ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function approval(name: string, status?: Partial<ApprovalRequestStatus>, ageS = 42): ApprovalRequest {
  return sampleApproval({ name, status, createdAt: new Date(NOW - ageS * 1000).toISOString(), spec: { expiresAt: new Date(NOW + 558_000).toISOString() } });
}

describe('output', () => {
  test('the table lines up like kubectl and says when each request expires', () => {
    const text = approvalsTable([approval('coder-0-3fa9c1'), approval('coder-0-77aa01', undefined, 7200)], { allNamespaces: true, showState: false, nowMs: NOW });
    expect(text).toBe(
      [
        'NAMESPACE   NAME             POD       CREATOR             SUMMARY                                           SCOPE     AGE   EXPIRES',
        'agents      coder-0-3fa9c1   coder-0   alice@example.com   git push acme/app refs/heads/main on github.com   session   42s   9m',
        'agents      coder-0-77aa01   coder-0   alice@example.com   git push acme/app refs/heads/main on github.com   session   2h    9m',
        '',
      ].join('\n'),
    );
  });

  test('with states: the granted scope and its expiry', () => {
    const text = approvalsTable([approval('a', { scope: 'ttl', expiresAt: new Date(NOW + 3_600_000).toISOString() })], { allNamespaces: false, showState: true, nowMs: NOW });
    expect(text.split('\n')[0]).toMatch(/^NAME +POD +CREATOR +SUMMARY +SCOPE +STATE +DECIDED-BY +AGE +EXPIRES$/);
    expect(text.split('\n')[1]).toMatch(/^a +coder-0 +alice@example.com +git push .* +ttl +Approved +- +42s +60m$/);
  });

  test('who decided (or revoked) sits next to the state; an unknown creator shows as <unknown>', () => {
    const decided = approval('d', { scope: 'once', decidedBy: 'bob@example.com' });
    const revoked = approval('r', { state: 'Revoked', scope: 'session', decidedBy: 'bob@example.com', revokedBy: 'carol@example.com' });
    const unknown = sampleApproval({ name: 'u', spec: { creator: { username: 'sluice:unknown-creator', groups: [] }, expiresAt: new Date(NOW + 1000).toISOString() }, createdAt: new Date(NOW).toISOString() });
    const lines = approvalsTable([decided, revoked, unknown], { allNamespaces: false, showState: true, nowMs: NOW }).split('\n');
    expect(lines[1]).toMatch(/ +Approved +bob@example.com +/);
    expect(lines[2]).toMatch(/ +Revoked +carol@example.com +/);
    expect(lines[3]).toMatch(/^u +coder-0 +<unknown> +.* Pending +- +/);
  });

  test('short durations', () => {
    expect([0, 59_000, 119_000, 120_000, 7_199_000, 7_200_000, 172_800_000, -5].map(shortDuration)).toEqual(['0s', '59s', '119s', '2m', '119m', '2h', '2d', '0s']);
  });

  test('revoke touches only grants that still stand', () => {
    const items = [
      approval('session', { scope: 'session' }),
      approval('ttl-live', { scope: 'ttl', expiresAt: new Date(NOW + 1000).toISOString() }),
      approval('ttl-over', { scope: 'ttl', expiresAt: new Date(NOW - 1000).toISOString() }),
      approval('once', { scope: 'once' }),
      approval('revoked', { scope: 'session', state: 'Revoked' }),
      approval('pending'),
    ];
    expect(standingGrants(items, NOW).map((a) => a.metadata.name)).toEqual(['session', 'ttl-live']);
  });
});

describe('mistakes', () => {
  test.each([
    [['approve', 'x', '--scope', 'forever'], /--scope forever: expected once, session or ttl/],
    [['approve', 'x', '--ttl', '3 days'], /--ttl 3 days: expected a duration such as 30m or 8h/],
    [['approve', 'x', '--scope', 'once', '--ttl', '30m'], /--ttl only goes with --scope ttl/],
    [['deny', 'x'], /required option '--reason <text>' not specified/],
    [['deny', 'x', '--reason', '  '], /--reason must say why/],
    [['approve'], /missing required argument 'id'/],
  ])('%j exits 2', async (args, message) => {
    const res = await run([...args, '--kubeconfig', '/nonexistent']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(message);
  });

  test('no kubeconfig at all → exit 2 saying so', async () => {
    const res = await run(['approvals'], { KUBECONFIG: '/nonexistent/kubeconfig' });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^error: cannot load kubeconfig: /);
  });

  test('an API server that is not there → exit 1, naming what failed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-kc-'));
    const kc = join(dir, 'config');
    writeFileSync(
      kc,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:9', 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'u', user: { token: 't' } }],
        contexts: [{ name: 'x', context: { cluster: 'c', user: 'u', namespace: 'agents' } }],
        'current-context': 'x',
      }),
    );
    const res = await run(['approve', 'coder-0-abc', '--kubeconfig', kc]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^error: approval request agents\/coder-0-abc .*API server unreachable/);
    const ctx = await run(['approvals', '--kubeconfig', kc, '--context', 'nope']);
    expect(ctx.code).toBe(2);
    expect(ctx.stderr).toContain('context "nope" is not in the kubeconfig');
  });
});
