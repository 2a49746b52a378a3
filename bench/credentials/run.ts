// bench/credentials: what just-in-time credentials cost.
//  1. Re-signing one AWS request (µs, p50/p99), sluice's full path (parse the agent's signature,
//     choose the payload hash, sign with @smithy/signature-v4) beside the bare smithy signer on a
//     fresh request (what an SDK does) and a minimal node:crypto SigV4 signer — the floor.
//  2. The cache under a burst: 2,000 concurrent AWS calls through a cold sidecar, then steady
//     state — issuances, cache hits and the hit rate (from the sidecar's own metrics).
//  3. Added latency through the real sidecar: a direct HTTPS call (floor), an unsigned call through
//     the sidecar, and a placeholder-signed S3 call that the sidecar re-signs.
// STS is a local stub (no moto: the credential round trip is not what is measured here).
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { pino } from 'pino';
import { Agent, ProxyAgent, request } from 'undici';
import { refSignHeaders } from '../../e2e/support/sts/sigv4-reference.ts';
import { startTestSidecar } from '../../testkit/sidecar/test-sidecar.ts';
import { createTestCa, startHttpsUpstream } from '../../testkit/sidecar/upstreams.ts';
import { resignAwsRequest } from '../../sidecar/src/credentials/aws/resign.ts';
import type { AwsRequest } from '../../sidecar/src/credentials/aws/resign.ts';
import { percentile, sortedCopy, table } from '../lib/stats.ts';

const ITER = Number(process.env.BENCH_ITERATIONS ?? 20_000);
const LATENCY_ITER = Number(process.env.BENCH_LATENCY_ITERATIONS ?? 3000);
const BURST = Number(process.env.BENCH_BURST ?? 2000);
const placeholder = { accessKeyId: 'SLUICEPLACEHOLDER', secretAccessKey: 'sluice-placeholder' };
const real = { accessKeyId: 'ASIABENCHKEY00000001', secretAccessKey: 'benchSecretKey/0123456789+abcdefghijklmn', sessionToken: 'FwoGZXIvYXdzEJr//////////wEaDbench'.padEnd(400, 'x'), expiresAt: Date.now() + 3600_000 };
const amz = (d = new Date()) => d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');

interface Stat {
  p50: number;
  p99: number;
  mean: number;
}

function stat(samples: Float64Array): Stat {
  const s = sortedCopy(samples);
  return { p50: percentile(s, 50), p99: percentile(s, 99), mean: samples.reduce((a, b) => a + b, 0) / samples.length };
}

async function timeAsync(n: number, fn: (i: number) => Promise<unknown>): Promise<Stat> {
  for (let i = 0; i < Math.min(2000, n); i++) await fn(i);
  const samples = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await fn(i);
    samples[i] = Number(process.hrtime.bigint() - t0) / 1e3;
  }
  return stat(samples);
}

// ---- 1. re-signing cost
async function benchResign() {
  const s3Get = refSignHeaders({ method: 'GET', path: '/bucket/reports/2026/q1.csv?versionId=3', headers: { host: 'bucket.s3.us-east-1.amazonaws.com', 'x-amz-content-sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', accept: '*/*' } }, placeholder, 'us-east-1', 's3', amz());
  const form = Buffer.from('Action=GetCallerIdentity&Version=2011-06-15');
  const stsPost = refSignHeaders({ method: 'POST', path: '/', headers: { host: 'sts.us-east-1.amazonaws.com', 'content-type': 'application/x-www-form-urlencoded; charset=utf-8', 'content-length': String(form.length) }, body: form }, placeholder, 'us-east-1', 'sts', amz());
  const asReq = (r: typeof s3Get, body?: Buffer): AwsRequest => {
    const { host, ...headers } = r.headers;
    return { method: r.method, host: host!, path: r.path, headers, body: body ? Readable.from([body]) : null };
  };
  const opts = { maxSignedBodyBytes: 1 << 20, maxChunkBytes: 1 << 20 };
  const now = new Date();
  const signer = new SignatureV4({ credentials: real, region: 'us-east-1', service: 's3', sha256: Hash.bind(null, 'sha256'), uriEscapePath: false, applyChecksum: false });
  const rows = {
    'sluice re-sign S3 GET (header)': await timeAsync(ITER, () => resignAwsRequest(asReq(s3Get), real, { ...opts, now })),
    'sluice re-sign STS POST (body hashed)': await timeAsync(ITER, () => resignAwsRequest(asReq(stsPost, form), real, { ...opts, now })),
    'sluice re-presign S3 URL': await timeAsync(ITER, () =>
      resignAwsRequest({ method: 'GET', host: 'bucket.s3.amazonaws.com', path: `/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=SLUICEPLACEHOLDER%2F${amz().slice(0, 8)}%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=${amz()}&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature=00`, headers: {}, body: null }, real, { ...opts, now }),
    ),
    'smithy SignatureV4.sign, fresh S3 GET (SDK path)': await timeAsync(ITER, () =>
      signer.sign({ method: 'GET', protocol: 'https:', hostname: 'bucket.s3.us-east-1.amazonaws.com', path: '/bucket/reports/2026/q1.csv', query: { versionId: '3' }, headers: { host: 'bucket.s3.us-east-1.amazonaws.com', 'x-amz-content-sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', accept: '*/*' } }, { signingDate: now }),
    ),
    'independent node:crypto SigV4 (no key cache)': await timeAsync(ITER, () => Promise.resolve(refSignHeaders({ method: 'GET', path: '/bucket/reports/2026/q1.csv?versionId=3', headers: { host: 'bucket.s3.us-east-1.amazonaws.com', 'x-amz-content-sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', accept: '*/*' } }, real, 'us-east-1', 's3', amz(now)))),
  };
  return rows;
}

// ---- 2 + 3. through the sidecar
function stsStub(): (req: unknown, res: ServerResponse, body: Buffer) => void {
  return (_req, res) => {
    const exp = new Date(Date.now() + 3600_000).toISOString();
    const xml = `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>${real.accessKeyId}</AccessKeyId><SecretAccessKey>${real.secretAccessKey}</SecretAccessKey><SessionToken>${real.sessionToken}</SessionToken><Expiration>${exp}</Expiration></Credentials><AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/r/s</Arn><AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>`;
    // A realistic STS round trip: the cache, not the stub, is what keeps the burst cheap.
    setTimeout(() => res.writeHead(200, { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(xml) }).end(xml), 30);
  };
}

async function benchThroughSidecar() {
  const ca = await createTestCa();
  const body = Buffer.from('{"ok":true}\n');
  const names = ['s3.amazonaws.com', 'registry.npmjs.org', 'localhost'];
  const upstream = await startHttpsUpstream(ca, names, (_req, res) => res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }).end(body));
  upstream.requests.length = 0;
  const sts = await startHttpsUpstream(ca, ['sts.amazonaws.com'], stsStub());
  const tokenDir = mkdtempSync(join(tmpdir(), 'sluice-bench-tokens-'));
  const claims = Buffer.from(JSON.stringify({ exp: Math.floor(Date.now() / 1000) + 3600, aud: ['sts.amazonaws.com'] })).toString('base64url');
  writeFileSync(join(tokenDir, 'sts.amazonaws.com'), `eyJhbGciOiJFUzI1NiJ9.${claims}.c2ln`);
  const stageMs: number[] = [];
  const start = () =>
    startTestSidecar({
      events: { requestDone: (ctx) => ctx.timings.credentials_ms !== undefined && stageMs.push(ctx.timings.credentials_ms) },
      resolve: { 's3.amazonaws.com': upstream.dial, 'registry.npmjs.org': upstream.dial, 'sts.amazonaws.com': sts.dial },
      extraRootsFiles: [ca.caFile],
      logger: pino({ level: 'silent' }),
      config: { credentials: { tokenDir, aws: { roles: [{ roleArn: 'arn:aws:iam::123456789012:role/bench' }] } } },
    });

  // 2. burst on a cold cache
  const cold = await start();
  const proxyFor = (s: Awaited<ReturnType<typeof start>>) => new ProxyAgent({ uri: s.proxyUrl, requestTls: { ca: readFileSync(s.trust.caFile, 'utf8') }, connections: 64 });
  const coldProxy = proxyFor(cold);
  const s3Headers = () => {
    const signed = refSignHeaders({ method: 'GET', path: '/bench-bucket/object.json', headers: { host: 's3.amazonaws.com', 'x-amz-content-sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' } }, placeholder, 'us-east-1', 's3', amz());
    const { host: _h, ...rest } = signed.headers;
    return rest;
  };
  // The agent's placeholder signature is made once: its cost is the agent's, not the sidecar's.
  const agentHeaders = s3Headers();
  const s3Get = async (dispatcher: ProxyAgent) => {
    const res = await request('https://s3.amazonaws.com/bench-bucket/object.json', { headers: agentHeaders, dispatcher });
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`S3 GET through the sidecar: ${res.statusCode}`);
  };
  const burstStarted = process.hrtime.bigint();
  await Promise.all(Array.from({ length: BURST }, () => s3Get(coldProxy)));
  const burstMs = Number(process.hrtime.bigint() - burstStarted) / 1e6;
  const counters = async () => {
    const text = await cold.registry.metrics();
    const read = (name: string) => Number(new RegExp(`^${name}\\{provider="aws-sts"[^}]*\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
    return { issued: read('sluice_credentials_issued_total'), hits: read('sluice_credentials_cache_hits_total'), misses: read('sluice_credentials_cache_misses_total') };
  };
  const afterBurst = await counters();
  await Promise.all(Array.from({ length: BURST }, () => s3Get(coldProxy)));
  const afterSteady = await counters();
  await coldProxy.close();
  await cold.stop();

  // 3. latency: direct, unsigned via sidecar, signed via sidecar
  const sidecar = await start();
  stageMs.length = 0;
  const proxy = proxyFor(sidecar);
  const direct = new Agent({ connect: { ca: readFileSync(ca.caFile, 'utf8') } });
  const directUrl = `https://localhost:${upstream.address.port}/bench-bucket/object.json`;
  const latency = {
    'direct HTTPS (floor)': await timeAsync(LATENCY_ITER, async () => {
      const res = await request(directUrl, { dispatcher: direct });
      await res.body.dump();
    }),
    'via sidecar, unsigned (npm GET)': await timeAsync(LATENCY_ITER, async () => {
      const res = await request('https://registry.npmjs.org/left-pad', { dispatcher: proxy });
      await res.body.dump();
      if (res.statusCode !== 200) throw new Error(`npm GET: ${res.statusCode}`);
    }),
    'via sidecar, S3 GET re-signed': await timeAsync(LATENCY_ITER, () => s3Get(proxy)),
  };
  const stage = stat(Float64Array.from(stageMs.slice(-LATENCY_ITER), (v) => v * 1000));
  await proxy.close();
  await direct.close();
  await sidecar.stop();
  await upstream.close();
  await sts.close();
  return { burst: { requests: BURST, ms: burstMs, afterBurst, afterSteady }, latency, stage };
}

const resign = await benchResign();
const through = await benchThroughSidecar();

console.log(`\nRe-signing one AWS request (µs, ${ITER} iterations each, one thread)\n`);
const base = resign['smithy SignatureV4.sign, fresh S3 GET (SDK path)'];
console.log(table(['path', 'p50 µs', 'p99 µs', 'mean µs', 'vs SDK signer (p50)'], Object.entries(resign).map(([k, v]) => [k, v.p50, v.p99, v.mean, `${(v.p50 / base.p50).toFixed(2)}x`])));

const { afterBurst, afterSteady, requests, ms } = through.burst;
const steadyHits = afterSteady.hits - afterBurst.hits;
const steadyMisses = afterSteady.misses - afterBurst.misses;
console.log(`\nCache under a burst: ${requests} concurrent S3 GETs through a cold sidecar (STS stub answers in 30 ms)\n`);
console.log(
  table(
    ['phase', 'requests', 'STS issuances', 'served from cache', 'waited for the one issuance', 'hit rate'],
    [
      ['cold burst', requests, afterBurst.issued, afterBurst.hits, afterBurst.misses, `${((100 * afterBurst.hits) / requests).toFixed(2)}%`],
      ['steady burst', requests, afterSteady.issued - afterBurst.issued, steadyHits, steadyMisses, `${((100 * steadyHits) / requests).toFixed(2)}%`],
    ],
  ),
);
console.log(`cold burst wall time ${ms.toFixed(0)} ms; issuances per request ${(afterBurst.issued / requests).toFixed(5)}`);

console.log(`\nAdded latency through the sidecar (µs, ${LATENCY_ITER} sequential keep-alive requests each)\n`);
const d = through.latency['direct HTTPS (floor)'];
console.log(
  table(
    ['path', 'p50 µs', 'p99 µs', 'added p50 µs', 'added p99 µs'],
    Object.entries(through.latency).map(([k, v]) => [k, v.p50, v.p99, v.p50 - d.p50, v.p99 - d.p99]),
  ),
);
const u = through.latency['via sidecar, unsigned (npm GET)'];
const s = through.latency['via sidecar, S3 GET re-signed'];
console.log(`signed vs unsigned through the sidecar: +${(s.p50 - u.p50).toFixed(0)} µs p50, +${(s.p99 - u.p99).toFixed(0)} µs p99 (ratio p50 ${(s.p50 / u.p50).toFixed(2)}x)`);
console.log(`the credentials stage itself (cache lookup + re-sign + response hook), per signed request: p50 ${through.stage.p50.toFixed(0)} µs, p99 ${through.stage.p99.toFixed(0)} µs`);

const out = join(import.meta.dirname, '..', 'results');
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'credentials.json'), `${JSON.stringify({ date: new Date().toISOString(), resign, burst: through.burst, latency: through.latency, stage: through.stage }, null, 2)}\n`);
console.log(`\nwrote bench/results/credentials.json`);
