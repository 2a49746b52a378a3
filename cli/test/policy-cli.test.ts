// `kubectl sluice policy eval|test` as a user runs it: the real binary, real exit codes, and
// messages that name the problem instead of a stack trace.
import { describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { agentInput } from '../../policies/cases/cases.ts';
import { repoRoot, scratchDir } from '../../testkit/policy/opa-build.ts';

const bin = join(repoRoot, 'cli', 'bin', 'kubectl-sluice.js');

function run(args: string[], stdin?: string) {
  const res = spawnSync(process.execPath, [bin, ...args], { input: stdin, encoding: 'utf8' });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

function inputFile(value: unknown): string {
  const file = join(scratchDir('cli-'), 'input.json');
  writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value));
  return file;
}

describe('policy eval', () => {
  test('a git push evaluates to require_approval and exits 0', () => {
    const input = agentInput(
      { method: 'POST', host: 'github.com', path: '/acme/app.git/git-receive-pack' },
      { git: { service: 'git-receive-pack', operation: 'push', phase: 'rpc', repo: 'acme/app', refs: [{ ref: 'refs/heads/main', old: 'a', new: 'b' }] } },
    );
    const res = run(['policy', 'eval', '--input', inputFile(input)]);
    expect(res.code).toBe(0);
    const out = JSON.parse(res.stdout) as { action: string; decision: { code: string; require_approval: { scope: string } } };
    expect(out.action).toBe('hold');
    expect(out.decision.code).toBe('git.push_requires_approval');
    expect(out.decision.require_approval.scope).toBe('session');
  });

  test('an unknown host is denied (read from stdin)', () => {
    const res = run(['policy', 'eval', '-i', '-'], JSON.stringify(agentInput({ method: 'GET', host: 'paste.example', path: '/' })));
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ action: 'deny', decision: { allow: false, code: 'net.not_allowlisted' } });
  });

  test('malformed JSON exits 2 with the parser message', () => {
    const res = run(['policy', 'eval', '--input', inputFile('{"request": ')]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^error: input .* is not valid JSON/);
    expect(res.stderr).not.toMatch(/at .*\.ts:\d+/);
  });

  test('an input that violates the schema exits 2 naming the field and what was expected', () => {
    const bad = agentInput({ method: 'GET', host: 'github.com', path: '/' }) as unknown as { request: Record<string, unknown> };
    bad.request.port = 'https';
    const res = run(['policy', 'eval', '--input', inputFile(bad)]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('request.port');
    expect(res.stderr).toMatch(/expected number/);
  });

  test('a missing input file exits 2', () => {
    const res = run(['policy', 'eval', '--input', '/nonexistent.json']);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('ENOENT');
  });

  test('a missing bundle exits 1 and says how to build one', () => {
    const res = run(['policy', 'eval', '--input', inputFile(agentInput({ method: 'GET', host: 'a.b', path: '/' })), '--bundle', '/nonexistent']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('make policy');
  });

  test('--help works on every verb', () => {
    for (const args of [['--help'], ['policy', '--help'], ['policy', 'eval', '--help'], ['policy', 'test', '--help']]) {
      const res = run(args);
      expect(res.code).toBe(0);
      expect(res.stdout).toContain('Usage: kubectl-sluice');
    }
  });

  test('an unknown verb exits 2 with a suggestion', () => {
    const res = run(['policy', 'evl']);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('Did you mean eval?');
  });
});

describe('policy test', () => {
  test('runs the Rego unit tests of the default library', () => {
    const res = run(['policy', 'test']);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/PASS: \d+\/\d+/);
  });

  test('exits 1 when a Rego test fails', () => {
    const dir = scratchDir('rego-');
    const rego = join(dir, 'rego');
    spawnSync('mkdir', ['-p', rego]);
    writeFileSync(join(rego, 'x_test.rego'), 'package x_test\n\ntest_fails if 1 == 2\n');
    const res = run(['policy', 'test', '--dir', dir]);
    expect(res.code).toBe(1);
    expect(res.stdout).toContain('FAIL');
  });
});
