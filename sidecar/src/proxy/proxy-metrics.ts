// Metrics of the request path. Labels are bounded: actions are three, codes come from the policy
// library and the sidecar's own fixed set, `via`/`kind` are enums. Never a host or a path. A
// custom policy may return any code, so `sluice_requests_total{code}` takes codes through
// boundedCode: an odd-looking code, or one past the first MAX_CODES distinct ones, counts as `other`.
import { Counter } from 'prom-client';
import type { Registry } from 'prom-client';
import { BucketHistogram, SummedCounter } from './hot-metrics.ts';

/** Distinct decision codes one sidecar reports before the rest count as `other`. */
export const MAX_CODES = 200;
const CODE_SHAPE = /^[a-z][a-z0-9_.-]{0,63}$/;

/** The code label for a decision code: itself if it looks like a code and fits the budget, else `other`. */
export function boundedCode(code: string, seen: Set<string>, max = MAX_CODES): string {
  if (seen.has(code)) return code;
  if (!CODE_SHAPE.test(code) || seen.size >= max) return 'other';
  seen.add(code);
  return code;
}

/**
 * Where in the request pipeline a fault (a throw) can happen (pipeline.ts): its phases and core
 * steps (`forward` includes the response phases, `upgrade` an upgrade's own before-forward and
 * relay), and `done`, whose steps fail one by one after the answer is out; `front`: a handler of
 * an agent-facing server's event, before or around the pipeline (server-events.ts: its connection
 * is destroyed).
 */
export const FAULT_PHASES = ['guard', 'summarize', 'facts', 'decide', 'decided', 'hold', 'upgrade', 'before-forward', 'forward', 'done', 'front'] as const;
export type FaultPhase = (typeof FAULT_PHASES)[number];

export interface RequestCounter {
  inc(labels: { action: string; code: string }): void;
}

/** A histogram without labels (hot-metrics.ts: observed on every request). */
export interface Observer {
  observe(value: number): void;
}

/** Body bytes proxied, by direction (out = agent to upstream). */
export interface ByteCounter {
  add(direction: 'in' | 'out', n: number): void;
}

export interface ProxyMetrics {
  requests: RequestCounter;
  addedLatency: Observer;
  policyEval: Observer;
  connections: Counter<'via' | 'kind'>;
  refusals: Counter<'code'>;
  httpErrors: Counter<'code'>;
  upstreamErrors: Counter<'code'>;
  bytes: ByteCounter;
  /** WebSocket messages and control frames by direction (out = agent to upstream) and outcome (forwarded, masked, refused). */
  websocketMessages: Counter<'direction' | 'outcome'>;
  /** WebSocket connections ended, by code (ws.closed, ws.peer_gone, or the sluice code that closed it). */
  websocketCloses: Counter<'code'>;
  /** Faults in the request pipeline by phase (FAULT_PHASES); each failed closed. */
  faults: Counter<'phase'>;
}

const LATENCY_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1];

export function registerProxyMetrics(registry: Registry): ProxyMetrics {
  const r = [registry];
  // The four series every request updates are kept out of prom-client's per-call work (hot-metrics.ts).
  const requests = new SummedCounter({
    name: 'sluice_requests_total',
    help: 'Agent requests by decision action and code, each counted once when it ends: forwarded, answered by sluice, a protocol upgrade (when its connection ends), a CONNECT answered with its target\'s denial, a request on a connection denied at its TLS name',
    labelNames: ['action', 'code'],
    registers: r,
  });
  const codes = new Set<string>();
  const faults = new Counter({
    name: 'sluice_request_faults_total',
    help: 'Faults (sidecar bugs) in the request pipeline, by phase: the request was answered 502 sidecar.internal_error, or cut when its answer had begun; in `done`, a step that failed after the answer (its record or event may be missing); in `front`, a server event handler that threw (its connection was closed)',
    labelNames: ['phase'],
    registers: r,
  });
  // Every phase exists at 0 from start-up: a first fault must show in increase().
  for (const phase of FAULT_PHASES) faults.inc({ phase }, 0);
  const sent = { in: 0, out: 0 };
  const bytes = new Counter({
    name: 'sluice_proxied_bytes_total',
    help: 'Body bytes proxied, by direction (out = agent to upstream)',
    labelNames: ['direction'],
    registers: r,
    collect() {
      for (const direction of ['in', 'out'] as const) if (sent[direction]) this.inc({ direction }, sent[direction]);
      sent.in = sent.out = 0;
    },
  });
  for (const direction of ['in', 'out']) bytes.inc({ direction }, 0);
  return {
    requests: { inc: ({ action, code }) => requests.add(action, boundedCode(code, codes)) },
    addedLatency: new BucketHistogram({
      name: 'sluice_request_added_latency_seconds',
      help: 'Time the sidecar adds to a forwarded request (its own work before the upstream request and after its response headers)',
      buckets: LATENCY_BUCKETS,
      registers: r,
    }),
    policyEval: new BucketHistogram({ name: 'sluice_policy_eval_seconds', help: 'Policy evaluation time per decision', buckets: [0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.001, 0.01], registers: r }),
    connections: new Counter({ name: 'sluice_connections_total', help: 'Agent connections by listener and first-bytes kind', labelNames: ['via', 'kind'], registers: r }),
    refusals: new Counter({
      name: 'sluice_refusals_total',
      help: 'Agent connections refused before any request, each counted once: non-HTTP, no name, a peer outside the pod, a failed TLS handshake, and a name the policy denies at the connection level, the same whether it came as a CONNECT target or a TLS server name (the requests answered with that denial count in sluice_requests_total)',
      labelNames: ['code'],
      registers: r,
    }),
    httpErrors: new Counter({ name: 'sluice_http_errors_total', help: 'Agent requests refused before the pipeline: by the HTTP parser, a timeout, an unusable CONNECT, an HTTP/2 protocol error', labelNames: ['code'], registers: r }),
    upstreamErrors: new Counter({ name: 'sluice_upstream_errors_total', help: 'Upstream failures by code', labelNames: ['code'], registers: r }),
    bytes: {
      add: (direction, n) => {
        sent[direction] += n;
      },
    },
    websocketMessages: new Counter({ name: 'sluice_websocket_frames_total', help: 'WebSocket messages and control frames inspected, by direction (out = agent to upstream) and outcome', labelNames: ['direction', 'outcome'], registers: r }),
    websocketCloses: new Counter({ name: 'sluice_websocket_closes_total', help: 'WebSocket connections ended, by code (ws.closed, ws.peer_gone, or the sluice code that closed it)', labelNames: ['code'], registers: r }),
    faults,
  };
}
