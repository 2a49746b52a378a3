// The state machine behind held requests: one ApprovalRequest per distinct pending request
// (identical ones join it), a deadline per request, a bound on how many agent requests are held,
// and the outcome each waiter gets once the API server shows a decision. It fails closed: an API
// server it cannot reach (at create, or for longer than the grace period while waiting), a deleted
// request, the kill switch or shutdown all end holds as refusals. It never lets a request through
// on anything but an Approved status read back from the API server.
import { APPROVAL_API_VERSION, APPROVAL_KIND, codeStatus } from '../../../api/src/index.ts';
import type { ApprovalRequest, ApprovalRequestStatus, ApprovalScope } from '../../../api/src/index.ts';
import type { ApprovalApi } from '../../../lib/src/approvals/approval-api.ts';
import type { ApprovalDraft } from './approval-draft.ts';
import { APPROVAL_CODES, ApprovalApiError } from '../../../lib/src/approvals/errors.ts';
import type { ApprovalCode } from '../../../lib/src/approvals/errors.ts';
import { requestsToDelete } from './cleanup.ts';
import { GrantTable, isOwnRequest } from './grants.ts';
import type { Grant, GrantOwner } from './grants.ts';
import { LABEL_APPROVAL_POD, LABEL_APPROVAL_SESSION, approvalLabelValue } from '../../../lib/src/approvals/labels.ts';
import type { ApprovalMetrics, Outcome } from './metrics.ts';
import type { WatcherListener } from './approval-watcher.ts';

export type HoldResult =
  | { kind: 'approved'; name: string; scope: ApprovalScope; decidedBy?: string | undefined; waitedMs: number }
  | { kind: 'refused'; outcome: Outcome; code: ApprovalCode; status: number; reason: string; name?: string | undefined; decidedBy?: string | undefined; waitedMs: number };

/** Steps of an approval, for the audit trail (kind "approval"). */
export type ApprovalEvent =
  | { type: 'requested'; name: string; requestId: string; summary: string; code: string }
  | { type: 'joined'; name: string; requestId: string }
  | { type: 'decided'; name: string; requestIds: string[]; outcome: Outcome; code?: ApprovalCode | undefined; scope?: ApprovalScope | undefined; decidedBy?: string | undefined; reason?: string | undefined; waitedMs: number }
  | { type: 'grant_used'; name: string; requestId: string; scope: ApprovalScope; decidedBy?: string | undefined }
  | { type: 'cut'; count: number; code: ApprovalCode };

export interface CoordinatorDeps {
  api: Pick<ApprovalApi, 'create' | 'get' | 'patchStatus'> & Partial<Pick<ApprovalApi, 'delete'>>;
  namespace: string;
  podName: string;
  /** The pod's uid (from the downward API); grants and clean-up then require it too. */
  podUid?: string | undefined;
  /** The pod's service account; an object naming another grants nothing. */
  serviceAccount: string;
  session: string;
  maxWaitMs: number;
  /** How long finished requests stay before sweep() deletes them; undefined: never. */
  retainFinishedMs?: number | undefined;
  maxConcurrentHolds: number;
  apiGraceMs: number;
  metrics: ApprovalMetrics;
  /** Called once per new ApprovalRequest (notifications). */
  onCreated?: (obj: ApprovalRequest) => void;
  onEvent?: (e: ApprovalEvent) => void;
  log?: (level: 'info' | 'warn', msg: string, detail: Record<string, unknown>) => void;
  clock?: () => number;
  /** Name for a new ApprovalRequest (tests inject). */
  newName: () => string;
  /** Is the API server's view current? (the watcher's health) */
  healthy: () => boolean;
}

interface Waiter {
  requestId: string;
  resolve(result: HoldResult): void;
}

interface Pending {
  name: string;
  fingerprint: string;
  summary: string;
  createdAtMs: number;
  created: boolean;
  /** latest object seen (create answer or watch) */
  obj?: ApprovalRequest;
  waiters: Set<Waiter>;
  timer?: NodeJS.Timeout;
  done: boolean;
}

export class HoldCoordinator implements WatcherListener {
  readonly #d: CoordinatorDeps;
  readonly #clock: () => number;
  readonly grants: GrantTable;
  readonly #byName = new Map<string, Pending>();
  readonly #byFingerprint = new Map<string, Pending>();
  /** Every own-pod request the watch shows (for sweep()). */
  readonly #seen = new Map<string, ApprovalRequest>();
  readonly #owner: GrantOwner;
  #heldCount = 0;
  #graceTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  #cleanedStale = false;

  constructor(deps: CoordinatorDeps) {
    this.#d = deps;
    this.#clock = deps.clock ?? Date.now;
    this.#owner = { namespace: deps.namespace, pod: deps.podName, podUid: deps.podUid, serviceAccount: deps.serviceAccount, session: deps.session };
    this.grants = new GrantTable(this.#owner);
    deps.metrics.oldestPendingSource = () => {
      let oldest: number | undefined;
      for (const p of this.#byName.values()) if (oldest === undefined || p.createdAtMs < oldest) oldest = p.createdAtMs;
      return oldest === undefined ? undefined : (this.#clock() - oldest) / 1000;
    };
  }

  get heldCount(): number {
    return this.#heldCount;
  }

  get pendingNames(): string[] {
    return [...this.#byName.keys()];
  }

  /** A standing grant for the key, but only while our view of the API server is current. */
  grantFor(key: string): Grant | undefined {
    if (!this.#d.healthy()) return undefined;
    return this.grants.match(key, this.#clock());
  }

  grantUsed(grant: Grant, requestId: string): void {
    this.#d.metrics.grantUses.inc({ scope: grant.scope });
    this.#d.onEvent?.({ type: 'grant_used', name: grant.name, requestId, scope: grant.scope, decidedBy: grant.decidedBy });
  }

  #refusal(code: ApprovalCode, outcome: Outcome, reason: string, startedMs: number, extra: { name?: string | undefined; decidedBy?: string | undefined } = {}): HoldResult {
    // the agent gets the code's status in the catalogue (api/src/codes.ts)
    return { kind: 'refused', outcome, code, status: codeStatus(code), reason, waitedMs: this.#clock() - startedMs, ...extra };
  }

  /**
   * Holds one agent request until its ApprovalRequest is decided. `signal` aborts when the agent
   * goes away: the waiter leaves, and an ApprovalRequest nobody waits for any more is expired.
   */
  hold(draft: ApprovalDraft, signal: AbortSignal, requestId: string): Promise<HoldResult> {
    const started = this.#clock();
    if (this.#stopped) return Promise.resolve(this.#refusal(APPROVAL_CODES.stopped, 'rejected', 'the sidecar is shutting down', started));
    if (!this.#d.healthy()) {
      return Promise.resolve(this.#refusal(APPROVAL_CODES.unavailable, 'unavailable', 'approval needed, but the Kubernetes API server cannot be reached to ask for it; refused (fail closed)', started));
    }
    if (this.#heldCount >= this.#d.maxConcurrentHolds) {
      return Promise.resolve(this.#refusal(APPROVAL_CODES.tooManyHolds, 'rejected', `approval needed, but ${this.#d.maxConcurrentHolds} requests are already waiting for approval in this pod; refused`, started));
    }
    let pending = this.#byFingerprint.get(draft.fingerprint);
    const joined = pending !== undefined;
    if (!pending) pending = this.#open(draft, requestId);
    const p = pending;
    return new Promise<HoldResult>((resolve) => {
      const waiter: Waiter = {
        requestId,
        resolve: (result) => {
          signal.removeEventListener('abort', onAbort);
          this.#heldCount--;
          this.#d.metrics.held.dec();
          resolve(result);
        },
      };
      const onAbort = () => {
        if (!p.waiters.delete(waiter)) return;
        waiter.resolve(this.#refusal(APPROVAL_CODES.expired, 'abandoned', 'the agent closed the connection', started, { name: p.name }));
        if (p.waiters.size === 0 && !p.done) this.#expire(p, 'abandoned', 'the agent closed the connection before a decision');
      };
      p.waiters.add(waiter);
      this.#heldCount++;
      this.#d.metrics.held.inc();
      signal.addEventListener('abort', onAbort, { once: true });
      if (signal.aborted) onAbort();
      if (joined) this.#d.onEvent?.({ type: 'joined', name: p.name, requestId });
    });
  }

  #open(draft: ApprovalDraft, requestId: string): Pending {
    const name = this.#d.newName();
    const pending: Pending = { name, fingerprint: draft.fingerprint, summary: draft.spec.request.summary, createdAtMs: this.#clock(), created: false, waiters: new Set(), done: false };
    this.#byName.set(name, pending);
    this.#byFingerprint.set(draft.fingerprint, pending);
    this.#d.metrics.pending.inc();
    pending.timer = setTimeout(() => this.#expire(pending, 'expired', `no decision within ${Math.round(this.#d.maxWaitMs / 1000)} s`), this.#d.maxWaitMs);
    const obj: ApprovalRequest = {
      apiVersion: APPROVAL_API_VERSION,
      kind: APPROVAL_KIND,
      metadata: {
        name,
        namespace: this.#d.namespace,
        labels: { [LABEL_APPROVAL_POD]: approvalLabelValue(this.#d.podName), [LABEL_APPROVAL_SESSION]: approvalLabelValue(this.#d.session) },
      },
      spec: draft.spec,
    };
    void this.#create(pending, obj, requestId);
    return pending;
  }

  async #create(p: Pending, obj: ApprovalRequest, requestId: string): Promise<void> {
    let created: ApprovalRequest;
    try {
      created = await this.#d.api.create(this.#d.namespace, obj);
    } catch (e) {
      this.#d.metrics.apiErrors.inc({ operation: 'create' });
      const err = e as ApprovalApiError;
      const forbidden = err instanceof ApprovalApiError && err.code === 'SLUICE_APPROVAL_API_FORBIDDEN';
      this.#d.log?.('warn', 'creating an ApprovalRequest failed; the held request is refused', { approval: p.name, code: err.code, err: err.message });
      this.#finish(
        p,
        this.#refusal(
          forbidden ? APPROVAL_CODES.forbidden : APPROVAL_CODES.unavailable,
          'unavailable',
          forbidden ? `approval needed, but the sidecar may not create ApprovalRequests: ${err.message}` : `approval needed, but the request for it could not be created (${err.message}); refused (fail closed)`,
          p.createdAtMs,
        ),
      );
      return;
    }
    p.created = true;
    if (p.done) return;
    // The watch may already have delivered a newer version (even a decision); keep the newest.
    if (!p.obj) p.obj = created;
    this.#d.onEvent?.({ type: 'requested', name: p.name, requestId, summary: obj.spec.request.summary, code: obj.spec.code });
    this.#d.onCreated?.(created);
    this.#evaluate(p);
    if (p.done || p.obj.status?.state) return;
    // Make the state column say Pending; conditional on the version we created, so it can never
    // overwrite a decision that raced in (a 409 then means someone already decided).
    try {
      const updated = await this.#d.api.patchStatus(this.#d.namespace, p.name, { state: 'Pending' }, created.metadata.resourceVersion as string);
      this.#upsertPending(p, updated);
    } catch (e) {
      if ((e as ApprovalApiError).code !== 'SLUICE_APPROVAL_API_CONFLICT') this.#d.metrics.apiErrors.inc({ operation: 'status' });
    }
  }

  #upsertPending(p: Pending, obj: ApprovalRequest): void {
    if (p.obj && Number(p.obj.metadata.resourceVersion) > Number(obj.metadata.resourceVersion)) return;
    p.obj = obj;
    this.#evaluate(p);
  }

  /** Acts on a decided status. */
  #evaluate(p: Pending): void {
    const status: ApprovalRequestStatus | undefined = p.obj?.status;
    if (p.done || !status) return;
    const by = status.decidedBy;
    switch (status.state) {
      case 'Approved':
        this.#finish(p, { kind: 'approved', name: p.name, scope: status.scope ?? 'once', decidedBy: by, waitedMs: this.#clock() - p.createdAtMs });
        return;
      case 'Denied':
        this.#finish(p, this.#refusal(APPROVAL_CODES.denied, 'denied', `denied by ${by ?? 'an approver'}${status.reason ? `: ${status.reason}` : ''}`, p.createdAtMs, { name: p.name, decidedBy: by }));
        return;
      case 'Expired':
      case 'Revoked':
        this.#finish(p, this.#refusal(APPROVAL_CODES.expired, 'expired', `approval request ${p.name} is ${status.state.toLowerCase()}${status.reason ? `: ${status.reason}` : ''}`, p.createdAtMs, { name: p.name }));
        return;
      default:
        return;
    }
  }

  #finish(p: Pending, result: HoldResult): void {
    if (p.done) return;
    p.done = true;
    if (p.timer) clearTimeout(p.timer);
    this.#byName.delete(p.name);
    if (this.#byFingerprint.get(p.fingerprint) === p) this.#byFingerprint.delete(p.fingerprint);
    this.#d.metrics.pending.dec();
    const outcome: Outcome = result.kind === 'approved' ? 'approved' : result.outcome;
    this.#d.metrics.decisions.inc({ outcome });
    this.#d.metrics.decisionSeconds.observe({ outcome }, (this.#clock() - p.createdAtMs) / 1000);
    const requestIds = [...p.waiters].map((w) => w.requestId);
    this.#d.onEvent?.({
      type: 'decided',
      name: p.name,
      requestIds,
      outcome,
      code: result.kind === 'refused' ? result.code : undefined,
      scope: result.kind === 'approved' ? result.scope : undefined,
      decidedBy: result.decidedBy,
      reason: result.kind === 'refused' ? result.reason : undefined,
      waitedMs: this.#clock() - p.createdAtMs,
    });
    for (const w of p.waiters) w.resolve(result);
    p.waiters.clear();
  }

  /**
   * Ends a hold without a human decision and records that on the ApprovalRequest (best effort:
   * conditional on the last version seen, so a decision that raced in is read back, not overwritten).
   */
  #expire(p: Pending, outcome: Extract<Outcome, 'expired' | 'abandoned' | 'killed'>, reason: string): void {
    if (p.done) return;
    // Requests arriving from now on ask afresh instead of joining one about to end.
    if (this.#byFingerprint.get(p.fingerprint) === p) this.#byFingerprint.delete(p.fingerprint);
    const code = outcome === 'killed' ? APPROVAL_CODES.killed : APPROVAL_CODES.expired;
    const refusal = this.#refusal(code, outcome, outcome === 'expired' ? `approval request ${p.name} expired: ${reason}` : reason, p.createdAtMs, { name: p.name });
    if (!p.created || outcome === 'killed' || !this.#d.healthy()) {
      this.#finish(p, refusal);
      if (p.created) void this.#markExpired(p, reason);
      return;
    }
    // Clear the timer, keep the entry until the patch answers so a racing decision is seen.
    if (p.timer) clearTimeout(p.timer);
    void this.#markExpired(p, reason).then((after) => {
      if (after) this.#upsertPending(p, after);
      this.#finish(p, refusal);
    });
  }

  async #markExpired(p: Pending, reason: string): Promise<ApprovalRequest | undefined> {
    const rv = p.obj?.metadata.resourceVersion as string | undefined;
    try {
      return await this.#d.api.patchStatus(this.#d.namespace, p.name, { state: 'Expired', reason }, rv);
    } catch (e) {
      const err = e as ApprovalApiError;
      if (err.code === 'SLUICE_APPROVAL_API_CONFLICT') {
        try {
          return await this.#d.api.get(this.#d.namespace, p.name);
        } catch {
          return undefined;
        }
      }
      this.#d.metrics.apiErrors.inc({ operation: 'status' });
      return undefined;
    }
  }

  /** Kill switch: every hold ends now, recorded as Expired on its ApprovalRequest. */
  cutAll(reason = 'the pod was cut off by its kill switch (sluice.io/kill)'): number {
    const all = [...this.#byName.values()];
    for (const p of all) this.#expire(p, 'killed', reason);
    if (all.length) this.#d.onEvent?.({ type: 'cut', count: all.length, code: APPROVAL_CODES.killed });
    return all.length;
  }

  /** Shutdown: refuses every hold (503) and stops accepting new ones. */
  stop(): void {
    this.#stopped = true;
    if (this.#graceTimer) clearTimeout(this.#graceTimer);
    for (const p of [...this.#byName.values()]) {
      this.#finish(p, this.#refusal(APPROVAL_CODES.stopped, 'rejected', 'the sidecar is shutting down', p.createdAtMs, { name: p.name }));
      if (p.created) void this.#markExpired(p, 'the sidecar shut down before a decision');
    }
  }

  // --- WatcherListener -------------------------------------------------------------------

  reset(objs: readonly ApprovalRequest[]): void {
    this.grants.reset(objs);
    this.#seen.clear();
    for (const o of objs) if (o.metadata.name) this.#seen.set(o.metadata.name, o);
    const seen = new Map(objs.map((o) => [o.metadata.name ?? '', o]));
    for (const p of [...this.#byName.values()]) {
      const obj = seen.get(p.name);
      if (obj) this.#upsertPending(p, obj);
      else if (p.created) void this.#confirmGone(p);
    }
    if (!this.#cleanedStale) {
      this.#cleanedStale = true;
      this.#expireStale(objs);
    }
  }

  upsert(obj: ApprovalRequest): void {
    this.grants.upsert(obj);
    if (obj.metadata.name) this.#seen.set(obj.metadata.name, obj);
    const p = obj.metadata.name ? this.#byName.get(obj.metadata.name) : undefined;
    if (p) this.#upsertPending(p, obj);
  }

  remove(obj: ApprovalRequest): void {
    const name = obj.metadata.name ?? '';
    this.grants.remove(name);
    this.#seen.delete(name);
    const p = this.#byName.get(name);
    if (p) this.#finish(p, this.#refusal(APPROVAL_CODES.deleted, 'deleted', `approval request ${name} was deleted before a decision`, p.createdAtMs, { name }));
  }

  health(healthy: boolean, err?: ApprovalApiError): void {
    if (healthy) {
      if (this.#graceTimer) clearTimeout(this.#graceTimer);
      this.#graceTimer = undefined;
      this.#d.log?.('info', 'approval watch connected', {});
      return;
    }
    this.#d.metrics.apiErrors.inc({ operation: 'watch' });
    this.#d.log?.('warn', 'approval watch lost the API server; held requests are refused if it stays away', { graceMs: this.#d.apiGraceMs, err: err?.message });
    if (this.#graceTimer) return;
    this.#graceTimer = setTimeout(() => {
      this.#graceTimer = undefined;
      if (this.#d.healthy()) return;
      const reason = `the Kubernetes API server has been unreachable for ${this.#d.apiGraceMs} ms, so no decision can be read; refused (fail closed)`;
      for (const p of [...this.#byName.values()]) this.#finish(p, this.#refusal(APPROVAL_CODES.unavailable, 'unavailable', reason, p.createdAtMs, { name: p.name }));
    }, this.#d.apiGraceMs);
  }

  async #confirmGone(p: Pending): Promise<void> {
    try {
      this.#upsertPending(p, await this.#d.api.get(this.#d.namespace, p.name));
    } catch (e) {
      if ((e as ApprovalApiError).code === 'SLUICE_APPROVAL_API_NOT_FOUND') {
        this.#finish(p, this.#refusal(APPROVAL_CODES.deleted, 'deleted', `approval request ${p.name} was deleted before a decision`, p.createdAtMs, { name: p.name }));
      }
    }
  }

  /**
   * Deletes own requests finished for retainFinishedMs (cleanup.ts), each only if unchanged since
   * it was judged; returns how many deletes were sent. Best effort: a failure is counted and the
   * next sweep tries again.
   */
  async sweep(): Promise<number> {
    const retain = this.#d.retainFinishedMs;
    const del = this.#d.api.delete?.bind(this.#d.api);
    if (retain === undefined || !del || !this.#d.healthy()) return 0;
    const doomed = requestsToDelete(this.#seen.values(), this.#owner, this.#clock(), retain).filter((o) => !this.#byName.has(o.metadata.name!));
    await Promise.all(
      doomed.map(async (o) => {
        try {
          await del(this.#d.namespace, o.metadata.name!, { uid: o.metadata.uid as string | undefined, resourceVersion: o.metadata.resourceVersion as string | undefined });
        } catch (e) {
          const code = (e as ApprovalApiError).code;
          if (code !== 'SLUICE_APPROVAL_API_NOT_FOUND' && code !== 'SLUICE_APPROVAL_API_CONFLICT') this.#d.metrics.apiErrors.inc({ operation: 'delete' });
        }
      }),
    );
    return doomed.length;
  }

  /** Pending requests of an earlier session of this pod have no agent waiting any more. */
  #expireStale(objs: readonly ApprovalRequest[]): void {
    for (const o of objs) {
      const state = o.status?.state ?? 'Pending';
      if (state !== 'Pending' || o.spec.session === this.#d.session || !o.metadata.name) continue;
      if (!isOwnRequest(o, { namespace: this.#d.namespace, pod: this.#d.podName, podUid: this.#d.podUid, serviceAccount: this.#d.serviceAccount, session: this.#d.session })) continue;
      void this.#d.api
        .patchStatus(this.#d.namespace, o.metadata.name, { state: 'Expired', reason: 'the sidecar restarted; the held request no longer exists' }, o.metadata.resourceVersion as string)
        .catch(() => undefined);
    }
  }
}
