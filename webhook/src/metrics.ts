// The webhook's Prometheus metrics, registered on a registry the caller owns (never the global
// default). Label values are closed sets: endpoint, operation, result, rule code.
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';

export interface WebhookMetrics {
  reviews: Counter<'endpoint' | 'operation' | 'result'>;
  denials: Counter<'endpoint' | 'rule'>;
  duration: Histogram<'endpoint'>;
  patchBytes: Histogram;
  malformed: Counter<'endpoint'>;
  errors: Counter<'endpoint'>;
  certReloads: Counter<'result'>;
  certNotAfter: Gauge;
}

/** Closed label sets (what the handlers pass to inc()/observe()). */
export const ENDPOINTS = ['mutate', 'validate'] as const;
export const OPERATIONS = ['CREATE', 'UPDATE', 'CONNECT', 'unknown'] as const;
export const REVIEW_RESULTS = ['patched', 'unchanged', 'skipped', 'allowed', 'denied', 'malformed', 'error'] as const;

export function registerWebhookMetrics(registry: Registry): WebhookMetrics {
  const registers = [registry];
  const metrics: WebhookMetrics = {
    reviews: new Counter({
      name: 'sluice_webhook_reviews_total',
      help: 'AdmissionReviews answered, by endpoint (mutate|validate), operation and result (patched|unchanged|skipped|allowed|denied|malformed|error)',
      labelNames: ['endpoint', 'operation', 'result'],
      registers,
    }),
    denials: new Counter({ name: 'sluice_webhook_denials_total', help: 'Refusals by guard rule code', labelNames: ['endpoint', 'rule'], registers }),
    duration: new Histogram({
      name: 'sluice_webhook_review_duration_seconds',
      help: 'Time from request body parsed to response written',
      labelNames: ['endpoint'],
      buckets: [0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
      registers,
    }),
    patchBytes: new Histogram({
      name: 'sluice_webhook_patch_bytes',
      help: 'Size of the JSONPatch returned by /mutate (bytes, before base64)',
      buckets: [256, 1024, 2048, 4096, 8192, 16384, 65536],
      registers,
    }),
    malformed: new Counter({ name: 'sluice_webhook_malformed_reviews_total', help: 'Requests refused with 400/413 before review', labelNames: ['endpoint'], registers }),
    errors: new Counter({ name: 'sluice_webhook_internal_errors_total', help: 'Reviews that failed inside the webhook (answered as a deny)', labelNames: ['endpoint'], registers }),
    certReloads: new Counter({ name: 'sluice_webhook_cert_reloads_total', help: 'Serving certificate loads by result (success|failure)', labelNames: ['result'], registers }),
    certNotAfter: new Gauge({ name: 'sluice_webhook_cert_expiry_timestamp_seconds', help: 'notAfter of the serving certificate in use (Unix seconds)', registers }),
  };
  // Every series of the closed label sets exists at zero from start-up: a series born on its first
  // increment has no earlier sample, so rate()/increase() miss it (a first review error would not
  // count towards SluiceWebhookErrors, a first failed certificate reload not fire its alert).
  for (const endpoint of ENDPOINTS) {
    for (const operation of OPERATIONS) for (const result of REVIEW_RESULTS) metrics.reviews.inc({ endpoint, operation, result }, 0);
    metrics.duration.zero({ endpoint });
    metrics.malformed.inc({ endpoint }, 0);
    metrics.errors.inc({ endpoint }, 0);
  }
  for (const result of ['success', 'failure']) metrics.certReloads.inc({ result }, 0);
  return metrics;
}
