// Metrics of the request path. Labels are bounded: actions are three, codes come from the policy
// library and the sidecar's own fixed set, `via`/`kind` are enums. Never a host or a path.
import { Counter, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';

export interface ProxyMetrics {
  requests: Counter<'action' | 'code'>;
  addedLatency: Histogram;
  policyEval: Histogram;
  connections: Counter<'via' | 'kind'>;
  refusals: Counter<'code'>;
  httpErrors: Counter<'code'>;
  upstreamErrors: Counter<'code'>;
  bytes: Counter<'direction'>;
}

const LATENCY_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1];

export function registerProxyMetrics(registry: Registry): ProxyMetrics {
  const r = [registry];
  return {
    requests: new Counter({ name: 'sluice_requests_total', help: 'Agent requests by decision action and code', labelNames: ['action', 'code'], registers: r }),
    addedLatency: new Histogram({
      name: 'sluice_request_added_latency_seconds',
      help: 'Time the sidecar adds to a forwarded request (its own work before the upstream request and after its response headers)',
      buckets: LATENCY_BUCKETS,
      registers: r,
    }),
    policyEval: new Histogram({ name: 'sluice_policy_eval_seconds', help: 'Policy evaluation time per decision', buckets: [0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.001, 0.01], registers: r }),
    connections: new Counter({ name: 'sluice_connections_total', help: 'Agent connections by listener and first-bytes kind', labelNames: ['via', 'kind'], registers: r }),
    refusals: new Counter({ name: 'sluice_refusals_total', help: 'Connections refused before any request (non-HTTP, no name, denied CONNECT/SNI)', labelNames: ['code'], registers: r }),
    httpErrors: new Counter({ name: 'sluice_http_errors_total', help: 'Malformed or abusive agent requests rejected by the HTTP parser', labelNames: ['code'], registers: r }),
    upstreamErrors: new Counter({ name: 'sluice_upstream_errors_total', help: 'Upstream failures by code', labelNames: ['code'], registers: r }),
    bytes: new Counter({ name: 'sluice_proxied_bytes_total', help: 'Body bytes proxied, by direction (out = agent to upstream)', labelNames: ['direction'], registers: r }),
  };
}
