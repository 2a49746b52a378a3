// Reads the sidecar's projected service-account tokens: one file per audience under
// SLUICE_TOKEN_DIR, named as the webhook names them (the audience with characters outside
// [A-Za-z0-9._-] replaced by `_`). The kubelet rotates the files, so each issuance reads anew.
// A token that is missing, empty, oversized or already expired is a provider failure with its own
// code, raised before any provider is called. The token value is returned to the caller only.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defaultTokenFileName } from '../../../api/src/index.ts';
import { CredentialError } from './errors.ts';

const MAX_TOKEN_BYTES = 16 * 1024;

/** The webhook's default file name for an audience's token (api/src/sidecar-contract.ts). */
export const tokenFileName: (audience: string) => string = defaultTokenFileName;

export interface JwtTimes {
  exp?: number;
  nbf?: number;
  iat?: number;
}

/** exp/nbf/iat of a JWT, unverified (only to know lifetimes); undefined when it is not a JWT. */
export function jwtTimes(token: string): JwtTimes | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
    const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
    return { exp: num(claims.exp), nbf: num(claims.nbf), iat: num(claims.iat) };
  } catch {
    return undefined;
  }
}

export async function readTokenFile(path: string, provider: string, now: () => number): Promise<string> {
  let raw: string;
  try {
    raw = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new CredentialError('credentials.subject_token_unavailable', provider, `${provider}: token file ${path} is not readable (${code})`, { cause: err });
  }
  const token = raw.trim();
  if (token === '' || token.length > MAX_TOKEN_BYTES || /\s/.test(token)) {
    throw new CredentialError('credentials.subject_token_unavailable', provider, `${provider}: token file ${path} does not hold a token`);
  }
  const exp = jwtTimes(token)?.exp;
  if (exp !== undefined && exp * 1000 <= now()) {
    throw new CredentialError('credentials.subject_token_unavailable', provider, `${provider}: the token in ${path} expired at ${new Date(exp * 1000).toISOString()} (kubelet not rotating it?)`);
  }
  return token;
}

/** Where the token for `audience` is: a configured file name (the webhook's `path`) or the default mapping. */
export function projectedTokenPath(tokenDir: string, audience: string, fileNames: Readonly<Record<string, string>> = {}): string {
  return join(tokenDir, fileNames[audience] ?? tokenFileName(audience));
}
