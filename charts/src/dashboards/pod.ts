// Per-pod drill-down: one agent pod's sidecar — what it asked for, what was decided, how fast,
// what was masked, whether its audit trail keeps up, and the sidecar's own resource use.
import type { DashboardSpec } from './panels.ts';
import { CLUSTER, UIDS, q } from './panels.ts';

const POD = `${CLUSTER},namespace="$namespace",pod="$pod"`;
const rate = (metric: string, extra = '') => `rate(${metric}{${POD}${extra ? `,${extra}` : ''}}[$__rate_interval])`;

export const pod: DashboardSpec = {
  uid: 'sluice-pod',
  title: 'sluice / Pod',
  description: 'One agent pod through its sluice sidecar.',
  variables: [
    { name: 'namespace', label: 'Namespace', query: `label_values(sluice_policy_loaded{${CLUSTER}}, namespace)`, multi: false },
    { name: 'pod', label: 'Pod', query: `label_values(sluice_policy_loaded{${CLUSTER},namespace="$namespace"}, pod)`, multi: false },
  ],
  links: [
    { title: 'Overview', uid: UIDS.overview, tooltip: 'Every sidecar and the webhook' },
    { title: 'Approvals', uid: UIDS.approvals, tooltip: 'The approvers’ queue (kubectl sluice approvals)' },
    { title: 'Audit trail', uid: UIDS.auditTrail, tooltip: 'This pod’s audit events from the log store (VictoriaLogs)' },
  ],
  sections: [
    {
      row: 'Requests',
      panels: [
        { title: 'Requests by decision and code', description: 'What the agent asked for and what sluice decided.', unit: 'reqps', queries: [q(`sum by (action, code) (${rate('sluice_requests_total')})`, '{{action}} {{code}}')] },
        {
          title: 'Added latency',
          description: 'Time this sidecar adds to each forwarded request.',
          unit: 's',
          queries: [
            q(`histogram_quantile(0.5, sum by (le) (${rate('sluice_request_added_latency_seconds_bucket')}))`, 'p50'),
            q(`histogram_quantile(0.99, sum by (le) (${rate('sluice_request_added_latency_seconds_bucket')}))`, 'p99'),
          ],
        },
        { title: 'Connections', description: 'Agent connections by listener (transparent, proxy) and kind.', unit: 'cps', queries: [q(`sum by (via, kind) (${rate('sluice_connections_total')})`, '{{via}} {{kind}}')] },
        { title: 'Bytes', description: 'Body bytes to upstreams (out) and back to the agent (in).', unit: 'Bps', queries: [q(`sum by (direction) (${rate('sluice_proxied_bytes_total')})`, '{{direction}}')] },
        {
          title: 'Errors and refusals',
          description: 'Refused connections, malformed requests and upstream failures, by code.',
          unit: 'short',
          queries: [
            q(`sum by (code) (increase(sluice_refusals_total{${POD}}[$__rate_interval]))`, 'refused: {{code}}'),
            q(`sum by (code) (increase(sluice_http_errors_total{${POD}}[$__rate_interval]))`, 'http: {{code}}'),
            q(`sum by (code) (increase(sluice_upstream_errors_total{${POD}}[$__rate_interval]))`, 'upstream: {{code}}'),
          ],
        },
        {
          title: 'DNS',
          description: 'DNS queries the pod sent to the sidecar, by result.',
          unit: 'short',
          queries: [q(`sum by (result) (increase(sluice_dns_queries_total{${POD}}[$__rate_interval]))`, '{{result}}')],
        },
      ],
    },
    {
      row: 'Policy, approvals, masking, credentials',
      panels: [
        { kind: 'stat', title: 'Policy revision', description: 'The bundle this sidecar serves.', unit: 'short', width: 8, queries: [q(`sluice_policy_bundle_info{${POD}}`, '{{revision}}')] },
        { kind: 'stat', title: 'Pending approvals', description: 'ApprovalRequests of this pod waiting for a decision.', unit: 'short', width: 8, queries: [q(`sum(sluice_approvals_pending{${POD}})`)] },
        { kind: 'stat', title: 'Longest wait', description: 'How long the oldest pending ApprovalRequest of this pod has waited.', unit: 's', width: 8, queries: [q(`max(sluice_approvals_oldest_pending_age_seconds{${POD}})`)] },
        {
          title: 'Masked secrets by rule',
          description: 'Redactions in this pod’s traffic, by rule and direction.',
          unit: 'short',
          queries: [q(`sum by (rule, direction) (increase(sluice_masking_redactions_total{${POD}}[$__rate_interval]))`, '{{rule}} ({{direction}})')],
        },
        {
          title: 'Credentials',
          description: 'Credentials minted, served from cache and failed, by provider.',
          unit: 'short',
          queries: [
            q(`sum by (provider) (increase(sluice_credentials_issued_total{${POD}}[$__rate_interval]))`, 'issued: {{provider}}'),
            q(`sum by (provider) (increase(sluice_credentials_cache_hits_total{${POD}}[$__rate_interval]))`, 'cached: {{provider}}'),
            q(`sum by (provider, code) (increase(sluice_credentials_errors_total{${POD}}[$__rate_interval]))`, 'error: {{provider}} {{code}}'),
          ],
        },
        {
          title: 'Credential lifetime left',
          description: 'Seconds until the soonest-expiring cached credential of each provider expires (refreshed in the background before).',
          unit: 's',
          width: 24,
          queries: [q(`min by (provider) (sluice_credentials_time_to_expiry_seconds{${POD}})`, '{{provider}}')],
        },
      ],
    },
    {
      row: 'Audit and the sidecar itself',
      panels: [
        {
          kind: 'stat',
          title: 'Audit store',
          description: 'Where this sidecar’s audit events go (none: a local ring only). Its sessions: kubectl sluice sessions --pod $pod -n $namespace; replay: kubectl sluice replay --pod $pod -n $namespace.',
          unit: 'short',
          width: 8,
          queries: [q(`sluice_audit_store_info{${POD}} == 1`, '{{type}}')],
        },
        {
          kind: 'stat',
          title: 'Audit spool state',
          description: 'ok, behind (the store has not acknowledged for a minute), near_full (80 %), full (refusing or dropping; a ring trimming). Each change is logged by the sidecar.',
          unit: 'short',
          width: 8,
          queries: [q(`sluice_audit_spool_state{${POD}} == 1`, '{{state}}')],
        },
        {
          kind: 'stat',
          title: 'Audit spool fill',
          description: 'Spool bytes over audit.spool.maxBytes.',
          unit: 'percentunit',
          width: 8,
          queries: [q(`sluice_audit_spool_bytes{${POD}} / sluice_audit_spool_capacity_bytes{${POD}}`)],
        },
        {
          title: 'Audit pushes',
          description: 'Push requests to the log store by outcome, and p99 push duration.',
          unit: 'short',
          queries: [
            q(`sum by (outcome) (increase(sluice_audit_pushes_total{${POD}}[$__rate_interval]))`, '{{outcome}}'),
            q(`histogram_quantile(0.99, sum by (le) (${rate('sluice_audit_push_duration_seconds_bucket')}))`, 'push p99 (s)'),
          ],
        },
        {
          title: 'Audit trail',
          description: 'Age of the oldest event the store has not acknowledged (measured by the spool), and p99 from writing an event to the store acknowledging it.',
          unit: 's',
          queries: [
            q(`sluice_audit_oldest_unshipped_age_seconds{${POD}}`, 'oldest unshipped'),
            q(`histogram_quantile(0.99, sum by (le) (${rate('sluice_audit_ship_latency_seconds_bucket')}))`, 'ship latency p99'),
          ],
        },
        {
          title: 'Audit spool',
          description: 'Spool bytes: held in segments and not yet shipped.',
          unit: 'bytes',
          queries: [q(`sluice_audit_spool_bytes{${POD}}`, 'spool'), q(`sluice_audit_spool_unshipped_bytes{${POD}}`, 'unshipped')],
        },
        {
          title: 'Sidecar memory',
          description: 'Resident memory of the sidecar process.',
          unit: 'bytes',
          queries: [q(`process_resident_memory_bytes{container="sluice-proxy",${POD}}`, 'rss')],
        },
        {
          title: 'Sidecar CPU',
          description: 'CPU the sidecar uses (cores).',
          unit: 'short',
          queries: [q(`rate(process_cpu_seconds_total{container="sluice-proxy",${POD}}[$__rate_interval])`, 'cpu')],
        },
      ],
    },
  ],
};
