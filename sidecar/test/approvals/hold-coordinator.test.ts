// The hold state machine, driven through its two edges: an in-memory ApprovalRequest store with the
// API server's optimistic-concurrency semantics (resourceVersion preconditions → 409) that feeds
// changes back like the watch does, and the waiting agent requests. Clock and names are injected;
// deadlines are short real timers. The real API server runs the same paths in e2e/approvals.
import { afterEach, describe, expect, test } from '@jest/globals';
import { Registry } from 'prom-client';
import type { ApprovalRequest, ApprovalRequestStatus } from '../../../api/src/index.ts';
import { draftApproval } from '../../src/approvals/approval-draft.ts';
import type { ApprovalDraft } from '../../src/approvals/approval-draft.ts';
import { ApprovalApiError } from '../../../lib/src/approvals/errors.ts';
import { HoldCoordinator } from '../../src/approvals/hold-coordinator.ts';
import type { ApprovalEvent, CoordinatorDeps, HoldResult } from '../../src/approvals/hold-coordinator.ts';
import { registerApprovalMetrics } from '../../src/approvals/metrics.ts';

class MemoryApprovals {
  readonly objects = new Map<string, ApprovalRequest>();
  rv = 100;
  creates = 0;
  /** When set, every call fails with this error. */
  failure: ApprovalApiError | undefined;
  /** Receives every change, as the sidecar's watch would. */
  listener: ((obj: ApprovalRequest) => void) | undefined;
  /** Lets a test hold an API answer back. */
  gate: Promise<void> = Promise.resolve();

  #store(obj: ApprovalRequest): ApprovalRequest {
    const stored = structuredClone({ ...obj, metadata: { ...obj.metadata, resourceVersion: String(++this.rv) } });
    this.objects.set(obj.metadata.name!, stored);
    queueMicrotask(() => this.listener?.(structuredClone(stored)));
    return structuredClone(stored);
  }

  async create(_ns: string, obj: ApprovalRequest): Promise<ApprovalRequest> {
    await this.gate;
    if (this.failure) throw this.failure;
    this.creates += 1;
    return this.#store(obj);
  }

  async get(_ns: string, name: string): Promise<ApprovalRequest> {
    await this.gate;
    if (this.failure) throw this.failure;
    const obj = this.objects.get(name);
    if (!obj) throw new ApprovalApiError('SLUICE_APPROVAL_API_NOT_FOUND', `${name} not found`, 404);
    return structuredClone(obj);
  }

  async patchStatus(_ns: string, name: string, status: Partial<ApprovalRequestStatus>, resourceVersion?: string): Promise<ApprovalRequest> {
    await this.gate;
    if (this.failure) throw this.failure;
    const obj = this.objects.get(name);
    if (!obj) throw new ApprovalApiError('SLUICE_APPROVAL_API_NOT_FOUND', `${name} not found`, 404);
    if (resourceVersion && obj.metadata.resourceVersion !== resourceVersion) throw new ApprovalApiError('SLUICE_APPROVAL_API_CONFLICT', 'modified', 409);
    return this.#store({ ...obj, status: { ...(obj.status ?? { state: 'Pending' }), ...status } });
  }

  /** A human deciding, through the "API server". */
  decide(name: string, status: Partial<ApprovalRequestStatus>): ApprovalRequest {
    const obj = this.objects.get(name)!;
    return this.#store({ ...obj, status: { ...(obj.status ?? { state: 'Pending' }), ...status } });
  }
}

function draft(ref = 'refs/heads/main', session = 's-1'): ApprovalDraft {
  return draftApproval({
    summary: { method: 'POST', scheme: 'https', host: 'github.com', port: 443, path: '/acme/app.git/git-receive-pack', query: {}, headers: {}, ip_literal: false },
    facts: { git: { service: 'git-receive-pack', operation: 'push', phase: 'rpc', repo: 'acme/app', refs: [{ ref, old: '0', new: '1' }] } },
    decision: { allow: true, code: 'git.push_requires_approval', reason: 'r', require_approval: { reason: 'push needs approval', scope: 'session' } },
    pod: { namespace: 'agents', name: 'coder-0', serviceAccount: 'coder' },
    session,
    expiresAt: '2030-01-01T00:00:00Z',
  });
}

const running: HoldCoordinator[] = [];
afterEach(() => {
  for (const c of running.splice(0)) c.stop();
});

function setup(over: Partial<CoordinatorDeps> = {}) {
  const store = new MemoryApprovals();
  const registry = new Registry();
  const events: ApprovalEvent[] = [];
  let healthy = true;
  let n = 0;
  clockNow = 1_000_000;
  const created: string[] = [];
  const coordinator = new HoldCoordinator({
    api: store,
    namespace: 'agents',
    podName: 'coder-0',
    serviceAccount: 'coder',
    session: 's-1',
    maxWaitMs: 5_000,
    maxConcurrentHolds: 3,
    apiGraceMs: 50,
    metrics: registerApprovalMetrics(registry),
    newName: () => `coder-0-${++n}`,
    healthy: () => healthy,
    clock: () => clockNow,
    onCreated: (o) => created.push(o.metadata.name!),
    onEvent: (e) => events.push(e),
    ...over,
  });
  running.push(coordinator);
  store.listener = (obj) => coordinator.upsert(obj);
  const metric = async (name: string, labels: Record<string, string> = {}) =>
    (await registry.getSingleMetric(name)!.get()).values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))?.value ?? 0;
  return { store, coordinator, events, created, metric, setHealthy: (h: boolean) => (healthy = h) };
}

async function until<T>(probe: () => T | undefined): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = probe();
    if (v !== undefined) return v;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error('condition not reached');
}

const agent = () => new AbortController();
let clockNow = 0;

describe('holding and deciding', () => {
  test('approval releases every identical waiter; one ApprovalRequest was created; it was marked Pending', async () => {
    const { store, coordinator, events, created, metric } = setup();
    const a = coordinator.hold(draft(), agent().signal, 'r1');
    const b = coordinator.hold(draft(), agent().signal, 'r2');
    await until(() => (store.objects.get('coder-0-1')?.status?.state === 'Pending' ? true : undefined));
    expect(store.creates).toBe(1);
    expect(created).toEqual(['coder-0-1']);
    expect(coordinator.heldCount).toBe(2);
    expect(await metric('sluice_approvals_pending')).toBe(1);
    clockNow += 7_000;
    expect(await metric('sluice_approvals_oldest_pending_age_seconds')).toBe(7);
    store.decide('coder-0-1', { state: 'Approved', scope: 'session', decidedBy: 'bob' });
    const [ra, rb] = await Promise.all([a, b]);
    expect(ra).toMatchObject({ kind: 'approved', name: 'coder-0-1', scope: 'session', decidedBy: 'bob' });
    expect(rb.kind).toBe('approved');
    expect(events.map((e) => e.type)).toEqual(['joined', 'requested', 'decided']);
    expect(events.at(-1)).toMatchObject({ type: 'decided', outcome: 'approved', requestIds: ['r1', 'r2'] });
    // The session grant now stands for the next identical request.
    expect(coordinator.grantFor(draft().grantKey)).toMatchObject({ name: 'coder-0-1', scope: 'session' });
    expect(await metric('sluice_approvals_decisions_total', { outcome: 'approved' })).toBe(1);
    expect(await metric('sluice_approvals_pending')).toBe(0);
    expect(await metric('sluice_approvals_oldest_pending_age_seconds')).toBe(0);
    expect(coordinator.heldCount).toBe(0);
  });

  test('a different request gets its own ApprovalRequest', async () => {
    const { store, coordinator } = setup();
    void coordinator.hold(draft('refs/heads/main'), agent().signal, 'r1');
    void coordinator.hold(draft('refs/heads/dev'), agent().signal, 'r2');
    await until(() => (store.creates === 2 ? true : undefined));
    expect([...store.objects.keys()]).toEqual(['coder-0-1', 'coder-0-2']);
  });

  test('a denial refuses with the approver and reason; no grant stands', async () => {
    const { store, coordinator } = setup();
    const r = coordinator.hold(draft(), agent().signal, 'r1');
    await until(() => store.objects.get('coder-0-1'));
    store.decide('coder-0-1', { state: 'Denied', decidedBy: 'bob', reason: 'freeze' });
    expect(await r).toMatchObject({ kind: 'refused', code: 'approval.denied', status: 403, outcome: 'denied', reason: 'denied by bob: freeze' });
    expect(coordinator.grantFor(draft().grantKey)).toBeUndefined();
  });

  test('a decision that arrives before the Pending write is honoured (the write is conditional and loses)', async () => {
    const { store, coordinator } = setup();
    let release!: () => void;
    const r = coordinator.hold(draft(), agent().signal, 'r1');
    await until(() => store.objects.get('coder-0-1'));
    store.gate = new Promise((res) => (release = res));
    store.decide('coder-0-1', { state: 'Approved', scope: 'once', decidedBy: 'bob' });
    release();
    expect(await r).toMatchObject({ kind: 'approved', scope: 'once' });
    expect(store.objects.get('coder-0-1')!.status!.state).toBe('Approved');
  });

  test('deleting the request refuses its waiters', async () => {
    const { store, coordinator } = setup();
    const r = coordinator.hold(draft(), agent().signal, 'r1');
    const obj = await until(() => store.objects.get('coder-0-1'));
    coordinator.remove(obj);
    expect(await r).toMatchObject({ kind: 'refused', code: 'approval.deleted' });
  });
});

describe('ending without a human', () => {
  test('the deadline expires the request: refused, and the ApprovalRequest says Expired', async () => {
    const { store, coordinator, metric } = setup({ maxWaitMs: 30 });
    const r = await coordinator.hold(draft(), agent().signal, 'r1');
    expect(r).toMatchObject({ kind: 'refused', code: 'approval.expired', outcome: 'expired' });
    expect(store.objects.get('coder-0-1')!.status).toMatchObject({ state: 'Expired', reason: expect.stringContaining('no decision within') });
    expect(await metric('sluice_approvals_decisions_total', { outcome: 'expired' })).toBe(1);
  });

  test('an approval racing the deadline wins: the conditional Expired write conflicts and the approval is read back', async () => {
    const { store, coordinator } = setup({ maxWaitMs: 40 });
    store.listener = undefined; // the watch is slow: only the read-back after the conflict sees the approval
    const r = coordinator.hold(draft(), agent().signal, 'r1');
    await until(() => (store.objects.get('coder-0-1')?.status?.state === 'Pending' ? true : undefined));
    store.decide('coder-0-1', { state: 'Approved', scope: 'once', decidedBy: 'bob' });
    expect(await r).toMatchObject({ kind: 'approved', decidedBy: 'bob' });
  });

  test('the agent going away leaves; the last one leaving expires the request', async () => {
    const { store, coordinator } = setup();
    const one = agent();
    const two = agent();
    const a = coordinator.hold(draft(), one.signal, 'r1');
    const b = coordinator.hold(draft(), two.signal, 'r2');
    await until(() => (store.objects.get('coder-0-1')?.status?.state === 'Pending' ? true : undefined));
    one.abort();
    expect(await a).toMatchObject({ kind: 'refused', outcome: 'abandoned' });
    expect(store.objects.get('coder-0-1')!.status!.state).toBe('Pending');
    two.abort();
    expect(await b).toMatchObject({ kind: 'refused', outcome: 'abandoned' });
    await until(() => (store.objects.get('coder-0-1')!.status!.state === 'Expired' ? true : undefined));
    expect(store.objects.get('coder-0-1')!.status!.reason).toContain('closed the connection');
    expect(coordinator.heldCount).toBe(0);
  });

  test('the kill switch cuts every hold and records it', async () => {
    const { store, coordinator, events } = setup();
    const a = coordinator.hold(draft('refs/heads/a'), agent().signal, 'r1');
    const b = coordinator.hold(draft('refs/heads/b'), agent().signal, 'r2');
    await until(() => (store.objects.size === 2 ? true : undefined));
    expect(coordinator.cutAll()).toBe(2);
    expect(await a).toMatchObject({ code: 'pod.killed', outcome: 'killed' });
    expect(await b).toMatchObject({ code: 'pod.killed' });
    await until(() => ([...store.objects.values()].every((o) => o.status?.state === 'Expired') ? true : undefined));
    expect(events.find((e) => e.type === 'cut')).toMatchObject({ count: 2 });
  });
});

describe('failing closed', () => {
  test.each([
    ['unreachable', new ApprovalApiError('SLUICE_APPROVAL_API_UNREACHABLE', 'connect ECONNREFUSED'), 'approval.unavailable'],
    ['forbidden', new ApprovalApiError('SLUICE_APPROVAL_API_FORBIDDEN', 'cannot create', 403), 'approval.forbidden'],
  ])('creating fails (%s) → refused with 503', async (_w, failure, code) => {
    const { store, coordinator } = setup();
    store.failure = failure;
    const r: HoldResult = await coordinator.hold(draft(), agent().signal, 'r1');
    expect(r).toMatchObject({ kind: 'refused', status: 503, code });
    expect(coordinator.heldCount).toBe(0);
  });

  test('an API server lost while holding: refused after the grace period, not before', async () => {
    const { store, coordinator, setHealthy } = setup();
    const r = coordinator.hold(draft(), agent().signal, 'r1');
    await until(() => store.objects.get('coder-0-1'));
    setHealthy(false);
    coordinator.health(false, new ApprovalApiError('SLUICE_APPROVAL_API_UNREACHABLE', 'gone'));
    let settled = false;
    void r.then(() => (settled = true));
    await new Promise((res) => setImmediate(res));
    expect(settled).toBe(false);
    expect(await r).toMatchObject({ kind: 'refused', code: 'approval.unavailable', status: 503 });
  });

  test('contact regained within the grace period keeps the hold', async () => {
    const { store, coordinator, setHealthy } = setup({ apiGraceMs: 40 });
    const r = coordinator.hold(draft(), agent().signal, 'r1');
    await until(() => store.objects.get('coder-0-1'));
    setHealthy(false);
    coordinator.health(false);
    setHealthy(true);
    coordinator.health(true);
    coordinator.reset([...store.objects.values()]);
    await new Promise((res) => setTimeout(res, 60));
    store.decide('coder-0-1', { state: 'Approved', scope: 'once', decidedBy: 'bob' });
    expect(await r).toMatchObject({ kind: 'approved' });
  });

  test('while the view is stale: no grant is used, no new hold is started', async () => {
    const { store, coordinator, setHealthy } = setup();
    store.objects.set('old', { apiVersion: 'sluice.io/v1alpha1', kind: 'ApprovalRequest', metadata: { name: 'old', resourceVersion: '1' }, spec: draft().spec, status: { state: 'Approved', scope: 'session' } });
    coordinator.reset([...store.objects.values()]);
    expect(coordinator.grantFor(draft().grantKey)?.name).toBe('old');
    setHealthy(false);
    expect(coordinator.grantFor(draft().grantKey)).toBeUndefined();
    expect(await coordinator.hold(draft('refs/heads/x'), agent().signal, 'r')).toMatchObject({ code: 'approval.unavailable' });
  });

  test('more than maxConcurrentHolds waiting → refused at once', async () => {
    const { coordinator } = setup({ maxConcurrentHolds: 2 });
    void coordinator.hold(draft('refs/heads/a'), agent().signal, 'r1');
    void coordinator.hold(draft('refs/heads/a'), agent().signal, 'r2');
    expect(await coordinator.hold(draft('refs/heads/b'), agent().signal, 'r3')).toMatchObject({ code: 'approval.too_many_holds', status: 503 });
  });

  test('a Pending request of an earlier session (sidecar restart) is expired on the first sync', async () => {
    const { store, coordinator } = setup();
    const stale = { apiVersion: 'sluice.io/v1alpha1', kind: 'ApprovalRequest', metadata: { name: 'stale', resourceVersion: '5' }, spec: draft('refs/heads/main', 's-0').spec, status: { state: 'Pending' } } as ApprovalRequest;
    store.objects.set('stale', stale);
    coordinator.reset([stale]);
    await until(() => (store.objects.get('stale')!.status!.state === 'Expired' ? true : undefined));
    expect(store.objects.get('stale')!.status!.reason).toContain('sidecar restarted');
  });

  test('stop refuses every hold with 503', async () => {
    const { store, coordinator } = setup();
    const r = coordinator.hold(draft(), agent().signal, 'r1');
    await until(() => store.objects.get('coder-0-1'));
    coordinator.stop();
    expect(await r).toMatchObject({ code: 'approval.sidecar_stopping', status: 503 });
    expect(await coordinator.hold(draft(), agent().signal, 'r2')).toMatchObject({ code: 'approval.sidecar_stopping' });
  });
});
