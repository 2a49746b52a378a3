// Who may do what to an ApprovalRequest, decided from the AdmissionReview plus what the API server
// stores about the pod the caller's token is bound to (read by review.ts with the webhook's own
// credentials and passed in as `boundPod`). Only the sidecar of the pod a request names creates it:
// the caller's token must be bound to that pod (userInfo.extra pod-name/pod-uid, which the API
// server sets for TokenRequest tokens bound to a pod, as the kubelet's projected token is), of the
// pod's service account, the pod injected by sluice, the request labelled for that pod, owned by it,
// its creator the pod's stamp and its summary the line its facts give. Only that sidecar expires,
// marks or deletes it. A human decides, and that human is neither the pod's creator nor the pod's
// service account and belongs to an approver group of the namespace; a decision is final except
// that an approval may be revoked; nothing is approved after the sidecar stopped waiting; the spec
// never changes. The stamps (creator and owner at create; who decided, when, until when) come from
// the API server's records and the webhook's clock, never from the client. Pure.
import { ApprovalRequestSpec, ApprovalRequestStatus, LABEL_APPROVAL_POD, UNKNOWN_CREATOR_USERNAME, approvalLabelValue, approvalSummaryLine, summaryShowsLine } from '../../../api/src/index.ts';
import type { ApprovalState, Creator } from '../../../api/src/index.ts';
import { pointer } from '../json-patch.ts';
import type { JsonPatchOp } from '../json-patch.ts';
import { violation } from '../violations.ts';
import type { Violation } from '../violations.ts';
import { approverGroupsFor, ttlMs } from './config.ts';
import type { ApprovalsWebhookConfig } from './config.ts';

/** Labels the sidecar selects its requests by; changing them would hide a request from it. */
const SELECTION_LABELS = [LABEL_APPROVAL_POD, 'sluice.io/session'];
/** Longest a sidecar may say it waits (its maxWaitMs is at most 24 h), plus clock skew. */
const MAX_WAIT_MS = 24 * 3_600_000 + 60_000;
const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';
const POD_UID_EXTRA = 'authentication.kubernetes.io/pod-uid';

export interface Actor {
  username: string;
  groups: readonly string[];
  extra: Readonly<Record<string, readonly string[]>>;
}

interface Stored {
  metadata?: { name?: string; labels?: Record<string, string>; ownerReferences?: { kind?: string; name?: string; uid?: string; apiVersion?: string }[] };
  spec?: unknown;
  status?: unknown;
}

export interface ApprovalReviewInput {
  operation: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  /** '' for the object itself, 'status' for the status subresource */
  subResource: string;
  namespace: string;
  actor: Actor;
  object?: Stored | undefined;
  oldObject?: Stored | undefined;
  /**
   * The pod the caller's token is bound to, as the API server stores it (CREATE only): undefined
   * when the token is bound to no pod, 'missing' when no such pod exists, 'unreadable' when the
   * webhook could not read it.
   */
  boundPod?: BoundPod | 'missing' | 'unreadable' | undefined;
  /** The webhook's clock (expiry checks). */
  now?: Date | undefined;
}

/** What the API server stores about a pod, as far as these rules need it. */
export interface BoundPod {
  name: string;
  uid: string;
  serviceAccount: string;
  /** Carries sluice's injection status (the sidecar is sluice's). */
  injected: boolean;
  /** Its sluice.io/creator annotation, parsed; undefined when absent or unreadable. */
  creator?: Creator | undefined;
}

type Spec = ReturnType<typeof ApprovalRequestSpec.parse>;
type Status = ReturnType<typeof ApprovalRequestStatus.parse>;

const DECIDED: readonly ApprovalState[] = ['Approved', 'Denied', 'Expired', 'Revoked'];

export function serviceAccountUser(namespace: string, serviceAccount: string): string {
  return `system:serviceaccount:${namespace}:${serviceAccount}`;
}

function parseSpec(obj: Stored | undefined): Spec | undefined {
  const r = ApprovalRequestSpec.safeParse(obj?.spec);
  return r.success ? r.data : undefined;
}

function parseStatus(obj: Stored | undefined): Status | undefined | 'invalid' {
  if (obj?.status === undefined || obj.status === null) return undefined;
  const r = ApprovalRequestStatus.safeParse(obj.status);
  return r.success ? r.data : 'invalid';
}

const stateOf = (s: Status | undefined): ApprovalState => s?.state ?? 'Pending';

function stableJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b))) : v));
}

const same = (a: unknown, b: unknown) => stableJson(a ?? null) === stableJson(b ?? null);

function sameMembers(a: readonly string[] | undefined, b: readonly string[]): boolean {
  return a !== undefined && a.length === b.length && [...a].sort().join('\n') === [...b].sort().join('\n');
}

function describeDecision(s: Status): string {
  return `${s.state}${s.decidedBy ? ` by ${s.decidedBy}` : ''}${s.decidedAt ? ` at ${s.decidedAt}` : ''}`;
}

/** The pod name and uid the caller's token is bound to, if it is a pod-bound token. */
export function tokenPod(actor: Actor): { name: string; uid: string } | undefined {
  const name = actor.extra[POD_NAME_EXTRA]?.[0];
  const uid = actor.extra[POD_UID_EXTRA]?.[0];
  return name && uid ? { name, uid } : undefined;
}

/** Is the caller the sidecar of the pod the request names (its service account, a token bound to that pod)? */
function isOwnSidecar(actor: Actor, namespace: string, spec: Spec): boolean {
  const pod = tokenPod(actor);
  return actor.username === serviceAccountUser(namespace, spec.serviceAccount) && pod !== undefined && pod.name === spec.pod.name && pod.uid === spec.pod.uid;
}

function notOwnSidecar(input: ApprovalReviewInput, spec: Spec, field: string, what: string): Violation {
  const pod = tokenPod(input.actor);
  const who = pod ? `${input.actor.username} (a token bound to pod ${pod.name})` : input.actor.username;
  return violation('approval.not_the_sidecar', field, `only the sidecar of pod ${spec.pod.name} (${serviceAccountUser(input.namespace, spec.serviceAccount)}, with a token bound to that pod) ${what}; ${who} may not`);
}

function creatorKey(c: Creator | undefined): string {
  return c ? stableJson({ username: c.username, uid: c.uid ?? null, groups: [...c.groups].sort() }) : 'none';
}

function boundPodViolations(input: ApprovalReviewInput, spec: Spec, pod: { name: string; uid: string }): Violation[] {
  const bound = input.boundPod;
  if (bound === 'unreadable' || bound === undefined) return [violation('approval.pod_unknown', 'spec.pod', `the sluice webhook could not read pod ${input.namespace}/${pod.name} to check the request against it; refused (fail closed)`)];
  if (bound === 'missing' || bound.uid !== pod.uid) return [violation('approval.pod_unknown', 'spec.pod', `pod ${input.namespace}/${pod.name} with uid ${pod.uid} does not exist`)];
  const out: Violation[] = [];
  if (!bound.injected) out.push(violation('approval.not_the_sidecar', 'spec.pod', `pod ${bound.name} has no sluice sidecar; only a sluice sidecar asks for approvals`));
  if (bound.serviceAccount !== spec.serviceAccount) out.push(violation('approval.pod_mismatch', 'spec.serviceAccount', `pod ${bound.name} runs as service account ${bound.serviceAccount}, not ${spec.serviceAccount}`));
  if (creatorKey(bound.creator) !== creatorKey(spec.creator)) {
    out.push(violation('approval.creator_forged', 'spec.creator', `the creator is copied by the sluice webhook from pod ${bound.name}'s stamp (${bound.creator?.username ?? 'none'}); ${spec.creator?.username ?? 'none'} was supplied`));
  }
  const owned = (input.object?.metadata?.ownerReferences ?? []).some((r) => r.kind === 'Pod' && r.uid === bound.uid);
  if (!owned) out.push(violation('approval.owner_missing', 'metadata.ownerReferences', `the request must be owned by pod ${bound.name} (the sluice webhook adds the reference), so it goes when the pod goes`));
  return out;
}

function createViolations(input: ApprovalReviewInput, spec: Spec): Violation[] {
  const out: Violation[] = [];
  const pod = tokenPod(input.actor);
  if (!pod) {
    return [
      violation(
        'approval.not_pod_bound',
        'metadata',
        `ApprovalRequests are created only with the service-account token bound to the sidecar's pod (the kubelet's projected token); ${input.actor.username} presented no pod-bound token`,
      ),
    ];
  }
  const sidecar = serviceAccountUser(input.namespace, spec.serviceAccount);
  if (input.actor.username !== sidecar) {
    out.push(violation('approval.not_the_sidecar', 'spec.serviceAccount', `only the pod's sidecar (${sidecar}) creates ApprovalRequests for it; ${input.actor.username} may not`));
  }
  if (spec.pod.namespace !== input.namespace) {
    out.push(violation('approval.pod_mismatch', 'spec.pod.namespace', `the request names namespace ${spec.pod.namespace} but lives in ${input.namespace}`));
  }
  if (pod.name !== spec.pod.name) {
    out.push(violation('approval.pod_mismatch', 'spec.pod.name', `the creating token is bound to pod ${pod.name}, not ${spec.pod.name}`));
  }
  if (pod.uid !== spec.pod.uid) {
    out.push(violation('approval.pod_mismatch', 'spec.pod.uid', `the creating token is bound to pod uid ${pod.uid}, not ${spec.pod.uid ?? '(none)'}`));
  }
  const label = input.object?.metadata?.labels?.[LABEL_APPROVAL_POD];
  if (label !== approvalLabelValue(pod.name)) {
    out.push(violation('approval.pod_mismatch', `metadata.labels[${LABEL_APPROVAL_POD}]`, `the request must be labelled for pod ${pod.name} (${approvalLabelValue(pod.name)}), the pod whose sidecar watches it; ${label ?? 'no label'} was given`));
  }
  if (out.length) return out;
  out.push(...boundPodViolations(input, spec, pod));
  const line = approvalSummaryLine(spec.request);
  if (!summaryShowsLine(spec.request.summary, line)) {
    out.push(violation('approval.summary_mismatch', 'spec.request.summary', `the summary an approver reads must be the line the request's facts give (${line.slice(0, 160)}), masked at most`));
  }
  const now = (input.now ?? new Date()).getTime();
  const until = Date.parse(spec.expiresAt);
  if (Number.isNaN(until) || until <= now) out.push(violation('approval.expired', 'spec.expiresAt', `the request must wait into the future; ${spec.expiresAt} is not`));
  else if (until > now + MAX_WAIT_MS) out.push(violation('approval.bad_decision', 'spec.expiresAt', 'a request waits at most 24 h for a decision'));
  const status = parseStatus(input.object);
  if (status !== undefined && (status === 'invalid' || status.state !== 'Pending' || status.decidedBy !== undefined)) {
    out.push(violation('approval.bad_decision', 'status', 'a new ApprovalRequest starts Pending, undecided'));
  }
  return out;
}

function specUpdateViolations(input: ApprovalReviewInput): Violation[] {
  const out: Violation[] = [];
  if (!same(input.oldObject?.spec, input.object?.spec)) {
    out.push(violation('approval.spec_immutable', 'spec', 'the spec of an ApprovalRequest is written once by the sidecar and cannot change'));
  }
  const before = input.oldObject?.metadata?.labels ?? {};
  const after = input.object?.metadata?.labels ?? {};
  for (const key of SELECTION_LABELS) {
    if (before[key] !== after[key]) out.push(violation('approval.spec_immutable', `metadata.labels[${key}]`, 'the labels the sidecar selects its requests by cannot change'));
  }
  return out;
}

/** Approver-group membership and not-self, the two rules every decision by a human must pass. */
function deciderViolations(input: ApprovalReviewInput, spec: Spec, state: 'Approved' | 'Denied' | 'Revoked', config: ApprovalsWebhookConfig): Violation[] {
  const who = input.actor.username;
  const name = input.object?.metadata?.name ?? '';
  const sidecar = serviceAccountUser(input.namespace, spec.serviceAccount);
  const verb = state === 'Approved' ? 'approve' : state === 'Denied' ? 'deny' : 'revoke';
  if (who === sidecar) {
    return [violation('approval.self_approval', 'status.state', `${who} is the pod's own service account and cannot ${verb} its requests`)];
  }
  const isCreator = spec.creator !== undefined && spec.creator.username === who;
  if (state === 'Approved') {
    if (!spec.creator || spec.creator.username === UNKNOWN_CREATOR_USERNAME) return [violation('approval.creator_unknown', 'spec.creator', `the pod ${spec.pod.name} has no creator stamp, so self-approval cannot be ruled out; the request can only be denied`)];
    if (isCreator) return [violation('approval.self_approval', 'status.state', `${who} created pod ${spec.pod.name} and cannot approve its requests; another approver must`)];
  }
  // The creator may always deny or revoke what their own pod asked for: it only takes access away.
  if (isCreator) return [];
  const allowed = approverGroupsFor(config, input.namespace);
  if (!input.actor.groups.some((g) => allowed.includes(g))) {
    return [violation('approval.not_an_approver', 'status.state', `${who} may not ${verb} ${name}: not a member of an approver group for namespace ${input.namespace} (${allowed.join(', ')})`)];
  }
  return [];
}

function decisionShapeViolations(input: ApprovalReviewInput, status: Status, config: ApprovalsWebhookConfig): Violation[] {
  const out: Violation[] = [];
  if (status.decidedBy !== input.actor.username || !sameMembers(status.decidedByGroups, input.actor.groups) || !status.decidedAt) {
    out.push(violation('approval.decider_mismatch', 'status.decidedBy', `the decision must be stamped with the deciding user (${input.actor.username}) by the sluice webhook`));
  }
  if (status.state === 'Denied') {
    if (status.scope !== undefined || status.ttl !== undefined || status.expiresAt !== undefined) out.push(violation('approval.bad_decision', 'status.scope', 'a denial grants no scope'));
    return out;
  }
  if (!status.scope) out.push(violation('approval.bad_decision', 'status.scope', 'an approval needs a scope (once, session or ttl)'));
  if (status.scope === 'ttl') {
    const ms = status.ttl === undefined ? undefined : ttlMs(status.ttl);
    const max = ttlMs(config.maxTTL)!;
    if (ms === undefined || ms <= 0) out.push(violation('approval.bad_decision', 'status.ttl', 'a ttl scope needs a duration such as 30m or 8h'));
    else if (ms > max) out.push(violation('approval.bad_decision', 'status.ttl', `a ttl scope may last at most ${config.maxTTL}`));
    if (!status.expiresAt || Number.isNaN(Date.parse(status.expiresAt))) out.push(violation('approval.bad_decision', 'status.expiresAt', 'a ttl scope needs its expiry'));
  } else if (status.ttl !== undefined || status.expiresAt !== undefined) {
    out.push(violation('approval.bad_decision', 'status.ttl', `a ${status.scope ?? 'missing'} scope has no ttl`));
  }
  if (status.revokedBy !== undefined || status.revokedAt !== undefined) out.push(violation('approval.bad_decision', 'status.revokedBy', 'only a revocation sets revokedBy'));
  return out;
}

function statusViolations(input: ApprovalReviewInput, spec: Spec, config: ApprovalsWebhookConfig): Violation[] {
  const oldStatus = parseStatus(input.oldObject);
  const status = parseStatus(input.object);
  if (status === 'invalid') return [violation('approval.bad_decision', 'status', 'the status does not match the ApprovalRequest schema')];
  const before = oldStatus === 'invalid' ? undefined : oldStatus;
  if (same(before, status)) return [];
  const from = stateOf(before);
  const to = stateOf(status);
  const name = input.object?.metadata?.name ?? '';
  if (DECIDED.includes(from)) {
    if (from === 'Approved' && to === 'Revoked' && status) {
      const out = deciderViolations(input, spec, 'Revoked', config);
      const { revokedBy, revokedAt, state: _s, ...rest } = status;
      const { state: _o, ...restBefore } = before!;
      if (!same(rest, restBefore)) out.push(violation('approval.already_decided', 'status', `revoking ${name} may only add revokedBy and revokedAt`));
      if (revokedBy !== input.actor.username || !revokedAt) out.push(violation('approval.decider_mismatch', 'status.revokedBy', `the revocation must be stamped with the revoking user (${input.actor.username}) by the sluice webhook`));
      return out;
    }
    return [violation('approval.already_decided', 'status.state', `${name} was already ${describeDecision(before!)}; a decision is final${from === 'Approved' ? ' (it can only be revoked)' : ''}`)];
  }
  switch (to) {
    case 'Pending':
      if (status && (status.decidedBy ?? status.decidedAt ?? status.scope ?? status.revokedBy) !== undefined) {
        return [violation('approval.bad_decision', 'status', 'a Pending request carries no decision')];
      }
      if (!isOwnSidecar(input.actor, input.namespace, spec)) return [notOwnSidecar(input, spec, 'status.state', 'marks its requests Pending')];
      return [];
    case 'Expired': {
      if (!isOwnSidecar(input.actor, input.namespace, spec)) return [notOwnSidecar(input, spec, 'status.state', 'expires its requests; to refuse one, deny it')];
      return [];
    }
    case 'Revoked':
      return [violation('approval.bad_decision', 'status.state', `${name} was never approved, so there is nothing to revoke`)];
    case 'Approved':
    case 'Denied': {
      const out = deciderViolations(input, spec, to, config);
      const until = Date.parse(spec.expiresAt);
      if (to === 'Approved' && !out.length && !(until > (input.now ?? new Date()).getTime())) {
        // The sidecar stopped waiting: an approval now would only leave a standing grant behind.
        return [violation('approval.expired', 'spec.expiresAt', `${name} stopped waiting at ${spec.expiresAt}; it can no longer be approved`)];
      }
      return out.length ? out : decisionShapeViolations(input, status!, config);
    }
  }
}

/** Every rule the ApprovalRequest change breaks; empty when it may proceed. */
export function approvalViolations(input: ApprovalReviewInput, config: ApprovalsWebhookConfig): Violation[] {
  if (input.operation === 'CONNECT') return [];
  if (input.operation === 'DELETE') {
    // A pod's sidecar may clean up its own requests, never another pod's; no other service account
    // at all, with any token (the sidecar Role binds every account of the namespace, so RBAC alone
    // would let an agent's other account delete a held request). People and kube-system's
    // controllers (the garbage collector, the namespace controller) delete under RBAC alone.
    const spec = parseSpec(input.oldObject);
    const serviceAccount = input.actor.username.startsWith('system:serviceaccount:') && !input.actor.username.startsWith('system:serviceaccount:kube-system:');
    const sidecarIdentity = spec !== undefined && (tokenPod(input.actor) !== undefined || serviceAccount);
    if (spec && sidecarIdentity && !isOwnSidecar(input.actor, input.namespace, spec)) return [notOwnSidecar(input, spec, 'metadata', 'deletes its requests')];
    return [];
  }
  const spec = parseSpec(input.object);
  if (!spec) return [violation('approval.bad_decision', 'spec', 'the spec does not match the ApprovalRequest schema')];
  if (input.operation === 'CREATE') return input.subResource ? [] : createViolations(input, spec);
  if (input.subResource === 'status') return statusViolations(input, spec, config);
  if (input.subResource === '') return specUpdateViolations(input);
  return [];
}

/**
 * The mutating half of a create: the creator is the stamp of the pod the caller's token is bound
 * to, and that pod owns the request (garbage-collected with it). Whatever the client wrote there
 * is overwritten; a request the validating half will refuse anyway is left as it is.
 */
function createStamp(input: ApprovalReviewInput): JsonPatchOp[] {
  const pod = tokenPod(input.actor);
  const bound = input.boundPod;
  const spec = input.object?.spec as { creator?: unknown } | undefined;
  if (!pod || !bound || typeof bound !== 'object' || bound.uid !== pod.uid || !spec || typeof spec !== 'object') return [];
  const ops: JsonPatchOp[] = [];
  if (bound.creator) ops.push({ op: 'add', path: pointer('spec', 'creator'), value: bound.creator });
  else if ('creator' in spec) ops.push({ op: 'remove', path: pointer('spec', 'creator') });
  // No blockOwnerDeletion: it would need delete permission on the pod, which a sidecar lacks.
  const owner = { apiVersion: 'v1', kind: 'Pod', name: bound.name, uid: bound.uid };
  if (!input.object?.metadata) ops.push({ op: 'add', path: pointer('metadata'), value: { ownerReferences: [owner] } });
  else ops.push({ op: 'add', path: pointer('metadata', 'ownerReferences'), value: [owner] });
  return ops;
}

/**
 * The mutating half: on a status update that decides (Pending → Approved|Denied) or revokes
 * (Approved → Revoked), stamps who did it and when from the API server's userInfo and the
 * webhook's clock; an approval without a scope gets the one the policy asked for, and a ttl scope
 * its expiry. Anything a client wrote into these fields is overwritten.
 */
export function approvalStamp(input: ApprovalReviewInput, now: Date): JsonPatchOp[] {
  if (input.operation === 'CREATE' && input.subResource === '') return createStamp(input);
  if (input.operation !== 'UPDATE' || input.subResource !== 'status') return [];
  const spec = parseSpec(input.object);
  const status = parseStatus(input.object);
  const oldStatus = parseStatus(input.oldObject);
  if (!spec || !status || status === 'invalid' || oldStatus === 'invalid') return [];
  const from = stateOf(oldStatus);
  const to = status.state;
  const set = (field: string, value: unknown): JsonPatchOp => ({ op: 'add', path: pointer('status', field), value });
  const at = now.toISOString();
  if (from === 'Approved' && to === 'Revoked') return [set('revokedBy', input.actor.username), set('revokedAt', at)];
  if (from !== 'Pending' || (to !== 'Approved' && to !== 'Denied')) return [];
  const ops = [set('decidedBy', input.actor.username), set('decidedByGroups', [...input.actor.groups]), set('decidedAt', at)];
  if (to === 'Approved') {
    const scope = status.scope ?? spec.requestedScope;
    if (!status.scope) ops.push(set('scope', scope));
    if (scope === 'ttl') {
      const ttl = status.ttl ?? spec.requestedTTL;
      const ms = ttl === undefined ? undefined : ttlMs(ttl);
      if (ttl !== undefined && status.ttl === undefined) ops.push(set('ttl', ttl));
      if (ms !== undefined) ops.push(set('expiresAt', new Date(now.getTime() + ms).toISOString()));
    }
  }
  return ops;
}
