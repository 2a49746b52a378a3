// ApprovalRequest (sluice.io/v1alpha1): a held request waiting for a human. The sidecar creates
// it (spec); approvers change status through the API server, whose admission stamps who decided.
// Field names follow Kubernetes conventions (camelCase), unlike the snake_case policy input.
import { z } from 'zod';
import { ApprovalScope, Creator, Facts } from './policy.ts';

export const APPROVAL_API_VERSION = 'sluice.io/v1alpha1';
export const APPROVAL_KIND = 'ApprovalRequest';
export const APPROVAL_PLURAL = 'approvalrequests';

/** Revoked: a granted session/ttl scope withdrawn after approval (`kubectl sluice revoke`). */
export const ApprovalState = z.enum(['Pending', 'Approved', 'Denied', 'Expired', 'Revoked']);

export const ApprovalRequestSpec = z
  .object({
    pod: z.object({ namespace: z.string(), name: z.string(), uid: z.string().optional() }).strict(),
    serviceAccount: z.string(),
    session: z.string(),
    creator: Creator.optional(),
    request: z
      .object({
        method: z.string(),
        host: z.string(),
        path: z.string().describe('secrets masked'),
        summary: z.string().describe('one line for humans, e.g. "git push org/repo refs/heads/main"'),
        facts: Facts.optional(),
      })
      .strict(),
    code: z.string(),
    reason: z.string(),
    requestedScope: ApprovalScope,
    requestedTTL: z.string().optional(),
    fingerprint: z.string().describe('identical pending requests share one ApprovalRequest'),
    expiresAt: z.string().describe('when the sidecar stops waiting and denies'),
  })
  .strict();

export const ApprovalRequestStatus = z
  .object({
    state: ApprovalState,
    decidedBy: z.string().optional(),
    decidedByGroups: z.array(z.string()).optional(),
    decidedAt: z.string().optional(),
    scope: ApprovalScope.optional(),
    ttl: z.string().optional(),
    expiresAt: z.string().optional().describe('end of a granted ttl scope'),
    reason: z.string().optional(),
    revokedBy: z.string().optional(),
    revokedAt: z.string().optional(),
  })
  .strict();

export type ApprovalState = z.infer<typeof ApprovalState>;
export type ApprovalRequestSpec = z.infer<typeof ApprovalRequestSpec>;
export type ApprovalRequestStatus = z.infer<typeof ApprovalRequestStatus>;

export interface ApprovalRequest {
  apiVersion: typeof APPROVAL_API_VERSION;
  kind: typeof APPROVAL_KIND;
  metadata: { name?: string; namespace?: string; labels?: Record<string, string>; [k: string]: unknown };
  spec: ApprovalRequestSpec;
  status?: ApprovalRequestStatus;
}
