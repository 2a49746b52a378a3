// The static-secret provider: the explicit fallback for upstreams with no token service. The value
// is read from a Secret mounted only into the sidecar, re-read every `reloadSeconds` (Secret
// updates), and injected for the hosts the secret names — never for any other host, whatever the
// policy says. It is not just-in-time, and metrics say so (jit="false"). Config: `credentials.static`,
// secrets by name.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import type { UpstreamRequest } from '../../proxy/request-context.ts';
import type { CredentialCache, Issued } from '../credential-cache.ts';
import { CredentialError } from '../errors.ts';
import { HeaderName, HostPattern, ProfileName, Scheme, Seconds, hostAllowed } from '../provider-config.ts';
import { isHeaderSafe } from '../provider-http.ts';
import { defineProvider, setCredentialHeader, specString } from '../provider.ts';
import type { CredentialProvider, CredentialSpec, Injection, InjectionTarget } from '../provider.ts';

const PROVIDER = 'static-secret';

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

export type StaticSecret = z.infer<typeof StaticSecret>;

export const staticSecretProvider = defineProvider({
  name: PROVIDER,
  configKey: 'static',
  config: z.record(ProfileName, StaticSecret).default({}),
  jit: false,
  create: (secrets, ctx) => new StaticSecretProvider({ secrets, cache: ctx.cache, now: ctx.now }),
});

export interface StaticSecretDeps {
  secrets: Readonly<Record<string, StaticSecret>>;
  cache: CredentialCache;
  now: () => number;
}

export class StaticSecretProvider implements CredentialProvider {
  readonly name = PROVIDER;
  readonly jit = false;
  readonly #d: StaticSecretDeps;

  constructor(deps: StaticSecretDeps) {
    this.#d = deps;
  }

  async inject(up: UpstreamRequest, spec: CredentialSpec, target: InjectionTarget): Promise<Injection> {
    const names = Object.keys(this.#d.secrets);
    const name = specString(spec, 'secret') ?? (names.length === 1 ? names[0]! : 'default');
    const secret = this.#d.secrets[name];
    if (!secret) throw new CredentialError('credentials.not_configured', PROVIDER, `${PROVIDER}: no static secret "${name}" is configured`);
    if (!hostAllowed(target.host, secret.hosts)) throw new CredentialError('credentials.host_not_allowed', PROVIDER, `${PROVIDER}: secret "${name}" may not be sent to ${target.host}`);
    const { value } = await this.#d.cache.get({ provider: PROVIDER, audience: name, role: '' }, () => this.#read(name, secret));
    setCredentialHeader(up, secret.header, secret.scheme, value);
    return { injected: true, secrets: [value] };
  }

  async #read(name: string, secret: StaticSecret): Promise<Issued<string>> {
    let value: string;
    try {
      value = (await readFile(secret.file, 'utf8')).trim();
    } catch (err) {
      throw new CredentialError('credentials.secret_unavailable', PROVIDER, `${PROVIDER}: secret "${name}" (${secret.file}) is not readable`, { cause: err });
    }
    if (!isHeaderSafe(value)) throw new CredentialError('credentials.secret_unavailable', PROVIDER, `${PROVIDER}: secret "${name}" is empty or not a single header-safe token`);
    return { value, expiresAt: this.#d.now() + secret.reloadSeconds * 1000 };
  }
}
