// The registry of credential providers: the one list a provider is added to. Everything that names
// providers is derived from it — the `credentials` config schema's provider sections (in this
// order), the `provider` metric label values (metrics.ts, docs/metrics.md via the chart generator),
// the providers createCredentials builds — and sidecar/test/credentials/registry.test.ts fails when
// docs/credentials.md's provider table, the policy library or its golden cases name a provider
// that is not here. Light by design: importing it loads schemas, not heavy implementations.
import type { z } from 'zod';
import { awsStsProvider } from './aws/index.ts';
import { kubernetesTokenProvider } from './bearer/kubernetes-token.ts';
import { staticSecretProvider } from './bearer/static-secret.ts';
import { tokenExchangeProvider } from './bearer/token-exchange.ts';

export const PROVIDER_MODULES = [awsStsProvider, tokenExchangeProvider, kubernetesTokenProvider, staticSecretProvider] as const;

type Module = (typeof PROVIDER_MODULES)[number];

/** A provider name sluice knows (the `provider` label's values, a decision's `credential.provider`). */
export type ProviderName = Module['name'];

export const PROVIDER_NAMES: readonly ProviderName[] = Object.freeze(PROVIDER_MODULES.map((m) => m.name));

/** Each provider's config section under `credentials`, keyed by its configKey. */
export type ProviderConfigShape = { [M in Module as M['configKey']]: M['config'] };

export const providerConfigShape: ProviderConfigShape = Object.fromEntries(PROVIDER_MODULES.map((m) => [m.configKey, m.config])) as ProviderConfigShape;

/** The parsed section of one provider (what its create() gets). */
export type ProviderSection<M extends Module> = z.output<M['config']>;
