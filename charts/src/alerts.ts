// sluice's Prometheus alerts, each with the promtool unit tests that prove it fires and stays
// quiet, and a runbook in docs/runbooks/<alert>.md. generate.ts writes the rules file the chart's
// PrometheusRule embeds; charts/test/alerts.test.ts runs `promtool check rules` and
// `promtool test rules`; e2e/chart/promql.test.ts runs every `signal` against a real Prometheus
// that scraped a real sidecar and webhook (a signal is the measured part of an expression, so it
// returns series on a healthy system; `expr` adds the threshold).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { SpoolConfig } from '../../sidecar/src/audit/config.ts';

/** The chart's appVersion: releases are tagged v<version> (tools/release.ts). */
const APP_VERSION = (parseYaml(readFileSync(join(import.meta.dirname, '..', 'sluice', 'Chart.yaml'), 'utf8')) as { appVersion: string }).appVersion;

/**
 * The runbooks of the version the rules ship with, at its release tag, never a moving branch (an
 * alert from an old install must not open a runbook written for newer metrics). The chart's
 * PrometheusRule rewrites it from docs.baseURL / runbookBaseURL (templates/_helpers.tpl).
 */
export const RUNBOOK_BASE = `https://github.com/sluice-dev/sluice/blob/v${APP_VERSION}/docs/runbooks`;

export interface AlertCase {
  /** promtool input_series: series selector → values notation ('0+60x30'). */
  series: Record<string, string>;
  /** minutes after the start at which the alert is evaluated */
  at: number;
}

export interface AlertSpec {
  alert: string;
  group: 'sluice-sidecar' | 'sluice-audit' | 'sluice-webhook';
  signal: string;
  expr: string;
  for: string;
  severity: 'warning' | 'critical';
  summary: string;
  description: string;
  /** fires at `at` with these labels (besides severity) */
  fires: AlertCase & { labels: Record<string, string> };
  quiet: AlertCase;
}

const POD = 'namespace="agents",pod="coder-0"';
const POD_LABELS = { namespace: 'agents', pod: 'coder-0' };
const threshold = (signal: string, condition: string) => ({ signal, expr: `${signal} ${condition}` });

// The alert compares unshipped bytes with each sidecar's own capacity gauge; the test series use
// the default capacity.
const SPOOL_MAX_BYTES = SpoolConfig.parse({}).maxBytes;
const SPOOL_NEAR_FULL_BYTES = Math.floor(SPOOL_MAX_BYTES * 0.8);

const denyRate = 'sum by (namespace, pod) (rate(sluice_requests_total{action="deny"}[5m]))';

/** Pods whose audit store is `none`: a ring that is always full and never ships is not an outage. */
const STORE_NONE = 'unless on (namespace, pod) (max by (namespace, pod) (sluice_audit_store_info{type="none"}) == 1)';

// Predicted unshipped bytes in 4 hours (linear over the last 30 minutes) reach the capacity, while
// the store has not acknowledged anything for 5 minutes: the spool will refuse traffic (or drop)
// well before anyone would notice from the 80 % warning.
const spoolFullSoon = 'max by (namespace, pod) (predict_linear(sluice_audit_spool_unshipped_bytes[30m], 4 * 3600))';

const approvalWaitRatio = 'max by (namespace, pod) (sluice_approvals_oldest_pending_age_seconds / sluice_approvals_max_wait_seconds)';

export const ALERTS: readonly AlertSpec[] = [
  {
    alert: 'SluiceSidecarDown',
    group: 'sluice-sidecar',
    ...threshold('up{container="sluice-proxy"}', '== 0'),
    for: '5m',
    severity: 'warning',
    summary: 'A sluice sidecar does not answer scrapes',
    description: 'The sidecar of {{ $labels.namespace }}/{{ $labels.pod }} has not answered for 5 minutes. Its agent has no egress (fail closed) and nothing it does is recorded.',
    fires: { series: { [`up{container="sluice-proxy",${POD}}`]: '0x10' }, at: 8, labels: { container: 'sluice-proxy', ...POD_LABELS } },
    quiet: { series: { [`up{container="sluice-proxy",${POD}}`]: '1x10' }, at: 8 },
  },
  {
    alert: 'SluicePolicyNotLoaded',
    group: 'sluice-sidecar',
    ...threshold('sluice_policy_loaded', '== 0'),
    for: '2m',
    severity: 'critical',
    summary: 'A sluice sidecar has no policy bundle',
    description: '{{ $labels.namespace }}/{{ $labels.pod }} has no valid policy bundle loaded: it is not ready and its agent cannot start or reach anything.',
    fires: { series: { [`sluice_policy_loaded{${POD}}`]: '0x10' }, at: 5, labels: POD_LABELS },
    quiet: { series: { [`sluice_policy_loaded{${POD}}`]: '1x10' }, at: 5 },
  },
  {
    alert: 'SluicePolicyLoadFailing',
    group: 'sluice-sidecar',
    ...threshold('sum by (namespace, pod, code) (increase(sluice_policy_loads_total{result="failure"}[10m]))', '> 0'),
    for: '1m',
    severity: 'warning',
    summary: 'A sluice sidecar refuses a policy bundle',
    description: '{{ $labels.namespace }}/{{ $labels.pod }} rejected a policy bundle ({{ $labels.code }}) and keeps serving its last good revision.',
    fires: {
      series: { [`sluice_policy_loads_total{result="failure",code="bundle.bad_data",${POD}}`]: '0 0 1 2 3 4 5 6 7 8 9' },
      at: 8,
      labels: { code: 'bundle.bad_data', ...POD_LABELS },
    },
    quiet: { series: { [`sluice_policy_loads_total{result="failure",code="bundle.bad_data",${POD}}`]: '1x20' }, at: 15 },
  },
  {
    alert: 'SluicePolicyRevisionStale',
    group: 'sluice-sidecar',
    signal: 'sluice_policy_bundle_info',
    expr: 'sluice_policy_bundle_info unless on (revision) topk(1, count by (revision) (sluice_policy_bundle_info))',
    for: '15m',
    severity: 'warning',
    summary: 'A sluice sidecar runs another policy revision than most',
    description: '{{ $labels.namespace }}/{{ $labels.pod }} still serves policy revision {{ $labels.revision }} while most sidecars run a newer one.',
    fires: {
      series: {
        'sluice_policy_bundle_info{revision="new",namespace="agents",pod="a"}': '1x30',
        'sluice_policy_bundle_info{revision="new",namespace="agents",pod="b"}': '1x30',
        'sluice_policy_bundle_info{revision="old",namespace="agents",pod="c"}': '1x30',
      },
      at: 20,
      labels: { revision: 'old', namespace: 'agents', pod: 'c' },
    },
    quiet: {
      series: {
        'sluice_policy_bundle_info{revision="new",namespace="agents",pod="a"}': '1x30',
        'sluice_policy_bundle_info{revision="new",namespace="agents",pod="b"}': '1x30',
      },
      at: 20,
    },
  },
  {
    alert: 'SluiceDenySpike',
    group: 'sluice-sidecar',
    signal: denyRate,
    expr: `${denyRate} > 0.5 and on (namespace, pod) (${denyRate} / sum by (namespace, pod) (rate(sluice_requests_total[5m]))) > 0.5`,
    for: '10m',
    severity: 'warning',
    summary: 'An agent is being denied again and again',
    description: 'Most requests of {{ $labels.namespace }}/{{ $labels.pod }} are denied, over one a second for 10 minutes: a misconfigured agent, a missing allow rule, or an agent probing for a way out.',
    fires: {
      series: {
        [`sluice_requests_total{action="deny",code="network.default_deny",${POD}}`]: '0+60x30',
        [`sluice_requests_total{action="allow",code="git.fetch",${POD}}`]: '0+6x30',
      },
      at: 20,
      labels: POD_LABELS,
    },
    quiet: {
      series: {
        [`sluice_requests_total{action="deny",code="network.default_deny",${POD}}`]: '0+6x30',
        [`sluice_requests_total{action="allow",code="git.fetch",${POD}}`]: '0+600x30',
      },
      at: 20,
    },
  },
  {
    alert: 'SluiceApprovalsWaitingTooLong',
    group: 'sluice-sidecar',
    // Half of each sidecar's own maximum hold (approvals.maxWaitMs, exported as
    // sluice_approvals_max_wait_seconds): approvers hear of it while there is still time to decide,
    // whatever the hold is configured to (a fixed 300 s could never fire with maxWaitMs 300000).
    ...threshold(approvalWaitRatio, '> 0.5'),
    for: '1m',
    severity: 'warning',
    summary: 'A held request has used half its time waiting for an approver',
    description: 'A request of {{ $labels.namespace }}/{{ $labels.pod }} has been held for approval for over half of approvals.maxWaitMs; the agent is blocked on it and it is denied when the hold times out.',
    // maxWaitMs 300000 (install.md's example): at 3 minutes the alert has fired, before the hold expires at 5.
    fires: { series: { [`sluice_approvals_oldest_pending_age_seconds{${POD}}`]: '0+20x30', [`sluice_approvals_max_wait_seconds{${POD}}`]: '300x30' }, at: 9, labels: POD_LABELS },
    quiet: { series: { [`sluice_approvals_oldest_pending_age_seconds{${POD}}`]: '0+20x30', [`sluice_approvals_max_wait_seconds{${POD}}`]: '3600x30' }, at: 9 },
  },
  {
    alert: 'SluiceApprovalsExpiring',
    group: 'sluice-sidecar',
    ...threshold('sum by (namespace, pod) (increase(sluice_approvals_decisions_total{outcome="expired"}[30m]))', '> 0'),
    for: '0m',
    severity: 'warning',
    summary: 'Held requests expire without a decision',
    description: 'Requests of {{ $labels.namespace }}/{{ $labels.pod }} held for approval ran out of time with nobody deciding; the agent got a deny for each.',
    fires: {
      series: { [`sluice_approvals_decisions_total{outcome="expired",${POD}}`]: '0 0 0 1 1 2 2 2 2 2' },
      at: 6,
      labels: POD_LABELS,
    },
    quiet: { series: { [`sluice_approvals_decisions_total{outcome="expired",${POD}}`]: '1x60' }, at: 50 },
  },
  {
    alert: 'SluiceApprovalsApiErrors',
    group: 'sluice-sidecar',
    ...threshold('sum by (namespace, pod, operation) (increase(sluice_approvals_api_errors_total[10m]))', '> 0'),
    for: '5m',
    severity: 'warning',
    summary: 'A sidecar cannot reach the ApprovalRequest API',
    description: '{{ $labels.namespace }}/{{ $labels.pod }} fails Kubernetes API calls for approvals ({{ $labels.operation }}); held requests cannot be created or decided and are denied (unavailable).',
    fires: { series: { [`sluice_approvals_api_errors_total{operation="create",${POD}}`]: '0+2x20' }, at: 10, labels: { operation: 'create', ...POD_LABELS } },
    quiet: { series: { [`sluice_approvals_api_errors_total{operation="create",${POD}}`]: '4x20' }, at: 15 },
  },
  {
    alert: 'SluiceCredentialIssuanceFailing',
    group: 'sluice-sidecar',
    ...threshold('sum by (namespace, pod, provider, code) (increase(sluice_credentials_errors_total[10m]))', '> 0'),
    for: '2m',
    severity: 'warning',
    summary: 'A sluice sidecar cannot get credentials',
    description: '{{ $labels.namespace }}/{{ $labels.pod }} fails to get credentials from {{ $labels.provider }} ({{ $labels.code }}); requests that need them fail closed.',
    fires: {
      series: { [`sluice_credentials_errors_total{provider="aws-sts",code="credentials.provider_unavailable",${POD}}`]: '0+1x20' },
      at: 10,
      labels: { provider: 'aws-sts', code: 'credentials.provider_unavailable', ...POD_LABELS },
    },
    quiet: { series: { [`sluice_credentials_errors_total{provider="aws-sts",code="credentials.provider_unavailable",${POD}}`]: '3x20' }, at: 15 },
  },
  {
    alert: 'SluiceAuditShippingStalled',
    group: 'sluice-audit',
    signal: 'max by (namespace, pod) (sluice_audit_oldest_unshipped_age_seconds)',
    expr: `max by (namespace, pod) (sluice_audit_oldest_unshipped_age_seconds) > 300 ${STORE_NONE}`,
    for: '5m',
    severity: 'warning',
    summary: 'Audit events are not reaching the log store',
    description: 'The oldest audit event of {{ $labels.namespace }}/{{ $labels.pod }} not yet acknowledged by the store is over 5 minutes old; the spool is filling.',
    fires: {
      series: { [`sluice_audit_oldest_unshipped_age_seconds{${POD}}`]: '0+60x30', [`sluice_audit_store_info{type="loki",${POD}}`]: '1x30', [`sluice_audit_store_info{type="none",${POD}}`]: '0x30' },
      at: 15,
      labels: POD_LABELS,
    },
    // The same age in a pod whose store is none (a ring nothing ships from) is not a stall.
    quiet: { series: { [`sluice_audit_oldest_unshipped_age_seconds{${POD}}`]: '0+60x30', [`sluice_audit_store_info{type="none",${POD}}`]: '1x30' }, at: 15 },
  },
  {
    alert: 'SluiceAuditSpoolFullSoon',
    group: 'sluice-audit',
    signal: spoolFullSoon,
    expr: `(${spoolFullSoon} >= max by (namespace, pod) (sluice_audit_spool_capacity_bytes)) and on (namespace, pod) (max by (namespace, pod) (sluice_audit_oldest_unshipped_age_seconds) > 300) ${STORE_NONE}`,
    for: '5m',
    severity: 'critical',
    summary: 'The audit spool will be full within 4 hours',
    description: 'The store has not acknowledged audit events of {{ $labels.namespace }}/{{ $labels.pod }} for over 5 minutes and, at the rate its spool is filling, it is full within 4 hours; then requests are refused (fail-closed) or events dropped.',
    // Unshipped bytes growing 1 MiB a minute towards 64 MiB behind a dead store.
    fires: {
      series: {
        [`sluice_audit_spool_unshipped_bytes{${POD}}`]: `0+${1024 * 1024}x40`,
        [`sluice_audit_spool_capacity_bytes{${POD}}`]: `${SPOOL_MAX_BYTES}x40`,
        [`sluice_audit_oldest_unshipped_age_seconds{${POD}}`]: '0+60x40',
      },
      at: 15,
      labels: POD_LABELS,
    },
    // A shipper keeping up: a little unshipped, never old.
    quiet: {
      series: {
        [`sluice_audit_spool_unshipped_bytes{${POD}}`]: '0 4096 0 8192 0 2048 0 0 4096 0 0 0 8192 0 0 0 0 0 0 0',
        [`sluice_audit_spool_capacity_bytes{${POD}}`]: `${SPOOL_MAX_BYTES}x20`,
        [`sluice_audit_oldest_unshipped_age_seconds{${POD}}`]: '0 1 0 2 0 1 0 0 1 0 0 0 1 0 0 0 0 0 0 0',
      },
      at: 15,
    },
  },
  {
    alert: 'SluiceAuditEventsDropped',
    group: 'sluice-audit',
    ...threshold('sum by (namespace, pod, reason) (increase(sluice_audit_events_dropped_total[10m]))', '> 0'),
    for: '0m',
    severity: 'critical',
    summary: 'Audit events are being dropped',
    description: '{{ $labels.namespace }}/{{ $labels.pod }} dropped audit events ({{ $labels.reason }}): the audit trail of this session has a gap.',
    fires: { series: { [`sluice_audit_events_dropped_total{reason="spool_full",${POD}}`]: '0 0 0 5 10 10 10' }, at: 5, labels: { reason: 'spool_full', ...POD_LABELS } },
    quiet: { series: { [`sluice_audit_events_dropped_total{reason="spool_full",${POD}}`]: '2x20' }, at: 15 },
  },
  {
    alert: 'SluiceAuditWriteFailing',
    group: 'sluice-audit',
    ...threshold('sum by (namespace, pod, code) (increase(sluice_audit_append_errors_total[5m]))', '> 0'),
    for: '1m',
    severity: 'critical',
    summary: 'Audit writes fail; requests are refused',
    description: '{{ $labels.namespace }}/{{ $labels.pod }} cannot write audit events ({{ $labels.code }}); with fail-closed auditing its agent gets 503 for every request.',
    fires: { series: { [`sluice_audit_append_errors_total{code="audit.spool_full",${POD}}`]: '0+10x20' }, at: 10, labels: { code: 'audit.spool_full', ...POD_LABELS } },
    quiet: { series: { [`sluice_audit_append_errors_total{code="audit.spool_full",${POD}}`]: '7x20' }, at: 15 },
  },
  {
    alert: 'SluiceAuditSpoolNearFull',
    group: 'sluice-audit',
    signal: 'max by (namespace, pod) (sluice_audit_spool_bytes / sluice_audit_spool_capacity_bytes)',
    expr: `max by (namespace, pod) (sluice_audit_spool_bytes / sluice_audit_spool_capacity_bytes) > 0.8 ${STORE_NONE}`,
    for: '5m',
    severity: 'warning',
    summary: 'The audit spool is over 80 % full',
    description: '{{ $labels.namespace }}/{{ $labels.pod }} has filled over 80 % of its audit spool (audit.spool.maxBytes), mostly with events the store has not acknowledged; when it is full, requests are refused (fail-closed) or events dropped.',
    fires: {
      series: { [`sluice_audit_spool_bytes{${POD}}`]: `${SPOOL_NEAR_FULL_BYTES + 1024}x20`, [`sluice_audit_spool_capacity_bytes{${POD}}`]: `${SPOOL_MAX_BYTES}x20` },
      at: 10,
      labels: POD_LABELS,
    },
    // The same bytes are not near full in a spool configured four times larger.
    quiet: { series: { [`sluice_audit_spool_bytes{${POD}}`]: `${SPOOL_NEAR_FULL_BYTES + 1024}x20`, [`sluice_audit_spool_capacity_bytes{${POD}}`]: `${SPOOL_MAX_BYTES * 4}x20` }, at: 10 },
  },
  {
    alert: 'SluiceWebhookDown',
    group: 'sluice-webhook',
    ...threshold('up{container="sluice-webhook"}', '== 0'),
    for: '5m',
    severity: 'warning',
    summary: 'A sluice webhook replica is down',
    description: 'Webhook replica {{ $labels.namespace }}/{{ $labels.pod }} has not answered for 5 minutes. With every replica down, no agent pod can be created (failurePolicy Fail).',
    fires: { series: { 'up{container="sluice-webhook",namespace="sluice-system",pod="sluice-webhook-0"}': '0x10' }, at: 8, labels: { container: 'sluice-webhook', namespace: 'sluice-system', pod: 'sluice-webhook-0' } },
    quiet: { series: { 'up{container="sluice-webhook",namespace="sluice-system",pod="sluice-webhook-0"}': '1x10' }, at: 8 },
  },
  {
    alert: 'SluiceWebhookAllReplicasDown',
    group: 'sluice-webhook',
    signal: 'up{container="sluice-webhook"}',
    expr: 'absent(up{container="sluice-webhook"} == 1)',
    for: '2m',
    severity: 'critical',
    summary: 'No sluice webhook replica is up',
    description: 'No webhook replica has answered a scrape for 2 minutes (or none is scraped at all). The API server cannot call the webhook (failurePolicy Fail): no agent pod can be created or updated.',
    fires: {
      series: {
        'up{container="sluice-webhook",namespace="sluice-system",pod="sluice-webhook-0"}': '1 1 0x10',
        'up{container="sluice-webhook",namespace="sluice-system",pod="sluice-webhook-1"}': '1 1 0x10',
      },
      at: 6,
      // absent() of a filtered vector carries no labels.
      labels: {},
    },
    // One replica of two down is SluiceWebhookDown's (a warning), not this.
    quiet: {
      series: {
        'up{container="sluice-webhook",namespace="sluice-system",pod="sluice-webhook-0"}': '0x10',
        'up{container="sluice-webhook",namespace="sluice-system",pod="sluice-webhook-1"}': '1x10',
      },
      at: 8,
    },
  },
  {
    alert: 'SluiceWebhookErrors',
    group: 'sluice-webhook',
    signal: 'sum by (endpoint) (rate(sluice_webhook_reviews_total{result=~"error|malformed"}[5m]))',
    expr: '(sum by (endpoint) (rate(sluice_webhook_reviews_total{result=~"error|malformed"}[5m])) / sum by (endpoint) (rate(sluice_webhook_reviews_total[5m]))) > 0.05',
    for: '5m',
    severity: 'critical',
    summary: 'The sluice webhook fails admission reviews',
    description: 'Over 5 % of {{ $labels.endpoint }} reviews end in an error or a malformed request; affected pods are refused.',
    fires: {
      series: {
        'sluice_webhook_reviews_total{endpoint="mutate",operation="CREATE",result="error"}': '0+5x20',
        'sluice_webhook_reviews_total{endpoint="mutate",operation="CREATE",result="patched"}': '0+20x20',
      },
      at: 15,
      labels: { endpoint: 'mutate' },
    },
    quiet: {
      series: {
        'sluice_webhook_reviews_total{endpoint="mutate",operation="CREATE",result="error"}': '0+1x20',
        'sluice_webhook_reviews_total{endpoint="mutate",operation="CREATE",result="patched"}': '0+100x20',
      },
      at: 15,
    },
  },
  {
    alert: 'SluiceWebhookLatencyHigh',
    group: 'sluice-webhook',
    ...threshold('histogram_quantile(0.99, sum by (le, endpoint) (rate(sluice_webhook_review_duration_seconds_bucket[5m])))', '> 0.25'),
    for: '10m',
    severity: 'warning',
    summary: 'sluice admission reviews are slow',
    description: 'p99 of {{ $labels.endpoint }} reviews is over 250 ms; pod creation slows and, near the timeout, fails.',
    fires: {
      series: {
        'sluice_webhook_review_duration_seconds_bucket{endpoint="mutate",le="0.1"}': '0x30',
        'sluice_webhook_review_duration_seconds_bucket{endpoint="mutate",le="0.5"}': '0+10x30',
        'sluice_webhook_review_duration_seconds_bucket{endpoint="mutate",le="+Inf"}': '0+10x30',
      },
      at: 20,
      labels: { endpoint: 'mutate' },
    },
    quiet: {
      series: {
        'sluice_webhook_review_duration_seconds_bucket{endpoint="mutate",le="0.1"}': '0+10x30',
        'sluice_webhook_review_duration_seconds_bucket{endpoint="mutate",le="0.5"}': '0+10x30',
        'sluice_webhook_review_duration_seconds_bucket{endpoint="mutate",le="+Inf"}': '0+10x30',
      },
      at: 20,
    },
  },
  {
    alert: 'SluiceWebhookCertReloadFailing',
    group: 'sluice-webhook',
    ...threshold('sum by (namespace, pod) (increase(sluice_webhook_cert_reloads_total{result="failure"}[15m]))', '> 0'),
    for: '0m',
    severity: 'warning',
    summary: 'The webhook refuses its new serving certificate',
    description: '{{ $labels.namespace }}/{{ $labels.pod }} could not load the serving certificate in its Secret and keeps the old one, which will expire.',
    fires: {
      series: { 'sluice_webhook_cert_reloads_total{result="failure",namespace="sluice-system",pod="sluice-webhook-0"}': '0 0 1 1 1' },
      at: 4,
      labels: { namespace: 'sluice-system', pod: 'sluice-webhook-0' },
    },
    quiet: { series: { 'sluice_webhook_cert_reloads_total{result="failure",namespace="sluice-system",pod="sluice-webhook-0"}': '0x30' }, at: 20 },
  },
  {
    alert: 'SluiceWebhookCertExpiringSoon',
    group: 'sluice-webhook',
    ...threshold('min by (namespace, pod) (sluice_webhook_cert_expiry_timestamp_seconds) - time()', '< 14 * 86400'),
    for: '10m',
    severity: 'warning',
    summary: 'The webhook serving certificate expires within 14 days',
    description: 'The certificate {{ $labels.namespace }}/{{ $labels.pod }} serves expires in under 14 days; after that the API server refuses to call the webhook and no agent pod can be created.',
    fires: {
      series: { 'sluice_webhook_cert_expiry_timestamp_seconds{namespace="sluice-system",pod="sluice-webhook-0"}': '86400x30' },
      at: 20,
      labels: { namespace: 'sluice-system', pod: 'sluice-webhook-0' },
    },
    quiet: { series: { 'sluice_webhook_cert_expiry_timestamp_seconds{namespace="sluice-system",pod="sluice-webhook-0"}': '31536000x30' }, at: 20 },
  },
  {
    alert: 'SluiceWebhookCertExpiryCritical',
    group: 'sluice-webhook',
    ...threshold('min by (namespace, pod) (sluice_webhook_cert_expiry_timestamp_seconds) - time()', '< 2 * 86400'),
    for: '5m',
    severity: 'critical',
    summary: 'The webhook serving certificate expires within 2 days',
    description: 'The certificate {{ $labels.namespace }}/{{ $labels.pod }} serves expires in under 2 days; when it does, the API server refuses to call the webhook and no agent pod can be created. Renew it now.',
    fires: {
      series: { 'sluice_webhook_cert_expiry_timestamp_seconds{namespace="sluice-system",pod="sluice-webhook-0"}': '86400x30' },
      at: 20,
      labels: { namespace: 'sluice-system', pod: 'sluice-webhook-0' },
    },
    // Ten days left is SluiceWebhookCertExpiringSoon's (a warning), not this.
    quiet: { series: { 'sluice_webhook_cert_expiry_timestamp_seconds{namespace="sluice-system",pod="sluice-webhook-0"}': `${10 * 86400}x30` }, at: 20 },
  },
];

/** Every alert name: what monitoring.prometheusRule.disabledAlerts may list (values.schema.json enum). */
export const ALERT_NAMES = ALERTS.map((a) => a.alert) as [string, ...string[]];

function annotations(a: AlertSpec): Record<string, string> {
  return { summary: a.summary, description: a.description, runbook_url: `${RUNBOOK_BASE}/${a.alert}.md` };
}

/** The rules file: one group per area. */
export function alertRuleGroups(): { name: string; rules: Record<string, unknown>[] }[] {
  const groups = [...new Set(ALERTS.map((a) => a.group))];
  return groups.map((name) => ({
    name,
    rules: ALERTS.filter((a) => a.group === name).map((a) => ({
      alert: a.alert,
      expr: a.expr,
      for: a.for,
      labels: { severity: a.severity },
      annotations: annotations(a),
    })),
  }));
}

/** `{{ $labels.x }}` expanded as Prometheus would for one alert's labels. */
function expand(text: string, labels: Record<string, string>): string {
  return text.replace(/\{\{ \$labels\.([a-z_]+) \}\}/g, (_m, name: string) => labels[name] ?? '');
}

/** What promtool should see for an alert firing with these labels (severity added). */
export function expectedAlert(alert: string, labels: Record<string, string>): { exp_labels: Record<string, string>; exp_annotations: Record<string, string> } {
  const a = ALERTS.find((x) => x.alert === alert);
  if (!a) throw new Error(`no alert ${alert}`);
  const all = { ...labels, severity: a.severity };
  return { exp_labels: all, exp_annotations: { ...annotations(a), summary: expand(a.summary, all), description: expand(a.description, all) } };
}

function inputSeries(c: AlertCase): { series: string; values: string }[] {
  return Object.entries(c.series).map(([series, values]) => ({ series, values }));
}

/** promtool test file: for every alert one case where it fires and one where it does not. */
export function promtoolTests(rulesFile: string): Record<string, unknown> {
  const tests = ALERTS.flatMap((a) => {
    const labels = { ...a.fires.labels, severity: a.severity };
    const exp = { ...annotations(a), summary: expand(a.summary, labels), description: expand(a.description, labels) };
    return [
      {
        name: `${a.alert} fires`,
        interval: '1m',
        input_series: inputSeries(a.fires),
        alert_rule_test: [{ eval_time: `${a.fires.at}m`, alertname: a.alert, exp_alerts: [{ exp_labels: labels, exp_annotations: exp }] }],
      },
      {
        name: `${a.alert} stays quiet`,
        interval: '1m',
        input_series: inputSeries(a.quiet),
        alert_rule_test: [{ eval_time: `${a.quiet.at}m`, alertname: a.alert, exp_alerts: [] }],
      },
    ];
  });
  return { rule_files: [rulesFile], evaluation_interval: '1m', tests };
}
