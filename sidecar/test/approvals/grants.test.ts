// Standing grants come only from Approved requests of this very pod and service account: session
// scope for the session that asked, ttl scope until its expiry, never from once, Denied, Revoked,
// an unreadable expiry, or an object naming another pod, pod uid, service account or namespace.
import { describe, expect, test } from '@jest/globals';
import type { ApprovalRequest, ApprovalRequestStatus } from '../../../api/src/index.ts';
import { draftApproval } from '../../src/approvals/approval-draft.ts';
import { GrantTable, grantOf } from '../../src/approvals/grants.ts';
import type { GrantOwner } from '../../src/approvals/grants.ts';

const draft = draftApproval({
  summary: { method: 'POST', scheme: 'https', host: 'github.com', port: 443, path: '/acme/app.git/git-receive-pack', query: {}, headers: {}, ip_literal: false },
  facts: { git: { service: 'git-receive-pack', operation: 'push', phase: 'rpc', repo: 'acme/app', refs: [{ ref: 'refs/heads/main', old: '0', new: '1' }] } },
  decision: { allow: true, code: 'git.push_requires_approval', reason: 'r', require_approval: { reason: 'r', scope: 'session' } },
  pod: { namespace: 'agents', name: 'coder-0', uid: 'uid-0', serviceAccount: 'coder' },
  session: 's-1',
  expiresAt: '2030-01-01T00:00:00Z',
});
const NOW = Date.parse('2030-01-01T12:00:00Z');
const owner = (session = 's-1', over: Partial<GrantOwner> = {}): GrantOwner => ({ namespace: 'agents', pod: 'coder-0', podUid: 'uid-0', serviceAccount: 'coder', session, ...over });

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
    expect(grantOf(approval('a', status), owner())).toBeUndefined();
  });

  test('a session grant belongs to its session only', () => {
    expect(grantOf(approval('a', { scope: 'session' }), owner())).toMatchObject({ name: 'a', scope: 'session', decidedBy: 'bob', key: draft.grantKey });
    expect(grantOf(approval('a', { scope: 'session' }, 's-0'), owner())).toBeUndefined();
  });
});

describe('a grant for someone else', () => {
  const ttl = { scope: 'ttl', ttl: '8h', expiresAt: new Date(NOW + 3_600_000).toISOString() } as const;
  const forged = (spec: Partial<ApprovalRequest['spec']>, namespace = 'agents'): ApprovalRequest => {
    const o = approval('forged', ttl);
    return { ...o, metadata: { ...o.metadata, namespace }, spec: { ...o.spec, ...spec } };
  };
  test.each([
    ['another pod', { pod: { namespace: 'agents', name: 'coder-1', uid: 'uid-0' } }],
    ['another pod uid (a pod of the same name, recreated)', { pod: { namespace: 'agents', name: 'coder-0', uid: 'uid-9' } }],
    ['no pod uid while ours is known', { pod: { namespace: 'agents', name: 'coder-0' } }],
    ['another namespace in the spec', { pod: { namespace: 'other', name: 'coder-0', uid: 'uid-0' } }],
    ['another service account', { serviceAccount: 'builder' }],
  ] as [string, Partial<ApprovalRequest['spec']>][])('naming %s grants nothing, though labelled for us and approved', (_what, spec) => {
    expect(grantOf(forged(spec), owner())).toBeUndefined();
    const t = new GrantTable(owner());
    t.upsert(forged(spec));
    expect(t.match(draft.grantKey, NOW)).toBeUndefined();
  });

  test('an object stored in another namespace grants nothing', () => {
    expect(grantOf(forged({}, 'other'), owner())).toBeUndefined();
    expect(grantOf(forged({}), owner())).toMatchObject({ name: 'forged', scope: 'ttl' });
  });

  test("a session grant of another session of the same pod grants nothing, a ttl grant does", () => {
    const t = new GrantTable(owner('s-2'));
    t.upsert(approval('sess', { scope: 'session' }, 's-1'));
    expect(t.match(draft.grantKey, NOW)).toBeUndefined();
    t.upsert(approval('ttl', ttl, 's-1'));
    expect(t.match(draft.grantKey, NOW)?.name).toBe('ttl');
  });
});

describe('GrantTable', () => {
  test('a ttl grant matches until it expires, in any session of the pod', () => {
    const t = new GrantTable(owner('s-2'));
    t.upsert(approval('a', { scope: 'ttl', ttl: '1h', expiresAt: new Date(NOW + 1000).toISOString() }, 's-1'));
    expect(t.match(draft.grantKey, NOW)).toMatchObject({ name: 'a', scope: 'ttl' });
    expect(t.match(draft.grantKey, NOW + 1000)).toBeUndefined();
    expect(t.match('another-key', NOW)).toBeUndefined();
  });

  test('a revocation seen on the watch removes the grant; a re-list replaces everything', () => {
    const t = new GrantTable(owner());
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
    const t = new GrantTable(owner());
    t.upsert(approval('t1', { scope: 'ttl', expiresAt: new Date(NOW + 1000).toISOString() }));
    t.upsert(approval('t2', { scope: 'ttl', expiresAt: new Date(NOW + 9000).toISOString() }));
    expect(t.match(draft.grantKey, NOW)?.name).toBe('t2');
    t.upsert(approval('s', { scope: 'session' }));
    expect(t.match(draft.grantKey, NOW)?.name).toBe('s');
  });
});
