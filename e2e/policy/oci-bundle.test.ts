// A custom signed policy bundle pulled from an OCI registry (policy.bundle oci): a real registry
// (go-containerregistry's cmd/registry, tools/install.sh) holds bundles pushed in OPA's OCI layout
// (one application/vnd.oci.image.layer.v1.tar+gzip layer) with the distribution API; in front of it
// an HTTPS fixture plays what hosted registries add — a token service (401 with a Bearer challenge,
// Basic credentials from the pull secret for a token) and blob downloads redirected to another
// origin (storage). A real sidecar pulls through the token flow, never sends credentials to the
// storage origin, takes a new push under the same tag on its next poll (manifest digest compared,
// the layer pulled only when it changed), refuses unsigned, other-key, tampered, corrupted-in-transit
// and non-bundle artifacts (recorded; last good kept) and, without a good bundle, is not ready.
import { randomBytes, createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { ProxyAgent, request } from 'undici';
import { eventually } from '../support/kube/admission.ts';
import { freePort, startProcess, stopProcess, waitReady } from '../support/kube/cluster.ts';
import { startTestSidecar } from '../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../testkit/sidecar/test-sidecar.ts';
import { createTestCa, startHttpsUpstream } from '../../testkit/sidecar/upstreams.ts';
import type { TestCa, TestUpstream } from '../../testkit/sidecar/upstreams.ts';
import { buildBundle, rsaKeyPair, tamperedBundle } from './signed-bundles.ts';
import type { KeyPair } from './signed-bundles.ts';

jest.setTimeout(120_000);

const REGISTRY_BIN = join(import.meta.dirname, '..', '..', '.tools', 'bin', 'registry');
const REPO = 'acme/policy';
const HOST = 'pkgs.example.test';
const USER = 'robot';
const PASSWORD = randomBytes(12).toString('hex');
const LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';

let dir: string;
let registry: ChildProcess;
let backend: string;
let ca: TestCa;
let front: TestUpstream;
let storage: TestUpstream;
let upstream: TestUpstream;
let key: KeyPair;
let otherKey: KeyPair;
const bundles: Record<string, Buffer> = {};
const tokens = new Set<string>();
let corruptBlobs = false;
const running: { sidecar: TestSidecar; agent: ProxyAgent; spool: string }[] = [];

const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function call(method: string, url: string, body?: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  const res = await request(url, { method: method as 'GET', body, headers });
  return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
}

async function pushBlob(bytes: Buffer): Promise<string> {
  const digest = digestOf(bytes);
  const start = await call('POST', `${backend}/v2/${REPO}/blobs/uploads/`);
  expect(start.status).toBe(202);
  const location = new URL(String(start.headers.location), backend);
  location.searchParams.set('digest', digest);
  const put = await call('PUT', location.toString(), bytes, { 'content-type': 'application/octet-stream' });
  expect(put.status).toBe(201);
  return digest;
}

/** Pushes an artifact as OPA's OCI layout has it (an empty config, the bundle layer) under `tag`; returns the manifest digest. */
async function push(tag: string, layers: { bytes: Buffer; mediaType: string }[]): Promise<string> {
  const config = Buffer.from('{}');
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: await pushBlob(config), size: config.length },
      layers: await Promise.all(layers.map(async (l) => ({ mediaType: l.mediaType, digest: await pushBlob(l.bytes), size: l.bytes.length }))),
    }),
  );
  const res = await call('PUT', `${backend}/v2/${REPO}/manifests/${tag}`, manifest, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
  expect(res.status).toBe(201);
  return digestOf(manifest);
}

const pushBundle = (tag: string, bundle: Buffer) => push(tag, [{ bytes: bundle, mediaType: LAYER }]);

/** What a hosted registry adds in front: a token service, Bearer-only API, blobs redirected to storage. */
function frontHandler(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'https://registry.test');
  if (url.pathname === '/token') {
    const basic = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
    if (req.headers.authorization !== basic || url.searchParams.get('scope') !== `repository:${REPO}:pull` || url.searchParams.get('service') !== 'registry.test') {
      res.writeHead(401).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      return;
    }
    const token = randomBytes(16).toString('hex');
    tokens.add(token);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300 }));
    return;
  }
  const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
  if (!bearer || !tokens.has(bearer)) {
    res.writeHead(401, { 'www-authenticate': `Bearer realm="https://registry.test/token",service="registry.test",scope="repository:${REPO}:pull"`, 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
    return;
  }
  const blob = new RegExp(`^/v2/${REPO}/blobs/(sha256:[0-9a-f]{64})$`).exec(url.pathname);
  if (blob) {
    res.writeHead(307, { location: `https://storage.test/blobs/${blob[1]}?sig=presigned` }).end();
    return;
  }
  void call(req.method ?? 'GET', `${backend}${url.pathname}`, undefined, { accept: String(req.headers.accept ?? '*/*') }).then((r) => {
    const headers: Record<string, string> = {};
    for (const h of ['content-type', 'docker-content-digest']) if (typeof r.headers[h] === 'string') headers[h] = r.headers[h];
    res.writeHead(r.status, headers).end(r.body);
  });
}

function storageHandler(req: IncomingMessage, res: ServerResponse): void {
  const digest = /^\/blobs\/(sha256:[0-9a-f]{64})/.exec(req.url ?? '')?.[1];
  void call('GET', `${backend}/v2/${REPO}/blobs/${digest}`).then((r) => {
    const body = Buffer.from(r.body);
    if (corruptBlobs && body.length > 10) body[body.length - 10]! ^= 0xff;
    res.writeHead(r.status, { 'content-type': 'application/octet-stream' }).end(body);
  });
}

async function sidecarFor(reference: string, pullSecret: { username: string; password: string } | undefined, pollIntervalMs = 1000): Promise<{ sidecar: TestSidecar; agent: ProxyAgent; spool: string }> {
  const spool = join(dir, `spool-${running.length}`);
  let pullSecretFile: string | undefined;
  if (pullSecret) {
    pullSecretFile = join(dir, `dockerconfig-${running.length}.json`);
    writeFileSync(pullSecretFile, JSON.stringify({ auths: { 'registry.test': { auth: Buffer.from(`${pullSecret.username}:${pullSecret.password}`).toString('base64') } } }), { mode: 0o600 });
  }
  const sidecar = await startTestSidecar({
    resolve: { 'registry.test:443': front.dial, 'storage.test:443': storage.dial, [`${HOST}:443`]: upstream.dial },
    extraRootsFiles: [ca.caFile],
    config: {
      pod: { namespace: 'agents', name: `coder-${running.length}`, serviceAccount: 'coder' },
      // What the webhook gives (SLUICE_POLICY_OCI) and the chart's verification key.
      policy: { oci: { reference, pollIntervalMs, ...(pullSecretFile ? { pullSecretFile } : {}) }, verification: { algorithm: 'RS256', publicKeyFile: key.pub } },
      audit: { spoolDir: spool, spool: { fsync: 'none' } },
    },
  });
  const agent = new ProxyAgent({ uri: sidecar.proxyUrl, requestTls: { ca: sidecar.ca.certPem } });
  const entry = { sidecar, agent, spool };
  running.push(entry);
  return entry;
}

async function status(s: { agent: ProxyAgent }): Promise<number> {
  try {
    const res = await request(`https://${HOST}/pkg/left-pad-1.3.0.tgz`, { dispatcher: s.agent });
    await res.body.dump();
    return res.statusCode;
  } catch (err) {
    const refused = /Proxy response \((\d+)\)/.exec((err as Error).message);
    if (refused) return Number(refused[1]);
    throw err;
  }
}

async function failures(s: { sidecar: TestSidecar }, code: string): Promise<number> {
  const m = await s.sidecar.registry.getSingleMetric('sluice_policy_loads_total')?.get();
  return m?.values.find((v) => v.labels.result === 'failure' && v.labels.code === code)?.value ?? 0;
}

function policyLoads(s: { spool: string }): string {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else files.push(p);
    }
  };
  walk(s.spool);
  return JSON.stringify(
    files
      .flatMap((f) => readFileSync(f, 'utf8').split('\n'))
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((e) => e.kind === 'policy_load'),
  );
}

const blobGets = () => storage.requests.length;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-oci-bundle-'));
  key = rsaKeyPair(dir, 'signing');
  otherKey = rsaKeyPair(dir, 'other');
  bundles.v1 = buildBundle(dir, 'r-1', true, key);
  bundles.v2 = buildBundle(dir, 'r-2', false, key);
  bundles.v3 = buildBundle(dir, 'r-3', true, key);
  bundles.unsigned = buildBundle(dir, 'u-1', true);
  bundles.otherKey = buildBundle(dir, 'o-1', true, otherKey);
  bundles.tampered = tamperedBundle(dir, bundles.v3);
  const port = await freePort();
  const log = join(dir, 'registry.log');
  registry = startProcess(REGISTRY_BIN, ['-port', String(port)], log);
  backend = `http://127.0.0.1:${port}`;
  await waitReady('registry', registry, log, 20_000, async () => (await call('GET', `${backend}/v2/`)).status === 200);
  ca = await createTestCa();
  front = await startHttpsUpstream(ca, ['registry.test'], frontHandler);
  storage = await startHttpsUpstream(ca, ['storage.test'], storageHandler);
  upstream = await startHttpsUpstream(ca, [HOST]);
}, 120_000);

afterAll(async () => {
  for (const r of running) {
    await r.agent.close();
    await r.sidecar.stop();
  }
  await front?.close();
  await storage?.close();
  await upstream?.close();
  if (registry) await stopProcess(registry);
});

describe('policy.bundle oci: a signed bundle from a registry', () => {
  test('pulled by tag through the token flow; the credentials never reach the storage origin', async () => {
    await pushBundle('prod', bundles.v1!);
    const s = await sidecarFor('registry.test/acme/policy:prod', { username: USER, password: PASSWORD });
    expect(s.sidecar.engine.revision).toBe('r-1');
    expect(await status(s)).toBe(200);
    const tokenCalls = front.requests.filter((r) => r.url.startsWith('/token'));
    expect(tokenCalls.length).toBeGreaterThanOrEqual(1);
    expect(tokenCalls[0]!.headers.authorization).toBe(`Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`);
    expect(storage.requests.length).toBeGreaterThanOrEqual(1);
    for (const r of storage.requests) expect(r.headers.authorization).toBeUndefined();
    await new Promise((r) => setTimeout(r, 200)); // records are appended after the load callback
    expect(policyLoads(s)).toContain('"source":"oci registry.test/acme/policy:prod"');
    expect(policyLoads(s)).toContain('"signed":{"algorithm":"RS256","key_id":"default"}');
  });

  test('a new push under the tag is in service at the next poll; unchanged manifests pull no layer', async () => {
    const s = running[0]!;
    const session = s.sidecar.sessionId;
    const before = blobGets();
    await new Promise((r) => setTimeout(r, 2500)); // two polls or more, nothing pushed
    expect(blobGets()).toBe(before);
    const latencies: number[] = [];
    for (const [bundle, revision, expected] of [[bundles.v2!, 'r-2', 403], [bundles.v1!, 'r-1', 200]] as const) {
      const started = performance.now();
      await pushBundle('prod', bundle);
      await eventually(`${revision} in service`, () => Promise.resolve(s.sidecar.engine.revision === revision ? true : undefined));
      latencies.push(Math.round(performance.now() - started));
      expect(await status(s)).toBe(expected);
    }
    console.log(`oci bundle reload latency (push of the tag → in service, poll interval 1 s), ms: ${JSON.stringify(latencies)}`);
    expect(s.sidecar.sessionId).toBe(session);
    // Tokens revoked (expired): the next poll gets a new one and carries on.
    tokens.clear();
    await pushBundle('prod', bundles.v3!);
    await eventually('r-3 in service after re-authorizing', () => Promise.resolve(s.sidecar.engine.revision === 'r-3' ? true : undefined));
  });

  test('unsigned, other-key, tampered, corrupted-in-transit and non-bundle artifacts are refused and recorded; the last good one stays', async () => {
    const s = running[0]!;
    const cases: [() => Promise<unknown>, string][] = [
      [() => pushBundle('prod', bundles.unsigned!), 'bundle.unsigned'],
      [() => pushBundle('prod', bundles.otherKey!), 'bundle.signature_invalid'],
      [() => pushBundle('prod', bundles.tampered!), 'bundle.digest_mismatch'],
      [() => push('prod', [{ bytes: bundles.v1!, mediaType: LAYER }, { bytes: bundles.v2!, mediaType: LAYER }]), 'bundle.oci_manifest'],
      [() => push('prod', [{ bytes: bundles.v1!, mediaType: 'application/vnd.oci.image.layer.v1.tar' }]), 'bundle.oci_manifest'],
      [
        async () => {
          corruptBlobs = true;
          await pushBundle('prod', buildBundle(dir, 'r-4', true, key));
        },
        'bundle.oci_digest_mismatch',
      ],
    ];
    for (const [act, code] of cases) {
      const before = await failures(s, code);
      await act();
      await eventually(`the sidecar to refuse (${code})`, async () => ((await failures(s, code)) > before ? true : undefined));
      expect(s.sidecar.engine.revision).toBe('r-3');
      expect(await status(s)).toBe(200);
    }
    corruptBlobs = false;
    await new Promise((r) => setTimeout(r, 200));
    const loads = policyLoads(s);
    for (const code of ['bundle.unsigned', 'bundle.signature_invalid', 'bundle.digest_mismatch', 'bundle.oci_manifest', 'bundle.oci_digest_mismatch']) expect(loads).toContain(`"code":"${code}"`);
    expect(loads).toContain('"keeping":"r-3"');
  });

  test('pinned by digest: exactly that manifest, whatever the tag says later', async () => {
    const digest = await pushBundle('pinned', bundles.v1!);
    const s = await sidecarFor(`registry.test/acme/policy@${digest}`, { username: USER, password: PASSWORD });
    expect(s.sidecar.engine.revision).toBe('r-1');
    await pushBundle('pinned', bundles.v2!);
    await new Promise((r) => setTimeout(r, 1500));
    expect(s.sidecar.engine.revision).toBe('r-1');
  });

  test('wrong pull credentials and no bundle ever: not ready, every request denied, recorded', async () => {
    const s = await sidecarFor('registry.test/acme/policy:prod', { username: USER, password: 'wrong' });
    expect(s.sidecar.engine.ready).toBe(false);
    expect(await status(s)).toBe(403);
    const ready = await request(`${s.sidecar.adminUrl}/readyz`);
    await ready.body.dump();
    expect(ready.statusCode).toBe(503);
    expect(await failures(s, 'bundle.source_unreachable')).toBeGreaterThanOrEqual(1);
  });
});
