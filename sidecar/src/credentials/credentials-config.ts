// The `credentials` section of the sidecar config: which providers exist and how they reach their
// token services. The policy decision picks a provider (and its parameters) per request; this
// config says what that provider may mint and for which hosts. Validated with the rest of the
// sidecar config at start-up; it holds file paths and names, never a secret value.
import { z } from 'zod';

const Seconds = (min: number, max: number) => z.number().int().min(min).max(max);
/** An exact host or `*.suffix` (any subdomain, never the bare suffix), as in the Rego library. */
const HostPattern = z.string().regex(/^(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/, 'a lower-case host name or *.suffix');
const HeaderName = z
  .string()
  .regex(/^[a-z0-9-]+$/, 'a lower-case header name')
  .refine((h) => !['host', 'content-length', 'transfer-encoding', 'connection'].includes(h), 'a header sluice may set');
const Url = z.url({ protocol: /^https?$/ });
/** Auth scheme put before the value (`Bearer`, `token`); empty: the value alone. */
const Scheme = z.string().regex(/^[A-Za-z][A-Za-z0-9_-]*$/).or(z.literal(''));
const ProfileName = z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, 'a lower-case name');

export const AwsRole = z
  .object({
    /** Pods in this namespace (absent: any). */
    namespace: z.string().min(1).optional(),
    /** Pods running as this service account (absent: any). */
    serviceAccount: z.string().min(1).optional(),
    /** Which role a decision asks for (`credential.role`); decisions without one ask for `default`. */
    name: ProfileName.default('default'),
    roleArn: z.string().regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/, 'an IAM role ARN'),
  })
  .strict();

export const AwsStsConfig = z
  .object({
    /** Audience of the projected token sent as the web identity. */
    audience: z.string().min(1).default('sts.amazonaws.com'),
    /** STS endpoint; dialled through the sidecar's upstream agent (resolve overrides, extra roots). */
    endpoint: Url.default('https://sts.amazonaws.com'),
    region: z.string().min(1).default('us-east-1'),
    /** Roles by namespace/service account; the most specific match wins. */
    roles: z.array(AwsRole).default([]),
    durationSeconds: Seconds(900, 43_200).default(3600),
    /** RoleSessionName; default `sluice-<namespace>-<pod>`. CloudTrail shows it. */
    sessionName: z.string().regex(/^[\w+=,.@-]{2,64}$/).optional(),
    /** Attempts per AssumeRoleWithWebIdentity (SDK retries with back-off on throttling and 5xx). */
    maxAttempts: z.number().int().min(1).max(5).default(2),
    /** Bodies whose hash must be signed (non-S3 services) are read into memory up to this size. */
    maxSignedBodyBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(8 * 1024 * 1024),
    /** Largest aws-chunked chunk re-signed (each chunk is held while its signature is computed). */
    maxChunkBytes: z.number().int().min(8 * 1024).max(64 * 1024 * 1024).default(8 * 1024 * 1024),
    /** Access key id the webhook puts in agent containers; recorded, never required. */
    placeholderAccessKeyId: z.string().default('SLUICEPLACEHOLDER'),
  })
  .strict();

export const TokenExchangeProfile = z
  .object({
    tokenEndpoint: Url,
    /** Audience of the projected token sent as subject_token. */
    subjectTokenAudience: z.string().min(1),
    subjectTokenType: z.string().default('urn:ietf:params:oauth:token-type:jwt'),
    requestedTokenType: z.string().optional(),
    /** Defaults for the exchange; a decision may override them (`audience`, `scope`, `resource`). */
    audience: z.string().optional(),
    scope: z.string().optional(),
    resource: z.string().optional(),
    /** Client authentication (client_secret_basic when a secret file is given, else client_id in the form). */
    clientId: z.string().optional(),
    clientSecretFile: z.string().optional(),
    /** CA for the token endpoint; default: the sidecar's upstream trust. */
    caFile: z.string().optional(),
    header: HeaderName.default('authorization'),
    scheme: Scheme.default('Bearer'),
    /** Destinations this token may be sent to. */
    hosts: z.array(HostPattern).min(1),
    /** Lifetime assumed when the endpoint omits expires_in. */
    defaultExpiresInSeconds: Seconds(30, 86_400).default(300),
  })
  .strict();

export const KubernetesTokenConfig = z
  .object({
    /** API server for TokenRequest. */
    apiServer: Url.default('https://kubernetes.default.svc'),
    /** The sidecar's own token (it authenticates the TokenRequest). */
    tokenFile: z.string().default('/var/run/secrets/kubernetes.io/serviceaccount/token'),
    caFile: z.string().optional(),
    /** Service account whose tokens the agent's calls carry; absent: the provider is not configured. */
    serviceAccount: z.string().min(1).optional(),
    /** Namespace of that service account; default the pod's own. */
    namespace: z.string().min(1).optional(),
    /** Other service accounts a decision may ask for (`credential.service_account`). */
    allowedServiceAccounts: z.array(z.string().min(1)).default([]),
    audiences: z.array(z.string().min(1)).default([]),
    expirationSeconds: Seconds(600, 86_400).default(600),
    hosts: z.array(HostPattern).default(['kubernetes.default.svc', 'kubernetes.default.svc.cluster.local', 'kubernetes.default', 'kubernetes']),
  })
  .strict();

export const StaticSecret = z
  .object({
    /** File of a mounted Secret (only the sidecar mounts it). */
    file: z.string().min(1),
    header: HeaderName.default('authorization'),
    scheme: Scheme.default('Bearer'),
    hosts: z.array(HostPattern).min(1),
    /** How long a read value is used before the file is read again (Secret updates). */
    reloadSeconds: Seconds(1, 86_400).default(60),
  })
  .strict();

export const CredentialsConfig = z
  .object({
    /** Projected service-account tokens, one file per audience (SLUICE_TOKEN_DIR). */
    tokenDir: z.string().min(1).default('/var/run/sluice/tokens'),
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
    aws: AwsStsConfig.prefault({}),
    tokenExchange: z.record(ProfileName, TokenExchangeProfile).default({}),
    kubernetes: KubernetesTokenConfig.prefault({}),
    static: z.record(ProfileName, StaticSecret).default({}),
  })
  .strict();

export type CredentialsConfig = z.infer<typeof CredentialsConfig>;
export type CredentialsConfigInput = z.input<typeof CredentialsConfig>;
export type AwsStsConfig = z.infer<typeof AwsStsConfig>;
export type AwsRole = z.infer<typeof AwsRole>;
export type TokenExchangeProfile = z.infer<typeof TokenExchangeProfile>;
export type KubernetesTokenConfig = z.infer<typeof KubernetesTokenConfig>;
export type StaticSecret = z.infer<typeof StaticSecret>;

/** Exact host or `*.suffix` (any subdomain, never the bare suffix). */
export function hostAllowed(host: string, patterns: readonly string[]): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return patterns.some((p) => (p.startsWith('*.') ? h.endsWith(p.slice(1)) : h === p));
}
