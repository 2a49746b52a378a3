// The aws-sts provider: temporary credentials for the pod's role (AssumeRoleWithWebIdentity with
// the projected token, cached), then the agent's placeholder-signed AWS request re-signed with
// them. Unsupported request shapes fail before any STS call; an unsigned request passes unsigned.
import { Readable } from 'node:stream';
import type { UpstreamRequest } from '../../proxy/request-context.ts';
import type { CredentialCache } from '../credential-cache.ts';
import type { AwsStsConfig } from '../credentials-config.ts';
import { CredentialError } from '../errors.ts';
import { readTokenFile } from '../projected-token.ts';
import { specString } from '../provider.ts';
import type { CredentialProvider, CredentialSpec, Injection, InjectionTarget } from '../provider.ts';
import { selectRole, sessionNameFor } from './assume-role.ts';
import type { AssumeRoleClient, PodRef } from './assume-role.ts';
import { PROVIDER, inspectAwsRequest, resignAwsRequest } from './resign.ts';
import type { AwsCredentials } from './resign.ts';

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
      return { value: creds, expiresAt: creds.expiresAt };
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
      { now: new Date(this.#d.now()), maxSignedBodyBytes: this.#d.config.maxSignedBodyBytes, maxChunkBytes: this.#d.config.maxChunkBytes, fallbackScope: target.aws },
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
