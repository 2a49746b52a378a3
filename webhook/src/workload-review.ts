// AdmissionReview → AdmissionReview for workloads (/mutate/workloads): stamps Deployments,
// ReplicaSets, StatefulSets, DaemonSets, Jobs and CronJobs with their creator, and resolves the
// creator of a pod being created (for /mutate and /validate) when a controller or an agent pod's
// token makes it. The async edge around workload-creator.ts: the only reads are the ones
// resolveCreator makes with the webhook's own credentials. Never allows a change it cannot stamp.
import { z } from 'zod';
import { allow, deny } from './admission-review.ts';
import type { AdmissionRequest } from './admission-review.ts';
import type { WebhookConfig } from './config.ts';
import type { UserInfo } from './creator.ts';
import { listOf, plain } from './json-shape.ts';
import type { KubeReader } from './kube-reader.ts';
import type { ReviewOutcome } from './review.ts';
import { describeViolations } from './violations.ts';
import type { Violation } from './violations.ts';
import { WORKLOAD_RESOURCES, controllerOwner, planWorkloadStamp, resolveCreator, stampUser } from './workload-creator.ts';
import type { Actor, OwnerReference } from './workload-creator.ts';

const Extra = z.record(z.string(), z.array(z.string())).catch({});
const Meta = z
  .looseObject({ metadata: z.looseObject({ ownerReferences: z.array(z.looseObject({})).optional() }).optional() })
  .catch({});

// Every pod review asks both of these; the common cases (no extra, a plain object with or without
// owner references) are answered without the schema's copy, anything else is the schema's to say.
export function actorOf(request: AdmissionRequest): Actor {
  const u = request.userInfo as AdmissionRequest['userInfo'] & { extra?: unknown };
  return { username: u.username, uid: u.uid, groups: u.groups, extra: u.extra === undefined ? {} : Extra.parse(u.extra) };
}

function ownersOf(obj: unknown): OwnerReference[] {
  if (plain(obj)) {
    const m = obj.metadata;
    if (m === undefined) return [];
    if (plain(m) && (m.ownerReferences === undefined || listOf(m.ownerReferences, plain))) return (m.ownerReferences as OwnerReference[] | undefined) ?? [];
  }
  return (Meta.parse(obj).metadata?.ownerReferences ?? []);
}

function denied(uid: string, violations: readonly Violation[]): ReviewOutcome {
  return { review: deny(uid, describeViolations(violations)), result: 'denied', rules: [...new Set(violations.map((v) => v.rule))], patchBytes: 0 };
}

/**
 * The identity a pod being created is stamped with: the caller, or, for a controller-made pod or
 * one an agent pod's token creates, the creator passed on (see workload-creator.ts).
 */
export async function podCreator(request: AdmissionRequest, config: WebhookConfig, reader: KubeReader | undefined): Promise<{ user: UserInfo } | { violations: Violation[] }> {
  const r = await resolveCreator(actorOf(request), request.namespace ?? '', ownersOf(request.object), config.creators, reader);
  if (r.kind === 'refuse') return { violations: [r.violation] };
  return { user: r.via === 'user' ? request.userInfo : stampUser(r.stamp) };
}

export async function reviewWorkloadMutation(request: AdmissionRequest, config: WebhookConfig, reader: KubeReader | undefined): Promise<ReviewOutcome> {
  const kind = WORKLOAD_RESOURCES[`${request.resource.group}/${request.resource.resource}`];
  if (!kind || request.subResource || (request.operation !== 'CREATE' && request.operation !== 'UPDATE')) {
    return { review: allow(request.uid), result: 'skipped', rules: [], patchBytes: 0 };
  }
  const object = z.looseObject({}).safeParse(request.object);
  if (!object.success) return denied(request.uid, [{ rule: 'creator.unresolved', field: 'object', message: 'the AdmissionReview carries no object to stamp' }]);
  const actor = actorOf(request);
  const owners = ownersOf(request.object);
  const resolution = await resolveCreator(actor, request.namespace ?? '', owners, config.creators, reader);
  if (resolution.kind === 'refuse') return denied(request.uid, [resolution.violation]);
  const viaController = config.creators.controllers.includes(actor.username ?? '') && controllerOwner(owners) !== undefined;
  const oldObject = z.looseObject({}).safeParse(request.oldObject);
  const plan = planWorkloadStamp({
    operation: request.operation,
    kind,
    object: object.data,
    oldObject: oldObject.success ? oldObject.data : undefined,
    viaController,
    stamp: resolution.stamp,
  });
  if (plan.violations.length) return denied(request.uid, plan.violations);
  const review = allow(request.uid, plan.patch);
  return { review, result: plan.patch.length ? 'patched' : 'unchanged', rules: [], patchBytes: review.response.patch ? Buffer.byteLength(review.response.patch, 'base64') : 0 };
}
