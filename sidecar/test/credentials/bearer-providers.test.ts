// The bearer providers' pure parts (RFC 8693 request/response, TokenRequest status), the static
// secret's host allow-list and reload, the kubernetes provider's service-account allow-list, and
// the header injection every bearer provider shares.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { Agent } from 'undici';
import { CredentialCache } from '../../src/credentials/credential-cache.ts';
import { KubernetesTokenConfig, StaticSecret } from '../../src/credentials/credentials-config.ts';
import { KubernetesTokenProvider, parseTokenRequestStatus, tokenRequestBody } from '../../src/credentials/bearer/kubernetes-token.ts';
import { StaticSecretProvider } from '../../src/credentials/bearer/static-secret.ts';
import { exchangeRequest, parseExchangeResponse } from '../../src/credentials/bearer/token-exchange.ts';
import type { UpstreamRequest } from '../../src/proxy/request-context.ts';

function cache(now: () => number) {
  return new CredentialCache({ now, refreshBeforeMs: 300_000, minRemainingMs: 60_000, failureBackoffMs: 0, maxEntries: 10 });
}

function upstream(headers: Record<string, string> = {}): UpstreamRequest {
  return { origin: 'https://legacy.example.test', path: '/', method: 'GET', headers: { authorization: 'Bearer agent-own', 'accept-encoding': 'gzip', accept: '*/*', ...headers }, body: null };
}

const jwt = (claims: object) => `eyJhbGciOiJub25lIn0.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;

describe('RFC 8693 token exchange', () => {
  test('the request is a form with the subject token, the decision\'s audience and scope, and client_secret_basic', () => {
    const r = exchangeRequest({ subjectToken: 'subj', subjectTokenType: 'urn:ietf:params:oauth:token-type:jwt', audience: 'https://api', scope: 'a b', clientId: 'sluice app', clientSecret: 'p@ss:word' });
    const form = new URLSearchParams(r.body);
    expect(Object.fromEntries(form)).toEqual({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: 'subj',
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      audience: 'https://api',
      scope: 'a b',
    });
    expect(Buffer.from(r.headers.authorization!.slice(6), 'base64').toString()).toBe('sluice+app:p%40ss%3Aword');
    expect(exchangeRequest({ subjectToken: 's', subjectTokenType: 't', clientId: 'public' }).body).toContain('client_id=public');
  });

  test('the response gives the token and its expiry: expires_in, else the JWT exp, else the default', () => {
    expect(parseExchangeResponse('{"access_token":"tok-1","token_type":"Bearer","expires_in":600}', 1000, 300)).toEqual({ value: 'tok-1', expiresAt: 601_000 });
    expect(parseExchangeResponse(JSON.stringify({ access_token: jwt({ exp: 5000 }) }), 1000, 300).expiresAt).toBe(5_000_000);
    expect(parseExchangeResponse('{"access_token":"opaque"}', 1000, 300).expiresAt).toBe(301_000);
  });

  test('an unusable answer is provider_rejected, and a token that could smuggle a header is refused', () => {
    for (const text of ['not json', '{}', '{"access_token":""}', '{"access_token":"a\\r\\nx-evil: 1"}', '{"access_token":"two words"}']) {
      expect(() => parseExchangeResponse(text, 0, 300)).toThrow(expect.objectContaining({ code: 'credentials.provider_rejected', provider: 'oauth2-token-exchange' }));
    }
  });
});

describe('TokenRequest', () => {
  test('asks for the configured audiences and lifetime, and reads token and expiry', () => {
    expect(JSON.parse(tokenRequestBody(['vault'], 600))).toEqual({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: ['vault'], expirationSeconds: 600 } });
    expect(parseTokenRequestStatus('{"status":{"token":"t0k","expirationTimestamp":"2030-01-01T00:00:00Z"}}')).toEqual({ value: 't0k', expiresAt: Date.UTC(2030, 0, 1) });
    expect(() => parseTokenRequestStatus('{"status":{}}')).toThrow(expect.objectContaining({ code: 'credentials.provider_rejected' }));
  });

  test('a service account the decision asks for must be allowed by config', async () => {
    const p = new KubernetesTokenProvider({
      config: KubernetesTokenConfig.parse({ serviceAccount: 'reader', allowedServiceAccounts: ['deployer'], tokenFile: '/nonexistent' }),
      podNamespace: 'agents',
      cache: cache(Date.now),
      dispatcher: new Agent(),
      timeoutMs: 1000,
      now: Date.now,
    });
    const target = { host: 'kubernetes.default.svc', port: 443, scheme: 'https' as const };
    await expect(p.inject(upstream(), { provider: 'kubernetes', service_account: 'admin' }, target)).rejects.toMatchObject({ code: 'credentials.not_configured' });
    await expect(p.inject(upstream(), { provider: 'kubernetes' }, { ...target, host: 'evil.example.com' })).rejects.toMatchObject({ code: 'credentials.host_not_allowed' });
    // Allowed account: gets as far as reading the sidecar's own token.
    await expect(p.inject(upstream(), { provider: 'kubernetes', service_account: 'deployer' }, target)).rejects.toMatchObject({ code: 'credentials.subject_token_unavailable', status: 503 });
  });
});

describe('static-secret', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-static-'));
  const file = join(dir, 'token');

  test('injects with its scheme for its hosts only, drops the agent\'s Authorization, re-reads after reloadSeconds', async () => {
    writeFileSync(file, 'first-value-0001\n');
    let now = 0;
    const p = new StaticSecretProvider({ secrets: { legacy: StaticSecret.parse({ file, scheme: 'token', hosts: ['*.example.test'], reloadSeconds: 60 }) }, cache: cache(() => now), now: () => now });
    const up = upstream();
    const got = await p.inject(up, { provider: 'static-secret' }, { host: 'legacy.example.test', port: 443, scheme: 'https' });
    expect(got).toEqual({ injected: true, secrets: ['first-value-0001'] });
    expect(up.headers).toEqual({ authorization: 'token first-value-0001', accept: '*/*', 'accept-encoding': 'identity' });
    writeFileSync(file, 'second-value-002\n');
    now += 10_000;
    const again = upstream();
    await p.inject(again, { provider: 'static-secret', secret: 'legacy' }, { host: 'a.example.test', port: 443, scheme: 'https' });
    expect(again.headers.authorization).toBe('token first-value-0001');
    now += 50_000;
    const later = upstream();
    await p.inject(later, { provider: 'static-secret' }, { host: 'a.example.test', port: 443, scheme: 'https' });
    expect(later.headers.authorization).toBe('token second-value-002');
    await expect(p.inject(upstream(), { provider: 'static-secret' }, { host: 'example.test', port: 443, scheme: 'https' })).rejects.toMatchObject({ code: 'credentials.host_not_allowed' });
    await expect(p.inject(upstream(), { provider: 'static-secret', secret: 'other' }, { host: 'a.example.test', port: 443, scheme: 'https' })).rejects.toMatchObject({ code: 'credentials.not_configured' });
  });

  test('a configured header replaces only that header and Authorization', async () => {
    writeFileSync(file, 'k-123456789');
    const p = new StaticSecretProvider({ secrets: { api: StaticSecret.parse({ file, header: 'x-api-key', scheme: '', hosts: ['api.example.test'] }) }, cache: cache(Date.now), now: Date.now });
    const up = upstream({ 'x-api-key': 'agent-guess' });
    await p.inject(up, { provider: 'static-secret' }, { host: 'api.example.test', port: 443, scheme: 'https' });
    expect(up.headers).toEqual({ 'x-api-key': 'k-123456789', accept: '*/*', 'accept-encoding': 'identity' });
  });

  test('an unreadable or multi-line secret is secret_unavailable (503)', async () => {
    writeFileSync(file, 'two\nlines');
    const p = new StaticSecretProvider({ secrets: { a: StaticSecret.parse({ file, hosts: ['x.test'] }), b: StaticSecret.parse({ file: join(dir, 'missing'), hosts: ['x.test'] }) }, cache: cache(Date.now), now: Date.now });
    for (const secret of ['a', 'b']) {
      await expect(p.inject(upstream(), { provider: 'static-secret', secret }, { host: 'x.test', port: 443, scheme: 'https' })).rejects.toMatchObject({ code: 'credentials.secret_unavailable', status: 503 });
    }
  });
});
