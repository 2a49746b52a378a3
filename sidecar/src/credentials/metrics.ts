// Metrics of credential injection. Labels are bounded: `provider` is a registered provider's name
// (providers.ts), `code` one of the CredentialError codes, `jit` true/false, `result` hit/miss.
// Never a role, host, audience or value: a credential never reaches a label or a help text.
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import { PROVIDER_NAMES } from './providers.ts';

export interface CredentialMetrics {
  /** Credentials minted (or, for static secrets, read) from a provider. */
  issued: Counter<'provider' | 'jit'>;
  /** Lookups served from the cache. */
  cacheHits: Counter<'provider'>;
  /** Lookups that waited for an issuance. */
  cacheMisses: Counter<'provider'>;
  /** Failures by provider and code (provider outages, refusals, unsupported request shapes). */
  errors: Counter<'provider' | 'code'>;
  /** Requests that left with a credential; jit="false" marks static secrets. */
  injected: Counter<'provider' | 'jit'>;
  /** Injected credentials an upstream echoed back, overwritten before the agent got them (header values and body occurrences). */
  echoesRedacted: Counter<'provider'>;
  /** Time an issuance took (STS, token endpoint, TokenRequest round trip). */
  issueSeconds: Histogram<'provider'>;
  /** Time to re-sign one AWS request (headers and query; bodies are streamed after). */
  resignSeconds: Histogram;
  /** Seconds until the soonest-expiring cached credential of each provider expires. */
  expiry: Gauge<'provider'>;
}

export function registerCredentialMetrics(registry: Registry, secondsToExpiry: () => Map<string, number> = () => new Map()): CredentialMetrics {
  const r = [registry];
  const metrics: CredentialMetrics = {
    issued: new Counter({ name: 'sluice_credentials_issued_total', help: 'Credentials issued by a provider (jit="false": static secret reads)', labelNames: ['provider', 'jit'], registers: r }),
    cacheHits: new Counter({ name: 'sluice_credentials_cache_hits_total', help: 'Credential lookups served from the cache', labelNames: ['provider'], registers: r }),
    cacheMisses: new Counter({ name: 'sluice_credentials_cache_misses_total', help: 'Credential lookups that waited for an issuance', labelNames: ['provider'], registers: r }),
    errors: new Counter({ name: 'sluice_credentials_errors_total', help: 'Credential failures by provider and code; the request was failed closed', labelNames: ['provider', 'code'], registers: r }),
    injected: new Counter({ name: 'sluice_credentials_injected_total', help: 'Requests sent upstream with an injected credential (jit="false": a static secret, not just-in-time)', labelNames: ['provider', 'jit'], registers: r }),
    echoesRedacted: new Counter({ name: 'sluice_credentials_echoes_redacted_total', help: 'Injected credentials an upstream echoed back in a response, overwritten before the agent got them', labelNames: ['provider'], registers: r }),
    issueSeconds: new Histogram({ name: 'sluice_credentials_issue_seconds', help: 'Time to issue a credential at its provider', labelNames: ['provider'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: r }),
    resignSeconds: new Histogram({ name: 'sluice_credentials_aws_resign_seconds', help: 'Time to re-sign one AWS request with SigV4', buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01], registers: r }),
    expiry: new Gauge({
      name: 'sluice_credentials_time_to_expiry_seconds',
      help: 'Seconds until the soonest-expiring cached credential of each provider expires',
      labelNames: ['provider'],
      registers: r,
      collect() {
        this.reset();
        for (const [provider, seconds] of secondsToExpiry()) this.set({ provider }, seconds);
      },
    }),
  };
  // Every provider's series exist at zero from start-up: a series born on its first increment has
  // no earlier sample, so increase()/rate() on the dashboards would miss a first issuance. (errors
  // is by code too, an open set: its series still appear on first failure.)
  for (const provider of PROVIDER_NAMES) {
    for (const jit of ['true', 'false']) {
      metrics.issued.inc({ provider, jit }, 0);
      metrics.injected.inc({ provider, jit }, 0);
    }
    metrics.cacheHits.inc({ provider }, 0);
    metrics.cacheMisses.inc({ provider }, 0);
    metrics.echoesRedacted.inc({ provider }, 0);
    metrics.issueSeconds.zero({ provider });
  }
  return metrics;
}
