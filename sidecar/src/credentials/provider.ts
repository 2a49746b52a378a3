// The shape every credential provider has: given the upstream request prepared by the proxy and
// the policy's `credential` parameters, put a credential on it (or re-sign it) and say which
// values must never be echoed back to the agent. Providers never log values and never put one
// into an error. A provider is added as one module that exports a ProviderModule (its name, its
// config section, how to build it) and one line in providers.ts, the registry everything else
// (config schema, metric label values, the docs check) is derived from.
import type { Dispatcher } from 'undici';
import type { z } from 'zod';
import type { UpstreamRequest } from '../proxy/request-context.ts';
import type { AssumeRoleClient, PodRef } from './aws/assume-role.ts';
import type { CredentialCache } from './credential-cache.ts';
import type { CredentialMetrics } from './metrics.ts';

export type CredentialSpec = { provider: string } & Record<string, string | number | boolean>;

export interface InjectionTarget {
  host: string;
  port: number;
  scheme: 'http' | 'https';
  /** AWS service and region from the request's facts, when it is an AWS call. */
  aws?: { service: string; region: string };
}

export interface Injection {
  /** False when the request went on without a credential (an unsigned AWS request). */
  injected: boolean;
  /** Values that must not reach the agent (redacted from the response if the upstream echoes them). */
  secrets: string[];
}

export interface CredentialProvider {
  readonly name: string;
  /** False for static secrets: flagged in metrics so teams see where JIT is not yet used. */
  readonly jit: boolean;
  inject(up: UpstreamRequest, spec: CredentialSpec, target: InjectionTarget): Promise<Injection>;
}

/** A string parameter of the decision's credential spec, if present. */
export function specString(spec: CredentialSpec, name: string): string | undefined {
  const v = spec[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/**
 * Puts `value` on the request as the configured header. The agent's own Authorization (and any
 * value it sent in the configured header) is dropped. Accept-Encoding becomes identity (no header
 * would allow any coding, RFC 9110 §12.5.3), so the answer arrives uncompressed and an echoed
 * credential can be found and redacted.
 */
export function setCredentialHeader(up: UpstreamRequest, header: string, scheme: string, value: string): void {
  delete up.headers.authorization;
  delete up.headers[header];
  up.headers['accept-encoding'] = 'identity';
  up.headers[header] = scheme ? `${scheme} ${value}` : value;
}

/** What a provider is built with at start-up (one cache, one set of metrics, the sidecar's upstream). */
export interface ProviderContext {
  cache: CredentialCache;
  metrics: CredentialMetrics;
  now: () => number;
  /** Bound on one call to a provider (connect + answer). */
  timeoutMs: number;
  pod: PodRef;
  /** The sidecar's upstream agent (resolve overrides, extra roots). */
  upstream: Dispatcher;
  /** Path of the projected service-account token for an audience. */
  tokenPath: (audience: string) => string;
  /** A dispatcher trusting `caFile` besides the system roots (none: the upstream agent); closed with the credentials. */
  dispatcherFor: (caFile: string | undefined) => Dispatcher;
  /** Work to do when the credentials close (a client the provider made). */
  onClose: (fn: () => void) => void;
  /** Tests and benchmarks replace STS (aws-sts). */
  assumeRoleClient?: AssumeRoleClient;
}

/**
 * One credential provider, as the registry (providers.ts) lists it. `name` is what a decision's
 * `credential.provider` names, the `provider` metric label value and the provider of its
 * CredentialErrors; `configKey` its section under `credentials` in the sidecar config, validated by
 * `config` (which carries the section's default). Built once at start-up, whether or not a decision
 * ever names it; a module whose implementation is heavy returns a lazyProvider.
 */
export interface ProviderModule<Name extends string = string, Key extends string = string, Schema extends z.ZodType = z.ZodType> {
  readonly name: Name;
  readonly configKey: Key;
  readonly config: Schema;
  /** False for static secrets: flagged in metrics (jit="false") so teams see where JIT is not yet used. */
  readonly jit: boolean;
  create(section: z.output<Schema>, ctx: ProviderContext): CredentialProvider;
}

/** A ProviderModule with its name and config key kept as literal types (the registry derives from them). */
export function defineProvider<Name extends string, Key extends string, Schema extends z.ZodType>(m: ProviderModule<Name, Key, Schema>): ProviderModule<Name, Key, Schema> {
  return m;
}

/**
 * A provider whose implementation module is imported on its first request, so a heavy SDK is not
 * loaded by sidecars (or tools reading the config schema) that never use it. A failed import is
 * tried again on the next request.
 */
export function lazyProvider(name: string, jit: boolean, load: () => Promise<CredentialProvider>): CredentialProvider {
  let loading: Promise<CredentialProvider> | undefined;
  return {
    name,
    jit,
    async inject(up, spec, target) {
      loading ??= load().catch((err: unknown) => {
        loading = undefined;
        throw err;
      });
      return (await loading).inject(up, spec, target);
    },
  };
}
