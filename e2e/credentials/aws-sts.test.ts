// aws-sts end to end: the real AWS CLI as the agent with only the webhook's placeholder keys,
// through the sidecar, against moto behind a verifying hop. The sidecar trades the pod's projected
// token (minted by the real kube-apiserver) for the role's temporary credentials and re-signs
// every call; moto checks each signature (botocore) and the role's IAM policy, the hop checks the
// web identity against the apiserver's JWKS and the presigned/aws-chunked signatures moto skips.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { pino } from 'pino';
import { ProxyAgent, request } from 'undici';
import type { AuditRecord } from '../../api/src/index.ts';
import { AuditRecorder } from '../../sidecar/src/audit/recorder.ts';
import { UndiciRequestHandler } from '../../sidecar/src/credentials/aws/undici-request-handler.ts';
import type { RequestContext } from '../../sidecar/src/proxy/request-context.ts';
import { KubeCluster } from '../support/kube/cluster.ts';
import { mintToken, startStsWorld, writeProjectedToken } from '../support/sts/sts-world.ts';
import type { StsWorld } from '../support/sts/sts-world.ts';
import type { HopRecord } from '../support/sts/verifying-hop.ts';
import { refSignHeaders } from '../support/sts/sigv4-reference.ts';
import { startTestSidecar } from '../../testkit/sidecar/test-sidecar.ts';
import type { TestSidecar } from '../../testkit/sidecar/test-sidecar.ts';
import { Agent } from './agent.ts';
import { buildDefaultPolicyWith } from './policy-bundle.ts';

// Real clients (the AWS CLI starts Python each time) on a shared, busy machine.
jest.setTimeout(60_000);

const NS = 'agents';
const SA = 'coder';
const BUCKET = 'sluice-agent-bucket';
const placeholder = { accessKeyId: 'SLUICEPLACEHOLDER', secretAccessKey: 'sluice-placeholder' };

let cluster: KubeCluster;
let world: StsWorld;
let sidecar: TestSidecar;
let agent: Agent;
let recorder: AuditRecorder;
let spoolDir: string;
let tokenDir: string;
let bundle: string;
const logLines: string[] = [];
const audited: Promise<unknown>[] = [];

function metric(text: string, name: string, labels: Record<string, string>): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (want.every((w) => line.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

async function metrics(s: TestSidecar = sidecar): Promise<string> {
  return s.registry.metrics();
}

function auditRecord(ctx: RequestContext): AuditRecord {
  const s = ctx.summary;
  return {
    kind: 'request',
    pod: { namespace: NS, name: 'coder-0', service_account: SA },
    request_id: ctx.id,
    ...(s ? { request: { method: s.method, scheme: s.scheme, host: s.host, port: s.port, path: s.path, facts: ctx.facts } } : {}),
    ...(ctx.evaluation ? { decision: { action: ctx.answer?.kind === 'deny' ? 'deny' : ctx.action === 'hold' ? 'hold' : 'allow', code: ctx.answer?.code ?? ctx.evaluation.decision.code, reason: ctx.answer?.reason ?? ctx.evaluation.decision.reason } } : {}),
    ...(ctx.status === undefined ? {} : { status: ctx.status }),
    bytes: { in: ctx.bytesIn, out: ctx.bytesOut },
    timings: ctx.timings,
    detail: { headers: ctx.summary?.headers ?? {} },
  };
}

/** A placeholder-signed request sent through the sidecar by a Node agent; returns status, headers, body. */
async function viaSidecar(s: TestSidecar, method: string, host: string, path: string, headers: Record<string, string>, body?: Buffer, service = 'sts') {
  const signed = refSignHeaders({ method, path, headers: { host, ...headers }, body }, placeholder, 'us-east-1', service, new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, ''));
  const { host: _h, ...rest } = signed.headers;
  const dispatcher = new ProxyAgent({ uri: s.proxyUrl, requestTls: { ca: readFileSync(s.trust.caFile, 'utf8') } });
  try {
    const res = await request(`https://${host}${path}`, { method: method as 'GET', headers: rest, body: body ?? null, dispatcher });
    const text = await res.body.text();
    agent.transcript.push(text, JSON.stringify(res.headers));
    return { status: res.statusCode, headers: res.headers, text };
  } finally {
    await dispatcher.close();
  }
}

beforeAll(async () => {
  cluster = await KubeCluster.start({ namespaces: [{ name: NS }] });
  await cluster.request('admin', 'POST', `/api/v1/namespaces/${NS}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: SA } });
  world = await startStsWorld(cluster, { namespace: NS, serviceAccount: SA, bucket: BUCKET });
  tokenDir = mkdtempSync(join(tmpdir(), 'sluice-tokens-'));
  writeProjectedToken(tokenDir, 'sts.amazonaws.com', await mintToken(cluster, NS, SA, ['sts.amazonaws.com']));
  spoolDir = mkdtempSync(join(tmpdir(), 'sluice-audit-'));
  recorder = new AuditRecorder({ spoolDir, pod: { namespace: NS, name: 'coder-0', service_account: SA }, spool: { fsync: 'none' } });
  await recorder.start();
  const logStream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logLines.push(chunk.toString());
      cb();
    },
  });
  // The default library with response masking off: masking strips ETag and Content-Length from
  // S3 answers (UploadPart, GetObject), which the AWS CLI cannot do without — a masking/S3 clash
  // outside credentials, reported separately. Everything else is the shipped policy.
  // The test bucket is the organisation's (the default organisation owns acme-* buckets only).
  bundle = await buildDefaultPolicyWith({ mask_rules: [] }, { aws: { buckets: [BUCKET] } });
  sidecar = await startTestSidecar({
    bundle,
    resolve: world.resolve,
    extraRootsFiles: [world.ca.caFile],
    logger: pino({ level: 'debug' }, logStream),
    config: { credentials: { tokenDir, aws: { roles: [{ namespace: NS, serviceAccount: SA, roleArn: world.roleArn }] } } },
    events: { requestDone: (ctx) => audited.push(recorder.record(auditRecord(ctx))) },
  });
  agent = new Agent({
    HTTPS_PROXY: sidecar.proxyUrl,
    HTTP_PROXY: sidecar.proxyUrl,
    https_proxy: sidecar.proxyUrl,
    http_proxy: sidecar.proxyUrl,
    NO_PROXY: 'localhost,127.0.0.1,::1',
    no_proxy: 'localhost,127.0.0.1,::1',
    AWS_CA_BUNDLE: sidecar.trust.bundleFile,
    SSL_CERT_FILE: sidecar.trust.bundleFile,
    CURL_CA_BUNDLE: sidecar.trust.bundleFile,
  });
}, 180_000);

afterAll(async () => {
  await sidecar?.stop();
  await recorder?.stop({ drainTimeoutMs: 100 });
  await world?.close();
  await cluster?.stop();
});

describe('the AWS CLI through the sidecar, with placeholder keys only', () => {
  test('sts get-caller-identity answers with the assumed role', async () => {
    const run = await agent.aws(['sts', 'get-caller-identity', '--output', 'json']);
    expect(run).toMatchObject({ code: 0 });
    const who = JSON.parse(run.stdout) as { Arn: string; Account: string };
    expect(who.Arn).toBe(`arn:aws:sts::123456789012:assumed-role/agent-role/sluice-${NS}-coder-0`);
    const hopSawIdentity = world.hop.records.find((r) => r.check.startsWith('web identity'));
    expect(hopSawIdentity?.check).toBe(`web identity system:serviceaccount:${NS}:${SA} verified`);
  });

  test('s3 ls, cp up and cp down work with the role', async () => {
    const file = join(agent.home, 'hello.txt');
    writeFileSync(file, 'hello from the agent\n');
    expect(await agent.aws(['s3', 'cp', file, `s3://${BUCKET}/hello.txt`])).toMatchObject({ code: 0 });
    const ls = await agent.aws(['s3', 'ls', `s3://${BUCKET}/`]);
    expect(ls).toMatchObject({ code: 0 });
    expect(ls.stdout).toContain('hello.txt');
    const buckets = await agent.aws(['s3', 'ls']);
    expect(buckets.stdout).toContain(BUCKET);
    const down = await agent.aws(['s3', 'cp', `s3://${BUCKET}/hello.txt`, '-']);
    expect(down).toMatchObject({ code: 0, stdout: 'hello from the agent\n' });
  });

  test('a multipart upload (20 MiB) arrives whole', async () => {
    const data = randomBytes(20 * 1024 * 1024);
    const file = join(agent.home, 'big.bin');
    writeFileSync(file, data);
    const up = await agent.aws(['s3', 'cp', file, `s3://${BUCKET}/big.bin`]);
    expect(up).toMatchObject({ code: 0 });
    expect(world.hop.records.filter((r) => r.method === 'PUT' && /[?&]partNumber=/.test(r.url) && r.status === 200).length).toBeGreaterThanOrEqual(2);
    const stored = await world.moto.s3('GET', `/${BUCKET}/big.bin`, world.admin);
    expect(stored.status).toBe(200);
    expect(createHash('sha256').update(stored.body).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
  }, 120_000);

  test.each([
    ['SigV4 (s3v4)', '[default]\ns3 =\n    signature_version = s3v4\n', /X-Amz-Credential=SLUICEPLACEHOLDER/],
    ['SigV2 (AWS CLI v1 default), re-presigned as SigV4', '', /AWSAccessKeyId=SLUICEPLACEHOLDER/],
  ])('a presigned URL made offline with placeholder keys works with curl: %s', async (_name, config, shape) => {
    const configFile = join(agent.home, `presign-${config.length}.cfg`);
    writeFileSync(configFile, config);
    const presign = await agent.aws(['s3', 'presign', `s3://${BUCKET}/hello.txt`, '--expires-in', '300'], { AWS_CONFIG_FILE: configFile });
    expect(presign).toMatchObject({ code: 0 });
    const url = presign.stdout.trim();
    expect(url).toMatch(shape);
    const before = world.hop.records.length;
    const curl = await agent.run('curl', ['-sS', '--fail-with-body', '--proxy', sidecar.proxyUrl, '--cacert', sidecar.trust.bundleFile, url]);
    expect(curl).toMatchObject({ code: 0, stdout: 'hello from the agent\n' });
    expect(world.hop.records.slice(before).map((r) => [r.check, r.status])).toEqual([['presigned verified', 200]]);
  });

  test('a chunk-signed aws-chunked upload is re-signed chunk by chunk', async () => {
    const data = Buffer.alloc(150_000, 'c');
    const chunks = [data.subarray(0, 65_536), data.subarray(65_536, 131_072), data.subarray(131_072)];
    const frame = (c: Buffer) => Buffer.concat([Buffer.from(`${c.length.toString(16)};chunk-signature=${'0'.repeat(64)}\r\n`), c, Buffer.from('\r\n')]);
    const body = Buffer.concat([...chunks.map(frame), Buffer.from(`0;chunk-signature=${'0'.repeat(64)}\r\n\r\n`)]);
    const res = await viaSidecar(
      sidecar,
      'PUT',
      `${BUCKET}.s3.amazonaws.com`,
      '/chunked.bin',
      { 'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD', 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': String(data.length), 'content-length': String(body.length) },
      body,
      's3',
    );
    expect(res.status).toBe(200);
    expect(world.hop.records.some((r) => r.check === 'aws-chunked verified' && r.url === '/chunked.bin')).toBe(true);
    const stored = await world.moto.s3('GET', `/${BUCKET}/chunked.bin`, world.admin);
    expect(stored.body.equals(data)).toBe(true);
  });

  test('the AWS SDK for JavaScript v3 as the agent: S3 streaming put, get, list; STS', async () => {
    const dispatcher = new ProxyAgent({ uri: sidecar.proxyUrl, requestTls: { ca: readFileSync(sidecar.trust.caFile, 'utf8') } });
    const requestHandler = new UndiciRequestHandler(dispatcher, 30_000);
    const config = { region: 'us-east-1', credentials: placeholder, requestHandler };
    try {
      const s3 = new S3Client(config);
      const data = randomBytes(3 * 1024 * 1024 + 17);
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'sdk/stream.bin', Body: Readable.from([data.subarray(0, 1 << 20), data.subarray(1 << 20)]), ContentLength: data.length }));
      const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'sdk/stream.bin' }));
      expect(Buffer.from(await got.Body!.transformToByteArray()).equals(data)).toBe(true);
      const list = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'sdk/' }));
      expect(list.Contents?.map((o) => o.Key)).toEqual(['sdk/stream.bin']);
      const who = await new STSClient(config).send(new GetCallerIdentityCommand({}));
      expect(who.Arn).toBe(`arn:aws:sts::123456789012:assumed-role/agent-role/sluice-${NS}-coder-0`);
      agent.transcript.push(JSON.stringify(who), JSON.stringify(list));
    } finally {
      await dispatcher.close();
    }
  });

  test('a destructive call is held by policy and never signed or sent', async () => {
    const before = world.hop.records.length;
    const rm = await agent.aws(['s3', 'rm', `s3://${BUCKET}/hello.txt`]);
    expect(rm.code).not.toBe(0);
    expect(world.hop.records.slice(before).some((r) => r.method === 'DELETE')).toBe(false);
  });

  test('one issuance served the whole burst; the agent never saw a key that works without the sidecar', async () => {
    const text = await metrics();
    expect(metric(text, 'sluice_credentials_issued_total', { provider: 'aws-sts', jit: 'true' })).toBe(1);
    expect(metric(text, 'sluice_credentials_cache_hits_total', { provider: 'aws-sts' })).toBeGreaterThan(5);
    expect(metric(text, 'sluice_credentials_injected_total', { provider: 'aws-sts', jit: 'true' })).toBeGreaterThan(5);
    const ttl = metric(text, 'sluice_credentials_time_to_expiry_seconds', { provider: 'aws-sts' });
    expect(ttl).toBeGreaterThan(3000);
    expect(ttl).toBeLessThanOrEqual(3600);
    expect(world.hop.issued.size).toBe(1);
  });
});

// S3 bucket names are global: the test bucket is own by name only, so the sidecar makes S3 check
// its owner (x-amz-expected-bucket-owner = the assumed role's account). moto 5.2.5 accepts the
// header without enforcing it, so this checks what moto receives: the header, the role's account,
// covered by the signature moto verified (botocore over SignedHeaders); S3 itself does the refusing.
describe('S3 bucket owner checks', () => {
  const ACCOUNT = '123456789012'; // the account moto created agent-role in
  const signedHeaders = (r: HopRecord) => /SignedHeaders=([^,]+)/.exec(String(r.headers.authorization ?? ''))?.[1]?.split(';') ?? [];

  test('PutObject and CopyObject carry the role account as expected owner, signed; ListBuckets and STS get nothing', async () => {
    const before = world.hop.records.length;
    const file = join(agent.home, 'owned.txt');
    writeFileSync(file, 'owner checked\n');
    expect(await agent.aws(['s3', 'cp', file, `s3://${BUCKET}/owned.txt`])).toMatchObject({ code: 0 });
    expect(await agent.aws(['s3', 'cp', `s3://${BUCKET}/owned.txt`, `s3://${BUCKET}/owned-copy.txt`])).toMatchObject({ code: 0 });
    expect(await agent.aws(['s3api', 'list-buckets'])).toMatchObject({ code: 0 });
    expect(await agent.aws(['sts', 'get-caller-identity'])).toMatchObject({ code: 0 });
    const seen = world.hop.records.slice(before);
    const put = seen.find((r) => r.method === 'PUT' && r.url.includes('owned.txt') && r.headers['x-amz-copy-source'] === undefined);
    expect(put).toMatchObject({ status: 200, headers: { 'x-amz-expected-bucket-owner': ACCOUNT } });
    expect(signedHeaders(put!)).toContain('x-amz-expected-bucket-owner');
    expect(put!.headers['x-amz-source-expected-bucket-owner']).toBeUndefined();
    const copy = seen.find((r) => r.method === 'PUT' && r.url.includes('owned-copy.txt'));
    expect(copy).toMatchObject({ status: 200, headers: { 'x-amz-expected-bucket-owner': ACCOUNT, 'x-amz-source-expected-bucket-owner': ACCOUNT } });
    expect(signedHeaders(copy!)).toEqual(expect.arrayContaining(['x-amz-expected-bucket-owner', 'x-amz-source-expected-bucket-owner']));
    const bucketless = seen.filter((r) => r.host.startsWith('s3.') && /^\/(\?|$)/.test(r.url));
    const sts = seen.filter((r) => r.host.startsWith('sts.') && r.headers.authorization !== undefined);
    expect(bucketless.length).toBeGreaterThan(0);
    expect(sts.length).toBeGreaterThan(0);
    for (const r of [...bucketless, ...sts]) expect(r.headers['x-amz-expected-bucket-owner']).toBeUndefined();
    const stored = await world.moto.s3('GET', `/${BUCKET}/owned-copy.txt`, world.admin);
    expect(stored.body.toString()).toBe('owner checked\n');
  });

  test('a presigned URL is presigned anew with the owner header signed', async () => {
    const presign = await agent.aws(['s3', 'presign', `s3://${BUCKET}/owned.txt`, '--expires-in', '300']);
    const before = world.hop.records.length;
    const curl = await agent.run('curl', ['-sS', '--fail-with-body', '--proxy', sidecar.proxyUrl, '--cacert', sidecar.trust.bundleFile, presign.stdout.trim()]);
    expect(curl).toMatchObject({ code: 0, stdout: 'owner checked\n' });
    const [got] = world.hop.records.slice(before);
    expect(got).toMatchObject({ check: 'presigned verified', status: 200, headers: { 'x-amz-expected-bucket-owner': ACCOUNT } });
    expect(new URLSearchParams(got!.url.split('?')[1]).get('X-Amz-SignedHeaders')).toBe('host;x-amz-expected-bucket-owner');
  });

  test("the agent's own expected owner: the same account passes, another account is refused before S3", async () => {
    const same = await agent.aws(['s3api', 'head-object', '--bucket', BUCKET, '--key', 'owned.txt', '--expected-bucket-owner', ACCOUNT]);
    expect(same).toMatchObject({ code: 0 });
    const before = world.hop.records.length;
    const other = await agent.aws(['s3api', 'head-object', '--bucket', BUCKET, '--key', 'owned.txt', '--expected-bucket-owner', '999999999999']);
    expect(other.code).not.toBe(0);
    expect(other.stderr).toMatch(/403/);
    expect(world.hop.records.slice(before)).toEqual([]);
    expect(metric(await metrics(), 'sluice_credentials_errors_total', { provider: 'aws-sts', code: 'credentials.aws_bucket_owner_conflict' })).toBe(1);
  });
});

describe('without the sidecar', () => {
  test('the same calls with the placeholder keys are refused by AWS', async () => {
    const direct = { AWS_CA_BUNDLE: world.ca.caFile, HTTPS_PROXY: '', https_proxy: '' };
    const endpoint = `https://localhost:${world.hop.port}`;
    const sts = await agent.aws(['--endpoint-url', endpoint, 'sts', 'get-caller-identity'], direct);
    expect(sts.code).not.toBe(0);
    expect(sts.stderr).toMatch(/InvalidClientTokenId|security token included in the request is invalid/);
    const s3 = await agent.aws(['--endpoint-url', endpoint, 's3', 'ls', `s3://${BUCKET}/`], direct);
    expect(s3.code).not.toBe(0);
    expect(s3.stderr).toMatch(/InvalidAccessKeyId|AccessDenied|Forbidden|403/);
  });
});

describe('the verifying hop holds the sidecar to STS rules', () => {
  async function sidecarWith(audience: string, token: string, hopNowOffsetMs = 0): Promise<TestSidecar> {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-tokens-'));
    writeProjectedToken(dir, audience, token);
    world.hop.clockOffsetMs = hopNowOffsetMs;
    return startTestSidecar({
      bundle,
      resolve: world.resolve,
      extraRootsFiles: [world.ca.caFile],
      config: { credentials: { tokenDir: dir, aws: { audience, roles: [{ namespace: NS, roleArn: world.roleArn }] } } },
    });
  }

  async function callerIdentity(s: TestSidecar) {
    const form = Buffer.from('Action=GetCallerIdentity&Version=2011-06-15');
    return viaSidecar(s, 'POST', 'sts.amazonaws.com', '/', { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }, form);
  }

  test('a token for the wrong audience is refused: the request fails closed with 502 naming aws-sts', async () => {
    const s = await sidecarWith('not-sts.example', await mintToken(cluster, NS, SA, ['not-sts.example']));
    try {
      const res = await callerIdentity(s);
      expect(res.status).toBe(502);
      expect(res.headers['x-sluice-decision']).toBe('error; code=credentials.provider_rejected');
      expect(JSON.parse(res.text)).toMatchObject({ error: 'credentials.provider_rejected', reason: expect.stringContaining('aws-sts') });
      expect(world.hop.rejected.at(-1)).toMatch(/audience not-sts.example is not sts.amazonaws.com/);
      expect(metric(await metrics(s), 'sluice_credentials_errors_total', { provider: 'aws-sts', code: 'credentials.provider_rejected' })).toBe(1);
    } finally {
      await s.stop();
    }
  });

  test('an expired token is refused (the hop clock is two hours ahead)', async () => {
    const s = await sidecarWith('sts.amazonaws.com', await mintToken(cluster, NS, SA, ['sts.amazonaws.com'], 3600), 2 * 3600_000);
    try {
      const res = await callerIdentity(s);
      expect(res.status).toBe(502);
      expect(world.hop.rejected.at(-1)).toBe('token expired');
    } finally {
      world.hop.clockOffsetMs = 0;
      await s.stop();
    }
  });

  test('an unreachable STS fails the request closed with 503 and the metric', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-tokens-'));
    writeProjectedToken(dir, 'sts.amazonaws.com', await mintToken(cluster, NS, SA, ['sts.amazonaws.com']));
    const s = await startTestSidecar({
      bundle,
      resolve: { ...world.resolve, 'sts.amazonaws.com': '127.0.0.1:9' },
      extraRootsFiles: [world.ca.caFile],
      config: { credentials: { tokenDir: dir, aws: { roles: [{ roleArn: world.roleArn }], maxAttempts: 1 } } },
    });
    try {
      const res = await callerIdentity(s);
      expect(res.status).toBe(503);
      expect(JSON.parse(res.text)).toMatchObject({ error: 'credentials.provider_unavailable', reason: expect.stringMatching(/^aws-sts: STS is unreachable/) });
      expect(metric(await metrics(s), 'sluice_credentials_errors_total', { provider: 'aws-sts', code: 'credentials.provider_unavailable' })).toBe(1);
    } finally {
      await s.stop();
    }
  });
});

describe('no-secret proof', () => {
  test('the real credentials appear nowhere the agent or the audit trail can see', async () => {
    await Promise.all(audited);
    const secrets: string[] = [];
    for (const c of world.hop.issued.values()) secrets.push(c.accessKeyId, c.secretAccessKey, c.sessionToken!);
    secrets.push(readFileSync(join(tokenDir, 'sts.amazonaws.com'), 'utf8').trim());
    expect(secrets.length).toBeGreaterThanOrEqual(4);
    // What the agent holds: its environment, every file under its home, everything it received.
    const files = (dir: string): string[] =>
      readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? files(join(dir, n)) : [readFileSync(join(dir, n), 'latin1')]));
    const agentSide = [JSON.stringify(agent.env), ...agent.transcript, ...files(agent.home).filter((f) => f.length < 1024 * 1024)];
    const auditSide = readdirSync(spoolDir).map((n) => readFileSync(join(spoolDir, n), 'utf8'));
    expect(auditSide.join('').length).toBeGreaterThan(1000);
    for (const secret of secrets) {
      for (const seen of agentSide) expect(seen.includes(secret)).toBe(false);
      for (const seen of auditSide) expect(seen.includes(secret)).toBe(false);
      for (const line of logLines) expect(line.includes(secret)).toBe(false);
    }
    // And the agent's own signature never went upstream: every request the hop saw is sluice's.
    const viaSluice = world.hop.records.filter((r) => !r.host.startsWith('localhost'));
    // The shapes this run re-signed: form POST (hashed by sluice), declared hashes, the CLI's
    // unsigned-payload-with-CRC32-trailer uploads, a chunk-signed upload, presigned GETs.
    const shapes = new Set(viaSluice.map((r) => String(r.headers['x-amz-content-sha256'] ?? (r.url.includes('X-Amz-Signature=') ? 'presigned' : 'undeclared')).replace(/^[0-9a-f]{64}$/, 'sha256')));
    expect([...shapes].sort()).toEqual(['STREAMING-AWS4-HMAC-SHA256-PAYLOAD', 'STREAMING-UNSIGNED-PAYLOAD-TRAILER', 'presigned', 'sha256', 'undeclared']);
    expect(viaSluice.length).toBeGreaterThan(10);
    for (const r of viaSluice) expect(JSON.stringify(r.headers) + r.url).not.toContain('SLUICEPLACEHOLDER');
  });
});
