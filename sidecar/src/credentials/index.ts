// Just-in-time credentials for the sidecar: builds every provider of the registry (providers.ts)
// from its config section over one cache and one set of metrics, and declares credentials' work in
// the request pipeline (`feature`: before-forward injects, last in that phase; response-headers
// overwrites echoes). The rest of the sidecar sees only this surface; it names no provider.
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { Agent } from 'undici';
import type { Dispatcher } from 'undici';
import type { Feature } from '../proxy/pipeline.ts';
import type { AssumeRoleClient, PodRef } from './aws/assume-role.ts';
import { CredentialCache } from './credential-cache.ts';
import type { CredentialsConfig } from './credentials-config.ts';
import { credentialsPhases } from './request-phases.ts';
import { CredentialError } from './errors.ts';
import type { CredentialErrorCode } from './errors.ts';
import { registerCredentialMetrics } from './metrics.ts';
import type { CredentialMetrics } from './metrics.ts';
import type { CredentialProvider, ProviderContext, ProviderModule } from './provider.ts';
import { projectedTokenPath } from './projected-token.ts';
import { PROVIDER_MODULES } from './providers.ts';

export { CredentialsConfig } from './credentials-config.ts';
export type { CredentialsConfigInput } from './credentials-config.ts';
export { CredentialError } from './errors.ts';
export type { CredentialErrorCode } from './errors.ts';
export { registerCredentialMetrics } from './metrics.ts';
export type { CredentialMetrics } from './metrics.ts';
export { PROVIDER_NAMES } from './providers.ts';
export type { ProviderName } from './providers.ts';

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
  failed?(info: { provider: string; audience: string; role: string; code: CredentialErrorCode; reason: string }): void;
}

export interface Credentials {
  /** credentials: before-forward (inject; runs last there), response-headers (echo redaction). */
  readonly feature: Feature;
  readonly metrics: CredentialMetrics;
  readonly cache: CredentialCache;
  readonly providers: ReadonlyMap<string, CredentialProvider>;
  close(): Promise<void>;
}

/** A dispatcher trusting `caFile` (plus the system roots) or, without one, the given default. */
function dispatcherFor(caFile: string | undefined, fallback: Dispatcher, timeoutMs: number): Dispatcher {
  if (!caFile) return fallback;
  const ca = [...rootCertificates, readFileSync(caFile, 'utf8')];
  return new Agent({ connect: { ca, timeout: timeoutMs }, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, keepAliveTimeout: 30_000 });
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
  const closers: (() => void)[] = [];
  const ctx: ProviderContext = {
    cache,
    metrics,
    now,
    timeoutMs,
    pod: deps.pod,
    upstream: deps.upstream,
    tokenPath: (audience) => projectedTokenPath(config.tokenDir, audience, config.tokenFiles),
    dispatcherFor: (caFile) => {
      const d = dispatcherFor(caFile, deps.upstream, timeoutMs);
      if (d !== deps.upstream) owned.push(d);
      return d;
    },
    onClose: (fn) => closers.push(fn),
    ...(deps.assumeRoleClient ? { assumeRoleClient: deps.assumeRoleClient } : {}),
  };
  for (const m of PROVIDER_MODULES as readonly ProviderModule[]) {
    // The section was parsed by m.config (CredentialsConfig is built from the same modules).
    const p = m.create((config as unknown as Record<string, unknown>)[m.configKey], ctx);
    if (p.name !== m.name || p.jit !== m.jit) throw new Error(`credential provider ${m.name} built a provider named ${p.name} (jit ${p.jit})`);
    providers.set(p.name, p);
  }

  return {
    feature: { name: 'credentials', phases: credentialsPhases({ providers, metrics, ...(deps.log ? { log: deps.log } : {}) }) },
    metrics,
    cache,
    providers,
    async close() {
      for (const fn of closers) fn();
      cache.clear();
      await Promise.all(owned.map((d) => d.close()));
    },
  };
}
