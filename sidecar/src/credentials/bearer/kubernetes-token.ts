// The kubernetes provider: a short-lived token for a configured service account, minted with the
// TokenRequest API (authenticated by the sidecar's own token), cached until shortly before it
// expires and sent as `Authorization: Bearer` on the agent's calls to the Kubernetes API hosts.
// The agent gets scoped, expiring API access and never the pod's own token; what the minted token
// may do is that service account's RBAC, and which accounts may be minted is the sidecar's RBAC
// (`create` on serviceaccounts/token) plus `allowedServiceAccounts` here.
// Config: `credentials.kubernetes`.
import type { Dispatcher } from 'undici';
import { z } from 'zod';
import type { UpstreamRequest } from '../../proxy/request-context.ts';
import type { CredentialCache, Issued } from '../credential-cache.ts';
import { CredentialError } from '../errors.ts';
import { readTokenFile } from '../projected-token.ts';
import { HostPattern, Seconds, Url, hostAllowed } from '../provider-config.ts';
import { answerError, callProvider, errorCodeOf, isHeaderSafe } from '../provider-http.ts';
import { defineProvider, setCredentialHeader, specString } from '../provider.ts';
import type { CredentialProvider, CredentialSpec, Injection, InjectionTarget } from '../provider.ts';

const PROVIDER = 'kubernetes';

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

export type KubernetesTokenConfig = z.infer<typeof KubernetesTokenConfig>;

export const kubernetesTokenProvider = defineProvider({
  name: PROVIDER,
  configKey: 'kubernetes',
  config: KubernetesTokenConfig.prefault({}),
  jit: true,
  create: (config, ctx) =>
    new KubernetesTokenProvider({
      config,
      podNamespace: ctx.pod.namespace,
      cache: ctx.cache,
      // Without a service account the provider refuses every request: no dispatcher of its own.
      dispatcher: config.serviceAccount ? ctx.dispatcherFor(config.caFile) : ctx.upstream,
      timeoutMs: ctx.timeoutMs,
      now: ctx.now,
    }),
});

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
