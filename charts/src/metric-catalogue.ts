// What the code cannot say about sluice's metrics: the bounded value set of every label, and the
// naming review. Name, type and help come from the exporters themselves (metric-exporters.ts);
// charts/test/metrics.test.ts fails when a metric or a label here and in the code disagree, and
// e2e/chart/promql.test.ts proves every metric a dashboard or an alert uses reaches Prometheus.
import type { ExportedMetric } from './metric-exporters.ts';
import { PROVIDER_NAMES } from '../../sidecar/src/credentials/providers.ts';

/** Prose under an area's table in docs/metrics.md: what the table alone cannot say (how things are counted). */
export const AREA_NOTES: Readonly<Record<string, readonly string[]>> = {
  'Requests and connections': [
    '**How requests and connections are counted.** A connection refused before any request is one `sluice_refusals_total{code}`',
    'and one `refusal` audit event; a request is one `sluice_requests_total{action,code}`, counted when it ends by the request',
    'pipeline’s done phase (`sidecar/src/proxy/request-outcome.ts`), with its `request`/`response` audit events. A name the policy',
    'denies at the connection level counts the same whichever way the connection arrived: a CONNECT target on the explicit',
    'proxy port and a TLS server name (or fake-IP name) on the transparent port are each one refusal with the decision’s code',
    '(`sidecar/src/proxy/connection-gate.ts`), and every request answered with that denial — the CONNECT request itself, or each',
    'request the agent sends on the terminated TLS connection — is one request `{action="deny",code}`. A protocol upgrade is a',
    'request too, counted once when it ends (refused, or its relayed connection closed). Requests the HTTP parser refuses before',
    'the pipeline sees them count in `sluice_http_errors_total` instead. A fault in the pipeline is also counted by phase in',
    '`sluice_request_faults_total`.',
  ],
};

/** label → the values it takes, in words (every label of every metric; bounded by construction). */
export const LABEL_VALUES: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  sluice_requests_total: {
    action: '`allow`, `deny`, `hold`, `error`',
    code: 'decision code of the policy library (`git.push_requires_approval`, `net.not_allowlisted`, …) or of the sidecar (`sidecar.*`, `approval.*`, `credentials.*`); `none` when the policy gave none; `other` for a code that is not lower-case `a-z0-9_.-` (≤ 64) or past the first 200 distinct codes of a sidecar',
  },
  sluice_connections_total: { via: '`transparent`, `proxy`', kind: 'first-bytes class: `tls`, `http`, `connect`, `opaque`, …' },
  sluice_refusals_total: { code: 'refusal codes (`net.not_http`, `net.no_server_name`, `net.outside_pod`, `tls.handshake_failed`, …), or the decision code of a name the policy denies at the connection level (`net.not_allowlisted`, `pod.killed`, …)' },
  sluice_http_errors_total: { code: '`http.*` codes (parser rejections, `http.headers_timeout`, `http.request_timeout`, `http.bad_expect`, `http.bad_connect_target`, `http.h2_protocol_error`)' },
  sluice_upstream_errors_total: { code: '`upstream.*` codes (connect refused, timeout, TLS verify, reset)' },
  sluice_proxied_bytes_total: { direction: '`out` (agent to upstream), `in`' },
  sluice_websocket_frames_total: { direction: '`out` (agent to upstream), `in`', outcome: '`forwarded`, `masked`' },
  sluice_websocket_closes_total: { code: '`ws.closed`, `ws.peer_gone`, `ws.*` frame errors, `dlp.*` codes' },
  sluice_request_faults_total: { phase: '`guard`, `summarize`, `facts`, `decide`, `decided`, `hold`, `upgrade`, `before-forward`, `forward` (the response phases included), `done`, `front` (an agent-facing server event handler: its connection was closed)' },
  sluice_policy_bundle_info: { revision: 'the live bundle revision: one series per sidecar at a time' },
  sluice_policy_loads_total: { result: '`success`, `failure`', code: '`ok` or a `bundle.*` error code' },
  sluice_policy_cluster_info: { revision: 'the effective SluicePolicy revision (16 hex): one series per sidecar at a time' },
  sluice_policy_cluster_loads_total: { result: '`success`, `failure`', code: '`ok` or a `sluicepolicy.*` error code' },
  sluice_dns_queries_total: { type: 'A, AAAA, HTTPS, SVCB, TXT, MX, ANY, CNAME, NS, PTR, SRV, SOA, NULL, CAA, `NONE` or `OTHER`', result: '`answered`, `nodata`, `nxdomain`, `refused`, `formerr`, `notimp`, `dropped`' },
  sluice_dns_refusals_total: { reason: 'fixed reasons (`type_refused`, `label_too_long`, `malformed_packet`, …)' },
  sluice_dns_queries_by_transport_total: { transport: '`udp`, `tcp`' },
  sluice_approvals_decisions_total: { outcome: '`approved`, `denied`, `expired`, `revoked`, `unavailable`, `killed`, `abandoned`, `deleted`, `rejected`' },
  sluice_approvals_time_to_decision_seconds: { outcome: 'as `sluice_approvals_decisions_total`' },
  sluice_approvals_grant_uses_total: { scope: '`session`, `ttl`' },
  sluice_approvals_notifications_total: { result: '`sent`, `retried`, `failed`' },
  sluice_approvals_api_errors_total: { operation: '`create`, `status`, `watch`, `delete`' },
  sluice_masking_redactions_total: { rule: 'rule ids of the loaded rule set (built-in plus the platform team’s)', direction: '`request`, `response`' },
  sluice_masking_scanned_bytes_total: { direction: '`request`, `response`' },
  sluice_masking_pack_verdicts_total: { verdict: '`clean`, `secrets`, `unscannable`', reason: 'the unscannable reason code, else empty' },
  sluice_masking_responses_cut_total: { code: '`masking.decompression_bomb`, `masking.bad_encoding`, `dlp.undecodable_body`, `dlp.unmaskable_secret`, `dlp.decode_*`, `masking.stream_error`' },
  sluice_credentials_issued_total: { provider: PROVIDER_NAMES.map((p) => `\`${p}\``).join(', '), jit: '`true`, `false` (a static secret)' },
  sluice_credentials_cache_hits_total: { provider: 'as above' },
  sluice_credentials_cache_misses_total: { provider: 'as above' },
  sluice_credentials_errors_total: { provider: 'as above', code: '`credentials.*` error codes' },
  sluice_credentials_injected_total: { provider: 'as above', jit: '`true`, `false`' },
  sluice_credentials_echoes_redacted_total: { provider: 'as above' },
  sluice_credentials_issue_seconds: { provider: 'as above' },
  sluice_credentials_time_to_expiry_seconds: { provider: 'as above' },
  sluice_audit_events_dropped_total: { reason: '`spool_full`, `spool_io`, `corrupt`, `oversized` (shipped as an `omitted` stub)' },
  sluice_audit_store_info: { type: '`none`, `loki`, `victorialogs`' },
  sluice_audit_spool_state: { state: '`ok`, `behind`, `near_full`, `full`' },
  sluice_audit_append_errors_total: { code: '`audit.*` error codes' },
  sluice_audit_pushes_total: { outcome: '`ok`, `retry_network`, `retry_status`, `rejected`' },
  sluice_webhook_reviews_total: {
    endpoint: '`mutate`, `validate`',
    operation: '`CREATE`, `UPDATE`, `CONNECT`, `unknown`',
    result: '`patched`, `unchanged`, `skipped`, `allowed`, `denied`, `malformed`, `error`',
  },
  sluice_webhook_denials_total: { endpoint: '`mutate`, `validate`', rule: '`guard.*` and approval rule codes (docs/webhook.md)' },
  sluice_webhook_review_duration_seconds: { endpoint: '`mutate`, `validate`' },
  sluice_webhook_malformed_reviews_total: { endpoint: '`mutate`, `validate`' },
  sluice_webhook_internal_errors_total: { endpoint: '`mutate`, `validate`' },
  sluice_webhook_cert_reloads_total: { result: '`success`, `failure`' },
  sluice_build_info: {
    component: '`sidecar`, `webhook`',
    version: 'the package version: one value per release',
    revision: 'the git commit the image was built from (`unknown` outside an image)',
    node_version: 'the Node.js runtime (`v24.x.y`)',
  },
};

/** Labels that would make a series per request, host or person: never allowed on a sluice metric. */
export const UNBOUNDED_LABELS = ['host', 'hostname', 'url', 'path', 'ip', 'address', 'user', 'username', 'uid', 'session', 'request_id', 'id', 'name', 'repo', 'role', 'audience', 'value', 'secret'];

/** Naming rules every sluice metric follows; returns what is wrong with one, or []. */
export function namingProblems(m: Pick<ExportedMetric, 'name' | 'type' | 'labelNames'>): string[] {
  const problems: string[] = [];
  if (!/^sluice_[a-z][a-z0-9_]*$/.test(m.name)) problems.push('must be sluice_ + lower snake case');
  if (m.type === 'counter' && !m.name.endsWith('_total')) problems.push('a counter ends in _total');
  if (m.type !== 'counter' && m.name.endsWith('_total')) problems.push('only counters end in _total');
  if (/_(ms|millis|milliseconds|micros|kb|mb|gb|kib|mib|gib|percent)(_|$)/.test(m.name)) problems.push('use base units (seconds, bytes, ratios)');
  if (m.type === 'histogram' && !/_(seconds|bytes)$/.test(m.name)) problems.push('a histogram names its unit (_seconds or _bytes)');
  if (/(time|age|duration|latency|expiry|timestamp)/.test(m.name) && !/_seconds(_total)?$/.test(m.name)) problems.push('a time is in _seconds');
  for (const l of m.labelNames) if (UNBOUNDED_LABELS.includes(l)) problems.push(`label "${l}" is unbounded`);
  return problems;
}

export interface ReviewNote {
  metric: string;
  note: string;
}

/**
 * The naming review's findings that the mechanical rules above do not catch: what the owners of
 * those modules should change (reported to the lead; this chart's dashboards and alerts use the
 * names as they are today).
 */
export const REVIEW_NOTES: readonly ReviewNote[] = [
  {
    metric: 'sluice_dns_queries_by_transport_total',
    note: 'counts the same queries as `sluice_dns_queries_total`; a `transport` label on that counter would say the same with one metric less.',
  },
  {
    metric: 'sluice_credentials_time_to_expiry_seconds',
    note: 'a relative time goes stale between scrapes and cannot be compared across pods; Prometheus convention is an absolute `sluice_credentials_expiry_timestamp_seconds` (as the webhook does for its certificate) and `… - time()` in queries.',
  },
  {
    metric: 'sluice_masking_pack_verdicts_total',
    note: '`reason` is the empty string for `clean` and `secrets`; fine for Prometheus, but `none` would read better in legends.',
  },
];
