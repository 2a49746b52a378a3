// The summary an approver reads is bound to the facts: the webhook accepts it only if it is the line
// approvalSummaryLine gives for the request (api/src/approval.ts), with masked spans and the length
// cut standing for parts of it. The sidecar's own summaries (masked, cut) always pass; a summary
// that says something else never does, and a hostile one cannot stall the check.
import { describe, expect, test } from '@jest/globals';
import { MAX_SUMMARY, approvalSummaryLine, summaryShowsLine } from '../../../api/src/index.ts';
import type { Facts, RequestSummary } from '../../../api/src/index.ts';
import { draftApproval } from '../../../sidecar/src/approvals/approval-draft.ts';

const push: Facts = { git: { service: 'git-receive-pack', operation: 'push', phase: 'rpc', repo: 'acme/app', refs: [{ ref: 'refs/heads/main', old: '0', new: '1' }] } };
/** A Slack bot token, which the built-in masker replaces with [REDACTED:slack-token]. */
const SECRET = 'xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx';
const request = { method: 'POST', host: 'github.com', path: '/acme/app.git/git-receive-pack', facts: push };

function drafted(summary: Partial<RequestSummary>, facts: Facts = {}) {
  return draftApproval({
    summary: { method: 'GET', scheme: 'https', host: 'api.example.com', port: 443, path: '/', query: {}, headers: {}, ip_literal: false, ...summary },
    facts,
    decision: { allow: true, code: 'c', reason: 'r', require_approval: { reason: 'r', scope: 'once' } },
    pod: { namespace: 'agents', name: 'coder-0', serviceAccount: 'coder' },
    session: 's',
    expiresAt: '2030-01-01T00:00:00Z',
  }).spec.request;
}

describe('summaryShowsLine', () => {
  const line = approvalSummaryLine(request);

  test('the line itself, a masked line and a cut line pass', () => {
    expect(line).toBe('git push acme/app refs/heads/main on github.com');
    expect(summaryShowsLine(line, line)).toBe(true);
    expect(summaryShowsLine('git push acme/[REDACTED:x] refs/heads/main on github.com', line)).toBe(true);
    expect(summaryShowsLine('git push acme/*** refs/heads/main on github.com', line)).toBe(true);
    expect(summaryShowsLine('git push acme/app refs/heads/…', line)).toBe(true);
  });

  test('anything else is refused: another verb, another repository, a harmless read, extra words', () => {
    for (const s of ['GET github.com/acme/app/info/refs', 'git fetch acme/app refs/heads/main on github.com', 'git push acme/docs refs/heads/main on github.com', `${line} (dry run)`, 'git push acme/** refs/heads/main on github.com', '']) {
      expect(summaryShowsLine(s, line)).toBe(false);
    }
  });

  test('a mask stands for one token, never the words around it; a star run for exactly its length', () => {
    expect(summaryShowsLine('git [REDACTED:x] acme/app refs/heads/main on github.com', line)).toBe(true);
    expect(summaryShowsLine('git push [REDACTED:x] on github.com', line)).toBe(false);
    expect(summaryShowsLine('[REDACTED:x] on github.com', line)).toBe(false);
    expect(summaryShowsLine('git push acme/app refs/heads/main on [REDACTED:x]', line)).toBe(true);
    expect(summaryShowsLine('git push ********* refs/heads/main on github.com', line)).toBe(false);
  });

  test('a summary built to make a backtracking matcher explode is answered at once', () => {
    const hostile = `${'[REDACTED:a] '.repeat(14)}x`.slice(0, MAX_SUMMARY);
    const long = ' '.repeat(8000);
    const started = performance.now();
    expect(summaryShowsLine(hostile, long)).toBe(false);
    expect(performance.now() - started).toBeLessThan(200);
  });
});

describe('the sidecar’s summaries always pass the webhook’s check', () => {
  test.each([
    ['a push', { method: 'POST', host: 'github.com', path: '/acme/app.git/git-receive-pack' }, push],
    ['a request with a token in its query', { path: '/v1/items', query: { access_token: [SECRET] } }, {}],
    ['a path with a token in it', { path: `/hooks/${SECRET}/x` }, {}],
    ['a very long path cut at the limit', { path: `/${'a'.repeat(150)}/${SECRET}/${'b'.repeat(300)}` }, {}],
    ['a path cut inside a masked span', { path: `/${'a'.repeat(170)}/${SECRET}/${'b'.repeat(300)}` }, {}],
    ['an S3 delete', { method: 'DELETE', host: 'bucket.s3.amazonaws.com', path: '/k' }, { aws: { service: 's3', region: 'eu-west-1', action: 's3:DeleteObject', bucket: 'bucket', key: 'k' } }],
  ] as [string, Partial<RequestSummary>, Facts][])('%s', (_what, summary, facts) => {
    const r = drafted(summary, facts);
    expect(r.summary.length).toBeLessThanOrEqual(MAX_SUMMARY);
    expect(r.summary).not.toContain(SECRET);
    expect(summaryShowsLine(r.summary, approvalSummaryLine(r))).toBe(true);
  });
});
