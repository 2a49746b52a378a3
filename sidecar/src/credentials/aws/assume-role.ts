// Trades the sidecar's projected service-account token for temporary AWS credentials with
// AssumeRoleWithWebIdentity (an unsigned STS call: the token is the proof). The role comes from
// config by the pod's namespace and service account; the most specific entry wins. STS failures
// become CredentialErrors: throttling, 5xx and network faults are `provider_unavailable`, any
// other refusal (InvalidIdentityToken, AccessDenied, ExpiredToken...) `provider_rejected`,
// named by the STS error code only.
import type * as StsSdk from '@aws-sdk/client-sts';
import type { Dispatcher } from 'undici';
import type { AwsRole, AwsStsConfig } from './index.ts';
import { CredentialError } from '../errors.ts';
import { PROVIDER } from './index.ts';
import type { AwsCredentials } from './resign.ts';
import { UndiciRequestHandler } from './undici-request-handler.ts';

export interface PodRef {
  namespace: string;
  name: string;
  serviceAccount: string;
}

/** The configured role for this pod and role name, most specific first (sa+ns, ns, sa, any). */
export function selectRole(roles: readonly AwsRole[], pod: PodRef, name = 'default'): AwsRole | undefined {
  const rank = (r: AwsRole) => (r.namespace ? 2 : 0) + (r.serviceAccount ? 1 : 0);
  return roles
    .filter((r) => r.name === name && (!r.namespace || r.namespace === pod.namespace) && (!r.serviceAccount || r.serviceAccount === pod.serviceAccount))
    .sort((a, b) => rank(b) - rank(a))[0];
}

export function sessionNameFor(pod: PodRef, configured?: string): string {
  if (configured) return configured;
  return `sluice-${pod.namespace}-${pod.name}`.replace(/[^\w+=,.@-]/g, '-').slice(0, 64);
}

/** The account of an IAM/STS ARN (`arn:aws:sts::123456789012:assumed-role/r/s`), if it names one. */
export function arnAccount(arn: string | undefined): string | undefined {
  return /^arn:aws[a-z-]*:(?:iam|sts)::(\d{12}):/.exec(arn ?? '')?.[1];
}

export interface AssumeRoleClient {
  assume(roleArn: string, sessionName: string, webIdentityToken: string): Promise<AwsCredentials>;
  close(): void;
}

const UNAVAILABLE = new Set(['Throttling', 'ThrottlingException', 'RequestLimitExceeded', 'ServiceUnavailable', 'InternalFailure', 'IDPCommunicationError']);

export function classifyStsError(err: unknown): CredentialError {
  const e = err as { name?: string; $fault?: string; $metadata?: { httpStatusCode?: number }; code?: string; cause?: { code?: string } };
  const status = e.$metadata?.httpStatusCode;
  const name = typeof e.name === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(e.name) ? e.name : 'Error';
  if (status === undefined) {
    const code = e.code ?? e.cause?.code ?? name;
    return new CredentialError('credentials.provider_unavailable', PROVIDER, `${PROVIDER}: STS is unreachable (${code})`, { cause: err });
  }
  const unavailable = status >= 500 || status === 429 || UNAVAILABLE.has(name);
  return new CredentialError(unavailable ? 'credentials.provider_unavailable' : 'credentials.provider_rejected', PROVIDER, `${PROVIDER}: STS answered ${status} ${name}`, { cause: err });
}

export function createAssumeRoleClient(config: AwsStsConfig, dispatcher: Dispatcher, timeoutMs: number): AssumeRoleClient {
  // The AWS SDK costs ~26 MB of heap: load it on the first issuance, not in every sidecar.
  let sdk: Promise<{ client: StsSdk.STSClient; Command: typeof StsSdk.AssumeRoleWithWebIdentityCommand }> | undefined;
  const load = () =>
    (sdk ??= import('@aws-sdk/client-sts').then((m) => ({
      client: new m.STSClient({
        region: config.region,
        endpoint: config.endpoint,
        maxAttempts: config.maxAttempts,
        requestHandler: new UndiciRequestHandler(dispatcher, timeoutMs),
        // AssumeRoleWithWebIdentity is unsigned; never let the SDK look for ambient credentials.
        credentials: () => Promise.reject(new Error('sluice signs no STS call')),
      }),
      Command: m.AssumeRoleWithWebIdentityCommand,
    })));
  return {
    async assume(roleArn, sessionName, webIdentityToken) {
      let out;
      try {
        const { client, Command } = await load();
        out = await client.send(new Command({ RoleArn: roleArn, RoleSessionName: sessionName, WebIdentityToken: webIdentityToken, DurationSeconds: config.durationSeconds }));
      } catch (err) {
        throw classifyStsError(err);
      }
      const c = out.Credentials;
      if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration) {
        throw new CredentialError('credentials.provider_rejected', PROVIDER, `${PROVIDER}: STS answered without complete credentials`);
      }
      // The account the credentials act in: STS's answer names it (AssumedRoleUser), the role ARN asked for too.
      const account = arnAccount(out.AssumedRoleUser?.Arn) ?? arnAccount(roleArn);
      return { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken, expiresAt: c.Expiration.getTime(), account };
    },
    close() {
      void sdk?.then(({ client }) => client.destroy());
    },
  };
}
