// The sidecar's `approvals` config section: where the API server is, how long and how many
// requests may be held, and the optional notification webhook. Validated with the rest of the
// sidecar config at start-up (a bad value names the field) and frozen with it.
import { z } from 'zod';

const Millis = z.number().int().min(1).max(24 * 60 * 60 * 1000);

export const NotifyConfig = z
  .object({
    /** Incoming-webhook URL (Slack or any JSON receiver). A secret in most setups: prefer urlFile. */
    url: z.url({ protocol: /^https?$/ }).optional(),
    /** File holding the URL (a mounted Secret); read once at start. */
    urlFile: z.string().min(1).optional(),
    /** slack: `{text, blocks}` as Slack incoming webhooks take it; generic: a structured event. */
    format: z.enum(['slack', 'generic']).default('slack'),
    /** Extra request headers (e.g. an Authorization for a generic receiver). */
    headers: z.record(z.string(), z.string()).default({}),
    timeoutMs: Millis.default(5_000),
    /** Attempts per notification, the first included; retried with exponential back-off and jitter. */
    maxAttempts: z.number().int().min(1).max(20).default(5),
    initialBackoffMs: Millis.default(500),
    maxBackoffMs: Millis.default(30_000),
  })
  .strict()
  .refine((n) => !(n.url && n.urlFile), { message: 'give url or urlFile, not both', path: ['urlFile'] });

export const ApprovalsConfig = z
  .object({
    /** Off: a held request is refused ("no approval backend configured"), as without this module. */
    enabled: z.boolean().default(true),
    /**
     * A kubeconfig file (tests, running outside a cluster). Without it, and with inCluster, the
     * sidecar uses the pod's service account; with neither, holds are refused.
     */
    kubeconfig: z.string().min(1).optional(),
    /** Use the pod's service account; loadSidecarConfig turns it on inside a pod. */
    inCluster: z.boolean().default(false),
    context: z.string().min(1).optional(),
    /** Longest a request is held; then it is denied and its ApprovalRequest marked Expired. */
    maxWaitMs: Millis.default(10 * 60 * 1000),
    /** Agent requests held at once (identical requests sharing one ApprovalRequest count once each). */
    maxConcurrentHolds: z.number().int().min(1).max(10_000).default(32),
    /** Held requests survive the API server being unreachable this long, then are denied. */
    apiGraceMs: Millis.default(5_000),
    /**
     * A finished request (denied, expired, revoked, approved once, an ended ttl grant, a session
     * grant of an earlier session) is deleted this long after it finished; its pod's deletion removes
     * the rest (ownerReference). The audit trail keeps every step.
     */
    retainFinishedMs: Millis.default(60 * 60 * 1000),
    /** Each API call (create, status patch, list) is abandoned after this. */
    apiTimeoutMs: Millis.default(5_000),
    notify: NotifyConfig.prefault({}),
  })
  .strict();

export type ApprovalsConfig = z.infer<typeof ApprovalsConfig>;
export type ApprovalsConfigInput = z.input<typeof ApprovalsConfig>;
export type NotifyConfig = z.infer<typeof NotifyConfig>;
