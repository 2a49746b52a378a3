// The webhook's `approvals` config: who may decide ApprovalRequests, per namespace, and the longest
// ttl scope an approver may grant. Validated with the rest of the webhook config and frozen.
import { z } from 'zod';

/** A duration in the policy's own form (`Decision.require_approval.ttl`): 30s, 30m, 8h. */
export const TTL_PATTERN = /^([0-9]+)([smh])$/;
const Ttl = z.string().regex(TTL_PATTERN, 'a duration such as 30m or 8h');

const Groups = z.array(z.string().min(1)).min(1);

export const ApprovalsWebhookConfig = z
  .object({
    /** Groups (as the API server authenticates them: OIDC/SAML groups) whose members may decide. */
    approverGroups: Groups.default(['sluice-approvers']),
    /** Per-namespace approver groups; they replace approverGroups for that namespace. */
    namespaces: z.record(z.string().min(1), z.object({ approverGroups: Groups }).strict()).default({}),
    /** Longest ttl scope an approval may grant. */
    maxTTL: Ttl.default('24h'),
  })
  .strict();

export type ApprovalsWebhookConfig = z.infer<typeof ApprovalsWebhookConfig>;

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000 } as const;

/** Milliseconds of a ttl string, or undefined when it is not one. */
export function ttlMs(ttl: string): number | undefined {
  const m = TTL_PATTERN.exec(ttl);
  return m ? Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS] : undefined;
}

export function approverGroupsFor(config: ApprovalsWebhookConfig, namespace: string): readonly string[] {
  return config.namespaces[namespace]?.approverGroups ?? config.approverGroups;
}
