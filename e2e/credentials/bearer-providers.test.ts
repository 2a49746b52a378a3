// oauth2-token-exchange and static-secret end to end. A token endpoint written for the test
// verifies the sidecar's subject token against the real kube-apiserver's JWKS (issuer, audience,
// expiry) and its client credentials, and issues an access token; an API behind it accepts only
// that token. The agent (curl) sends a bearer of its own, which must never arrive. An echoing
// endpoint shows an injected token cannot come back to the agent.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { pino } from 'pino';
import { buildBundle } from '../../testkit/policy/opa-build.ts';
import { KubeCluster } from '../support/kube/cluster.ts';
import { startTestSidecar } from '../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../testkit/sidecar/test-sidecar.ts';
import { createTestCa, startHttpsUpstream } from '../../testkit/sidecar/upstreams.ts';
import type { TestCa, TestUpstream } from '../../testkit/sidecar/upstreams.ts';
import { verifyServiceAccountToken } from '../support/sts/jwks.ts';
import { issuerOf, mintToken, writeProjectedToken } from '../support/sts/sts-world.ts';
import { Agent } from './agent.ts';

// Real clients (the AWS CLI starts Python each time) on a shared, busy machine.
jest.setTimeout(60_000);

const NS = 'agents';
const AGENT_BEARER = 'agent-own-bearer-0123456789';
const CLIENT_SECRET = `client-secret-${randomBytes(8).toString('hex')}`;
const STATIC_VALUE = `static-${randomBytes(12).toString('hex')}`;
const NAMES = ['tokens.example.test', 'api.example.test', 'echo.example.test', 'legacy.example.test', 'elsewhere.example.test', 'mystery.example.test'];

const POLICY = `package sluice

exchange := {"provider": "oauth2-token-exchange", "audience": "https://api.example.test", "scope": "items.read"}

static_legacy := {"provider": "static-secret", "secret": "legacy"}

decisions := {
	"api.example.test": {"allow": true, "code": "test.api", "reason": "api", "credential": exchange},
	"echo.example.test": {"allow": true, "code": "test.echo", "reason": "echo", "credential": exchange},
	"legacy.example.test": {"allow": true, "code": "test.legacy", "reason": "legacy", "credential": static_legacy},
	"elsewhere.example.test": {"allow": true, "code": "test.elsewhere", "reason": "a policy mistake", "credential": static_legacy},
	"mystery.example.test": {"allow": true, "code": "test.mystery", "reason": "unknown provider", "credential": {"provider": "vault"}},
	"tokens.example.test": {"allow": false, "code": "test.tokens", "reason": "agents do not talk to the token endpoint"},
}

default decision := {"allow": false, "code": "test.denied", "reason": "not in the test policy"}

decision := decisions[input.request.host]
`;

let cluster: KubeCluster;
let ca: TestCa;
let upstream: TestUpstream;
let sidecar: TestSidecar;
let agent: Agent;
let bundle: string;
let tokenDir: string;
let secretFile: string;
let clientSecretFile: string;
const issued = new Map<string, { subject: string; audience: string; scope: string }>();
const logLines: string[] = [];
let oidc: Awaited<ReturnType<typeof issuerOf>>;

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers }).end(text);
}

/** The token endpoint (RFC 8693), the API it issues for, an echoing debug endpoint, a legacy API. */
function handler(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  const host = String(req.headers.host);
  const auth = String(req.headers.authorization ?? '');
  if (host === 'tokens.example.test') {
    const form = new URLSearchParams(body.toString());
    if (auth !== `Basic ${Buffer.from(`sluice:${CLIENT_SECRET}`).toString('base64')}`) return json(res, 401, { error: 'invalid_client' });
    if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:token-exchange') return json(res, 400, { error: 'unsupported_grant_type' });
    if (form.get('subject_token_type') !== 'urn:ietf:params:oauth:token-type:jwt') return json(res, 400, { error: 'invalid_request' });
    const check = verifyServiceAccountToken(form.get('subject_token') ?? '', oidc.jwks, { issuer: oidc.issuer, audience: 'tokens.example.test', now: Date.now() });
    if (!check.ok) return json(res, 400, { error: 'invalid_grant', error_description: check.reason });
    const token = `at-${randomBytes(24).toString('base64url')}`;
    issued.set(token, { subject: check.subject, audience: form.get('audience') ?? '', scope: form.get('scope') ?? '' });
    return json(res, 200, { access_token: token, issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', token_type: 'Bearer', expires_in: 600 });
  }
  const bearer = /^Bearer (.+)$/.exec(auth)?.[1];
  const grant = bearer === undefined ? undefined : issued.get(bearer);
  if (host === 'api.example.test') {
    if (!grant || grant.audience !== 'https://api.example.test') return json(res, 401, { error: 'invalid_token' });
    return json(res, 200, { subject: grant.subject, scope: grant.scope });
  }
  if (host === 'echo.example.test') return json(res, 200, { headers: req.headers }, { 'x-echo-authorization': auth });
  if (host === 'legacy.example.test') return auth === `token ${STATIC_VALUE}` ? json(res, 200, { legacy: 'ok' }) : json(res, 401, { error: 'bad token' });
  return json(res, 404, { error: 'no such host' });
}

function sidecarConfig(o: { tokenDir?: string; audience?: string } = {}) {
  return {
    credentials: {
      tokenDir: o.tokenDir ?? tokenDir,
      tokenExchange: {
        default: {
          tokenEndpoint: 'https://tokens.example.test/token',
          subjectTokenAudience: o.audience ?? 'tokens.example.test',
          clientId: 'sluice',
          clientSecretFile,
          hosts: ['api.example.test', 'echo.example.test'],
        },
      },
      static: { legacy: { file: secretFile, scheme: 'token', hosts: ['legacy.example.test'] } },
    },
  };
}

function resolveAll(to: string): Record<string, string> {
  return Object.fromEntries(NAMES.map((n) => [n, to]));
}

async function call(host: string, path = '/', s: TestSidecar = sidecar): Promise<{ status: number; headers: string; body: string }> {
  const run = await agent.run('curl', ['-sS', '-D', '-', '--proxy', s.proxyUrl, '--cacert', s.trust.bundleFile, '-H', `Authorization: Bearer ${AGENT_BEARER}`, `https://${host}${path}`]);
  const text = run.stdout.replace(/^HTTP\/1.1 200 Connection Established\r\n\r\n/, '');
  const cut = text.indexOf('\r\n\r\n');
  // HTTP/2 with curl (ALPN h2 on the intercepted tunnel), HTTP/1.1 with other clients.
  return { status: Number(/^HTTP\/(?:1\.1|2) (\d+)/.exec(text)?.[1]), headers: text.slice(0, cut), body: text.slice(cut + 4) };
}

beforeAll(async () => {
  bundle = buildBundle(POLICY, 'credentials-e2e');
  cluster = await KubeCluster.start({ namespaces: [{ name: NS }] });
  await cluster.request('admin', 'POST', `/api/v1/namespaces/${NS}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'coder' } });
  oidc = await issuerOf(cluster);
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bearer-'));
  tokenDir = join(dir, 'tokens');
  mkdirSync(tokenDir);
  writeProjectedToken(tokenDir, 'tokens.example.test', await mintToken(cluster, NS, 'coder', ['tokens.example.test']));
  secretFile = join(dir, 'legacy-token');
  writeFileSync(secretFile, `${STATIC_VALUE}\n`);
  clientSecretFile = join(dir, 'client-secret');
  writeFileSync(clientSecretFile, CLIENT_SECRET);
  ca = await createTestCa();
  upstream = await startHttpsUpstream(ca, NAMES, handler);
  const logStream = new Writable({
    write(chunk: Buffer, _e, cb) {
      logLines.push(chunk.toString());
      cb();
    },
  });
  sidecar = await startTestSidecar({ bundle, resolve: resolveAll(upstream.dial), extraRootsFiles: [ca.caFile], config: sidecarConfig(), logger: pino({ level: 'debug' }, logStream) });
  agent = new Agent({});
}, 120_000);

afterAll(async () => {
  await sidecar?.stop();
  await upstream?.close();
  await cluster?.stop();
});

describe('oauth2-token-exchange', () => {
  test('the API sees the exchanged token for the pod\'s identity, never the agent\'s own bearer', async () => {
    const res = await call('api.example.test', '/items');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ subject: `system:serviceaccount:${NS}:coder`, scope: 'items.read' });
    const apiCalls = upstream.requests.filter((r) => r.headers.host === 'api.example.test');
    expect(apiCalls).toHaveLength(1);
    expect(apiCalls[0]!.headers.authorization).toMatch(/^Bearer at-/);
    expect(JSON.stringify(upstream.requests.map((r) => r.headers))).not.toContain(AGENT_BEARER);
  });

  test('an endpoint that echoes the request cannot hand the token to the agent', async () => {
    const res = await call('echo.example.test', '/debug');
    expect(res.status).toBe(200);
    const echoed = JSON.parse(res.body) as { headers: Record<string, string> };
    expect(echoed.headers.authorization).toMatch(/^Bearer \*{20,}$/);
    expect(res.headers).toMatch(/x-echo-authorization: Bearer \*{20,}/);
    // Two calls, one exchange: the token is cached per (provider, audience, scope).
    expect(issued.size).toBe(1);
    expect(await sidecar.registry.metrics()).toMatch(/sluice_credentials_cache_hits_total\{provider="oauth2-token-exchange"\} 1\n/);
  });

  test('a subject token for the wrong audience is refused by the endpoint: 502 naming the provider', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-tokens-'));
    writeProjectedToken(dir, 'other.example.test', await mintToken(cluster, NS, 'coder', ['other.example.test']));
    const s = await startTestSidecar({ bundle, resolve: resolveAll(upstream.dial), extraRootsFiles: [ca.caFile], config: sidecarConfig({ tokenDir: dir, audience: 'other.example.test' }) });
    try {
      const res = await call('api.example.test', '/items', s);
      expect(res.status).toBe(502);
      expect(JSON.parse(res.body)).toMatchObject({ error: 'credentials.provider_rejected', reason: 'oauth2-token-exchange: https://tokens.example.test answered 400 (invalid_grant)' });
    } finally {
      await s.stop();
    }
  });

  test('an unreachable token endpoint is a 503 and a metric', async () => {
    const s = await startTestSidecar({ bundle, resolve: { ...resolveAll(upstream.dial), 'tokens.example.test': '127.0.0.1:9' }, extraRootsFiles: [ca.caFile], config: sidecarConfig() });
    try {
      const res = await call('api.example.test', '/items', s);
      expect(res.status).toBe(503);
      expect(res.headers).toMatch(/x-sluice-decision: error; code=credentials.provider_unavailable/);
      expect(await s.registry.metrics()).toMatch(/sluice_credentials_errors_total\{provider="oauth2-token-exchange",code="credentials.provider_unavailable"\} 1/);
    } finally {
      await s.stop();
    }
  });
});

describe('static-secret', () => {
  test('is injected for its host and flagged as not just-in-time', async () => {
    const res = await call('legacy.example.test');
    expect(res.status).toBe(200);
    const text = await sidecar.registry.metrics();
    expect(text).toMatch(/sluice_credentials_injected_total\{provider="static-secret",jit="false"\} 1/);
    expect(text).toMatch(/sluice_credentials_issued_total\{provider="static-secret",jit="false"\} 1/);
    expect(text).not.toMatch(/sluice_credentials_time_to_expiry_seconds\{provider="static-secret"\}/);
  });

  test('is never sent to a host it does not name, whatever the policy says', async () => {
    const before = upstream.requests.length;
    const res = await call('elsewhere.example.test');
    expect(res.status).toBe(502);
    expect(res.headers).toMatch(/x-sluice-decision: error; code=credentials.host_not_allowed/);
    expect(upstream.requests.length).toBe(before);
  });

  test('a provider sluice does not know fails closed', async () => {
    const res = await call('mystery.example.test');
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body)).toMatchObject({ error: 'credentials.unknown_provider' });
  });
});

describe('no-secret proof', () => {
  test('no exchanged token, static secret, client secret or projected token reached the agent or the logs', () => {
    const secrets = [...issued.keys(), STATIC_VALUE, CLIENT_SECRET];
    const seen = [...agent.transcript, JSON.stringify(agent.env), ...logLines].join('\n');
    expect(seen.length).toBeGreaterThan(500);
    for (const s of secrets) expect(seen.includes(s)).toBe(false);
    expect(seen).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.eyJ/);
  });
});
