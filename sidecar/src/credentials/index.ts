// Just-in-time credentials for the sidecar: builds the providers named in config (aws-sts,
// oauth2-token-exchange, kubernetes, static-secret) over one cache and one set of metrics, and
// declares credentials' work in the request pipeline (`feature`: before-forward injects, last in
// that phase; response-headers overwrites echoes). The rest of the sidecar sees only this surface.
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Dispatcher } from 'undici';
import type { Feature } from '../proxy/pipeline.ts';
import { createAssumeRoleClient } from './aws/assume-role.ts';
import type { AssumeRoleClient, PodRef } from './aws/assume-role.ts';
import { AwsStsProvider } from './aws/aws-sts-provider.ts';
import { KubernetesTokenProvider } from './bearer/kubernetes-token.ts';
import { StaticSecretProvider } from './bearer/static-secret.ts';
import { TokenExchangeProvider } from './bearer/token-exchange.ts';
import { CredentialCache } from './credential-cache.ts';
import type { CredentialsConfig } from './credentials-config.ts';
import { credentialsPhases } from './request-phases.ts';
import { CredentialError } from './errors.ts';
import { registerCredentialMetrics } from './metrics.ts';
import type { CredentialMetrics } from './metrics.ts';
import type { CredentialProvider } from './provider.ts';
import { projectedTokenPath } from './projected-token.ts';
import { dispatcherFor } from './provider-http.ts';

export { CredentialsConfig } from './credentials-config.ts';
export type { CredentialsConfigInput } from './credentials-config.ts';
export { CredentialError } from './errors.ts';
export type { CredentialErrorCode } from './errors.ts';
export { registerCredentialMetrics } from './metrics.ts';
export type { CredentialMetrics } from './metrics.ts';

export interface CredentialsDeps {
  registry: Registry;
  /** The sidecar's upstream agent: providers reach their endpoints through it unless given a CA file. */
  upstream: Dispatcher;
  pod: PodRef;
  log?: Logger;
  now?: () => number;
  /** Tests and benchmarks replace STS. */
  assumeRoleClient?: AssumeRoleClient;
  /** Issuances and failed issuances, for the audit trail (kind `credential`); never a value. */
  events?: CredentialEvents;
}

export interface CredentialEvents {
  issued?(info: { provider: string; jit: boolean; audience: string; role: string; expiresAt: number }): void;
  failed?(info: { provider: string; audience: string; role: string; code: string; reason: string }): void;
}

export interface Credentials {
  /** credentials: before-forward (inject; runs last there), response-headers (echo redaction). */
  readonly feature: Feature;
  readonly metrics: CredentialMetrics;
  readonly cache: CredentialCache;
  readonly providers: ReadonlyMap<string, CredentialProvider>;
  close(): Promise<void>;
}

export function createCredentials(config: CredentialsConfig, deps: CredentialsDeps): Credentials {
  const now = deps.now ?? Date.now;
  const providers = new Map<string, CredentialProvider>();
  const cache = new CredentialCache({
    now,
    refreshBeforeMs: config.cache.refreshBeforeSeconds * 1000,
    minRemainingMs: config.cache.minRemainingSeconds * 1000,
    failureBackoffMs: config.cache.failureBackoffMs,
    maxEntries: config.cache.maxEntries,
    onLookup: (provider, result) => (result === 'hit' ? metrics.cacheHits : metrics.cacheMisses).inc({ provider }),
    onIssued: (key, seconds, expiresAt) => {
      const jit = providers.get(key.provider)?.jit ?? true;
      metrics.issued.inc({ provider: key.provider, jit: String(jit) });
      metrics.issueSeconds.observe({ provider: key.provider }, seconds);
      deps.events?.issued?.({ ...key, jit, expiresAt });
    },
    onError: (key, err) => {
      const e = err instanceof CredentialError ? err : undefined;
      deps.events?.failed?.({ ...key, code: e?.code ?? 'credentials.internal_error', reason: e?.message ?? 'provider fault' });
    },
  });
  // Static secrets do not expire; their reload interval is not a time to expiry.
  const metrics = registerCredentialMetrics(deps.registry, () => {
    const m = cache.secondsToExpiry();
    for (const [p] of m) if (providers.get(p)?.jit === false) m.delete(p);
    return m;
  });
  const timeoutMs = config.providerTimeoutMs;
  const owned: Dispatcher[] = [];
  const own = (d: Dispatcher) => {
    if (d !== deps.upstream) owned.push(d);
    return d;
  };

  const tokenPath = (audience: string) => projectedTokenPath(config.tokenDir, audience, config.tokenFiles);
  const stsClient = deps.assumeRoleClient ?? createAssumeRoleClient(config.aws, deps.upstream, timeoutMs);
  const add = (p: CredentialProvider) => providers.set(p.name, p);
  add(new AwsStsProvider({ config: config.aws, tokenPath, pod: deps.pod, cache, client: stsClient, now, onResigned: (s) => metrics.resignSeconds.observe(s) }));
  const exchangeDispatchers = new Map(Object.entries(config.tokenExchange).map(([name, p]) => [name, own(dispatcherFor(p.caFile, deps.upstream, timeoutMs))]));
  add(new TokenExchangeProvider({ profiles: config.tokenExchange, tokenPath, cache, dispatcher: (name) => exchangeDispatchers.get(name) ?? deps.upstream, timeoutMs, now }));
  add(new KubernetesTokenProvider({ config: config.kubernetes, podNamespace: deps.pod.namespace, cache, dispatcher: config.kubernetes.serviceAccount ? own(dispatcherFor(config.kubernetes.caFile, deps.upstream, timeoutMs)) : deps.upstream, timeoutMs, now }));
  add(new StaticSecretProvider({ secrets: config.static, cache, now }));

  return {
    feature: { name: 'credentials', phases: credentialsPhases({ providers, metrics, ...(deps.log ? { log: deps.log } : {}) }) },
    metrics,
    cache,
    providers,
    async close() {
      stsClient.close();
      cache.clear();
      await Promise.all(owned.map((d) => d.close()));
    },
  };
}
