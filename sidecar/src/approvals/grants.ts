// Standing grants: which approved ApprovalRequests let later matching requests through without
// asking. Derived only from the API server's objects (so a revoke, a deletion or a restart is seen
// the same way) and keyed by grant key. `once` never stands; `session` stands for the sidecar
// session that asked; `ttl` stands for the pod until its expiry. Pure: the caller passes the clock.
import type { ApprovalRequest, ApprovalScope } from '../../../api/src/index.ts';
import { grantKeyOf } from './approval-draft.ts';

export interface Grant {
  /** ApprovalRequest that granted it */
  name: string;
  scope: Exclude<ApprovalScope, 'once'>;
  decidedBy?: string;
  /** ms since epoch; undefined for session scope */
  expiresAtMs?: number;
}

/** The grant an object confers on `session`, if any (ignoring expiry, which is checked at use). */
export function grantOf(obj: ApprovalRequest, session: string): (Grant & { key: string }) | undefined {
  const s = obj.status;
  if (s?.state !== 'Approved' || !obj.metadata.name) return undefined;
  if (s.scope === 'session') {
    if (obj.spec.session !== session) return undefined;
    return { key: grantKeyOf(obj.spec), name: obj.metadata.name, scope: 'session', ...(s.decidedBy ? { decidedBy: s.decidedBy } : {}) };
  }
  if (s.scope === 'ttl') {
    const expiresAtMs = s.expiresAt ? Date.parse(s.expiresAt) : NaN;
    // A ttl grant without a readable expiry grants nothing: fail closed.
    if (Number.isNaN(expiresAtMs)) return undefined;
    return { key: grantKeyOf(obj.spec), name: obj.metadata.name, scope: 'ttl', expiresAtMs, ...(s.decidedBy ? { decidedBy: s.decidedBy } : {}) };
  }
  return undefined;
}

export class GrantTable {
  readonly #session: string;
  /** name → grant; small (one per approval), so lookups scan. */
  readonly #byName = new Map<string, Grant & { key: string }>();

  constructor(session: string) {
    this.#session = session;
  }

  /** Applies an added or modified object. */
  upsert(obj: ApprovalRequest): void {
    const name = obj.metadata.name;
    if (!name) return;
    const grant = grantOf(obj, this.#session);
    if (grant) this.#byName.set(name, grant);
    else this.#byName.delete(name);
  }

  remove(name: string): void {
    this.#byName.delete(name);
  }

  /** Replaces everything (after a re-list). */
  reset(objs: readonly ApprovalRequest[]): void {
    this.#byName.clear();
    for (const o of objs) this.upsert(o);
  }

  /** A live grant for the key; session grants win over ttl ones (they cannot expire mid-session). */
  match(key: string, nowMs: number): Grant | undefined {
    let best: Grant | undefined;
    for (const g of this.#byName.values()) {
      if (g.key !== key) continue;
      if (g.scope === 'ttl' && (g.expiresAtMs ?? 0) <= nowMs) continue;
      if (!best || g.scope === 'session' || (best.scope === 'ttl' && (g.expiresAtMs ?? 0) > (best.expiresAtMs ?? 0))) best = g;
    }
    if (!best) return undefined;
    const { key: _key, ...grant } = best as Grant & { key: string };
    return grant;
  }

  get size(): number {
    return this.#byName.size;
  }
}
