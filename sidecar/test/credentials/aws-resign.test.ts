// Re-signing checked against an independent SigV4 implementation (e2e/support/sts/sigv4-reference.ts,
// node:crypto only) and against the signatures AWS publishes for aws-chunked uploads: the agent
// signs with placeholder keys, sluice re-signs with real ones, the reference verifies with the
// real ones — and nothing of the agent's signature survives.
import { describe, expect, test } from '@jest/globals';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { CredentialError } from '../../src/credentials/errors.ts';
import { bucketOwnerHeaders, resignAwsRequest } from '../../src/credentials/aws/resign.ts';
import { bucketOwners } from '../../src/credentials/aws/aws-sts-provider.ts';
import { arnAccount } from '../../src/credentials/aws/assume-role.ts';
import type { AwsCredentials, AwsRequest, ResignedRequest } from '../../src/credentials/aws/resign.ts';
import { resignAwsChunked } from '../../src/credentials/aws/aws-chunked.ts';
import { EMPTY_HASH, refPresign, refSignHeaders, refVerify, refVerifyChunked, signingKey } from '../../../e2e/support/sts/sigv4-reference.ts';
import type { RefRequest } from '../../../e2e/support/sts/sigv4-reference.ts';

const placeholder = { accessKeyId: 'SLUICEPLACEHOLDER', secretAccessKey: 'sluice-placeholder' };
const NOW = new Date('2026-03-01T12:00:00Z');
const real: AwsCredentials = {
  accessKeyId: 'ASIAREALKEY000000001',
  secretAccessKey: 'realSecret/Key+With=Symbols0123456789abcd',
  sessionToken: 'FwoGZXIvYXdzEJr//////////wEaDreal+session/token==',
  expiresAt: NOW.getTime() + 3600_000,
};
const lookup = (akid: string) => (akid === real.accessKeyId ? real : undefined);
const opts = { now: NOW, maxSignedBodyBytes: 1024 * 1024, maxChunkBytes: 1024 * 1024 };
const agentDate = '20260301T115958Z';

async function collect(body: Readable | Buffer | null): Promise<Buffer> {
  if (body === null) return Buffer.alloc(0);
  if (Buffer.isBuffer(body)) return body;
  const chunks: Buffer[] = [];
  for await (const c of body as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

function asAgent(req: RefRequest, region: string, service: string, body?: Buffer, chunkSize?: number): AwsRequest {
  const signed = refSignHeaders(req, placeholder, region, service, agentDate);
  const { host, ...rest } = signed.headers;
  const stream = body === undefined ? null : chunkSize ? Readable.from(split(body, chunkSize)) : Readable.from([body]);
  return { method: req.method, host: host!, path: req.path, headers: rest, body: stream };
}

function split(b: Buffer, n: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += n) out.push(b.subarray(i, i + n));
  return out;
}

async function verifyOut(req: AwsRequest, out: ResignedRequest): Promise<{ verdict: ReturnType<typeof refVerify>; body: Buffer }> {
  const body = await collect(out.body);
  const verdict = refVerify({ method: req.method, path: out.path, headers: out.headers, body }, lookup, NOW.getTime());
  return { verdict, body };
}

function noAgentTrace(out: ResignedRequest): void {
  const wire = `${out.path}\n${JSON.stringify(out.headers)}`;
  expect(wire).not.toContain('SLUICEPLACEHOLDER');
  expect(wire).not.toContain(agentDate);
}

describe('header-signed requests', () => {
  test('STS query POST: body hashed by sluice, session token signed, agent signature gone', async () => {
    const form = Buffer.from('Action=GetCallerIdentity&Version=2011-06-15');
    const req = asAgent(
      { method: 'POST', path: '/', headers: { host: 'sts.us-east-1.amazonaws.com', 'content-type': 'application/x-www-form-urlencoded; charset=utf-8', 'content-length': String(form.length), 'user-agent': 'aws-cli/1' }, body: form },
      'us-east-1',
      'sts',
      form,
    );
    const out = await resignAwsRequest(req, real, opts);
    const { verdict, body } = await verifyOut(req, out);
    expect(verdict).toMatchObject({ ok: true, accessKeyId: real.accessKeyId });
    expect(body.equals(form)).toBe(true);
    expect(out.headers['x-amz-security-token']).toBe(real.sessionToken);
    expect(out.headers['x-amz-date']).toBe('20260301T120000Z');
    expect(out.signature).toBe('header');
    noAgentTrace(out);
  });

  test('S3 GET with awkward keys, a query and virtual-hosted bucket', async () => {
    const req = asAgent(
      { method: 'GET', path: '/dir%20one/%E2%9C%93~file%2Bplus.txt?list-type=2&prefix=a%20b%2Fc&uploads&delimiter=%2F', headers: { host: 'my-bucket.s3.us-west-2.amazonaws.com', 'x-amz-content-sha256': EMPTY_HASH, 'x-amz-meta-note': '  two   spaces ', range: 'bytes=0-9' } },
      'us-west-2',
      's3',
    );
    const out = await resignAwsRequest(req, real, opts);
    expect(out.path).toBe(req.path);
    const { verdict } = await verifyOut(req, out);
    expect(verdict).toMatchObject({ ok: true });
    expect(verdict.signedHeaders).toEqual(expect.arrayContaining(['host', 'range', 'x-amz-meta-note', 'x-amz-security-token', 'x-amz-date', 'x-amz-content-sha256']));
    noAgentTrace(out);
  });

  test('non-S3 path is normalised and escaped twice (API Gateway style)', async () => {
    const req = asAgent({ method: 'GET', path: '/prod/items/a%20b/./c', headers: { host: 'abc123.execute-api.eu-west-1.amazonaws.com' } }, 'eu-west-1', 'execute-api');
    const out = await resignAwsRequest(req, real, opts);
    expect((await verifyOut(req, out)).verdict).toMatchObject({ ok: true });
  });

  test('S3 PUT with a declared hash streams, and a body that differs from it fails the stream', async () => {
    const data = Buffer.alloc(300_000, 'z');
    const hash = createHash('sha256').update(data).digest('hex');
    const base = { method: 'PUT', path: '/bucket/key.bin', headers: { host: 's3.amazonaws.com', 'x-amz-content-sha256': hash, 'content-length': String(data.length) } };
    const req = asAgent(base, 'us-east-1', 's3', data, 65_536);
    const out = await resignAwsRequest(req, real, opts);
    const { verdict, body } = await verifyOut(req, out);
    expect(verdict).toMatchObject({ ok: true });
    expect(body.equals(data)).toBe(true);

    const other = Buffer.from(data);
    other[299_999] = 0x41;
    const bad = asAgent(base, 'us-east-1', 's3', other, 65_536);
    const badOut = await resignAwsRequest(bad, real, opts);
    const seen: Buffer[] = [];
    await expect(
      (async () => {
        for await (const c of badOut.body as AsyncIterable<Buffer>) seen.push(c);
      })(),
    ).rejects.toThrow(/does not match/);
    // The last chunk is held back until the hash is known: the upstream never has the whole body.
    expect(Buffer.concat(seen).length).toBeLessThan(data.length);
  });

  test('a body without a declared hash is read within the bound; over it, S3 goes UNSIGNED-PAYLOAD and others are refused', async () => {
    const big = Buffer.alloc(2048, 'q');
    const small = { ...opts, maxSignedBodyBytes: 1024 };
    const ddb = asAgent({ method: 'POST', path: '/', headers: { host: 'dynamodb.us-east-1.amazonaws.com', 'x-amz-target': 'DynamoDB_20120810.PutItem', 'content-type': 'application/x-amz-json-1.0' }, body: big }, 'us-east-1', 'dynamodb', big, 500);
    await expect(resignAwsRequest(ddb, real, small)).rejects.toMatchObject({ code: 'credentials.aws_body_too_large', status: 413 });

    const s3req = asAgent({ method: 'PUT', path: '/b/k', headers: { host: 's3.amazonaws.com' }, body: big }, 'us-east-1', 's3', big, 500);
    // The agent declared a hash (the reference signer adds one for S3); drop it to exercise the undeclared path.
    delete (s3req.headers as Record<string, string>)['x-amz-content-sha256'];
    const out = await resignAwsRequest(s3req, real, small);
    expect(out.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
    const { verdict, body } = await verifyOut(s3req, out);
    expect(verdict).toMatchObject({ ok: true });
    expect(body.equals(big)).toBe(true);
  });

  test('shapes sluice cannot re-sign are refused with stable codes', async () => {
    const base = { method: 'GET', host: 's3.amazonaws.com', path: '/b/k', body: null };
    // SigV2 is re-signed (as SigV4) only for S3, whose region the facts know.
    await expect(resignAwsRequest({ ...base, headers: { authorization: 'AWS SLUICEPLACEHOLDER:abc=' } }, real, opts)).rejects.toMatchObject({ code: 'credentials.aws_signature_unsupported', status: 501 });
    await expect(resignAwsRequest({ ...base, headers: { authorization: 'AWS SLUICEPLACEHOLDER:abc=' } }, real, { ...opts, fallbackScope: { service: 'sdb', region: 'us-east-1' } })).rejects.toMatchObject({ code: 'credentials.aws_signature_unsupported' });
    await expect(
      resignAwsRequest({ ...base, headers: { authorization: 'AWS4-ECDSA-P256-SHA256 Credential=SLUICEPLACEHOLDER/20260301/s3/aws4_request, SignedHeaders=host, Signature=00' } }, real, opts),
    ).rejects.toMatchObject({ code: 'credentials.aws_signature_unsupported' });
    await expect(resignAwsRequest({ ...base, headers: { authorization: 'AWS4-HMAC-SHA256 garbage' } }, real, opts)).rejects.toMatchObject({ code: 'credentials.aws_signature_malformed', status: 400 });
    await expect(
      resignAwsRequest({ ...base, headers: { authorization: 'AWS4-HMAC-SHA256 Credential=A/20260301/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00', 'x-amz-content-sha256': 'STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD' } }, real, opts),
    ).rejects.toBeInstanceOf(CredentialError);
  });

  test('an unsigned request (--no-sign-request) is forwarded as it came', async () => {
    const out = await resignAwsRequest({ method: 'GET', host: 'public.s3.amazonaws.com', path: '/k', headers: { accept: '*/*' }, body: null }, real, opts);
    expect(out).toMatchObject({ signature: 'none', path: '/k', headers: { accept: '*/*' } });
    expect(JSON.stringify(out.headers)).not.toContain(real.accessKeyId);
  });
});

describe('S3 SigV2 (legacy clients) becomes SigV4', () => {
  const s3 = { ...opts, fallbackScope: { service: 's3', region: 'us-east-1' } };

  test('a SigV2 header-signed PUT is re-signed with SigV4 and the body hashed', async () => {
    const data = Buffer.from('legacy body');
    const req: AwsRequest = {
      method: 'PUT',
      host: 'old.s3.amazonaws.com',
      path: '/key.txt?acl',
      headers: { authorization: 'AWS SLUICEPLACEHOLDER:c2lndjI=', date: 'Sun, 01 Mar 2026 11:59:58 GMT', 'content-type': 'text/plain', 'content-length': String(data.length), 'x-amz-acl': 'private' },
      body: Readable.from([data]),
    };
    const out = await resignAwsRequest(req, real, s3);
    expect(out.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=ASIAREALKEY000000001\/20260301\/us-east-1\/s3\/aws4_request/);
    expect(out.headers.date).toBeUndefined();
    const { verdict, body } = await verifyOut(req, out);
    expect(verdict).toMatchObject({ ok: true });
    expect(body.equals(data)).toBe(true);
  });

  test('a SigV2 presigned URL is presigned anew as SigV4 until the same expiry', async () => {
    const expires = Math.floor(NOW.getTime() / 1000) + 120;
    const req: AwsRequest = { method: 'GET', host: 'old.s3.amazonaws.com', path: `/key.txt?AWSAccessKeyId=SLUICEPLACEHOLDER&Signature=abc%3D&Expires=${expires}&versionId=3`, headers: {}, body: null };
    const out = await resignAwsRequest(req, real, s3);
    const q = new URLSearchParams(out.path.split('?')[1]);
    expect(q.get('X-Amz-Expires')).toBe('120');
    expect(q.get('versionId')).toBe('3');
    expect(q.has('AWSAccessKeyId') || q.has('Signature') || q.has('Expires')).toBe(false);
    expect((await verifyOut(req, { ...out, headers: { host: req.host } })).verdict).toMatchObject({ ok: true });
    const expired = { ...req, path: `/key.txt?AWSAccessKeyId=SLUICEPLACEHOLDER&Signature=abc&Expires=${expires - 600}` };
    await expect(resignAwsRequest(expired, real, s3)).rejects.toMatchObject({ code: 'credentials.aws_presign_expired' });
  });
});

describe('presigned URLs', () => {
  const path = '/bucket/report%20final.pdf?response-content-disposition=attachment%3B%20filename%3D%22r.pdf%22';
  const host = 'bucket.s3.eu-central-1.amazonaws.com';

  test('are presigned anew with the real key, the token and the time the agent had left', async () => {
    const agentPath = refPresign({ method: 'GET', path, headers: { host } }, placeholder, 'eu-central-1', 's3', agentDate, 600);
    const req: AwsRequest = { method: 'GET', host, path: agentPath, headers: { 'user-agent': 'curl/8' }, body: null };
    const out = await resignAwsRequest(req, real, opts);
    expect(out.signature).toBe('presigned');
    const { verdict } = await verifyOut(req, { ...out, headers: { ...out.headers, host } });
    expect(verdict).toMatchObject({ ok: true, accessKeyId: real.accessKeyId });
    const q = new URLSearchParams(out.path.slice(out.path.indexOf('?') + 1));
    expect(q.get('X-Amz-Security-Token')).toBe(real.sessionToken);
    expect(q.get('X-Amz-Expires')).toBe('598'); // agent signed 2 s before NOW with 600 s
    expect(q.get('response-content-disposition')).toBe('attachment; filename="r.pdf"');
    noAgentTrace(out);
  });

  test('an expired presigned URL is refused, not extended', async () => {
    const agentPath = refPresign({ method: 'GET', path, headers: { host } }, placeholder, 'eu-central-1', 's3', '20260301T110000Z', 60);
    await expect(resignAwsRequest({ method: 'GET', host, path: agentPath, headers: {}, body: null }, real, opts)).rejects.toMatchObject({ code: 'credentials.aws_presign_expired', status: 403 });
  });
});

// S3 bucket names are global: an `acme-*` bucket may be someone else's. When the policy counted the
// bucket as the organisation's, S3 is made to check the owner by a signed header (S3 answers 403).
describe('S3 bucket owner checks', () => {
  const OWN = '111122223333';
  const owned = { ...opts, bucketOwners: { bucket: OWN, copySource: OWN } };

  test('a header-signed PutObject carries x-amz-expected-bucket-owner, signed', async () => {
    const data = Buffer.from('report');
    const req = asAgent(
      { method: 'PUT', path: '/acme-exfil/k.txt', headers: { host: 's3.us-east-1.amazonaws.com', 'x-amz-content-sha256': createHash('sha256').update(data).digest('hex'), 'content-length': String(data.length) }, body: data },
      'us-east-1',
      's3',
      data,
    );
    const out = await resignAwsRequest(req, real, owned);
    expect(out.headers['x-amz-expected-bucket-owner']).toBe(OWN);
    expect(out.headers['x-amz-source-expected-bucket-owner']).toBeUndefined(); // not a copy
    const { verdict } = await verifyOut(req, out);
    expect(verdict).toMatchObject({ ok: true });
    expect(verdict.signedHeaders).toContain('x-amz-expected-bucket-owner');
  });

  test('CopyObject also checks the source owner; both signed', async () => {
    const req = asAgent(
      { method: 'PUT', path: '/acme-a/copy.txt', headers: { host: 's3.us-east-1.amazonaws.com', 'x-amz-content-sha256': EMPTY_HASH, 'x-amz-copy-source': '/acme-b/src.txt' } },
      'us-east-1',
      's3',
    );
    const out = await resignAwsRequest(req, real, owned);
    expect(out.headers).toMatchObject({ 'x-amz-expected-bucket-owner': OWN, 'x-amz-source-expected-bucket-owner': OWN });
    const { verdict } = await verifyOut(req, out);
    expect(verdict.signedHeaders).toEqual(expect.arrayContaining(['x-amz-expected-bucket-owner', 'x-amz-source-expected-bucket-owner']));
  });

  test('a presigned URL is presigned anew with the owner header signed (the sidecar sends it)', async () => {
    const host = 'acme-exfil.s3.eu-central-1.amazonaws.com';
    const agentPath = refPresign({ method: 'PUT', path: '/k', headers: { host } }, placeholder, 'eu-central-1', 's3', agentDate, 600);
    const out = await resignAwsRequest({ method: 'PUT', host, path: agentPath, headers: {}, body: null }, real, owned);
    expect(out.headers['x-amz-expected-bucket-owner']).toBe(OWN);
    expect(new URLSearchParams(out.path.split('?')[1]).get('X-Amz-SignedHeaders')).toBe('host;x-amz-expected-bucket-owner');
    const { verdict } = await verifyOut({ method: 'PUT', host, path: agentPath, headers: {}, body: null }, { ...out, headers: { ...out.headers, host } });
    expect(verdict).toMatchObject({ ok: true });
  });

  test("the agent's own header: same account kept, another account refused (403, stable code)", async () => {
    const signedWith = (owner: string) =>
      asAgent({ method: 'GET', path: '/acme-x/k', headers: { host: 's3.us-east-1.amazonaws.com', 'x-amz-content-sha256': EMPTY_HASH, 'x-amz-expected-bucket-owner': owner } }, 'us-east-1', 's3');
    expect((await resignAwsRequest(signedWith(OWN), real, owned)).headers['x-amz-expected-bucket-owner']).toBe(OWN);
    await expect(resignAwsRequest(signedWith('999999999999'), real, owned)).rejects.toMatchObject({ code: 'credentials.aws_bucket_owner_conflict', status: 403 });
    const copy = asAgent(
      { method: 'PUT', path: '/acme-a/c', headers: { host: 's3.us-east-1.amazonaws.com', 'x-amz-content-sha256': EMPTY_HASH, 'x-amz-copy-source': 'acme-b/s', 'x-amz-source-expected-bucket-owner': '999999999999' } },
      'us-east-1',
      's3',
    );
    await expect(resignAwsRequest(copy, real, owned)).rejects.toMatchObject({ code: 'credentials.aws_bucket_owner_conflict' });
  });

  test('an owner hoisted into a presigned URL counts as the agent\'s: another account is refused, the same passes', async () => {
    const host = 'acme-exfil.s3.eu-central-1.amazonaws.com';
    const presigned = (owner: string) => refPresign({ method: 'PUT', path: `/k?x-amz-expected-bucket-owner=${owner}`, headers: { host } }, placeholder, 'eu-central-1', 's3', agentDate, 600);
    await expect(resignAwsRequest({ method: 'PUT', host, path: presigned('999999999999'), headers: {}, body: null }, real, owned)).rejects.toMatchObject({ code: 'credentials.aws_bucket_owner_conflict' });
    const out = await resignAwsRequest({ method: 'PUT', host, path: presigned(OWN), headers: {}, body: null }, real, owned);
    expect(out.headers['x-amz-expected-bucket-owner']).toBe(OWN);
    expect(bucketOwnerHeaders('s3', {}, { copySource: OWN }, [{ name: 'X-Amz-Copy-Source', value: 'a/b' }])).toEqual({ 'x-amz-source-expected-bucket-owner': OWN });
  });

  test('non-S3 requests and requests the policy asked no check for get nothing', async () => {
    expect(bucketOwnerHeaders('dynamodb', {}, { bucket: OWN })).toEqual({});
    expect(bucketOwnerHeaders('s3', {}, undefined)).toEqual({});
    expect(bucketOwnerHeaders('s3', { 'x-amz-copy-source': 'a/b' }, { copySource: OWN })).toEqual({ 'x-amz-source-expected-bucket-owner': OWN });
    const req = asAgent({ method: 'GET', path: '/', headers: { host: 's3.us-east-1.amazonaws.com', 'x-amz-content-sha256': EMPTY_HASH } }, 'us-east-1', 's3');
    const out = await resignAwsRequest(req, real, opts);
    expect(Object.keys(out.headers).filter((h) => h.includes('expected-bucket-owner'))).toEqual([]);
  });

  test("the decision's parameters: credential = the credentials' account, or a 12-digit account; anything else fails closed", () => {
    expect(arnAccount('arn:aws:sts::123456789012:assumed-role/agent-coder/sluice-agents-p')).toBe('123456789012');
    expect(arnAccount('arn:aws-us-gov:iam::210987654321:role/x')).toBe('210987654321');
    expect(arnAccount('not-an-arn')).toBeUndefined();
    const creds = { account: OWN };
    expect(bucketOwners({ provider: 'aws-sts' }, creds)).toBeUndefined();
    expect(bucketOwners({ provider: 'aws-sts', expected_bucket_owner: 'credential' }, creds)).toEqual({ bucket: OWN, copySource: undefined });
    expect(bucketOwners({ provider: 'aws-sts', expected_bucket_owner: '210987654321', expected_source_bucket_owner: 'credential' }, creds)).toEqual({ bucket: '210987654321', copySource: OWN });
    expect(() => bucketOwners({ provider: 'aws-sts', expected_bucket_owner: 'credential' }, {})).toThrow(CredentialError);
    expect(() => bucketOwners({ provider: 'aws-sts', expected_bucket_owner: 'mine' }, creds)).toThrow(/12-digit/);
  });
});

// ---- aws-chunked: the AWS documentation's examples ("Transferring payload in multiple chunks")
const DOC = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', expiresAt: Date.UTC(2013, 4, 25) };
const DOC_DATA = Buffer.alloc(66_560, 'a');
const DOC_SIGS = ['ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648', '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497', 'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9'];

function docBody(sigs: string[], tail = '\r\n'): Buffer {
  return Buffer.concat([
    Buffer.from(`10000;chunk-signature=${sigs[0]}\r\n`),
    DOC_DATA.subarray(0, 65_536),
    Buffer.from(`\r\n400;chunk-signature=${sigs[1]}\r\n`),
    DOC_DATA.subarray(65_536),
    Buffer.from(`\r\n0;chunk-signature=${sigs[2]}\r\n${tail}`),
  ]);
}

describe('aws-chunked uploads', () => {
  const zeros = ['0'.repeat(64), '0'.repeat(64), '0'.repeat(64)];

  test('the documented chunk-signed PUT comes out with the documented seed and chunk signatures', async () => {
    const req: AwsRequest = {
      method: 'PUT',
      host: 's3.amazonaws.com',
      path: '/examplebucket/chunkObject.txt',
      headers: {
        'x-amz-date': '20130524T000000Z',
        'x-amz-storage-class': 'REDUCED_REDUNDANCY',
        authorization: `AWS4-HMAC-SHA256 Credential=SLUICEPLACEHOLDER/20130524/us-east-1/s3/aws4_request, SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class, Signature=${'1'.repeat(64)}`,
        'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
        'content-encoding': 'aws-chunked',
        'x-amz-decoded-content-length': '66560',
        'content-length': '66824',
      },
      body: Readable.from(split(docBody(zeros), 1000)),
    };
    const out = await resignAwsRequest(req, DOC, { ...opts, now: new Date(Date.UTC(2013, 4, 24)) });
    expect(out.headers.authorization).toMatch(/Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9$/);
    const body = await collect(out.body);
    expect(body.length).toBe(66_824);
    expect(body.equals(docBody(DOC_SIGS))).toBe(true);
  });

  test('the documented signed trailer is reproduced, at any split of the input', async () => {
    const seed = '106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e';
    const trailerSigs = ['b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2', '1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7', '2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992'];
    const tail = (sig: string) => `x-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:${sig}\r\n\r\n`;
    const want = docBody(trailerSigs, tail('d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435'));
    const key = signingKey(DOC.secretAccessKey, '20130524', 'us-east-1', 's3');
    const { createHmac } = await import('node:crypto');
    for (const size of [1, 7, 4096, 70_000]) {
      const t = resignAwsChunked({
        longDate: '20130524T000000Z',
        scope: '20130524/us-east-1/s3/aws4_request',
        seedSignature: seed,
        trailer: true,
        maxChunkBytes: 1 << 20,
        sign: (s) => Promise.resolve(createHmac('sha256', key).update(s).digest('hex')),
      });
      const out = await collect(Readable.from(split(docBody(zeros, tail('f'.repeat(64))), size)).pipe(t));
      expect(out.equals(want)).toBe(true);
    }
    expect(refVerifyChunked(want, key, '20130524T000000Z', '20130524/us-east-1/s3/aws4_request', seed)).toMatchObject({ ok: true });
  });

  test('malformed framing fails the stream', async () => {
    const run = (body: Buffer) =>
      collect(
        Readable.from([body]).pipe(
          resignAwsChunked({ longDate: 'x', scope: 'y', seedSignature: 'z', trailer: false, maxChunkBytes: 70_000, sign: () => Promise.resolve('a'.repeat(64)) }),
        ),
      );
    await expect(run(Buffer.from('zz;chunk-signature=00\r\n'))).rejects.toThrow(/chunk header/);
    await expect(run(docBody(zeros).subarray(0, 5000))).rejects.toThrow(/ends before/);
    await expect(run(Buffer.concat([docBody(zeros), Buffer.from('extra')]))).rejects.toThrow(/after the final chunk/);
    await expect(run(Buffer.from(`20000;chunk-signature=${'0'.repeat(64)}\r\n`))).rejects.toThrow(/exceeds/);
  });
});
