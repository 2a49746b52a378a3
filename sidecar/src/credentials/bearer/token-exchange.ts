// The oauth2-token-exchange provider (RFC 8693): the sidecar's projected token for a configured
// audience is exchanged at a token endpoint for an access token scoped by the decision
// (audience, scope, resource), cached until shortly before it expires and injected as
// `Authorization: Bearer` (or a configured header) for the hosts the profile allows. The agent's
// own Authorization is dropped.
// Config: `credentials.tokenExchange`, profiles by name.
import { readFile } from 'node:fs/promises';
import type { Dispatcher } from 'undici';
import { z } from 'zod';
import type { UpstreamRequest } from '../../proxy/request-context.ts';
import type { CredentialCache, Issued } from '../credential-cache.ts';
import { CredentialError } from '../errors.ts';
import { jwtTimes, readTokenFile } from '../projected-token.ts';
import { HeaderName, HostPattern, ProfileName, Scheme, Seconds, Url, hostAllowed } from '../provider-config.ts';
import { answerError, callProvider, errorCodeOf, isHeaderSafe } from '../provider-http.ts';
import { defineProvider, setCredentialHeader, specString } from '../provider.ts';
import type { CredentialProvider, CredentialSpec, Injection, InjectionTarget } from '../provider.ts';

const PROVIDER = 'oauth2-token-exchange';

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

export type TokenExchangeProfile = z.infer<typeof TokenExchangeProfile>;

export const tokenExchangeProvider = defineProvider({
  name: PROVIDER,
  configKey: 'tokenExchange',
  config: z.record(ProfileName, TokenExchangeProfile).default({}),
  jit: true,
  create: (profiles, ctx) => {
    // One dispatcher per profile with its own CA, made (and its CA file read) at start-up.
    const dispatchers = new Map(Object.entries(profiles).map(([name, p]) => [name, ctx.dispatcherFor(p.caFile)]));
    return new TokenExchangeProvider({ profiles, tokenPath: ctx.tokenPath, cache: ctx.cache, dispatcher: (name) => dispatchers.get(name) ?? ctx.upstream, timeoutMs: ctx.timeoutMs, now: ctx.now });
  },
});
const GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange';

export interface ExchangeParams {
  subjectToken: string;
  subjectTokenType: string;
  audience?: string;
  scope?: string;
  resource?: string;
  requestedTokenType?: string;
  clientId?: string;
  clientSecret?: string;
}

/** The token request (RFC 8693 §2.1): form body and headers, client_secret_basic when a secret is given. */
export function exchangeRequest(p: ExchangeParams): { headers: Record<string, string>; body: string } {
  const form = new URLSearchParams({ grant_type: GRANT_TYPE, subject_token: p.subjectToken, subject_token_type: p.subjectTokenType });
  if (p.audience) form.set('audience', p.audience);
  if (p.scope) form.set('scope', p.scope);
  if (p.resource) form.set('resource', p.resource);
  if (p.requestedTokenType) form.set('requested_token_type', p.requestedTokenType);
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  if (p.clientId && p.clientSecret !== undefined) {
    // RFC 6749 §2.3.1: both parts form-encoded before base64.
    const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
    headers.authorization = `Basic ${Buffer.from(`${enc(p.clientId)}:${enc(p.clientSecret)}`).toString('base64')}`;
  } else if (p.clientId) {
    form.set('client_id', p.clientId);
  }
  return { headers, body: form.toString() };
}

/** The token response (RFC 8693 §2.2.1) → token and expiry; undefined fields are guessed safely. */
export function parseExchangeResponse(text: string, now: number, defaultSeconds: number): Issued<string> {
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new CredentialError('credentials.provider_rejected', PROVIDER, `${PROVIDER}: the token endpoint did not answer JSON`);
  }
  const token = body.access_token;
  if (typeof token !== 'string' || !isHeaderSafe(token)) {
    throw new CredentialError('credentials.provider_rejected', PROVIDER, `${PROVIDER}: the token endpoint answered without a usable access_token`);
  }
  const expiresIn = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : undefined;
  const exp = jwtTimes(token)?.exp;
  const expiresAt = expiresIn !== undefined ? now + expiresIn * 1000 : exp !== undefined ? exp * 1000 : now + defaultSeconds * 1000;
  return { value: token, expiresAt };
}

export interface TokenExchangeDeps {
  profiles: Readonly<Record<string, TokenExchangeProfile>>;
  /** Path of the projected token for an audience. */
  tokenPath: (audience: string) => string;
  cache: CredentialCache;
  dispatcher: (profile: string) => Dispatcher;
  timeoutMs: number;
  now: () => number;
}

export class TokenExchangeProvider implements CredentialProvider {
  readonly name = PROVIDER;
  readonly jit = true;
  readonly #d: TokenExchangeDeps;

  constructor(deps: TokenExchangeDeps) {
    this.#d = deps;
  }

  #profile(spec: CredentialSpec): [string, TokenExchangeProfile] {
    const names = Object.keys(this.#d.profiles);
    const name = specString(spec, 'profile') ?? (names.length === 1 ? names[0]! : 'default');
    const profile = this.#d.profiles[name];
    if (!profile) throw new CredentialError('credentials.not_configured', PROVIDER, `${PROVIDER}: no token exchange profile "${name}" is configured`);
    return [name, profile];
  }

  async inject(up: UpstreamRequest, spec: CredentialSpec, target: InjectionTarget): Promise<Injection> {
    const [name, profile] = this.#profile(spec);
    if (!hostAllowed(target.host, profile.hosts)) {
      throw new CredentialError('credentials.host_not_allowed', PROVIDER, `${PROVIDER}: profile "${name}" may not be sent to ${target.host}`);
    }
    const audience = specString(spec, 'audience') ?? profile.audience;
    const scope = specString(spec, 'scope') ?? profile.scope;
    const resource = specString(spec, 'resource') ?? profile.resource;
    const key = { provider: PROVIDER, audience: `${name}|${audience ?? ''}|${resource ?? ''}`, role: scope ?? '' };
    const { value } = await this.#d.cache.get(key, () => this.#exchange(name, profile, audience, scope, resource));
    setCredentialHeader(up, profile.header, profile.scheme, value);
    return { injected: true, secrets: [value] };
  }

  async #exchange(name: string, profile: TokenExchangeProfile, audience?: string, scope?: string, resource?: string): Promise<Issued<string>> {
    const { now, tokenPath } = this.#d;
    const subjectToken = await readTokenFile(tokenPath(profile.subjectTokenAudience), PROVIDER, now);
    let clientSecret: string | undefined;
    if (profile.clientSecretFile) {
      try {
        clientSecret = (await readFile(profile.clientSecretFile, 'utf8')).trim();
      } catch (err) {
        throw new CredentialError('credentials.secret_unavailable', PROVIDER, `${PROVIDER}: client secret file ${profile.clientSecretFile} is not readable`, { cause: err });
      }
    }
    const req = exchangeRequest({
      subjectToken,
      subjectTokenType: profile.subjectTokenType,
      audience,
      scope,
      resource,
      requestedTokenType: profile.requestedTokenType,
      clientId: profile.clientId,
      clientSecret,
    });
    const answer = await callProvider(this.#d.dispatcher(name), { url: profile.tokenEndpoint, method: 'POST', headers: req.headers, body: req.body }, PROVIDER, this.#d.timeoutMs);
    const failed = answerError(answer, PROVIDER, profile.tokenEndpoint, errorCodeOf(answer.text));
    if (failed) throw failed;
    return parseExchangeResponse(answer.text, now(), profile.defaultExpiresInSeconds);
  }
}
