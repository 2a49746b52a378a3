// The aws-sts provider as the registry sees it: its name, its `credentials.aws` config section and
// how it is built. Only the schema is loaded at start-up; the re-signing code (Smithy's SigV4) and
// the STS client (the AWS SDK, loaded on the first issuance) come with the first AWS request a
// decision sends here (lazyProvider). Never a credential value in config: roles are ARNs.
import { z } from 'zod';
import { defineProvider, lazyProvider } from '../provider.ts';
import { ProfileName, Seconds, Url } from '../provider-config.ts';

export const PROVIDER = 'aws-sts';

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

export type AwsRole = z.infer<typeof AwsRole>;
export type AwsStsConfig = z.infer<typeof AwsStsConfig>;

export const awsStsProvider = defineProvider({
  name: PROVIDER,
  configKey: 'aws',
  config: AwsStsConfig.prefault({}),
  jit: true,
  create: (config, ctx) => {
    let close: (() => void) | undefined;
    ctx.onClose(() => close?.());
    return lazyProvider(PROVIDER, true, async () => {
      const [{ AwsStsProvider }, { createAssumeRoleClient }] = await Promise.all([import('./aws-sts-provider.ts'), import('./assume-role.ts')]);
      const client = ctx.assumeRoleClient ?? createAssumeRoleClient(config, ctx.upstream, ctx.timeoutMs);
      close = () => client.close();
      return new AwsStsProvider({ config, tokenPath: ctx.tokenPath, pod: ctx.pod, cache: ctx.cache, client, now: ctx.now, onResigned: (s) => ctx.metrics.resignSeconds.observe(s) });
    });
  },
});
