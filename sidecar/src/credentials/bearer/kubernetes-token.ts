// The kubernetes provider: a short-lived token for a configured service account, minted with the
// TokenRequest API (authenticated by the sidecar's own token), cached until shortly before it
// expires and sent as `Authorization: Bearer` on the agent's calls to the Kubernetes API hosts.
// The agent gets scoped, expiring API access and never the pod's own token; what the minted token
// may do is that service account's RBAC, and which accounts may be minted is the sidecar's RBAC
// (`create` on serviceaccounts/token) plus `allowedServiceAccounts` here.
import type { Dispatcher } from 'undici';
import type { UpstreamRequest } from '../../proxy/request-context.ts';
import type { CredentialCache, Issued } from '../credential-cache.ts';
import { hostAllowed } from '../credentials-config.ts';
import type { KubernetesTokenConfig } from '../credentials-config.ts';
import { CredentialError } from '../errors.ts';
import { readTokenFile } from '../projected-token.ts';
import { answerError, callProvider, errorCodeOf, isHeaderSafe } from '../provider-http.ts';
import { setCredentialHeader, specString } from '../provider.ts';
import type { CredentialProvider, CredentialSpec, Injection, InjectionTarget } from '../provider.ts';

const PROVIDER = 'kubernetes';

export function tokenRequestBody(audiences: readonly string[], expirationSeconds: number): string {
  return JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: [...audiences], expirationSeconds } });
}

export function parseTokenRequestStatus(text: string): Issued<string> {
  let token: unknown;
  let expiration: unknown;
  try {
    const body = JSON.parse(text) as { status?: { token?: unknown; expirationTimestamp?: unknown } };
    token = body.status?.token;
    expiration = body.status?.expirationTimestamp;
  } catch {
    // handled below
  }
  const expiresAt = typeof expiration === 'string' ? Date.parse(expiration) : NaN;
  if (typeof token !== 'string' || !isHeaderSafe(token) || !Number.isFinite(expiresAt)) {
    throw new CredentialError('credentials.provider_rejected', PROVIDER, `${PROVIDER}: TokenRequest answered without a token and expiry`);
  }
  return { value: token, expiresAt };
}

export interface KubernetesTokenDeps {
  config: KubernetesTokenConfig;
  podNamespace: string;
  cache: CredentialCache;
  dispatcher: Dispatcher;
  timeoutMs: number;
  now: () => number;
}

export class KubernetesTokenProvider implements CredentialProvider {
  readonly name = PROVIDER;
  readonly jit = true;
  readonly #d: KubernetesTokenDeps;

  constructor(deps: KubernetesTokenDeps) {
    this.#d = deps;
  }

  async inject(up: UpstreamRequest, spec: CredentialSpec, target: InjectionTarget): Promise<Injection> {
    const c = this.#d.config;
    if (!hostAllowed(target.host, c.hosts)) throw new CredentialError('credentials.host_not_allowed', PROVIDER, `${PROVIDER}: tokens may not be sent to ${target.host}`);
    const asked = specString(spec, 'service_account');
    const account = asked ?? c.serviceAccount;
    if (!account) throw new CredentialError('credentials.not_configured', PROVIDER, `${PROVIDER}: no service account is configured for Kubernetes API calls`);
    if (asked !== undefined && asked !== c.serviceAccount && !c.allowedServiceAccounts.includes(asked)) {
      throw new CredentialError('credentials.not_configured', PROVIDER, `${PROVIDER}: service account "${asked}" is not allowed by config`);
    }
    const namespace = c.namespace ?? this.#d.podNamespace;
    const key = { provider: PROVIDER, audience: c.audiences.join(','), role: `${namespace}/${account}` };
    const { value } = await this.#d.cache.get(key, () => this.#mint(namespace, account));
    setCredentialHeader(up, 'authorization', 'Bearer', value);
    return { injected: true, secrets: [value] };
  }

  async #mint(namespace: string, account: string): Promise<Issued<string>> {
    const c = this.#d.config;
    const own = await readTokenFile(c.tokenFile, PROVIDER, this.#d.now);
    const url = `${c.apiServer.replace(/\/$/, '')}/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts/${encodeURIComponent(account)}/token`;
    const answer = await callProvider(
      this.#d.dispatcher,
      { url, method: 'POST', headers: { authorization: `Bearer ${own}`, 'content-type': 'application/json', accept: 'application/json' }, body: tokenRequestBody(c.audiences, c.expirationSeconds) },
      PROVIDER,
      this.#d.timeoutMs,
    );
    const failed = answerError(answer, PROVIDER, url, errorCodeOf(answer.text));
    if (failed) throw failed;
    return parseTokenRequestStatus(answer.text);
  }
}
