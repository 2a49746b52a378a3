// What an approver sees and what a grant covers: summaries per kind of request, secrets masked in
// the path and query, identical requests sharing a fingerprint, and grant keys that cover the next
// push to the same branch but not another branch, repository or rule.
import { describe, expect, test } from '@jest/globals';
import type { Decision, Facts, RequestSummary } from '../../../api/src/index.ts';
import { ApprovalRequestSpec } from '../../../api/src/index.ts';
import { draftApproval, grantKeyOf, maskedPathAndQuery } from '../../src/approvals/approval-draft.ts';
import { BUILTIN_RULES, createMasker, mergeRules, parseRuleFile } from '../../src/masking/index.ts';
import { base62Crc32 } from '../../src/masking/index.ts';
import type { DraftInput } from '../../src/approvals/approval-draft.ts';

const hold: Decision = { allow: true, code: 'git.push_requires_approval', reason: 'git push to acme/app (refs/heads/main) needs approval', require_approval: { reason: 'git push to acme/app (refs/heads/main) needs approval', scope: 'session', ttl: '30m' } };

function summary(over: Partial<RequestSummary> = {}): RequestSummary {
  return { method: 'POST', scheme: 'https', host: 'github.com', port: 443, path: '/acme/app.git/git-receive-pack', query: {}, headers: {}, ip_literal: false, ...over };
}

function push(refs: { ref: string; old: string; new: string }[], repo = 'acme/app'): Facts {
  return { git: { service: 'git-receive-pack', operation: 'push', phase: 'rpc', repo, refs } };
}

function input(over: Partial<DraftInput> = {}): DraftInput {
  return {
    summary: summary(),
    facts: push([{ ref: 'refs/heads/main', old: 'a'.repeat(40), new: 'b'.repeat(40) }]),
    decision: hold,
    pod: { namespace: 'agents', name: 'coder-0', uid: 'u-1', serviceAccount: 'coder', creator: { username: 'alice@example.com', groups: ['developers'] } },
    session: 's-1',
    expiresAt: '2030-01-01T00:10:00.000Z',
    ...over,
  };
}

describe('the ApprovalRequest spec', () => {
  test('a git push: summary, reason, requested scope and ttl, valid against the contract', () => {
    const { spec } = draftApproval(input());
    expect(ApprovalRequestSpec.parse(spec)).toEqual(spec);
    expect(spec).toMatchObject({
      pod: { namespace: 'agents', name: 'coder-0', uid: 'u-1' },
      serviceAccount: 'coder',
      session: 's-1',
      creator: { username: 'alice@example.com' },
      request: { method: 'POST', host: 'github.com', path: '/acme/app.git/git-receive-pack', summary: 'git push acme/app refs/heads/main on github.com' },
      code: 'git.push_requires_approval',
      requestedScope: 'session',
      requestedTTL: '30m',
      expiresAt: '2030-01-01T00:10:00.000Z',
    });
    expect(spec.fingerprint).toMatch(/^[0-9a-f]{32}$/);
  });

  test.each([
    [{ aws: { service: 's3', region: 'eu-west-1', action: 's3:DeleteObject', bucket: 'prod', key: 'db.sql' } }, 'aws s3:DeleteObject prod/db.sql (eu-west-1)'],
    [{ k8s: { verb: 'get', api_group: '', api_version: 'v1', resource: 'secrets', namespace: 'prod', name: 'db' } }, 'kubernetes get secrets db -n prod'],
    [{ llm: { provider: 'anthropic', endpoint: 'messages', model: 'claude-x', prompt_bytes: 2048 } }, 'anthropic messages claude-x (2048 prompt bytes)'],
    [{}, 'POST github.com/acme/app.git/git-receive-pack'],
  ] as [Facts, string][])('summary for %j', (facts, expected) => {
    expect(draftApproval(input({ facts })).spec.request.summary).toBe(expected);
  });

  test('a non-default port is part of the host; more than three refs are counted, not listed', () => {
    const refs = ['a', 'b', 'c', 'd', 'e'].map((r) => ({ ref: `refs/heads/${r}`, old: '0', new: '1' }));
    const { spec } = draftApproval(input({ summary: summary({ host: 'git.internal', port: 8443 }), facts: push(refs) }));
    expect(spec.request.host).toBe('git.internal:8443');
    expect(spec.request.summary).toBe('git push acme/app refs/heads/a, refs/heads/b, refs/heads/c (+2 more) on git.internal:8443');
  });

  test('secrets in the query and well-known tokens in the path are masked', () => {
    const body = 'R7kQ2mX9pL4vT8nW3cZ6yB1dF5hJ0s';
    const token = `ghp_${body}${base62Crc32(body)}`;
    const masked = maskedPathAndQuery(`/repos/acme/app/${token}`, { access_token: ['s3cr3t'], page: ['2'], 'X-Amz-Signature': ['abcdef'] });
    expect(masked).not.toContain('s3cr3t');
    expect(masked).not.toContain('abcdef');
    expect(masked).not.toContain(token);
    expect(masked).toContain('page=2');
    expect(masked).toContain('access_token=[redacted]');
  });

  test('values are masked before escaping, and the sidecar\'s own rules (a platform rule file) apply', () => {
    // An AWS key pair under a key name nothing flags: the secret holds / and +, which escaping
    // would have split away from its pattern.
    const secret = 'q8Zr/Tn2Lx+Vb5Hw9Kd3Mf7Pj1Rs6Gu0Ya4Ce8Nt';
    const pair = maskedPathAndQuery('/upload', { id: [`AKIAQ3EGVP7TNWY4LKRM ${secret}`] });
    expect(pair).not.toContain(secret);
    expect(pair).not.toContain(encodeURIComponent(secret));
    const rules = mergeRules(BUILTIN_RULES, parseRuleFile('rules: [{id: acme-key, description: x, confidence: high, keywords: [acme_], pattern: "acme_[a-z0-9]{24}", maxLength: 29}]', 'acme.yaml'));
    const acme = 'acme_0123456789abcdefghijklmn';
    expect(maskedPathAndQuery(`/x/${acme}`, {})).toContain(acme);
    expect(maskedPathAndQuery(`/x/${acme}`, {}, createMasker('*', rules))).toBe('/x/[REDACTED:acme-key]');
  });
});

describe('fingerprints and grant keys', () => {
  test('identical requests share a fingerprint; another session, ref or object id does not', () => {
    const a = draftApproval(input());
    expect(draftApproval(input()).fingerprint).toBe(a.fingerprint);
    expect(draftApproval(input({ session: 's-2' })).fingerprint).not.toBe(a.fingerprint);
    expect(draftApproval(input({ facts: push([{ ref: 'refs/heads/main', old: 'b'.repeat(40), new: 'c'.repeat(40) }]) })).fingerprint).not.toBe(a.fingerprint);
  });

  test('a grant covers the next push to the same branch, not another branch, repository or rule', () => {
    const key = draftApproval(input()).grantKey;
    const nextPush = draftApproval(input({ facts: push([{ ref: 'refs/heads/main', old: 'b'.repeat(40), new: 'c'.repeat(40) }]) }));
    expect(nextPush.grantKey).toBe(key);
    expect(draftApproval(input({ facts: push([{ ref: 'refs/heads/release', old: '0', new: '1' }]) })).grantKey).not.toBe(key);
    expect(draftApproval(input({ facts: push([{ ref: 'refs/heads/main', old: '0', new: '1' }], 'acme/other') })).grantKey).not.toBe(key);
    expect(draftApproval(input({ decision: { ...hold, code: 'git.other_rule' } })).grantKey).not.toBe(key);
  });

  test('without facts the path decides; a stored spec gives the same key as the live request', () => {
    const a = draftApproval(input({ facts: {}, summary: summary({ method: 'DELETE', path: '/v1/things/1' }) }));
    const b = draftApproval(input({ facts: {}, summary: summary({ method: 'DELETE', path: '/v1/things/2' }) }));
    expect(a.grantKey).not.toBe(b.grantKey);
    expect(grantKeyOf(JSON.parse(JSON.stringify(a.spec)) as typeof a.spec)).toBe(a.grantKey);
  });
});
