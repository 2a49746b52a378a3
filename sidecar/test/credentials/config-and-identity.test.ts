// Config validation (defaults, field-named errors, SLUICE_TOKEN_DIR), projected-token reading, the
// role chosen for a pod, STS error classification, and the stage's fail-closed answers.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { Registry } from 'prom-client';
import { loadSidecarConfig, parseSidecarConfig } from '../../src/config/sidecar-config.ts';
import { classifyStsError, selectRole, sessionNameFor } from '../../src/credentials/aws/assume-role.ts';
import { AwsRole, CredentialsConfig, hostAllowed } from '../../src/credentials/credentials-config.ts';
import { credentialsPhases } from '../../src/credentials/request-phases.ts';
import { CredentialError } from '../../src/credentials/errors.ts';
import { registerCredentialMetrics } from '../../src/credentials/metrics.ts';
import { readTokenFile, tokenFileName } from '../../src/credentials/projected-token.ts';
import type { CredentialProvider } from '../../src/credentials/provider.ts';
import type { Forwarding } from '../../src/proxy/request-context.ts';

describe('config', () => {
  test('defaults are complete and SLUICE_TOKEN_DIR lands in credentials.tokenDir', () => {
    const c = CredentialsConfig.parse({});
    expect(c).toMatchObject({ tokenDir: '/var/run/sluice/tokens', aws: { audience: 'sts.amazonaws.com', endpoint: 'https://sts.amazonaws.com', roles: [] }, cache: { refreshBeforeSeconds: 300 } });
    const loaded = loadSidecarConfig({ SLUICE_POD_NAMESPACE: 'ns', SLUICE_POD_NAME: 'p', SLUICE_SERVICE_ACCOUNT: 'sa', SLUICE_POLICY_PATH: '/p', SLUICE_TRUST_DIR: '/t', SLUICE_TOKEN_DIR: '/var/run/x/tokens' });
    expect(loaded.credentials.tokenDir).toBe('/var/run/x/tokens');
    expect(Object.isFrozen(loaded.credentials.aws)).toBe(true);
  });

  test('a bad value fails start-up naming the field', () => {
    const base = { pod: { namespace: 'n', name: 'p', serviceAccount: 's' }, policy: { path: '/p' }, trustDir: '/t' };
    expect(() => parseSidecarConfig({ ...base, credentials: { aws: { roles: [{ roleArn: 'not-an-arn' }] } } })).toThrow(/credentials\.aws\.roles\.0\.roleArn/);
    expect(() => parseSidecarConfig({ ...base, credentials: { static: { x: { file: '/f', hosts: [] } } } })).toThrow(/credentials\.static\.x\.hosts/);
    expect(() => parseSidecarConfig({ ...base, credentials: { tokenExchange: { x: { tokenEndpoint: 'ftp://x', subjectTokenAudience: 'a', hosts: ['a.b'] } } } })).toThrow(/credentials\.tokenExchange\.x\.tokenEndpoint/);
    expect(() => parseSidecarConfig({ ...base, credentials: { static: { x: { file: '/f', hosts: ['a.b'], header: 'host' } } } })).toThrow(/header/);
  });

  test('host patterns: exact or *.suffix, never the bare suffix', () => {
    expect(hostAllowed('api.example.com', ['api.example.com'])).toBe(true);
    expect(hostAllowed('a.example.com', ['*.example.com'])).toBe(true);
    expect(hostAllowed('example.com', ['*.example.com'])).toBe(false);
    expect(hostAllowed('evilexample.com', ['*.example.com'])).toBe(false);
  });
});

describe('identity', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-tok-'));
  const jwt = (claims: object) => `eyJhbGciOiJFUzI1NiJ9.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.c2ln`;

  test('token files are named as the webhook names them; expired, empty or missing tokens fail before any provider call', async () => {
    expect(tokenFileName('sts.amazonaws.com')).toBe('sts.amazonaws.com');
    expect(tokenFileName('https://vault.example/v1')).toBe('https___vault.example_v1');
    writeFileSync(join(dir, 'ok'), `${jwt({ exp: 2000 })}\n`);
    await expect(readTokenFile(join(dir, 'ok'), 'aws-sts', () => 1000_000)).resolves.toBe(jwt({ exp: 2000 }));
    await expect(readTokenFile(join(dir, 'ok'), 'aws-sts', () => 2000_000)).rejects.toMatchObject({ code: 'credentials.subject_token_unavailable', status: 503, provider: 'aws-sts' });
    writeFileSync(join(dir, 'empty'), '\n');
    await expect(readTokenFile(join(dir, 'empty'), 'aws-sts', Date.now)).rejects.toMatchObject({ code: 'credentials.subject_token_unavailable' });
    await expect(readTokenFile(join(dir, 'missing'), 'aws-sts', Date.now)).rejects.toThrow(/not readable \(ENOENT\)/);
  });

  test('the most specific role for the pod wins; session names are STS-safe', () => {
    const roles = [
      AwsRole.parse({ roleArn: 'arn:aws:iam::111111111111:role/any' }),
      AwsRole.parse({ namespace: 'agents', roleArn: 'arn:aws:iam::111111111111:role/ns' }),
      AwsRole.parse({ namespace: 'agents', serviceAccount: 'coder', roleArn: 'arn:aws:iam::111111111111:role/exact' }),
      AwsRole.parse({ namespace: 'agents', name: 'writer', roleArn: 'arn:aws:iam::111111111111:role/writer' }),
    ];
    const pod = { namespace: 'agents', name: 'p', serviceAccount: 'coder' };
    expect(selectRole(roles, pod)?.roleArn).toMatch(/exact$/);
    expect(selectRole(roles, { ...pod, serviceAccount: 'other' })?.roleArn).toMatch(/ns$/);
    expect(selectRole(roles, { ...pod, namespace: 'else' })?.roleArn).toMatch(/any$/);
    expect(selectRole(roles, pod, 'writer')?.roleArn).toMatch(/writer$/);
    expect(selectRole(roles, { ...pod, namespace: 'else' }, 'writer')).toBeUndefined();
    expect(sessionNameFor({ namespace: 'a', name: 'pod/with:odd chars'.repeat(5), serviceAccount: 's' })).toMatch(/^sluice-a-pod-with-odd-chars[\w+=,.@-]*$/);
    expect(sessionNameFor(pod).length).toBeLessThanOrEqual(64);
  });

  test('STS failures: throttling/5xx/network are unavailable (503), refusals are rejected (502), by code only', () => {
    expect(classifyStsError({ name: 'InvalidIdentityToken', $metadata: { httpStatusCode: 400 } })).toMatchObject({ code: 'credentials.provider_rejected', status: 502, message: 'aws-sts: STS answered 400 InvalidIdentityToken' });
    expect(classifyStsError({ name: 'Throttling', $metadata: { httpStatusCode: 400 } })).toMatchObject({ code: 'credentials.provider_unavailable', status: 503 });
    expect(classifyStsError({ name: 'InternalFailure', $metadata: { httpStatusCode: 500 } })).toMatchObject({ code: 'credentials.provider_unavailable' });
    expect(classifyStsError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toMatchObject({ code: 'credentials.provider_unavailable', message: 'aws-sts: STS is unreachable (ECONNREFUSED)' });
  });
});

describe('the before-forward phase', () => {
  function ctx(credential?: Record<string, string>): { ctx: Forwarding; answers: unknown[]; nexts: number[] } {
    const c = {
      id: 'r-1',
      summary: { method: 'GET', scheme: 'https', host: 'api.example.test', port: 443, path: '/', query: {}, headers: {}, ip_literal: false },
      facts: {},
      evaluation: { decision: { allow: true, code: 't', reason: 't', ...(credential ? { credential } : {}) } },
      upstream: { origin: 'https://api.example.test', path: '/', method: 'GET', headers: {}, body: null },
      timings: {},
    } as unknown as Forwarding;
    return { ctx: c, answers: [], nexts: [] };
  }
  const provider = (impl: CredentialProvider['inject']): CredentialProvider => ({ name: 'fake', jit: true, inject: impl });

  test('no credential in the decision: passes untouched; a provider fault fails closed with its code; unknown providers too', async () => {
    const registry = new Registry();
    const metrics = registerCredentialMetrics(registry);
    const providers = new Map<string, CredentialProvider>([
      ['ok', provider(() => Promise.resolve({ injected: true, secrets: ['s3cr3t-value'] }))],
      ['down', provider(() => Promise.reject(new CredentialError('credentials.provider_unavailable', 'fake', 'fake: down')))],
      ['buggy', provider(() => Promise.reject(new TypeError('oops s3cr3t')))],
    ]);
    const answers: unknown[] = [];
    const inject = credentialsPhases({ providers, metrics })['before-forward']!;
    let nexts = 0;
    // A handler goes on (undefined) or returns sluice's answer, which ends the request.
    const stage = async (c: Forwarding, next: () => void) => {
      const step = await inject(c);
      if (step === undefined) next();
      else answers.push(step);
    };
    const next = () => {
      nexts++;
    };
    const plain = ctx();
    await stage(plain.ctx, next);
    const ok = ctx({ provider: 'ok' });
    await stage(ok.ctx, next);
    expect(nexts).toBe(2);
    // What the response phase searches the response for (echo redaction).
    expect(ok.ctx.injectedCredential).toEqual({ provider: 'fake', secrets: ['s3cr3t-value'] });
    expect(ok.ctx.timings.credentials_ms).toBeGreaterThanOrEqual(0);
    for (const name of ['down', 'buggy', 'vault']) await stage(ctx({ provider: name }).ctx, next);
    const plaintext = ctx({ provider: 'ok' });
    (plaintext.ctx.summary as { scheme: string }).scheme = 'http';
    await stage(plaintext.ctx, next);
    expect(nexts).toBe(2);
    expect(answers).toEqual([
      { status: 503, code: 'credentials.provider_unavailable', reason: 'fake: down', kind: 'error' },
      { status: 502, code: 'credentials.internal_error', reason: 'fake: sidecar fault while injecting a credential (TypeError)', kind: 'error' },
      { status: 502, code: 'credentials.unknown_provider', reason: 'credential provider "vault" is not one sluice knows', kind: 'error' },
      { status: 403, code: 'credentials.plaintext_refused', reason: 'fake: credentials are only sent over TLS; use https://api.example.test', kind: 'error' },
    ]);
    const text = await registry.metrics();
    expect(text).toContain('sluice_credentials_injected_total{provider="fake",jit="true"} 1');
    expect(text).toContain('sluice_credentials_errors_total{provider="unknown",code="credentials.unknown_provider"} 1');
    expect(text).not.toContain('s3cr3t');
  });
});
