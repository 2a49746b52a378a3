// Verifies a Kubernetes service-account token the way AWS STS verifies a web identity: signature
// against the issuer's JWKS (the real kube-apiserver's /openid/v1/jwks), issuer, audience, expiry
// and not-before, and hands back the subject. Test code; node:crypto only.
import { createPublicKey, verify } from 'node:crypto';
import type { JsonWebKey } from 'node:crypto';

export interface Jwks {
  keys: (JsonWebKey & { kid?: string; alg?: string })[];
}

export type TokenCheck = { ok: true; subject: string; audiences: string[]; expiresAt: number } | { ok: false; code: 'InvalidIdentityToken' | 'ExpiredTokenException'; reason: string };

export function verifyServiceAccountToken(token: string, jwks: Jwks, o: { issuer: string; audience: string; now: number }): TokenCheck {
  const parts = token.split('.');
  if (parts.length !== 3) return { ok: false, code: 'InvalidIdentityToken', reason: 'not a JWT' };
  let header: { alg?: string; kid?: string };
  let claims: { iss?: string; aud?: string | string[]; exp?: number; nbf?: number; sub?: string };
  try {
    header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString()) as typeof header;
    claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString()) as typeof claims;
  } catch {
    return { ok: false, code: 'InvalidIdentityToken', reason: 'undecodable JWT' };
  }
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  if (!jwk) return { ok: false, code: 'InvalidIdentityToken', reason: `no key ${header.kid} in the issuer's JWKS` };
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  const data = Buffer.from(`${parts[0]}.${parts[1]}`);
  const sig = Buffer.from(parts[2]!, 'base64url');
  const good =
    header.alg === 'ES256'
      ? verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig)
      : header.alg === 'RS256'
        ? verify('sha256', data, key, sig)
        : false;
  if (!good) return { ok: false, code: 'InvalidIdentityToken', reason: 'signature does not verify against the JWKS' };
  if (claims.iss !== o.issuer) return { ok: false, code: 'InvalidIdentityToken', reason: `issuer ${claims.iss} is not ${o.issuer}` };
  const audiences = Array.isArray(claims.aud) ? claims.aud : claims.aud ? [claims.aud] : [];
  if (!audiences.includes(o.audience)) return { ok: false, code: 'InvalidIdentityToken', reason: `audience ${audiences.join(',')} is not ${o.audience}` };
  if (typeof claims.exp !== 'number' || claims.exp * 1000 <= o.now) return { ok: false, code: 'ExpiredTokenException', reason: 'token expired' };
  if (typeof claims.nbf === 'number' && claims.nbf * 1000 > o.now + 60_000) return { ok: false, code: 'InvalidIdentityToken', reason: 'token not yet valid' };
  if (typeof claims.sub !== 'string') return { ok: false, code: 'InvalidIdentityToken', reason: 'no subject' };
  return { ok: true, subject: claims.sub, audiences, expiresAt: claims.exp * 1000 };
}
