// Which of its own pod's ApprovalRequests the sidecar deletes: those that can no longer let
// anything through (Denied, Expired, Revoked; Approved `once`; an expired ttl grant; a session grant
// of an earlier session of this pod) once they have been finished for `retainMs`, so a long-lived
// pod's requests do not pile up in etcd (a deleted pod's go with it, through their ownerReference).
// The audit trail keeps every step; the objects are only the live view. Pure: the caller passes the
// clock. It never selects a request of another pod, a Pending one, or a grant that is still live.
import type { ApprovalRequest } from '../../../api/src/index.ts';
import { isOwnRequest } from './grants.ts';
import type { GrantOwner } from './grants.ts';

const ms = (iso: string | undefined): number | undefined => {
  const t = iso === undefined ? NaN : Date.parse(iso);
  return Number.isNaN(t) ? undefined : t;
};

/** When the request stopped mattering (ms since epoch), or undefined while it still may. */
export function finishedAt(obj: ApprovalRequest, owner: GrantOwner): number | undefined {
  const s = obj.status;
  const decided = ms(s?.revokedAt) ?? ms(s?.decidedAt) ?? ms(obj.metadata.creationTimestamp as string | undefined);
  switch (s?.state) {
    case 'Denied':
    case 'Revoked':
      return decided;
    case 'Expired': {
      // The sidecar's own mark carries no time; the wait ended at spec.expiresAt at the latest.
      const ended = Math.min(decided ?? Infinity, ms(obj.spec.expiresAt) ?? Infinity);
      return Number.isFinite(ended) ? ended : undefined;
    }
    case 'Approved':
      if (s.scope === 'ttl') return ms(s.expiresAt);
      if (s.scope === 'session') return obj.spec.session === owner.session ? undefined : decided;
      return decided;
    default:
      return undefined;
  }
}

/** Names of own requests finished for at least `retainMs` at `nowMs`. */
export function requestsToDelete(objs: Iterable<ApprovalRequest>, owner: GrantOwner, nowMs: number, retainMs: number): ApprovalRequest[] {
  const out: ApprovalRequest[] = [];
  for (const o of objs) {
    if (!o.metadata.name || !isOwnRequest(o, owner)) continue;
    const at = finishedAt(o, owner);
    if (at !== undefined && at + retainMs <= nowMs) out.push(o);
  }
  return out;
}
