// `kubectl sluice policy explain` without a sidecar: the rule index (which rule names which code,
// at which line, reading which input fields) over Rego written here and over the shipped library,
// and the real binary on events given on stdin — reproduced, another revision (exit 3), a code only
// sluice itself answers with and a rule that reads headers audit events never record (exit 4).
// Events recorded by a real sidecar: e2e/cli-policy.
import { describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { readBundle } from '../../lib/src/policy/bundle.ts';
import { parseRuleIndex, scanRules } from '../src/policy/rule-index.ts';
import { exitedRows } from '../src/policy/rule-provenance.ts';

const REPO = join(import.meta.dirname, '..', '..');
const BIN = join(REPO, 'cli', 'bin', 'kubectl-sluice.js');
const BUNDLE = join(REPO, 'policies', 'build', 'bundle.tar.gz');

function run(args: string[], stdin?: string) {
  const res = spawnSync(process.execPath, [BIN, ...args], { input: stdin, encoding: 'utf8' });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

const SAMPLE = `# METADATA
# title: sample
package sluice.sample

import data.sluice.lib

aws := input.facts.aws

s3 if aws.service == "s3"

# A write to a bucket not listed.
verdicts contains lib.verdict(90, lib.deny(
\t"sample.foreign_write",
\tconcat("", [aws.action, " to ", aws.bucket]),
)) if {
\ts3
\tnot aws.bucket in data.organisation.aws.buckets
}

default decision := {
\t"allow": false,
\t"code": "sample.default",
\t"reason": "nothing matched",
}

helper(x) := startswith(x, "a.b")
`;

describe('rule index', () => {
  test('finds each code with its line, rule, priority and the input it reads (aliases and helper rules resolved)', () => {
    const rules = scanRules([{ path: 'rego/sample.rego', text: SAMPLE }]);
    expect(rules.map((r) => [r.code, r.line, r.rule, r.priority, r.start, r.end])).toEqual([
      ['sample.foreign_write', 13, 'verdicts', 90, 12, 18],
      ['sample.default', 22, 'decision', undefined, 20, 24],
    ]);
    expect(rules[0]!.inputs).toEqual(['input.facts.aws.action', 'input.facts.aws.bucket', 'input.facts.aws.service']);
    expect(rules[0]!.text.split('\n')[0]).toBe('verdicts contains lib.verdict(90, lib.deny(');
    expect(rules[0]!.text).not.toContain('# A write');
  });

  test('test files are skipped', () => {
    expect(scanRules([{ path: 'rego/sample_test.rego', text: SAMPLE }])).toEqual([]);
  });

  test('rules.json of the built library: the bundle\u2019s revision, and every code of the golden decision table at a line that names it', async () => {
    const index = parseRuleIndex(readFileSync(join(REPO, 'policies', 'build', 'rules.json'), 'utf8'))!;
    expect(index.revision).toBe((await readBundle(BUNDLE)).revision);
    expect(index.from).toBe('sources');
    const golden = parseYaml(readFileSync(join(REPO, 'policies', 'cases', 'decisions.yaml'), 'utf8')) as { expect?: { code?: string } }[] | { cases: { expect?: { code?: string } }[] };
    const cases = Array.isArray(golden) ? golden : golden.cases;
    const codes = new Set(cases.map((c) => c.expect?.code).filter((c): c is string => typeof c === 'string'));
    expect(codes.size).toBeGreaterThan(40);
    for (const code of codes) {
      const rules = index.rules.filter((r) => r.code === code);
      expect([code, rules.length > 0]).toEqual([code, true]);
      for (const r of rules) expect(readFileSync(join(REPO, r.file), 'utf8').split('\n')[r.line - 1]).toContain(`"${code}"`);
    }
  });
});

const REVISION = (await readBundle(BUNDLE)).revision;

function event(request: Record<string, unknown>, decision: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    v: 1,
    id: 'e-1',
    session: 'session-1',
    seq: 7,
    prev_hash: '0'.repeat(64),
    hash: '1'.repeat(64),
    time: '2026-12-07T19:00:00.000Z',
    kind: 'request',
    pod: { namespace: 'agents', name: 'coder-0', service_account: 'coder' },
    request_id: 'r-1',
    request: { scheme: 'https', port: 443, ...request },
    decision: { reason: 'as recorded', revision: REVISION, ...decision },
    ...extra,
  });
}

describe('which rule fired', () => {
  test('rows where the OPA trace exits a rule, by file', () => {
    const trace = [
      { Op: 'Enter', Location: { file: 'policies/rego/git.rego', row: 147 } },
      { Op: 'Exit', Location: { file: 'policies/rego/git.rego', row: 156 } },
      { Op: 'Fail', Location: { file: 'policies/rego/git.rego', row: 147 } },
      { Op: 'Exit', Location: { file: 'policies/rego/lib.rego', row: 3 } },
      { Op: 'Exit' },
    ];
    expect(exitedRows(trace)).toEqual(new Map([['policies/rego/git.rego', new Set([156])], ['policies/rego/lib.rego', new Set([3])]]));
    expect(exitedRows('nope')).toEqual(new Map());
  });
});

describe('policy explain (the binary, events on stdin)', () => {
  test('a reproduced S3 deny: exit 0, the rule with its line and the facts it read', () => {
    const ev = event(
      { method: 'PUT', host: 'evil-bucket.s3.us-east-1.amazonaws.com', path: '/loot.tar', facts: { aws: { service: 's3', region: 'us-east-1', action: 's3:PutObject', bucket: 'evil-bucket', key: 'loot.tar', signed: true } } },
      { action: 'deny', code: 'cloud.s3_foreign_write_denied' },
    );
    const res = run(['policy', 'explain', '-'], ev);
    expect([res.code, res.stderr]).toEqual([0, '']);
    expect(res.stdout).toMatch(/cloud\.s3_foreign_write_denied +policies\/rego\/cloud\.rego:\d+ +rule sluice\.cloud\.verdicts \(priority 90\)/);
    expect(res.stdout).toContain('input.facts.aws.bucket = "evil-bucket"');
    expect(res.stdout).toContain('facts      aws.service = "s3"');
  });

  test('another revision recorded: the warning first, exit 3', () => {
    const res = run(['policy', 'explain', '-'], event({ method: 'POST', host: 'api.github.com', path: '/gists' }, { action: 'deny', code: 'git.paste_denied', revision: 'feedfacecafe' }));
    expect(res.code).toBe(3);
    expect(res.stdout.split('\n')[0]).toBe(`!! POLICY REVISION MISMATCH: the event was decided by revision feedfacecafe, this explanation evaluates ${REVISION} (${BUNDLE}).`);
    expect(res.stderr).toContain('pass --bundle with a build of feedfacecafe');
  });

  test('an agent\u2019s own LLM key: the deciding rule reads headers, which events do not record; exit 4', () => {
    const ev = event(
      { method: 'POST', host: 'api.openai.com', path: '/v1/chat/completions', facts: { llm: { provider: 'openai', endpoint: 'chat.completions', operation: 'inference', model: 'gpt-5', prompt_bytes: 20 } } },
      { action: 'deny', code: 'llm.agent_key_refused' },
    );
    const res = run(['policy', 'explain', '-', '-o', 'json'], ev);
    expect(res.code).toBe(4);
    const e = JSON.parse(res.stdout) as { reproduced: boolean; notes: string[]; rules: { reads: { path: string; recorded: boolean }[] }[] };
    expect(e.reproduced).toBe(false);
    expect(e.rules[0]!.reads).toContainEqual({ path: 'input.request.headers', recorded: false });
    expect(e.notes.join('\n')).toContain('reads input.request.headers, which audit events do not record');
  });

  test('a code no rule produces (sluice\u2019s own DLP answer): decided by the sidecar, the policy\u2019s own decision shown, exit 4', () => {
    const ev = event({ method: 'GET', host: 'registry.npmjs.org', path: '/express' }, { action: 'deny', code: 'dlp.secret_in_body' });
    const res = run(['policy', 'explain', '-', '-o', 'json'], ev);
    expect(res.code).toBe(4);
    expect(JSON.parse(res.stdout)).toMatchObject({ decided_by: 'sidecar', evaluated: { code: 'registry.read' } });
  });

  test('a bundle without rules.json beside it: locations from its stored Rego, said so', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-norules-'));
    copyFileSync(BUNDLE, join(dir, 'bundle.tar.gz'));
    expect(readdirSync(dir)).toEqual(['bundle.tar.gz']);
    const res = run(['policy', 'explain', '-', '--bundle', join(dir, 'bundle.tar.gz'), '-o', 'json'], event({ method: 'POST', host: 'api.github.com', path: '/gists' }, { action: 'deny', code: 'git.paste_denied' }));
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ index: { from: 'bundle' }, rules: [{ code: 'git.paste_denied', file: 'policies/rego/git.rego' }] });
  });

  test('a checkout whose source moved since make policy: the line named is the build\u2019s, and explain says the file changed', () => {
    const root = mkdtempSync(join(tmpdir(), 'sluice-checkout-'));
    mkdirSync(join(root, 'policies', 'build'), { recursive: true });
    mkdirSync(join(root, 'policies', 'rego'), { recursive: true });
    copyFileSync(BUNDLE, join(root, 'policies', 'build', 'bundle.tar.gz'));
    copyFileSync(join(REPO, 'policies', 'build', 'rules.json'), join(root, 'policies', 'build', 'rules.json'));
    writeFileSync(join(root, 'policies', 'rego', 'git.rego'), `# a comment added after the build\n${readFileSync(join(REPO, 'policies', 'rego', 'git.rego'), 'utf8')}`);
    const ev = event({ method: 'POST', host: 'api.github.com', path: '/gists' }, { action: 'deny', code: 'git.paste_denied' });
    const res = run(['policy', 'explain', '-', '--bundle', join(root, 'policies', 'build', 'bundle.tar.gz'), '-o', 'json'], ev);
    expect(res.code).toBe(0);
    const e = JSON.parse(res.stdout) as { rules: { file: string; line: number }[]; notes: string[] };
    expect(e.notes).toContain(`policies/rego/git.rego:${e.rules[0]!.line}: the source changed since \`make policy\` built this bundle; the rule text shown is the build's`);
    // the unchanged checkout: no such note
    expect((JSON.parse(run(['policy', 'explain', '-', '-o', 'json'], ev).stdout) as { notes: string[] }).notes).toEqual([]);
  });

  test('not an audit event: exit 2 naming the problem', () => {
    expect(run(['policy', 'explain', '-'], '{"kind": "request"}')).toMatchObject({ code: 2, stderr: expect.stringContaining('not a sluice audit event') });
    expect(run(['policy', 'explain', '-'], 'nope\n')).toMatchObject({ code: 2, stderr: expect.stringContaining('line 1 is not JSON') });
    expect(run(['policy', 'explain', '-', '-o', 'xml'], event({ method: 'GET', host: 'a.b', path: '/' }, { action: 'deny', code: 'x.y' }))).toMatchObject({ code: 2 });
  });
});
