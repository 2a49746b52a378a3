// Overview: the whole fleet of sidecars and the webhook on one page — is traffic flowing, what is
// denied and why, is anything held, masked, unaudited or failing to get credentials.
import type { DashboardSpec } from './panels.ts';
import { CLUSTER, UIDS, q } from './panels.ts';

const NS = `${CLUSTER},namespace=~"$namespace"`;
const rate = (metric: string, extra = '') => `rate(${metric}{${NS}${extra ? `,${extra}` : ''}}[$__rate_interval])`;

export const overview: DashboardSpec = {
  uid: 'sluice-overview',
  title: 'sluice / Overview',
  description: 'Agent egress through every sluice sidecar: decisions, latency, approvals, masking, audit, credentials and the admission webhook.',
  variables: [{ name: 'namespace', label: 'Namespace', query: `label_values(sluice_policy_loaded{${CLUSTER}}, namespace)`, multi: true }],
  links: [
    { title: 'Pod', uid: UIDS.pod, tooltip: 'One agent pod: its requests, approvals, masking and audit trail' },
    { title: 'Approvals', uid: UIDS.approvals, tooltip: 'The approvers’ queue' },
  ],
  sections: [
    {
      row: 'Traffic',
      panels: [
        { kind: 'stat', title: 'Requests', description: 'Agent requests per second through all sidecars.', unit: 'reqps', queries: [q(`sum(${rate('sluice_requests_total')})`)] },
        {
          kind: 'stat',
          title: 'Denied',
          description: 'Share of requests sluice denied.',
          unit: 'percentunit',
          // The deny side has no series until a first deny (codes are open, so not zero-initialised):
          // `or vector(0)` keeps the stat at 0 instead of No data.
          queries: [q(`(sum(${rate('sluice_requests_total', 'action="deny"')}) or vector(0)) / sum(${rate('sluice_requests_total')})`)],
        },
        { kind: 'stat', title: 'Pending approvals', description: 'ApprovalRequests waiting for a human now.', unit: 'short', queries: [q(`sum(sluice_approvals_pending{${NS}})`)] },
        { kind: 'stat', title: 'Sidecars up', description: 'Sidecars answering scrapes.', unit: 'short', queries: [q(`sum(up{container="sluice-proxy",${NS}})`)] },
        {
          title: 'Requests by decision',
          description: 'allow, deny, hold (waiting for or refused approval) and error (sluice could not decide or forward).',
          unit: 'reqps',
          queries: [q(`sum by (action) (${rate('sluice_requests_total')})`, '{{action}}')],
        },
        {
          title: 'Added latency',
          description: 'Time the sidecar adds to a forwarded request (its own work, not the upstream).',
          unit: 's',
          queries: [
            q(`histogram_quantile(0.5, sum by (le) (${rate('sluice_request_added_latency_seconds_bucket')}))`, 'p50'),
            q(`histogram_quantile(0.99, sum by (le) (${rate('sluice_request_added_latency_seconds_bucket')}))`, 'p99'),
          ],
        },
        {
          title: 'Denies by reason',
          description: 'Denied requests by decision code (the policy rule or the sidecar check that refused them).',
          unit: 'reqps',
          queries: [q(`topk(10, sum by (code) (${rate('sluice_requests_total', 'action="deny"')}))`, '{{code}}')],
        },
        {
          title: 'Refused connections',
          description: 'Connections refused before any request: not HTTP(S), no server name, denied CONNECT or SNI.',
          unit: 'cps',
          queries: [q(`sum by (code) (${rate('sluice_refusals_total')})`, '{{code}}')],
        },
      ],
    },
    {
      row: 'Policy',
      panels: [
        {
          kind: 'stat',
          title: 'Policy revision',
          description: 'Sidecars per live policy bundle revision; more than one means a rollout in progress or a stuck sidecar.',
          unit: 'short',
          width: 6,
          queries: [q(`count by (revision) (sluice_policy_bundle_info{${NS}})`, '{{revision}}')],
        },
        {
          kind: 'stat',
          title: 'Sidecar versions',
          description: 'Sidecars per sluice version and image revision; more than one during a rollout (pods keep their sidecar until recreated).',
          unit: 'short',
          width: 6,
          queries: [q(`count by (version, revision) (sluice_build_info{component="sidecar",${NS}})`, '{{version}} {{revision}}')],
        },
        {
          kind: 'stat',
          title: 'Sidecars without policy',
          description: 'Sidecars with no valid bundle loaded (not ready).',
          unit: 'short',
          width: 6,
          queries: [q(`count(sluice_policy_loaded{${NS}} == 0) or vector(0)`)],
        },
        {
          kind: 'stat',
          title: 'Policy evaluation p99',
          description: 'Time to evaluate one decision.',
          unit: 's',
          width: 6,
          queries: [q(`histogram_quantile(0.99, sum by (le) (${rate('sluice_policy_eval_seconds_bucket')}))`)],
        },
        {
          title: 'Policy loads',
          description: 'Bundle loads by result and code; a failure keeps the last good revision in service.',
          unit: 'short',
          width: 24,
          queries: [q(`sum by (result, code) (increase(sluice_policy_loads_total{${NS}}[$__rate_interval]))`, '{{result}} {{code}}')],
        },
      ],
    },
    {
      row: 'Masking and approvals',
      panels: [
        {
          title: 'Masked secrets by rule',
          description: 'Secrets redacted in responses (to the agent) and requests (outbound DLP), by rule id. Never the value.',
          unit: 'short',
          queries: [q(`sum by (rule, direction) (increase(sluice_masking_redactions_total{${NS}}[$__rate_interval]))`, '{{rule}} ({{direction}})')],
        },
        {
          title: 'Held requests',
          description: 'Requests held for approval by decision code, and what became of them.',
          unit: 'reqps',
          queries: [
            q(`sum by (code) (${rate('sluice_requests_total', 'action="hold"')})`, 'held: {{code}}'),
            q(`sum by (outcome) (${rate('sluice_approvals_decisions_total')})`, 'decided: {{outcome}}'),
          ],
        },
      ],
    },
    {
      row: 'Audit trail and credentials',
      panels: [
        {
          kind: 'stat',
          title: 'Audit stores',
          description: 'Sidecars by where their audit events go. none: a local ring only (oldest trimmed, nothing shipped; set sidecar.config.audit.store).',
          unit: 'short',
          width: 6,
          queries: [q(`count by (type) (sluice_audit_store_info{${NS}} == 1)`, '{{type}}')],
        },
        {
          kind: 'stat',
          title: 'Audit spool states',
          description: 'Sidecars by spool state: ok, behind (store not acknowledging for a minute), near_full (80 %), full (refusing or dropping; for store none, trimming).',
          unit: 'short',
          width: 6,
          queries: [q(`count by (state) (sluice_audit_spool_state{${NS}} == 1)`, '{{state}}')],
        },
        {
          kind: 'stat',
          title: 'Audit pushes failing',
          description: 'Share of pushes to the store that failed (retried or rejected) over the range.',
          unit: 'percentunit',
          width: 6,
          // Sidecars export every outcome at 0 from start-up; `or vector(0)` still covers sidecars from
          // before that, whose failing side has no series until a first failure (No data, not 0).
          queries: [q(`(sum(increase(sluice_audit_pushes_total{${NS},outcome!="ok"}[$__range])) or vector(0)) / sum(increase(sluice_audit_pushes_total{${NS}}[$__range]))`)],
        },
        {
          kind: 'stat',
          title: 'Audit events trimmed unshipped',
          description: 'Events the local rings (store none) trimmed over the range: never shipped anywhere.',
          unit: 'short',
          width: 6,
          queries: [q(`sum(increase(sluice_audit_events_trimmed_total{${NS}}[$__range])) or vector(0)`)],
        },
        {
          title: 'Audit lag',
          description: 'Age of the oldest audit event the store has not acknowledged, per pod, measured by the spool itself (0 when all are shipped; for store none, the age of the ring). Click a series for the pod.',
          unit: 's',
          podLink: true,
          queries: [q(`max by (namespace, pod) (sluice_audit_oldest_unshipped_age_seconds{${NS}})`, '{{namespace}}/{{pod}}')],
        },
        {
          title: 'Audit pushes by outcome',
          description: 'Push requests to the log store: ok, retry_network (unreachable), retry_status (429/5xx), rejected (other 4xx, 415).',
          unit: 'reqps',
          queries: [q(`sum by (outcome) (${rate('sluice_audit_pushes_total')})`, '{{outcome}}')],
        },
        {
          title: 'Audit events',
          description: 'Events written to the spool, shipped to the store, dropped (a gap in the trail, or content shipped as an omitted stub), trimmed by a ring, and records refused.',
          unit: 'short',
          queries: [
            q(`sum(${rate('sluice_audit_events_written_total')})`, 'written'),
            q(`sum(${rate('sluice_audit_events_shipped_total')})`, 'shipped'),
            q(`sum by (reason) (${rate('sluice_audit_events_dropped_total')})`, 'dropped: {{reason}}'),
            q(`sum(${rate('sluice_audit_events_trimmed_total')})`, 'trimmed (store none)'),
            q(`sum by (code) (${rate('sluice_audit_append_errors_total')})`, 'refused (fail-closed): {{code}}'),
          ],
        },
        {
          title: 'Audit spool fill',
          description: 'Bytes in each pod’s spool over its capacity (audit.spool.maxBytes); at 1 requests are refused (fail-closed) or events dropped, or a ring trims. Click a series for the pod.',
          unit: 'percentunit',
          podLink: true,
          queries: [q(`max by (namespace, pod) (sluice_audit_spool_bytes{${NS}} / sluice_audit_spool_capacity_bytes{${NS}})`, '{{namespace}}/{{pod}}')],
        },
        {
          title: 'Credential errors',
          description: 'Failed credential issuance by provider and code; those requests fail closed.',
          unit: 'short',
          queries: [
            q(`sum by (provider, code) (increase(sluice_credentials_errors_total{${NS}}[$__rate_interval]))`, '{{provider}} {{code}}'),
            q(`sum by (provider) (increase(sluice_credentials_issued_total{${NS}}[$__rate_interval]))`, 'issued: {{provider}}'),
          ],
        },
      ],
    },
    {
      row: 'Admission webhook',
      panels: [
        {
          title: 'Admission reviews',
          description: 'Reviews by endpoint and result (patched, unchanged, skipped, allowed, denied, malformed, error).',
          unit: 'reqps',
          queries: [q(`sum by (endpoint, result) (rate(sluice_webhook_reviews_total{${CLUSTER}}[$__rate_interval]))`, '{{endpoint}} {{result}}')],
        },
        {
          title: 'Review latency',
          description: 'p99 time to answer an AdmissionReview.',
          unit: 's',
          queries: [q(`histogram_quantile(0.99, sum by (le, endpoint) (rate(sluice_webhook_review_duration_seconds_bucket{${CLUSTER}}[$__rate_interval])))`, 'p99 {{endpoint}}')],
        },
        {
          title: 'Guard denials by rule',
          description: 'Pods, updates and exec the webhook refused, by rule code (docs/webhook.md).',
          unit: 'short',
          queries: [q(`sum by (rule) (increase(sluice_webhook_denials_total{${CLUSTER}}[$__rate_interval]))`, '{{rule}}')],
        },
        {
          title: 'Serving certificate',
          description: 'Time left on the serving certificate of each webhook replica.',
          unit: 's',
          queries: [q(`min by (pod) (sluice_webhook_cert_expiry_timestamp_seconds{${CLUSTER}}) - time()`, '{{pod}}')],
        },
      ],
    },
  ],
};
