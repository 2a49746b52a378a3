// The one place an agent request is counted (sluice_requests_total), whichever way it went: the
// pipeline's done phase calls it once for every request — sluice's own answer (deny, refused hold,
// fault, also an answer a handler wrote in the client's own protocol), the upstream's, a protocol
// upgrade (when its relayed connection ends, or its refusal), a CONNECT whose target was denied.
// A connection refused before any request is not a request: sluice_refusals_total (gateway.ts).
// It never decides anything; the label values come from the answer or the decision.
import type { ProxyMetrics } from './proxy-metrics.ts';
import type { RequestContext } from './request-context.ts';

/** Counts a request once it has ended; a forwarded HTTP request also gives its added latency. */
export function requestEnded(metrics: ProxyMetrics, ended: RequestContext): void {
  if (ended.answer) {
    metrics.requests.inc({ action: ended.answer.kind, code: ended.answer.code });
    return;
  }
  metrics.requests.inc({ action: ended.action ?? 'allow', code: ended.evaluation?.decision.code ?? 'none' });
  // An upgrade's time is its connection's: the sidecar's own share of it is not measured here.
  if (!ended.upgrade) metrics.addedLatency.observe(ended.overhead);
}
