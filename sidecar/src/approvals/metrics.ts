// Approval metrics on a registry the caller owns (never the global default). Labels are closed
// sets: outcome, scope, result, operation.
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';

/** How a hold ended, for the decisions counter and the time-to-decision histogram. */
export const OUTCOMES = ['approved', 'denied', 'expired', 'revoked', 'unavailable', 'killed', 'abandoned', 'deleted', 'rejected'] as const;
export type Outcome = (typeof OUTCOMES)[number];
/** Closed label sets of the other labelled approval metrics (what the code passes to inc()). */
export const GRANT_SCOPES = ['session', 'ttl'] as const;
export const NOTIFY_RESULTS = ['sent', 'retried', 'failed'] as const;
export const API_OPERATIONS = ['create', 'status', 'watch', 'delete'] as const;

export interface ApprovalMetrics {
  /** ApprovalRequests this sidecar is waiting on. */
  pending: Gauge;
  /** Agent requests held open right now (several may share one ApprovalRequest). */
  held: Gauge;
  decisions: Counter<'outcome'>;
  decisionSeconds: Histogram<'outcome'>;
  grantUses: Counter<'scope'>;
  notifications: Counter<'result'>;
  apiErrors: Counter<'operation'>;
  /** approvals.maxWaitMs in seconds: what SluiceApprovalsWaitingTooLong measures the oldest wait against. */
  maxWaitSeconds: Gauge;
  /** Age of the oldest request still waiting, read at scrape time from `oldestPendingSource`. */
  oldestPendingAge: Gauge;
  /** Set by the coordinator: seconds the oldest pending request has waited, undefined when none. */
  oldestPendingSource: (() => number | undefined) | undefined;
}

export function registerApprovalMetrics(registry: Registry): ApprovalMetrics {
  const registers = [registry];
  const metrics: ApprovalMetrics = {
    pending: new Gauge({ name: 'sluice_approvals_pending', help: 'ApprovalRequests created by this sidecar that are still waiting for a decision', registers }),
    held: new Gauge({ name: 'sluice_approvals_held_requests', help: 'Agent requests held open waiting for approval', registers }),
    decisions: new Counter({
      name: 'sluice_approvals_decisions_total',
      help: 'Held requests by how their hold ended (approved|denied|expired|revoked|unavailable|killed|abandoned|deleted|rejected)',
      labelNames: ['outcome'],
      registers,
    }),
    decisionSeconds: new Histogram({
      name: 'sluice_approvals_time_to_decision_seconds',
      help: 'Time from creating an ApprovalRequest to the outcome the sidecar acted on',
      labelNames: ['outcome'],
      buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800],
      registers,
    }),
    grantUses: new Counter({ name: 'sluice_approvals_grant_uses_total', help: 'Requests let through by a standing grant (session|ttl) without asking', labelNames: ['scope'], registers }),
    notifications: new Counter({
      name: 'sluice_approvals_notifications_total',
      help: 'Notification webhook attempts by result (sent|retried|failed: failed means every attempt failed)',
      labelNames: ['result'],
      registers,
    }),
    apiErrors: new Counter({ name: 'sluice_approvals_api_errors_total', help: 'Failed Kubernetes API calls by operation (create|status|watch|delete)', labelNames: ['operation'], registers }),
    maxWaitSeconds: new Gauge({ name: 'sluice_approvals_max_wait_seconds', help: 'How long a held request may wait for a decision before it expires (approvals.maxWaitMs)', registers }),
    oldestPendingAge: new Gauge({
      name: 'sluice_approvals_oldest_pending_age_seconds',
      help: 'How long the oldest ApprovalRequest this sidecar waits on has been pending (0 when none)',
      registers,
      collect() {
        this.set(metrics.oldestPendingSource?.() ?? 0);
      },
    }),
    oldestPendingSource: undefined,
  };
  // Every series of a closed label set exists from start-up at zero: a series born on its first
  // observation has no earlier sample, so increase()/rate() over it miss that observation (the
  // story's single approval showed a NaN median and SluiceApprovalsExpired missed a first expiry).
  for (const outcome of OUTCOMES) {
    metrics.decisions.inc({ outcome }, 0);
    metrics.decisionSeconds.zero({ outcome });
  }
  for (const scope of GRANT_SCOPES) metrics.grantUses.inc({ scope }, 0);
  for (const result of NOTIFY_RESULTS) metrics.notifications.inc({ result }, 0);
  for (const operation of API_OPERATIONS) metrics.apiErrors.inc({ operation }, 0);
  return metrics;
}
