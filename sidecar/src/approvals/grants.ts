// Standing grants: which approved ApprovalRequests let later matching requests through without
// asking. Derived only from the API server's objects (so a revoke, a deletion or a restart is seen
// the same way) and keyed by grant key. `once` never stands; `session` stands for the sidecar
// session that asked; `ttl` stands for the pod until its expiry. An object grants only if it names
// this very pod (namespace, name and, when known, uid) and its service account: the watch selects
// by a label, and a label alone is never proof of whose request it was. Pure: the caller passes
// the clock.
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

/** Whose grants a table holds: the sidecar's own pod, service account and session. */
export interface GrantOwner {
  namespace: string;
  pod: string;
  /** The pod's uid; when known, an object for another pod of the same name grants nothing. */
  podUid?: string | undefined;
  serviceAccount: string;
  session: string;
}

/** Is the object a request of this pod and service account? */
export function isOwnRequest(obj: ApprovalRequest, owner: GrantOwner): boolean {
  const pod = obj.spec.pod;
  if (pod.namespace !== owner.namespace || pod.name !== owner.pod || obj.spec.serviceAccount !== owner.serviceAccount) return false;
  if (obj.metadata.namespace !== undefined && obj.metadata.namespace !== owner.namespace) return false;
  return owner.podUid === undefined || pod.uid === owner.podUid;
}

/** The grant an object confers on `owner`, if any (ignoring expiry, which is checked at use). */
export function grantOf(obj: ApprovalRequest, owner: GrantOwner): (Grant & { key: string }) | undefined {
  const s = obj.status;
  if (s?.state !== 'Approved' || !obj.metadata.name) return undefined;
  if (!isOwnRequest(obj, owner)) return undefined;
  if (s.scope === 'session') {
    if (obj.spec.session !== owner.session) return undefined;
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
  readonly #owner: GrantOwner;
  /** name → grant; small (one per approval), so lookups scan. */
  readonly #byName = new Map<string, Grant & { key: string }>();

  constructor(owner: GrantOwner) {
    this.#owner = { ...owner };
  }

  /** Applies an added or modified object. */
  upsert(obj: ApprovalRequest): void {
    const name = obj.metadata.name;
    if (!name) return;
    const grant = grantOf(obj, this.#owner);
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
