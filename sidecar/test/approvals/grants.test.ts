// Standing grants come only from Approved requests: session scope for the session that asked,
// ttl scope until its expiry, never from once, Denied, Revoked or an unreadable expiry.
import { describe, expect, test } from '@jest/globals';
import type { ApprovalRequest, ApprovalRequestStatus } from '../../../api/src/index.ts';
import { draftApproval } from '../../src/approvals/approval-draft.ts';
import { GrantTable, grantOf } from '../../src/approvals/grants.ts';

const draft = draftApproval({
  summary: { method: 'POST', scheme: 'https', host: 'github.com', port: 443, path: '/acme/app.git/git-receive-pack', query: {}, headers: {}, ip_literal: false },
  facts: { git: { service: 'git-receive-pack', operation: 'push', phase: 'rpc', repo: 'acme/app', refs: [{ ref: 'refs/heads/main', old: '0', new: '1' }] } },
  decision: { allow: true, code: 'git.push_requires_approval', reason: 'r', require_approval: { reason: 'r', scope: 'session' } },
  pod: { namespace: 'agents', name: 'coder-0', serviceAccount: 'coder' },
  session: 's-1',
  expiresAt: '2030-01-01T00:00:00Z',
});
const NOW = Date.parse('2030-01-01T12:00:00Z');

function approval(name: string, status: Partial<ApprovalRequestStatus>, session = 's-1'): ApprovalRequest {
  return { apiVersion: 'sluice.io/v1alpha1', kind: 'ApprovalRequest', metadata: { name }, spec: { ...draft.spec, session }, status: { state: 'Approved', decidedBy: 'bob', ...status } };
}

describe('grantOf', () => {
  test.each([
    ['once', { scope: 'once' }],
    ['denied', { state: 'Denied' }],
    ['revoked session', { scope: 'session', state: 'Revoked' }],
    ['pending', { state: 'Pending' }],
    ['ttl without expiry', { scope: 'ttl' }],
    ['ttl with garbage expiry', { scope: 'ttl', expiresAt: 'soon' }],
  ] as [string, Partial<ApprovalRequestStatus>][])('%s grants nothing', (_what, status) => {
    expect(grantOf(approval('a', status), 's-1')).toBeUndefined();
  });

  test('a session grant belongs to its session only', () => {
    expect(grantOf(approval('a', { scope: 'session' }), 's-1')).toMatchObject({ name: 'a', scope: 'session', decidedBy: 'bob', key: draft.grantKey });
    expect(grantOf(approval('a', { scope: 'session' }, 's-0'), 's-1')).toBeUndefined();
  });
});

describe('GrantTable', () => {
  test('a ttl grant matches until it expires, in any session of the pod', () => {
    const t = new GrantTable('s-2');
    t.upsert(approval('a', { scope: 'ttl', ttl: '1h', expiresAt: new Date(NOW + 1000).toISOString() }, 's-1'));
    expect(t.match(draft.grantKey, NOW)).toMatchObject({ name: 'a', scope: 'ttl' });
    expect(t.match(draft.grantKey, NOW + 1000)).toBeUndefined();
    expect(t.match('another-key', NOW)).toBeUndefined();
  });

  test('a revocation seen on the watch removes the grant; a re-list replaces everything', () => {
    const t = new GrantTable('s-1');
    t.upsert(approval('a', { scope: 'session' }));
    expect(t.match(draft.grantKey, NOW)?.name).toBe('a');
    t.upsert(approval('a', { scope: 'session', state: 'Revoked' }));
    expect(t.match(draft.grantKey, NOW)).toBeUndefined();
    t.upsert(approval('b', { scope: 'session' }));
    t.reset([approval('c', { scope: 'ttl', expiresAt: new Date(NOW + 5000).toISOString() })]);
    expect(t.size).toBe(1);
    expect(t.match(draft.grantKey, NOW)?.name).toBe('c');
    t.remove('c');
    expect(t.size).toBe(0);
  });

  test('a session grant wins over a ttl grant; the later-expiring ttl grant wins over the earlier', () => {
    const t = new GrantTable('s-1');
    t.upsert(approval('t1', { scope: 'ttl', expiresAt: new Date(NOW + 1000).toISOString() }));
    t.upsert(approval('t2', { scope: 'ttl', expiresAt: new Date(NOW + 9000).toISOString() }));
    expect(t.match(draft.grantKey, NOW)?.name).toBe('t2');
    t.upsert(approval('s', { scope: 'session' }));
    expect(t.match(draft.grantKey, NOW)?.name).toBe('s');
  });
});
