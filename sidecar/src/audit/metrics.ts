// Prometheus metrics of the audit trail, registered on a registry the caller owns (never the
// global one). Labels are bounded enums: outcome, reason, error code. Gauges that describe the
// spool read their value at scrape time from the recorder bound with `track`.
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import { SPOOL_STATES } from './spool-state.ts';
import type { SpoolState } from './spool-state.ts';
import type { AuditErrorCode } from '../../../lib/src/audit/errors.ts';

export const STORE_TYPES = ['none', 'loki', 'victorialogs'] as const;
/** Closed label sets of the labelled counters (what the recorder and shipper pass to inc()). */
export const PUSH_OUTCOMES = ['ok', 'retry_network', 'retry_status', 'rejected'] as const;
export const DROP_REASONS = ['spool_full', 'spool_io', 'corrupt', 'oversized'] as const;
// A Record so that a new AuditErrorCode fails the typecheck until it is listed here.
const APPEND_ERROR_CODES: Record<AuditErrorCode, true> = {
  'audit.spool_full': true,
  'audit.spool_io': true,
  'audit.not_running': true,
  'audit.bad_record': true,
  'audit.spool_corrupt': true,
};

export interface AuditGaugeSource {
  spoolBytes(): number;
  unshippedBytes(): number;
  /** The spool's `maxBytes`: what unshipped bytes may reach before `onFull` applies. */
  capacityBytes(): number;
  /** Seconds since the oldest event not yet acknowledged by the store was written; 0 when none. */
  oldestUnshippedAgeSeconds(): number;
  /** Where events go (`none`: a local ring, nothing shipped). */
  store(): (typeof STORE_TYPES)[number];
  /** The spool's state now (re-evaluated at scrape time, so a change is logged then too). */
  state(): SpoolState;
}

export interface AuditMetrics {
  eventsWritten: Counter;
  eventsShipped: Counter;
  /** Events sent again after a failed push. */
  eventsRetried: Counter;
  /** Events not recorded (onFull: drop), not shippable (corrupt line) or shipped as a stub (oversized), by reason. */
  eventsDropped: Counter<'reason'>;
  /** Events a ring (store none) trimmed to make room: never shipped anywhere. */
  eventsTrimmed: Counter;
  /** record() rejections by error code (fail-closed: each is a 503 for the agent). */
  appendErrors: Counter<'code'>;
  /** Push requests by outcome: ok, retry_network, retry_status, rejected. */
  pushes: Counter<'outcome'>;
  appendSeconds: Histogram;
  pushSeconds: Histogram;
  /** From an event's write to the store's acknowledgement (the oldest event of each batch). */
  shipLatencySeconds: Histogram;
  /** Binds the scrape-time gauges to a recorder; the last bound source wins. */
  track(source: AuditGaugeSource): void;
}

export function registerAuditMetrics(registry: Registry): AuditMetrics {
  let source: AuditGaugeSource | undefined;
  const registers = [registry];
  const metrics: AuditMetrics = {
    eventsWritten: new Counter({ name: 'sluice_audit_events_written_total', help: 'Audit events written to the spool', registers }),
    eventsShipped: new Counter({ name: 'sluice_audit_events_shipped_total', help: 'Audit events acknowledged by the store', registers }),
    eventsRetried: new Counter({ name: 'sluice_audit_events_retried_total', help: 'Audit events sent again after a failed push', registers }),
    eventsDropped: new Counter({
      name: 'sluice_audit_events_dropped_total',
      help: 'Audit events not recorded, not shippable or shipped without their content, by reason (spool_full, spool_io, corrupt, oversized)',
      labelNames: ['reason'],
      registers,
    }),
    eventsTrimmed: new Counter({
      name: 'sluice_audit_events_trimmed_total',
      help: 'Audit events the local ring (audit.store none) trimmed to make room; never shipped to any store',
      registers,
    }),
    appendErrors: new Counter({
      name: 'sluice_audit_append_errors_total',
      help: 'record() calls refused by error code (fail closed: the request is answered 503)',
      labelNames: ['code'],
      registers,
    }),
    pushes: new Counter({ name: 'sluice_audit_pushes_total', help: 'Push requests to the store by outcome', labelNames: ['outcome'], registers }),
    appendSeconds: new Histogram({
      name: 'sluice_audit_append_duration_seconds',
      help: 'Time record() took to make an event durable in the spool',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
      registers,
    }),
    pushSeconds: new Histogram({
      name: 'sluice_audit_push_duration_seconds',
      help: 'Duration of push requests to the store',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    }),
    shipLatencySeconds: new Histogram({
      name: 'sluice_audit_ship_latency_seconds',
      help: 'Time from writing an event to the store acknowledging it',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    }),
    track(s) {
      source = s;
    },
  };
  new Gauge({
    name: 'sluice_audit_spool_bytes',
    help: 'Bytes held in spool segment files',
    registers,
    collect() {
      this.set(source?.spoolBytes() ?? 0);
    },
  });
  new Gauge({
    name: 'sluice_audit_spool_unshipped_bytes',
    help: 'Spooled bytes not yet acknowledged by the store',
    registers,
    collect() {
      this.set(source?.unshippedBytes() ?? 0);
    },
  });
  new Gauge({
    name: 'sluice_audit_spool_capacity_bytes',
    help: 'Bytes the spool may hold on disk before onFull applies (spool.maxBytes)',
    registers,
    collect() {
      this.set(source?.capacityBytes() ?? 0);
    },
  });
  new Gauge({
    name: 'sluice_audit_oldest_unshipped_age_seconds',
    help: 'Age of the oldest audit event not yet acknowledged by the store (0 when all are shipped)',
    registers,
    collect() {
      this.set(source?.oldestUnshippedAgeSeconds() ?? 0);
    },
  });
  new Gauge({
    name: 'sluice_audit_store_info',
    help: 'Where audit events go: 1 for the configured store type (none means a local ring, nothing shipped)',
    labelNames: ['type'],
    registers,
    collect() {
      const current = source?.store();
      for (const type of STORE_TYPES) this.set({ type }, type === current ? 1 : 0);
    },
  });
  new Gauge({
    name: 'sluice_audit_spool_state',
    help: 'The audit spool state: 1 for the current one of ok, behind, near_full, full',
    labelNames: ['state'],
    registers,
    collect() {
      const current = source?.state() ?? 'ok';
      for (const state of SPOOL_STATES) this.set({ state }, state === current ? 1 : 0);
    },
  });
  // Every series of a closed label set exists from start-up at zero: a series born on its first
  // increment has no earlier sample, so increase()/rate() miss that increment (a first failed
  // push, drop or refusal would not show on the dashboards nor fire SluiceAuditEventsDropped).
  for (const outcome of PUSH_OUTCOMES) metrics.pushes.inc({ outcome }, 0);
  for (const reason of DROP_REASONS) metrics.eventsDropped.inc({ reason }, 0);
  for (const code of Object.keys(APPEND_ERROR_CODES)) metrics.appendErrors.inc({ code }, 0);
  return metrics;
}
