// The `credentials` section of the sidecar config: which providers exist and how they reach their
// token services. The policy decision picks a provider (and its parameters) per request; this
// config says what that provider may mint and for which hosts. Validated with the rest of the
// sidecar config at start-up; it holds file paths and names, never a secret value. The provider
// sections come from the registry (providers.ts); each provider's schema lives in its module.
import { z } from 'zod';
import { TOKEN_DIR } from '../../../api/src/index.ts';
import { Seconds } from './provider-config.ts';
import { providerConfigShape } from './providers.ts';

export { AwsRole, AwsStsConfig } from './aws/index.ts';
export { KubernetesTokenConfig } from './bearer/kubernetes-token.ts';
export { StaticSecret } from './bearer/static-secret.ts';
export { TokenExchangeProfile } from './bearer/token-exchange.ts';
export { hostAllowed } from './provider-config.ts';

export const CredentialsConfig = z
  .object({
    /** Projected service-account tokens, one file per audience (SLUICE_TOKEN_DIR). */
    tokenDir: z.string().min(1).default(TOKEN_DIR),
    /** Audience → file name under tokenDir, for audiences the webhook projects with a custom `path`. */
    tokenFiles: z.record(z.string().min(1), z.string().regex(/^[A-Za-z0-9._-]+$/, 'a plain file name')).default({}),
    /** Bound on one call to a provider (connect + answer); the agent's request waits at most this. */
    providerTimeoutMs: z.number().int().min(100).max(120_000).default(10_000),
    cache: z
      .object({
        /** Refresh in the background once a cached credential is this close to expiry. */
        refreshBeforeSeconds: Seconds(1, 3600).default(300),
        /** Never hand out a credential with less than this left. */
        minRemainingSeconds: Seconds(1, 3600).default(60),
        /** After a failed issuance, fail fast for this long instead of calling the provider again. */
        failureBackoffMs: z.number().int().min(0).max(60_000).default(1000),
        maxEntries: z.number().int().min(1).max(100_000).default(1024),
      })
      .strict()
      .prefault({}),
    /** One section per provider, under its configKey, in the registry's order (providers.ts). */
    ...providerConfigShape,
  })
  .strict();

export type CredentialsConfig = z.infer<typeof CredentialsConfig>;
export type CredentialsConfigInput = z.input<typeof CredentialsConfig>;
