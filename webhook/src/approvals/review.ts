// AdmissionReview → AdmissionReview for ApprovalRequests (/mutate/approvals stamps the decider,
// /validate/approvals enforces the rules). Pure, like review.ts for pods; the server adds HTTP,
// timing and metrics. A review of anything but sluice.io approvalrequests is allowed untouched.
import { z } from 'zod';
import { APPROVAL_PLURAL, GROUP } from '../../../api/src/index.ts';
import { allow, deny } from '../admission-review.ts';
import type { AdmissionRequest } from '../admission-review.ts';
import type { WebhookConfig } from '../config.ts';
import type { ReviewOutcome, Scope } from '../review.ts';
import { describeViolations } from '../violations.ts';
import { approvalStamp, approvalViolations } from './rules.ts';
import type { ApprovalReviewInput } from './rules.ts';

const Extra = z.record(z.string(), z.array(z.string())).catch({});
const StoredShape = z
  .looseObject({ metadata: z.looseObject({ name: z.string().optional(), labels: z.record(z.string(), z.string()).optional() }).optional() })
  .optional()
  .catch(undefined);

const isApprovalRequests = (r: AdmissionRequest) => r.resource.group === GROUP && r.resource.resource === APPROVAL_PLURAL;

function inputOf(request: AdmissionRequest): ApprovalReviewInput {
  const u = request.userInfo as AdmissionRequest['userInfo'] & { extra?: unknown };
  return {
    operation: request.operation,
    subResource: request.subResource ?? '',
    namespace: request.namespace ?? '',
    actor: { username: u.username ?? '', groups: u.groups ?? [], extra: Extra.parse(u.extra) },
    object: StoredShape.parse(request.object ?? undefined),
    oldObject: StoredShape.parse(request.oldObject ?? undefined),
  };
}

export function reviewApprovalValidation(request: AdmissionRequest, _scope: Scope, config: WebhookConfig): ReviewOutcome {
  if (!isApprovalRequests(request)) return { review: allow(request.uid), result: 'allowed', rules: [], patchBytes: 0 };
  const violations = approvalViolations(inputOf(request), config.approvals);
  if (!violations.length) return { review: allow(request.uid), result: 'allowed', rules: [], patchBytes: 0 };
  return { review: deny(request.uid, describeViolations(violations)), result: 'denied', rules: [...new Set(violations.map((v) => v.rule))], patchBytes: 0 };
}

export function reviewApprovalMutation(request: AdmissionRequest, _scope: Scope, _config: WebhookConfig, now: Date = new Date()): ReviewOutcome {
  if (!isApprovalRequests(request)) return { review: allow(request.uid), result: 'skipped', rules: [], patchBytes: 0 };
  const patch = approvalStamp(inputOf(request), now);
  const review = allow(request.uid, patch);
  return { review, result: patch.length ? 'patched' : 'unchanged', rules: [], patchBytes: review.response.patch ? Buffer.byteLength(review.response.patch, 'base64') : 0 };
}
