// The one place an agent request is counted (sluice_requests_total), whichever way it went: the
// pipeline (sluice's own answer — deny, refused hold, fault, also an answer a handler wrote in the
// client's own protocol — or the upstream's), a protocol upgrade, a denied CONNECT. It never
// decides anything; the label values come from the answer or the decision.
import type { ProxyMetrics } from './proxy-metrics.ts';
import type { RequestContext } from './request-context.ts';

/** How a request that did not run through the pipeline ended (an upgrade, a CONNECT). */
export interface Outcome {
  action: string;
  code: string;
}

/** Counts a request once it has ended; a forwarded one also gives its added latency. */
export function requestEnded(metrics: ProxyMetrics, ended: RequestContext | Outcome): void {
  if (!('req' in ended)) {
    metrics.requests.inc({ action: ended.action, code: ended.code });
    return;
  }
  if (ended.answer) {
    metrics.requests.inc({ action: ended.answer.kind, code: ended.answer.code });
    return;
  }
  metrics.requests.inc({ action: ended.action ?? 'allow', code: ended.evaluation?.decision.code ?? 'none' });
  metrics.addedLatency.observe(ended.overhead);
}
