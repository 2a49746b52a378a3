// The sidecar deletes only its own pod's requests that can no longer let anything through, and only
// once they have been finished for the retention time: never a Pending one, a live grant, or another
// pod's request. The sweep deletes with preconditions and leaves requests it is still holding alone.
import { describe, expect, test } from '@jest/globals';
import { Registry } from 'prom-client';
import type { ApprovalRequest, ApprovalRequestStatus } from '../../../api/src/index.ts';
import { finishedAt, requestsToDelete } from '../../src/approvals/cleanup.ts';
import type { GrantOwner } from '../../src/approvals/grants.ts';
import { HoldCoordinator } from '../../src/approvals/hold-coordinator.ts';
import { registerApprovalMetrics } from '../../src/approvals/metrics.ts';
import { sampleApproval } from '../../../testkit/approvals/sample-approval.ts';

const owner: GrantOwner = { namespace: 'agents', pod: 'coder-0', podUid: 'pod-uid-1', serviceAccount: 'coder', session: 's-1' };
const T = Date.parse('2030-01-01T12:00:00Z');
const HOUR = 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString();

function decided(name: string, status: Partial<ApprovalRequestStatus>, session = 's-1'): ApprovalRequest {
  const o = sampleApproval({ name, status: { decidedAt: iso(T), ...status } });
  return { ...o, spec: { ...o.spec, session, expiresAt: iso(T + 60_000) }, metadata: { ...o.metadata, uid: `uid-${name}`, resourceVersion: '7' } };
}

describe('what is finished, and since when', () => {
  test.each([
    ['Denied', { state: 'Denied' }, T],
    ['Revoked (from its revocation)', { state: 'Revoked', scope: 'session', revokedAt: iso(T + 5) }, T + 5],
    ['Approved once', { scope: 'once' }, T],
    ['an ended ttl grant (from its end)', { scope: 'ttl', expiresAt: iso(T + HOUR) }, T + HOUR],
    ['a session grant of an earlier session', { scope: 'session' }, T],
  ] as [string, Partial<ApprovalRequestStatus>, number][])('%s', (_w, status, at) => {
    expect(finishedAt(decided('a', status, status.scope === 'session' && status.state !== 'Revoked' ? 's-0' : 's-1'), owner)).toBe(at);
  });

  test('Expired: at the mark, or at spec.expiresAt when the mark carries no time', () => {
    const o = decided('a', { state: 'Expired', decidedAt: undefined });
    expect(finishedAt(o, owner)).toBe(T + 60_000);
  });

  test('Pending and a live session grant of this session are never finished', () => {
    expect(finishedAt(sampleApproval({ name: 'p' }), owner)).toBeUndefined();
    expect(finishedAt(decided('s', { scope: 'session' }), owner)).toBeUndefined();
  });
});

describe('requestsToDelete', () => {
  const objs = [
    decided('denied', { state: 'Denied' }),
    decided('ttl-live', { scope: 'ttl', expiresAt: iso(T + 8 * HOUR) }),
    decided('session-live', { scope: 'session' }),
    sampleApproval({ name: 'pending' }),
    { ...decided('other-pod', { state: 'Denied' }), spec: { ...decided('x', {}).spec, pod: { namespace: 'agents', name: 'coder-1', uid: 'pod-uid-2' } } },
    { ...decided('other-sa', { state: 'Denied' }), spec: { ...decided('x', {}).spec, serviceAccount: 'builder' } },
  ];

  test('only own, finished, past retention', () => {
    expect(requestsToDelete(objs, owner, T + HOUR - 1, HOUR).map((o) => o.metadata.name)).toEqual([]);
    expect(requestsToDelete(objs, owner, T + HOUR, HOUR).map((o) => o.metadata.name)).toEqual(['denied']);
    expect(requestsToDelete(objs, owner, T + 9 * HOUR, HOUR).map((o) => o.metadata.name)).toEqual(['denied', 'ttl-live']);
  });
});

describe('HoldCoordinator.sweep', () => {
  test('deletes what is due, with uid and resourceVersion preconditions, and nothing when retention is off', async () => {
    const deleted: { name: string; pre: unknown }[] = [];
    const api = {
      create: () => Promise.reject(new Error('unused')),
      get: () => Promise.reject(new Error('unused')),
      patchStatus: () => Promise.reject(new Error('unused')),
      delete: (_ns: string, name: string, pre: unknown) => {
        deleted.push({ name, pre });
        return Promise.resolve({});
      },
    };
    const make = (retainFinishedMs?: number) =>
      new HoldCoordinator({
        api,
        namespace: 'agents',
        podName: 'coder-0',
        podUid: 'pod-uid-1',
        serviceAccount: 'coder',
        session: 's-1',
        maxWaitMs: 1000,
        retainFinishedMs,
        maxConcurrentHolds: 1,
        apiGraceMs: 100,
        metrics: registerApprovalMetrics(new Registry()),
        newName: () => 'n',
        healthy: () => true,
        clock: () => T + 2 * HOUR,
      });
    const c = make(HOUR);
    c.reset([decided('denied', { state: 'Denied' }), decided('session-live', { scope: 'session' })]);
    expect(await c.sweep()).toBe(1);
    expect(deleted).toEqual([{ name: 'denied', pre: { uid: 'uid-denied', resourceVersion: '7' } }]);
    const off = make(undefined);
    off.reset([decided('denied', { state: 'Denied' })]);
    expect(await off.sweep()).toBe(0);
  });
});
