// AdmissionReview → AdmissionReview for ApprovalRequests (/mutate/approvals stamps the creator and
// owner at create and the decider at a decision, /validate/approvals enforces the rules). The pure
// rules get what the API server stores about the pod the caller's token is bound to, read here with
// the webhook's own credentials (never the caller's, never what the request claims); the server
// adds HTTP, timing and metrics. A review of anything but sluice.io approvalrequests is allowed
// untouched. A pod it cannot read makes a create fail closed (the rules refuse it).
import { z } from 'zod';
import { ANNOTATION_CREATOR, ANNOTATION_STATUS, APPROVAL_PLURAL, GROUP } from '../../../api/src/index.ts';
import { allow, deny } from '../admission-review.ts';
import type { AdmissionRequest } from '../admission-review.ts';
import type { WebhookConfig } from '../config.ts';
import { parseCreatorStamp } from '../creator.ts';
import { KubeReadError } from '../kube-reader.ts';
import type { KubeReader } from '../kube-reader.ts';
import type { ReviewOutcome } from '../review.ts';
import { describeViolations } from '../violations.ts';
import { approvalStamp, approvalViolations, tokenPod } from './rules.ts';
import type { ApprovalReviewInput, BoundPod } from './rules.ts';

const Extra = z.record(z.string(), z.array(z.string())).catch({});
const StoredShape = z
  .looseObject({
    metadata: z
      .looseObject({
        name: z.string().optional(),
        labels: z.record(z.string(), z.string()).optional(),
        ownerReferences: z.array(z.looseObject({ kind: z.string().optional(), name: z.string().optional(), uid: z.string().optional(), apiVersion: z.string().optional() })).optional(),
      })
      .optional(),
  })
  .optional()
  .catch(undefined);
const PodShape = z.looseObject({
  metadata: z.looseObject({ name: z.string(), uid: z.string(), annotations: z.record(z.string(), z.string()).optional() }),
  spec: z.looseObject({ serviceAccountName: z.string().optional() }),
});

const isApprovalRequests = (r: AdmissionRequest) => r.resource.group === GROUP && r.resource.resource === APPROVAL_PLURAL;

function inputOf(request: AdmissionRequest, now: Date): ApprovalReviewInput {
  const u = request.userInfo as AdmissionRequest['userInfo'] & { extra?: unknown };
  return {
    operation: request.operation,
    subResource: request.subResource ?? '',
    namespace: request.namespace ?? '',
    actor: { username: u.username ?? '', groups: u.groups ?? [], extra: Extra.parse(u.extra) },
    object: StoredShape.parse(request.object ?? undefined),
    oldObject: StoredShape.parse(request.oldObject ?? undefined),
    now,
  };
}

/** The pod a create's token is bound to, as the API server stores it. */
async function boundPodOf(input: ApprovalReviewInput, kube: KubeReader | undefined): Promise<ApprovalReviewInput['boundPod']> {
  const pod = tokenPod(input.actor);
  if (!pod) return undefined;
  if (!kube) return 'unreadable';
  let got;
  try {
    got = await kube.get(`/api/v1/namespaces/${encodeURIComponent(input.namespace)}/pods/${encodeURIComponent(pod.name)}`);
  } catch (err) {
    if (err instanceof KubeReadError) return 'unreadable';
    throw err;
  }
  if (!got) return 'missing';
  const parsed = PodShape.safeParse(got);
  if (!parsed.success) return 'unreadable';
  const { metadata, spec } = parsed.data;
  const bound: BoundPod = {
    name: metadata.name,
    uid: metadata.uid,
    serviceAccount: spec.serviceAccountName ?? 'default',
    injected: metadata.annotations?.[ANNOTATION_STATUS] !== undefined,
  };
  const creator = parseCreatorStamp(metadata.annotations?.[ANNOTATION_CREATOR]);
  return creator ? { ...bound, creator } : bound;
}

async function fullInput(request: AdmissionRequest, kube: KubeReader | undefined, now: Date): Promise<ApprovalReviewInput> {
  const input = inputOf(request, now);
  if (request.operation === 'CREATE' && !input.subResource) input.boundPod = await boundPodOf(input, kube);
  return input;
}

export async function reviewApprovalValidation(request: AdmissionRequest, config: WebhookConfig, kube: KubeReader | undefined, now: Date = new Date()): Promise<ReviewOutcome> {
  if (!isApprovalRequests(request)) return { review: allow(request.uid), result: 'allowed', rules: [], patchBytes: 0 };
  const violations = approvalViolations(await fullInput(request, kube, now), config.approvals);
  if (!violations.length) return { review: allow(request.uid), result: 'allowed', rules: [], patchBytes: 0 };
  return { review: deny(request.uid, describeViolations(violations)), result: 'denied', rules: [...new Set(violations.map((v) => v.rule))], patchBytes: 0 };
}

export async function reviewApprovalMutation(request: AdmissionRequest, _config: WebhookConfig, kube: KubeReader | undefined, now: Date = new Date()): Promise<ReviewOutcome> {
  if (!isApprovalRequests(request)) return { review: allow(request.uid), result: 'skipped', rules: [], patchBytes: 0 };
  const patch = approvalStamp(await fullInput(request, kube, now), now);
  const review = allow(request.uid, patch);
  return { review, result: patch.length ? 'patched' : 'unchanged', rules: [], patchBytes: review.response.patch ? Buffer.byteLength(review.response.patch, 'base64') : 0 };
}
