// The aws-sts provider: temporary credentials for the pod's role (AssumeRoleWithWebIdentity with
// the projected token, cached), then the agent's placeholder-signed AWS request re-signed with
// them. Unsupported request shapes fail before any STS call; an unsigned request passes unsigned.
// The decision's expected_bucket_owner parameters become S3 owner checks (bucketOwners).
import { Readable } from 'node:stream';
import type { UpstreamRequest } from '../../proxy/request-context.ts';
import type { CredentialCache } from '../credential-cache.ts';
import type { AwsStsConfig } from './index.ts';
import { CredentialError } from '../errors.ts';
import { readTokenFile } from '../projected-token.ts';
import { specString } from '../provider.ts';
import type { CredentialProvider, CredentialSpec, Injection, InjectionTarget } from '../provider.ts';
import { arnAccount, selectRole, sessionNameFor } from './assume-role.ts';
import type { AssumeRoleClient, PodRef } from './assume-role.ts';
import { PROVIDER } from './index.ts';
import { inspectAwsRequest, resignAwsRequest } from './resign.ts';
import type { AwsCredentials, BucketOwners } from './resign.ts';

export interface AwsStsProviderDeps {
  config: AwsStsConfig;
  /** Path of the projected token for an audience. */
  tokenPath: (audience: string) => string;
  pod: PodRef;
  cache: CredentialCache;
  client: AssumeRoleClient;
  now: () => number;
  /** Seconds spent re-signing (headers and query; the body streams after). */
  onResigned?: (seconds: number) => void;
}

export class AwsStsProvider implements CredentialProvider {
  readonly name = PROVIDER;
  readonly jit = true;
  readonly #d: AwsStsProviderDeps;

  constructor(deps: AwsStsProviderDeps) {
    this.#d = deps;
  }

  async credentials(roleName = 'default'): Promise<AwsCredentials> {
    const { config, pod, cache, client, now, tokenPath } = this.#d;
    const role = selectRole(config.roles, pod, roleName);
    if (!role) {
      throw new CredentialError('credentials.not_configured', PROVIDER, `${PROVIDER}: no role "${roleName}" is configured for ${pod.namespace}/${pod.serviceAccount}`);
    }
    const got = await cache.get({ provider: PROVIDER, audience: config.audience, role: role.roleArn }, async () => {
      const token = await readTokenFile(tokenPath(config.audience), PROVIDER, now);
      const creds = await client.assume(role.roleArn, sessionNameFor(pod, config.sessionName), token);
      return { value: { ...creds, account: creds.account ?? arnAccount(role.roleArn) }, expiresAt: creds.expiresAt };
    });
    return got.value;
  }

  async inject(up: UpstreamRequest, spec: CredentialSpec, target: InjectionTarget): Promise<Injection> {
    const shape = inspectAwsRequest(up);
    if (shape.kind === 'none') return { injected: false, secrets: [] };
    if (shape.kind === 'unsupported') throw new CredentialError('credentials.aws_signature_unsupported', PROVIDER, `${PROVIDER}: ${shape.reason}`);
    if (shape.kind === 'malformed') throw new CredentialError('credentials.aws_signature_malformed', PROVIDER, `${PROVIDER}: ${shape.reason}`);
    const creds = await this.credentials(specString(spec, 'role'));
    const started = process.hrtime.bigint();
    const out = await resignAwsRequest(
      { method: up.method, host: new URL(up.origin).host, path: up.path, headers: up.headers, body: up.body },
      creds,
      {
        now: new Date(this.#d.now()),
        maxSignedBodyBytes: this.#d.config.maxSignedBodyBytes,
        maxChunkBytes: this.#d.config.maxChunkBytes,
        fallbackScope: target.aws,
        bucketOwners: bucketOwners(spec, creds),
      },
    );
    this.#d.onResigned?.(Number(process.hrtime.bigint() - started) / 1e9);
    up.path = out.path;
    up.headers = out.headers;
    up.body = Buffer.isBuffer(out.body) ? Readable.from([out.body]) : out.body;
    const secrets = [creds.accessKeyId, creds.secretAccessKey];
    if (creds.sessionToken) secrets.push(creds.sessionToken);
    return { injected: out.signature !== 'none', secrets };
  }
}

/**
 * The accounts S3 must check own the request's buckets, from the decision's credential parameters
 * `expected_bucket_owner` and `expected_source_bucket_owner` (the policy sets them when it treated
 * the bucket, or a copy's source, as the organisation's): `credential` is the account of the
 * credentials being signed with, a 12-digit id is that account. Anything else is a policy mistake
 * and fails closed rather than sending the request unchecked.
 */
export function bucketOwners(spec: CredentialSpec, creds: Pick<AwsCredentials, 'account'>): BucketOwners | undefined {
  const resolve = (param: string): string | undefined => {
    const v = specString(spec, param);
    if (v === undefined) return undefined;
    if (/^\d{12}$/.test(v)) return v;
    if (v === 'credential' && creds.account) return creds.account;
    throw new CredentialError('credentials.not_configured', PROVIDER, `${PROVIDER}: ${param} must be "credential" (with credentials whose account is known) or a 12-digit account id`);
  };
  const bucket = resolve('expected_bucket_owner');
  const copySource = resolve('expected_source_bucket_owner');
  return bucket === undefined && copySource === undefined ? undefined : { bucket, copySource };
}
