// The approver rules as pure functions over AdmissionReview inputs: who may create, decide, revoke
// and expire an ApprovalRequest, and what the stamp writes. The real API server enforcing them
// through the registered webhook is e2e/approvals.
import { describe, expect, test } from '@jest/globals';
import type { ApprovalRequestSpec, ApprovalRequestStatus } from '../../../api/src/index.ts';
import { ApprovalsWebhookConfig, ttlMs } from '../../src/approvals/config.ts';
import { approvalStamp, approvalViolations } from '../../src/approvals/rules.ts';
import type { Actor, ApprovalReviewInput, BoundPod } from '../../src/approvals/rules.ts';
import { SAMPLE_SPEC } from '../../../testkit/approvals/sample-approval.ts';

const config = ApprovalsWebhookConfig.parse({ namespaces: { payments: { approverGroups: ['payments-leads'] } }, maxTTL: '8h' });
const NOW = new Date('2030-01-01T12:00:00.000Z');

const spec: ApprovalRequestSpec = SAMPLE_SPEC;

const sidecar: Actor = { username: 'system:serviceaccount:agents:coder', groups: ['system:serviceaccounts', 'system:serviceaccounts:agents'], extra: { 'authentication.kubernetes.io/pod-name': ['coder-0'], 'authentication.kubernetes.io/pod-uid': ['pod-uid-1'] } };
const alice: Actor = { username: 'alice@example.com', groups: ['developers', 'sluice-approvers'], extra: {} };
const bob: Actor = { username: 'bob@example.com', groups: ['sluice-approvers', 'system:authenticated'], extra: {} };
const mallory: Actor = { username: 'mallory@example.com', groups: ['system:authenticated'], extra: {} };

const obj = (status?: Partial<ApprovalRequestStatus>, s: ApprovalRequestSpec = spec, labels = { 'sluice.io/pod': 'coder-0' }) => ({ metadata: { name: 'coder-0-abc', labels }, spec: s, ...(status ? { status } : {}) });

function statusUpdate(actor: Actor, from: Partial<ApprovalRequestStatus> | undefined, to: Partial<ApprovalRequestStatus>, namespace = 'agents'): ApprovalReviewInput {
  return { operation: 'UPDATE', subResource: 'status', namespace, actor, oldObject: obj(from), object: obj(to), now: NOW };
}

/** What the webhook pair does to a decision: stamp (mutating), then validate the stamped object. */
function decide(actor: Actor, from: Partial<ApprovalRequestStatus> | undefined, to: Partial<ApprovalRequestStatus>, namespace = 'agents') {
  const input = statusUpdate(actor, from, to, namespace);
  const stamped = { ...to };
  for (const op of approvalStamp(input, NOW)) (stamped as Record<string, unknown>)[op.path.split('/').pop()!] = op.value;
  return { stamped, rules: approvalViolations({ ...input, object: obj(stamped) }, config).map((v) => v.rule), messages: approvalViolations({ ...input, object: obj(stamped) }, config).map((v) => v.message) };
}

const pending = { state: 'Pending' } as const;

const POD_UID = 'pod-uid-1';
const boundPod: BoundPod = { name: 'coder-0', uid: POD_UID, serviceAccount: 'coder', injected: true, creator: SAMPLE_SPEC.creator };
const owned = { name: 'coder-0-abc', labels: { 'sluice.io/pod': 'coder-0' }, ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: 'coder-0', uid: POD_UID }] };
const future = new Date(NOW.getTime() + 600_000).toISOString();

/** A create as the API server hands it to the validating webhook (after the mutating one). */
function create(over: { actor?: Actor; spec?: Partial<ApprovalRequestSpec>; metadata?: object; status?: object; boundPod?: ApprovalReviewInput['boundPod']; namespace?: string } = {}): ApprovalReviewInput {
  return {
    operation: 'CREATE',
    subResource: '',
    namespace: over.namespace ?? 'agents',
    actor: over.actor ?? sidecar,
    object: { metadata: { ...owned, ...over.metadata }, spec: { ...spec, expiresAt: future, ...over.spec }, ...(over.status ? { status: over.status } : {}) },
    boundPod: 'boundPod' in over ? over.boundPod : boundPod,
    now: NOW,
  };
}
const rulesOf = (input: ApprovalReviewInput) => approvalViolations(input, config).map((v) => v.rule);

describe('creating', () => {
  test('the sidecar of the pod, with the token bound to it, may create; status starts empty or Pending', () => {
    expect(approvalViolations(create(), config)).toEqual([]);
    expect(approvalViolations(create({ status: pending }), config)).toEqual([]);
  });

  test.each([
    ['a human', { ...bob }, 'approval.not_pod_bound'],
    ['a plain (not pod-bound) token of the pod’s own service account', { ...sidecar, extra: {} }, 'approval.not_pod_bound'],
    ['a token with a pod name but no pod uid', { ...sidecar, extra: { 'authentication.kubernetes.io/pod-name': ['coder-0'] } }, 'approval.not_pod_bound'],
    ['another service account’s pod-bound token', { ...sidecar, username: 'system:serviceaccount:agents:other' }, 'approval.not_the_sidecar'],
    ['a token bound to another pod', { ...sidecar, extra: { 'authentication.kubernetes.io/pod-name': ['coder-9'], 'authentication.kubernetes.io/pod-uid': [POD_UID] } }, 'approval.pod_mismatch'],
    ['a token bound to another pod uid', { ...sidecar, extra: { 'authentication.kubernetes.io/pod-name': ['coder-0'], 'authentication.kubernetes.io/pod-uid': ['pod-uid-9'] } }, 'approval.pod_mismatch'],
  ])('%s may not', (_w, actor, rule) => {
    expect(rulesOf(create({ actor }))).toContain(rule);
  });

  test('the request must be labelled for the token’s pod, so no other sidecar watches it', () => {
    expect(rulesOf(create({ metadata: { labels: { 'sluice.io/pod': 'coder-1' } } }))).toEqual(['approval.pod_mismatch']);
    expect(rulesOf(create({ metadata: { labels: {} } }))).toEqual(['approval.pod_mismatch']);
  });

  test('the spec must name the token’s pod, uid included', () => {
    expect(rulesOf(create({ spec: { pod: { namespace: 'agents', name: 'coder-0' } } }))).toEqual(['approval.pod_mismatch']);
    expect(rulesOf(create({ spec: { pod: { namespace: 'agents', name: 'coder-1', uid: POD_UID } } }))).toEqual(['approval.pod_mismatch']);
  });

  test('checked against the pod as the API server stores it', () => {
    expect(rulesOf(create({ boundPod: 'missing' }))).toEqual(['approval.pod_unknown']);
    expect(rulesOf(create({ boundPod: 'unreadable' }))).toEqual(['approval.pod_unknown']);
    expect(rulesOf(create({ boundPod: { ...boundPod, uid: 'recreated' } }))).toEqual(['approval.pod_unknown']);
    expect(rulesOf(create({ boundPod: { ...boundPod, injected: false } }))).toEqual(['approval.not_the_sidecar']);
    expect(rulesOf(create({ boundPod: { ...boundPod, serviceAccount: 'builder' } }))).toEqual(['approval.pod_mismatch']);
  });

  test('the creator must be the pod’s stamp, and the pod must own the request', () => {
    expect(rulesOf(create({ spec: { creator: { username: 'mallory@example.com', groups: [] } } }))).toEqual(['approval.creator_forged']);
    expect(rulesOf(create({ boundPod: { ...boundPod, creator: undefined } }))).toEqual(['approval.creator_forged']);
    expect(rulesOf(create({ metadata: { ownerReferences: [] } }))).toEqual(['approval.owner_missing']);
    expect(rulesOf(create({ metadata: { ownerReferences: [{ kind: 'Pod', name: 'coder-0', uid: 'other' }] } }))).toEqual(['approval.owner_missing']);
  });

  test('the summary must be the line the facts give (masked at most): a harmless summary over a push is refused', () => {
    const request = { ...spec.request, summary: 'GET github.com/acme/app/info/refs' };
    expect(rulesOf(create({ spec: { request } }))).toEqual(['approval.summary_mismatch']);
    const masked = { ...spec.request, summary: 'git push acme/[REDACTED:github-pat] refs/heads/main on github.com' };
    expect(rulesOf(create({ spec: { request: masked } }))).toEqual([]);
  });

  test('a request must wait into the future, at most 24 h', () => {
    expect(rulesOf(create({ spec: { expiresAt: new Date(NOW.getTime() - 1).toISOString() } }))).toEqual(['approval.expired']);
    expect(rulesOf(create({ spec: { expiresAt: 'tomorrow' } }))).toEqual(['approval.expired']);
    expect(rulesOf(create({ spec: { expiresAt: new Date(NOW.getTime() + 48 * 3_600_000).toISOString() } }))).toEqual(['approval.bad_decision']);
  });

  test('another namespace in the spec, or a pre-decided status, is refused', () => {
    expect(rulesOf(create({ spec: { pod: { namespace: 'team', name: 'coder-0', uid: POD_UID } } }))).toEqual(['approval.pod_mismatch']);
    expect(rulesOf(create({ status: { state: 'Approved', scope: 'once' } }))).toEqual(['approval.bad_decision']);
  });

  test('a spec that is not an ApprovalRequest spec is refused', () => {
    expect(approvalViolations({ operation: 'CREATE', subResource: '', namespace: 'agents', actor: sidecar, object: { metadata: {}, spec: { pod: 'x' } } }, config).map((v) => v.rule)).toEqual(['approval.bad_decision']);
  });

  test('the stamp copies the creator from the pod and makes the pod the owner, over whatever the client wrote', () => {
    const input = create({ spec: { creator: { username: 'mallory@example.com', groups: [] } }, metadata: { ownerReferences: [] } });
    expect(approvalStamp(input, NOW)).toEqual([
      { op: 'add', path: '/spec/creator', value: SAMPLE_SPEC.creator },
      { op: 'add', path: '/metadata/ownerReferences', value: [{ apiVersion: 'v1', kind: 'Pod', name: 'coder-0', uid: POD_UID }] },
    ]);
    expect(approvalStamp(create({ boundPod: { ...boundPod, creator: undefined } }), NOW)[0]).toEqual({ op: 'remove', path: '/spec/creator' });
    expect(approvalStamp(create({ actor: { ...sidecar, extra: {} } }), NOW)).toEqual([]);
    expect(approvalStamp(create({ boundPod: 'unreadable' }), NOW)).toEqual([]);
  });
});

describe('deciding', () => {
  test('bob approves: the stamp records him, his groups, the time and the requested scope', () => {
    const { stamped, rules } = decide(bob, pending, { state: 'Approved' });
    expect(rules).toEqual([]);
    expect(stamped).toEqual({ state: 'Approved', decidedBy: 'bob@example.com', decidedByGroups: bob.groups, decidedAt: NOW.toISOString(), scope: 'session' });
  });

  test('a ttl scope gets its expiry from the webhook clock; longer than maxTTL is refused', () => {
    const { stamped, rules } = decide(bob, pending, { state: 'Approved', scope: 'ttl', ttl: '2h' });
    expect(rules).toEqual([]);
    expect(stamped.expiresAt).toBe(new Date(NOW.getTime() + ttlMs('2h')!).toISOString());
    expect(decide(bob, pending, { state: 'Approved', scope: 'ttl', ttl: '9h' }).messages.join()).toContain('at most 8h');
    expect(decide(bob, pending, { state: 'Approved', scope: 'ttl', ttl: 'forever' }).rules).toContain('approval.bad_decision');
    expect(decide(bob, pending, { state: 'Approved', scope: 'once', ttl: '1h' }).rules).toContain('approval.bad_decision');
  });

  test('a client-written decidedBy is overwritten by the stamp (no impersonation)', () => {
    const { stamped, rules } = decide(bob, pending, { state: 'Denied', decidedBy: 'ceo@example.com', reason: 'no' });
    expect(stamped.decidedBy).toBe('bob@example.com');
    expect(rules).toEqual([]);
  });

  test('without the stamp (mutating webhook bypassed) the decider must match the user', () => {
    const input = statusUpdate(bob, pending, { state: 'Approved', scope: 'once', decidedBy: 'ceo@example.com', decidedByGroups: [...bob.groups], decidedAt: NOW.toISOString() });
    expect(approvalViolations(input, config).map((v) => v.rule)).toEqual(['approval.decider_mismatch']);
  });

  test('alice, the creator, cannot approve her own pod’s request, even as an approver; she may deny it', () => {
    const { rules, messages } = decide(alice, pending, { state: 'Approved' });
    expect(rules).toEqual(['approval.self_approval']);
    expect(messages[0]).toBe('alice@example.com created pod coder-0 and cannot approve its requests; another approver must');
    expect(decide(alice, pending, { state: 'Denied', reason: 'oops' }).rules).toEqual([]);
  });

  test('the pod’s own service account can neither approve nor deny', () => {
    expect(decide(sidecar, pending, { state: 'Approved' }).rules).toEqual(['approval.self_approval']);
    expect(decide(sidecar, pending, { state: 'Denied' }).rules).toEqual(['approval.self_approval']);
  });

  test('mallory is in no approver group: refused, naming the groups', () => {
    const { rules, messages } = decide(mallory, pending, { state: 'Approved' });
    expect(rules).toEqual(['approval.not_an_approver']);
    expect(messages[0]).toBe('mallory@example.com may not approve coder-0-abc: not a member of an approver group for namespace agents (sluice-approvers)');
    expect(decide(mallory, pending, { state: 'Denied' }).rules).toEqual(['approval.not_an_approver']);
  });

  test('per-namespace approver groups replace the default', () => {
    expect(decide(bob, pending, { state: 'Approved' }, 'payments').rules).toEqual(['approval.not_an_approver']);
    expect(decide({ ...mallory, groups: ['payments-leads'] }, pending, { state: 'Approved' }, 'payments').rules).toEqual([]);
  });

  test('a request without a creator stamp can be denied but not approved', () => {
    const { creator: _c, ...noCreator } = spec;
    const input = { operation: 'UPDATE' as const, subResource: 'status', namespace: 'agents', actor: bob, oldObject: obj(pending, noCreator), object: obj({ state: 'Approved', scope: 'once' }, noCreator) };
    expect(approvalViolations(input, config).map((v) => v.rule)).toEqual(['approval.creator_unknown']);
  });
});

describe('expiry and unknown creators', () => {
  test('once the sidecar stopped waiting, a request can be denied but not approved', () => {
    const late = (actor: Actor, to: Partial<ApprovalRequestStatus>) => {
      const input = { ...statusUpdate(actor, pending, to), now: new Date(Date.parse(spec.expiresAt) + 1) };
      const stamped = { ...to };
      for (const op of approvalStamp(input, input.now)) (stamped as Record<string, unknown>)[op.path.split('/').pop()!] = op.value;
      return approvalViolations({ ...input, object: obj(stamped) }, config).map((v) => v.rule);
    };
    expect(late(bob, { state: 'Approved' })).toEqual(['approval.expired']);
    expect(late(bob, { state: 'Denied' })).toEqual([]);
  });

  test('the unknown-creator stamp (a controller-made pod whose owners carry none) is never approvable', () => {
    const unknown = { ...spec, creator: { username: 'sluice:unknown-creator', groups: [] } };
    const input: ApprovalReviewInput = { operation: 'UPDATE', subResource: 'status', namespace: 'agents', actor: bob, oldObject: obj(pending, unknown), object: obj({ state: 'Approved', scope: 'once', decidedBy: 'bob@example.com', decidedByGroups: bob.groups as string[], decidedAt: NOW.toISOString() }, unknown), now: NOW };
    expect(approvalViolations(input, config).map((v) => v.rule)).toEqual(['approval.creator_unknown']);
  });
});

describe('after a decision', () => {
  const approved: Partial<ApprovalRequestStatus> = { state: 'Approved', scope: 'session', decidedBy: 'bob@example.com', decidedByGroups: [...bob.groups], decidedAt: NOW.toISOString() };

  test.each([
    ['Approved → Denied', approved, { ...approved, state: 'Denied' as const }],
    ['a changed scope', approved, { ...approved, scope: 'ttl' as const, ttl: '1h', expiresAt: NOW.toISOString() }],
    ['Denied → Approved', { state: 'Denied' as const, decidedBy: 'bob@example.com' }, { ...approved }],
    ['Expired → Pending', { state: 'Expired' as const }, { state: 'Pending' as const }],
  ])('%s is refused as already decided', (_w, from, to) => {
    const v = approvalViolations(statusUpdate(bob, from, to), config);
    expect(v.map((x) => x.rule)).toEqual(['approval.already_decided']);
  });

  test('the message says who decided and when', () => {
    expect(approvalViolations(statusUpdate(bob, approved, { ...approved, state: 'Denied' }), config)[0]!.message).toBe(
      `coder-0-abc was already Approved by bob@example.com at ${NOW.toISOString()}; a decision is final (it can only be revoked)`,
    );
  });

  test('an unchanged status (a no-op update) passes', () => {
    expect(approvalViolations(statusUpdate(bob, approved, { ...approved }), config)).toEqual([]);
  });

  test('revoke: an approver or the creator, stamped, nothing else changed', () => {
    const r = decide(bob, approved, { ...approved, state: 'Revoked' });
    expect(r.rules).toEqual([]);
    expect(r.stamped).toMatchObject({ revokedBy: 'bob@example.com', revokedAt: NOW.toISOString(), decidedBy: 'bob@example.com' });
    expect(decide(alice, approved, { ...approved, state: 'Revoked' }).rules).toEqual([]);
    expect(decide(mallory, approved, { ...approved, state: 'Revoked' }).rules).toEqual(['approval.not_an_approver']);
    expect(decide(bob, approved, { ...approved, state: 'Revoked', scope: 'once' }).rules).toEqual(['approval.already_decided']);
  });

  test('revoking what was never approved is refused', () => {
    expect(decide(bob, pending, { state: 'Revoked' }).rules).toEqual(['approval.bad_decision']);
  });
});

describe('the sidecar’s own status writes', () => {
  test('Pending → Pending (marking it) and Pending → Expired by the sidecar pass; a human cannot expire', () => {
    expect(approvalViolations(statusUpdate(sidecar, undefined, pending), config)).toEqual([]);
    expect(approvalViolations(statusUpdate(sidecar, pending, { state: 'Expired', reason: 'timeout' }), config)).toEqual([]);
    expect(approvalViolations(statusUpdate(bob, pending, { state: 'Expired' }), config).map((v) => v.rule)).toEqual(['approval.not_the_sidecar']);
  });

  const otherPod: Actor = { ...sidecar, extra: { 'authentication.kubernetes.io/pod-name': ['coder-1'], 'authentication.kubernetes.io/pod-uid': ['pod-uid-2'] } };
  test.each([
    ['another pod’s sidecar (same service account)', otherPod],
    ['a plain token of the service account', { ...sidecar, extra: {} }],
    ['a token bound to a pod of the same name but another uid', { ...sidecar, extra: { 'authentication.kubernetes.io/pod-name': ['coder-0'], 'authentication.kubernetes.io/pod-uid': ['pod-uid-9'] } }],
  ] as [string, Actor][])('%s can neither expire nor mark the request', (_w, actor) => {
    expect(approvalViolations(statusUpdate(actor, pending, { state: 'Expired', reason: 'x' }), config).map((v) => v.rule)).toEqual(['approval.not_the_sidecar']);
    expect(approvalViolations(statusUpdate(actor, undefined, pending), config).map((v) => v.rule)).toEqual(['approval.not_the_sidecar']);
  });

  test('deleting: a pod’s token only its own pod’s requests, a plain token of its account none; people and the garbage collector under RBAC alone', () => {
    const del = (actor: Actor): ApprovalReviewInput => ({ operation: 'DELETE', subResource: '', namespace: 'agents', actor, oldObject: obj(pending), object: undefined });
    expect(approvalViolations(del(otherPod), config).map((v) => v.rule)).toEqual(['approval.not_the_sidecar']);
    expect(approvalViolations(del({ ...sidecar, extra: {} }), config).map((v) => v.rule)).toEqual(['approval.not_the_sidecar']);
    expect(approvalViolations(del(sidecar), config)).toEqual([]);
    expect(approvalViolations(del(bob), config)).toEqual([]);
    expect(approvalViolations(del({ username: 'system:serviceaccount:kube-system:generic-garbage-collector', groups: [], extra: {} }), config)).toEqual([]);
  });

  test('deleting: no other service account of any namespace, with a plain token or one bound to its own pod (the sidecar Role binds every account of the namespace)', () => {
    const del = (actor: Actor): ApprovalReviewInput => ({ operation: 'DELETE', subResource: '', namespace: 'agents', actor, oldObject: obj(pending), object: undefined });
    for (const username of ['system:serviceaccount:agents:builder', 'system:serviceaccount:team-b:coder', 'system:serviceaccount:agents:default']) {
      expect(approvalViolations(del({ username, groups: ['system:serviceaccounts'], extra: {} }), config).map((v) => v.rule)).toEqual(['approval.not_the_sidecar']);
    }
    // kube-system's controllers (the garbage collector, the namespace controller) delete under RBAC alone.
    expect(approvalViolations(del({ username: 'system:serviceaccount:kube-system:namespace-controller', groups: ['system:serviceaccounts'], extra: {} }), config)).toEqual([]);
  });

  test('a Pending status carrying a decision is refused', () => {
    expect(approvalViolations(statusUpdate(sidecar, undefined, { state: 'Pending', decidedBy: 'x' }), config).map((v) => v.rule)).toEqual(['approval.bad_decision']);
  });

  test('the stamp leaves the sidecar’s writes alone', () => {
    expect(approvalStamp(statusUpdate(sidecar, pending, { state: 'Expired' }), NOW)).toEqual([]);
    expect(approvalStamp(statusUpdate(sidecar, undefined, pending), NOW)).toEqual([]);
  });
});

describe('the object itself', () => {
  test('the spec and the selection labels cannot change; other labels can', () => {
    const update = (o: object, n: object): ApprovalReviewInput => ({ operation: 'UPDATE', subResource: '', namespace: 'agents', actor: bob, oldObject: o, object: n });
    expect(approvalViolations(update(obj(), obj(undefined, { ...spec, reason: 'harmless' })), config).map((v) => v.rule)).toEqual(['approval.spec_immutable']);
    expect(approvalViolations(update(obj(), obj(undefined, spec, { 'sluice.io/pod': 'elsewhere' })), config).map((v) => v.rule)).toEqual(['approval.spec_immutable']);
    expect(approvalViolations(update(obj(), obj(undefined, spec, { 'sluice.io/pod': 'coder-0', team: 'x' } as Record<string, string> as { 'sluice.io/pod': string })), config)).toEqual([]);
  });

  test('deletes by people are RBAC’s business', () => {
    expect(approvalViolations({ operation: 'DELETE', subResource: '', namespace: 'agents', actor: mallory, object: undefined }, config)).toEqual([]);
  });
});
