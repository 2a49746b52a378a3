// AWS facts from real SDK traffic: requests built and SigV4-signed by the AWS SDK v3 (S3, STS,
// DynamoDB) and by @smithy/signature-v4 (headers and presigned URLs), captured before they
// would leave, then fed to deriveFacts.
import { describe, expect, test } from '@jest/globals';
import { Readable } from 'node:stream';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import * as s3 from '@aws-sdk/client-s3';
import { DeleteTableCommand, DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { Facts } from '../../../api/src/index.ts';
import type { AwsFacts } from '../../../api/src/index.ts';
import { copySourceBucket } from '../../src/facts/aws-request.ts';
import { bodyPrefixNeeded, deriveFacts, moreBodyNeeded } from '../../src/facts/derive-facts.ts';
import type { FactsRequest } from '../../src/facts/derive-facts.ts';

const credentials = { accessKeyId: 'SLUICEPLACEHOLDER', secretAccessKey: 'sluice-placeholder' };

interface SdkRequest {
  method: string;
  hostname: string;
  path: string;
  query: Record<string, string | string[] | null>;
  headers: Record<string, string>;
  body?: unknown;
}
interface Captured {
  req: FactsRequest;
  body?: Buffer;
}

function toFacts(r: SdkRequest): Captured {
  const query: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(r.query)) query[k] = v === null ? [''] : Array.isArray(v) ? v : [v];
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.headers)) headers[k.toLowerCase()] = v;
  const out: Captured = { req: { method: r.method, host: r.hostname, path: r.path, query, headers } };
  if (typeof r.body === 'string') out.body = Buffer.from(r.body);
  else if (r.body instanceof Uint8Array) out.body = Buffer.from(r.body.buffer, r.body.byteOffset, r.body.byteLength);
  return out;
}

/** A request handler that records the signed request and answers an empty 200. */
function recorder() {
  const seen: Captured[] = [];
  const requestHandler = {
    handle: (request: SdkRequest) => {
      seen.push(toFacts(request));
      return Promise.resolve({ response: { statusCode: 200, headers: {}, body: Readable.from([Buffer.alloc(0)]) } });
    },
  };
  return { seen, requestHandler };
}

/** Sends a command and returns the facts of the request it produced (the SDK's parse of our empty answer may fail). */
async function sdkFacts(client: { send(c: never): Promise<unknown> }, seen: Captured[], command: unknown): Promise<Facts> {
  const before = seen.length;
  await client.send(command as never).catch(() => undefined);
  const c = seen[before];
  if (!c) throw new Error('no request captured');
  const cap = bodyPrefixNeeded(c.req);
  return Facts.parse(deriveFacts(c.req, cap > 0 ? c.body?.subarray(0, cap) : undefined));
}

describe('S3 via the AWS SDK', () => {
  const rec = recorder();
  const client = new s3.S3Client({ region: 'eu-west-1', credentials, maxAttempts: 1, requestHandler: rec.requestHandler as never });
  const Bucket = 'acme-artifacts';
  const cases: Array<[string, unknown, Partial<AwsFacts>]> = [
    ['ListBuckets', new s3.ListBucketsCommand({}), { action: 's3:ListBuckets' }],
    ['ListObjectsV2', new s3.ListObjectsV2Command({ Bucket, Prefix: 'a/' }), { action: 's3:ListObjectsV2', bucket: Bucket }],
    ['ListObjects', new s3.ListObjectsCommand({ Bucket }), { action: 's3:ListObjects', bucket: Bucket }],
    ['GetObject', new s3.GetObjectCommand({ Bucket, Key: 'dir/a b+c.txt' }), { action: 's3:GetObject', bucket: Bucket, key: 'dir/a b+c.txt' }],
    ['HeadObject', new s3.HeadObjectCommand({ Bucket, Key: 'k' }), { action: 's3:HeadObject', key: 'k' }],
    ['PutObject', new s3.PutObjectCommand({ Bucket, Key: 'k', Body: 'x' }), { action: 's3:PutObject', key: 'k' }],
    ['CopyObject', new s3.CopyObjectCommand({ Bucket, Key: 'k2', CopySource: `other-bucket/k` }), { action: 's3:CopyObject', key: 'k2', copy_source_bucket: 'other-bucket' }],
    ['UploadPartCopy', new s3.UploadPartCopyCommand({ Bucket, Key: 'k2', UploadId: 'u1', PartNumber: 1, CopySource: '/src.bucket/a%20b?versionId=3' }), { action: 's3:UploadPartCopy', copy_source_bucket: 'src.bucket' }],
    ['DeleteObject', new s3.DeleteObjectCommand({ Bucket, Key: 'k' }), { action: 's3:DeleteObject', bucket: Bucket, key: 'k' }],
    ['DeleteObjects', new s3.DeleteObjectsCommand({ Bucket, Delete: { Objects: [{ Key: 'a' }, { Key: 'b' }] } }), { action: 's3:DeleteObjects', bucket: Bucket }],
    ['CreateMultipartUpload', new s3.CreateMultipartUploadCommand({ Bucket, Key: 'big' }), { action: 's3:CreateMultipartUpload', key: 'big' }],
    ['UploadPart', new s3.UploadPartCommand({ Bucket, Key: 'big', UploadId: 'u1', PartNumber: 1, Body: 'x' }), { action: 's3:UploadPart', key: 'big' }],
    ['CompleteMultipartUpload', new s3.CompleteMultipartUploadCommand({ Bucket, Key: 'big', UploadId: 'u1', MultipartUpload: { Parts: [{ ETag: '"e"', PartNumber: 1 }] } }), { action: 's3:CompleteMultipartUpload' }],
    ['AbortMultipartUpload', new s3.AbortMultipartUploadCommand({ Bucket, Key: 'big', UploadId: 'u1' }), { action: 's3:AbortMultipartUpload' }],
    ['ListParts', new s3.ListPartsCommand({ Bucket, Key: 'big', UploadId: 'u1' }), { action: 's3:ListParts' }],
    ['PutBucketPolicy', new s3.PutBucketPolicyCommand({ Bucket, Policy: '{}' }), { action: 's3:PutBucketPolicy', bucket: Bucket }],
    ['GetBucketPolicy', new s3.GetBucketPolicyCommand({ Bucket }), { action: 's3:GetBucketPolicy' }],
    ['DeleteBucketPolicy', new s3.DeleteBucketPolicyCommand({ Bucket }), { action: 's3:DeleteBucketPolicy' }],
    ['PutBucketAcl', new s3.PutBucketAclCommand({ Bucket, ACL: 'public-read' }), { action: 's3:PutBucketAcl' }],
    ['PutObjectTagging', new s3.PutObjectTaggingCommand({ Bucket, Key: 'k', Tagging: { TagSet: [] } }), { action: 's3:PutObjectTagging' }],
    ['DeleteBucket', new s3.DeleteBucketCommand({ Bucket }), { action: 's3:DeleteBucket', bucket: Bucket }],
    ['CreateBucket', new s3.CreateBucketCommand({ Bucket }), { action: 's3:CreateBucket', bucket: Bucket }],
    ['PutPublicAccessBlock', new s3.PutPublicAccessBlockCommand({ Bucket, PublicAccessBlockConfiguration: {} }), { action: 's3:PutPublicAccessBlock' }],
    ['ListObjectVersions', new s3.ListObjectVersionsCommand({ Bucket }), { action: 's3:ListObjectVersions' }],
  ];
  test.each(cases)('%s', async (_name, command, expected) => {
    const facts = await sdkFacts(client, rec.seen, command);
    expect(facts.aws).toMatchObject({ service: 's3', region: 'eu-west-1', signed: true, ...expected });
    expect(rec.seen.at(-1)!.req.host).toMatch(/s3\.eu-west-1\.amazonaws\.com$/);
  });

  test('path-style addressing (forcePathStyle, dotted bucket) gives the same facts', async () => {
    const r = recorder();
    const c = new s3.S3Client({ region: 'us-west-2', credentials, maxAttempts: 1, forcePathStyle: true, requestHandler: r.requestHandler as never });
    const facts = await sdkFacts(c, r.seen, new s3.DeleteObjectCommand({ Bucket: 'my.dotted.bucket', Key: 'x/y.txt' }));
    expect(r.seen[0]!.req.host).toBe('s3.us-west-2.amazonaws.com');
    expect(facts.aws).toEqual({ service: 's3', region: 'us-west-2', action: 's3:DeleteObject', bucket: 'my.dotted.bucket', key: 'x/y.txt', signed: true, resource_accounts: [] });
  });

  test('a custom S3-compatible endpoint (not an AWS host) is classified from the signature', async () => {
    const r = recorder();
    const c = new s3.S3Client({ region: 'us-east-1', credentials, maxAttempts: 1, forcePathStyle: true, endpoint: 'http://127.0.0.1:9000', requestHandler: r.requestHandler as never });
    const facts = await sdkFacts(c, r.seen, new s3.PutObjectCommand({ Bucket: 'b', Key: 'k', Body: 'x' }));
    expect(facts.aws).toEqual({ service: 's3', region: 'us-east-1', action: 's3:PutObject', bucket: 'b', key: 'k', signed: true, resource_accounts: [] });
  });
});

describe('query and JSON protocols via the AWS SDK', () => {
  test('STS (query protocol): Action is read from the form body prefix', async () => {
    const r = recorder();
    const c = new STSClient({ region: 'eu-central-1', credentials, maxAttempts: 1, requestHandler: r.requestHandler as never });
    const facts = await sdkFacts(c, r.seen, new GetCallerIdentityCommand({}));
    expect(facts.aws).toEqual({ service: 'sts', region: 'eu-central-1', action: 'sts:GetCallerIdentity', signed: true, resource_accounts: [] });
    const { req, body } = r.seen[0]!;
    expect(bodyPrefixNeeded(req)).toBe(16 * 1024);
    expect(moreBodyNeeded(req, body!.subarray(0, 5))).toBeGreaterThan(0);
    expect(moreBodyNeeded(req, body!)).toBe(0);
    expect(deriveFacts(req).aws).toBeUndefined(); // without the body there is no action: no facts
    await c.send(new AssumeRoleCommand({ RoleArn: 'arn:aws:iam::123456789012:role/x', RoleSessionName: 's' })).catch(() => undefined);
    const assume = r.seen[1]!;
    expect(deriveFacts(assume.req, assume.body).aws).toMatchObject({ action: 'sts:AssumeRole', role_arn: 'arn:aws:iam::123456789012:role/x', role_account: '123456789012' });
  });

  test('DynamoDB (JSON protocol): action from X-Amz-Target', async () => {
    const r = recorder();
    const c = new DynamoDBClient({ region: 'ap-southeast-2', credentials, maxAttempts: 1, requestHandler: r.requestHandler as never });
    expect((await sdkFacts(c, r.seen, new PutItemCommand({ TableName: 't', Item: { id: { S: '1' } } }))).aws).toEqual({
      service: 'dynamodb',
      region: 'ap-southeast-2',
      action: 'dynamodb:PutItem',
      signed: true,
      resource_accounts: [],
    });
    expect((await sdkFacts(c, r.seen, new DeleteTableCommand({ TableName: 't' }))).aws!.action).toBe('dynamodb:DeleteTable');
    // The body is read whole: any parameter in it may name another account's table.
    expect(bodyPrefixNeeded(r.seen[0]!.req)).toBe(16 * 1024);
  });
});

describe('@smithy/signature-v4 headers and presigned URLs', () => {
  const signer = (service: string, region: string) => new SignatureV4({ service, region, credentials, sha256: Hash.bind(null, 'sha256') });
  const asFacts = (r: { method: string; hostname: string; path: string; query?: Record<string, string | string[] | null>; headers: Record<string, string> }): FactsRequest =>
    toFacts({ ...r, query: r.query ?? {} }).req;

  test('Authorization header credential scope names service and region; signing names map to IAM prefixes', async () => {
    const signed = await signer('monitoring', 'eu-west-1').sign({
      method: 'POST',
      protocol: 'https:',
      hostname: 'monitoring.eu-west-1.amazonaws.com',
      path: '/',
      headers: { host: 'monitoring.eu-west-1.amazonaws.com', 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'GraniteServiceVersion20100801.DeleteAlarms' },
      body: '{}',
    });
    expect(signed.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=SLUICEPLACEHOLDER\/\d{8}\/eu-west-1\/monitoring\/aws4_request/);
    expect(deriveFacts(asFacts(signed)).aws).toEqual({ service: 'cloudwatch', region: 'eu-west-1', action: 'cloudwatch:DeleteAlarms', signed: true });
  });

  test('the scope wins over a host that claims another region', async () => {
    const signed = await signer('logs', 'us-east-2').sign({
      method: 'POST',
      protocol: 'https:',
      hostname: 'logs.eu-west-1.amazonaws.com',
      path: '/',
      headers: { host: 'logs.eu-west-1.amazonaws.com', 'x-amz-target': 'Logs_20140328.PutLogEvents' },
    });
    expect(deriveFacts(asFacts(signed)).aws).toEqual({ service: 'logs', region: 'us-east-2', action: 'logs:PutLogEvents', signed: true });
  });

  test('presigned S3 GET: scope from X-Amz-Credential', async () => {
    const url = await signer('s3', 'eu-north-1').presign(
      { method: 'GET', protocol: 'https:', hostname: 'acme.s3.eu-north-1.amazonaws.com', path: '/reports/q1.csv', headers: { host: 'acme.s3.eu-north-1.amazonaws.com' } },
      { expiresIn: 300 },
    );
    expect(url.query?.['X-Amz-Credential']).toMatch(/\/eu-north-1\/s3\/aws4_request$/);
    expect(deriveFacts(asFacts(url)).aws).toEqual({ service: 's3', region: 'eu-north-1', action: 's3:GetObject', bucket: 'acme', key: 'reports/q1.csv', signed: true, resource_accounts: [] });
  });

  test('presigned STS GetCallerIdentity (the EKS token shape): action from the query', async () => {
    const url = await signer('sts', 'us-east-1').presign(
      { method: 'GET', protocol: 'https:', hostname: 'sts.amazonaws.com', path: '/', query: { Action: 'GetCallerIdentity', Version: '2011-06-15' }, headers: { host: 'sts.amazonaws.com', 'x-k8s-aws-id': 'cluster' } },
      { expiresIn: 60 },
    );
    expect(deriveFacts(asFacts(url)).aws).toEqual({ service: 'sts', region: 'us-east-1', action: 'sts:GetCallerIdentity', signed: true, resource_accounts: [] });
  });

  test('SigV4a scope (no region) takes the region set header', () => {
    const req: FactsRequest = {
      method: 'GET',
      host: 'mrap.accesspoint.s3-global.amazonaws.com',
      path: '/k',
      query: {},
      headers: { authorization: 'AWS4-ECDSA-P256-SHA256 Credential=AKID/20250101/s3/aws4_request, SignedHeaders=host, Signature=00', 'x-amz-region-set': 'eu-west-1,us-east-1' },
    };
    expect(deriveFacts(req).aws).toMatchObject({ service: 's3', region: 'eu-west-1' });
  });
});

describe('host-only classification', () => {
  const facts = (method: string, host: string, path: string, query: Record<string, string[]> = {}) => deriveFacts({ method, host, path, query, headers: {} }).aws;

  test.each([
    ['GET', 'acme.s3.amazonaws.com', '/k', { service: 's3', region: 'us-east-1', action: 's3:GetObject', bucket: 'acme', key: 'k' }],
    ['GET', 's3-eu-west-1.amazonaws.com', '/acme/k', { service: 's3', region: 'eu-west-1', action: 's3:GetObject', bucket: 'acme', key: 'k' }],
    ['GET', 'acme.s3.dualstack.ap-south-1.amazonaws.com', '/', { service: 's3', region: 'ap-south-1', action: 's3:ListObjects', bucket: 'acme' }],
    ['HEAD', 'my.bucket.s3.eu-west-3.amazonaws.com', '/', { service: 's3', region: 'eu-west-3', action: 's3:HeadBucket', bucket: 'my.bucket' }],
    ['GET', 's3.cn-north-1.amazonaws.com.cn', '/', { service: 's3', region: 'cn-north-1', action: 's3:ListBuckets' }],
    ['GET', 'ec2.us-west-1.amazonaws.com:443', '/', { service: 'ec2', region: 'us-west-1', action: 'ec2:DescribeInstances' }],
  ] as const)('%s %s%s', (method, host, path, expected) => {
    const query: Record<string, string[]> = expected.action === 'ec2:DescribeInstances' ? { Action: ['DescribeInstances'] } : {};
    expect(facts(method, host, path, query)).toEqual({ ...expected, signed: false, resource_accounts: [] });
  });

  test('no action, no facts: unknown REST APIs, S3 control, unsigned non-AWS hosts', () => {
    expect(facts('GET', 'lambda.eu-west-1.amazonaws.com', '/2015-03-31/functions/f')).toBeUndefined();
    expect(facts('DELETE', '123456789012.s3-control.eu-west-1.amazonaws.com', '/v20180820/configuration/publicAccessBlock')).toBeUndefined();
    expect(facts('GET', 'example.com', '/bucket/key')).toBeUndefined();
    expect(facts('PATCH', 'acme.s3.amazonaws.com', '/k')).toBeUndefined();
    expect(facts('GET', 'iam.amazonaws.com', '/', { Action: ['Delete;Users'] })).toBeUndefined();
  });
});

describe('facts for own-vs-foreign rules', () => {
  const signer = (service: string, region: string) => new SignatureV4({ service, region, credentials, sha256: Hash.bind(null, 'sha256') });
  const form = (body: string, extra: Record<string, string> = {}): { req: FactsRequest; body: Buffer } => {
    const buf = Buffer.from(body);
    return {
      req: {
        method: 'POST',
        host: 'sts.amazonaws.com',
        path: '/',
        query: {},
        headers: { authorization: 'AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=00', 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(buf.length), ...extra },
      },
      body: buf,
    };
  };
  /** Feeds the body the way the proxy does: grows the prefix while moreBodyNeeded asks for more. */
  const buffered = (req: FactsRequest, body: Buffer): Buffer => {
    const cap = bodyPrefixNeeded(req);
    let n = Math.min(8, body.length);
    while (n < Math.min(cap, body.length) && moreBodyNeeded(req, body.subarray(0, n)) > 0) n++;
    return body.subarray(0, n);
  };

  test('AssumeRole: the RoleArn and its account, read even when it comes after Action', () => {
    const { req, body } = form('Action=AssumeRole&Version=2011-06-15&RoleSessionName=s&RoleArn=arn%3Aaws%3Aiam%3A%3A999999999999%3Arole%2Fdrop');
    const seen = buffered(req, body);
    expect(seen.length).toBe(body.length);
    expect(deriveFacts(req, seen).aws).toEqual({
      service: 'sts',
      region: 'us-east-1',
      action: 'sts:AssumeRole',
      signed: true,
      role_arn: 'arn:aws:iam::999999999999:role/drop',
      role_account: '999999999999',
      resource_accounts: ['999999999999'],
    });
  });

  test('AssumeRole: a RoleArn sent twice with different values, or cut off, is unknown', () => {
    const twice = form('Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fok&RoleArn=arn%3Aaws%3Aiam%3A%3A999999999999%3Arole%2Fdrop');
    expect(deriveFacts(twice.req, twice.body).aws).toEqual({ service: 'sts', region: 'us-east-1', action: 'sts:AssumeRole', signed: true, resource_accounts: ['123456789012', '999999999999'] });
    const cut = form('Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fok&x=1');
    expect(deriveFacts(cut.req, cut.body.subarray(0, cut.body.length - 2)).aws).not.toHaveProperty('role_arn');
    const queryAndBody = { ...form('RoleArn=arn%3Aaws%3Aiam%3A%3A999999999999%3Arole%2Fdrop') };
    queryAndBody.req.query = { Action: ['AssumeRole'], RoleArn: ['arn:aws:iam::123456789012:role/ok'] };
    expect(deriveFacts(queryAndBody.req, queryAndBody.body).aws).not.toHaveProperty('role_account');
  });

  test('AssumeRole: a RoleArn in the presigned query alone', () => {
    const { req } = form('');
    req.method = 'GET';
    req.headers = {};
    req.query = { Action: ['AssumeRole'], RoleArn: ['arn:aws:iam::123456789012:role/ci'], 'X-Amz-Credential': ['AKID/20250101/us-east-1/sts/aws4_request'] };
    expect(deriveFacts(req).aws).toMatchObject({ role_arn: 'arn:aws:iam::123456789012:role/ci', role_account: '123456789012', signed: true });
  });

  test('SSM GetParameter(s) (JSON protocol): WithDecryption from the body, absent when not sent or not readable', async () => {
    const ssm = async (payload: string) => {
      const signed = await signer('ssm', 'eu-west-1').sign({
        method: 'POST',
        protocol: 'https:',
        hostname: 'ssm.eu-west-1.amazonaws.com',
        path: '/',
        headers: { host: 'ssm.eu-west-1.amazonaws.com', 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AmazonSSM.GetParameters', 'content-length': String(payload.length) },
        body: payload,
      });
      const req = toFacts({ ...signed, query: {} }).req;
      expect(bodyPrefixNeeded(req)).toBe(16 * 1024);
      return deriveFacts(req, buffered(req, Buffer.from(payload))).aws;
    };
    expect(await ssm('{"Names":["/prod/db"],"WithDecryption":true}')).toEqual({ service: 'ssm', region: 'eu-west-1', action: 'ssm:GetParameters', signed: true, with_decryption: true, resource_accounts: [] });
    expect(await ssm('{"WithDecryption":false,"Names":["/a"]}')).toMatchObject({ with_decryption: false });
    expect(await ssm('{"Names":["/a"]}')).not.toHaveProperty('with_decryption');
    expect(await ssm('{"WithDecryption":false,"WithDecryption":true}')).toMatchObject({ with_decryption: true }); // last wins, as the service parses it
  });

  test('Secrets Manager: the body is read whole for the secret it names', async () => {
    const signed = await signer('secretsmanager', 'eu-west-1').sign({
      method: 'POST',
      protocol: 'https:',
      hostname: 'secretsmanager.eu-west-1.amazonaws.com',
      path: '/',
      headers: { host: 'secretsmanager.eu-west-1.amazonaws.com', 'x-amz-target': 'secretsmanager.GetSecretValue', 'content-length': '22' },
      body: '{"SecretId":"prod/db"}',
    });
    const req = toFacts({ ...signed, query: {} }).req;
    expect(bodyPrefixNeeded(req)).toBe(16 * 1024);
    expect(deriveFacts(req, Buffer.from('{"SecretId":"prod/db"}')).aws).toEqual({ service: 'secretsmanager', region: 'eu-west-1', action: 'secretsmanager:GetSecretValue', signed: true, resource_accounts: [] });
    // Without the body (or with part of it) the secret it names is unknown.
    expect(deriveFacts(req).aws).toEqual({ service: 'secretsmanager', region: 'eu-west-1', action: 'secretsmanager:GetSecretValue', signed: true });
  });

  test('an unsigned S3 PUT to any bucket says so', () => {
    const req: FactsRequest = { method: 'PUT', host: 'attacker-drop.s3.amazonaws.com', path: '/loot', query: {}, headers: { 'content-length': '4' } };
    expect(deriveFacts(req).aws).toEqual({ service: 's3', region: 'us-east-1', action: 's3:PutObject', bucket: 'attacker-drop', key: 'loot', signed: false, resource_accounts: [] });
  });

  test.each([
    ['acme/k', 'acme'],
    ['/acme/dir/k', 'acme'],
    ['my.bucket/a%20b?versionId=1', 'my.bucket'],
    ['%2Facme%2Fk', 'acme'],
    ['arn:aws:s3:us-west-2:123456789012:accesspoint/ap/object/k', 'arn:aws:s3:us-west-2:123456789012:accesspoint/ap'],
    ['', undefined],
    ['/', undefined],
    ['%zz', undefined],
    ['arn:aws:s3:us-west-2:1:accesspoint/ap', undefined],
  ])('copy source %j names bucket %j', (header, bucket) => {
    expect(copySourceBucket(header)).toBe(bucket);
  });

  test('a copy whose source cannot be read has no copy_source_bucket', () => {
    const req: FactsRequest = { method: 'PUT', host: 'acme.s3.amazonaws.com', path: '/k', query: {}, headers: { 'x-amz-copy-source': '%zz', authorization: 'AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00' } };
    expect(deriveFacts(req).aws).toEqual({ service: 's3', region: 'us-east-1', action: 's3:CopyObject', bucket: 'acme', key: 'k', signed: true, resource_accounts: [] });
  });
});

describe('whose queue or topic', () => {
  const signer = (service: string, region: string) => new SignatureV4({ service, region, credentials, sha256: Hash.bind(null, 'sha256') });
  const signedForm = (service: string, host: string, path: string, body: string): { req: FactsRequest; body: Buffer } => {
    const buf = Buffer.from(body);
    return {
      req: {
        method: 'POST',
        host,
        path,
        query: {},
        headers: { authorization: `AWS4-HMAC-SHA256 Credential=AKID/20250101/eu-west-1/${service}/aws4_request, SignedHeaders=host, Signature=00`, 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(buf.length) },
      },
      body: buf,
    };
  };

  test('SQS JSON protocol: the account of QueueUrl', async () => {
    const payload = JSON.stringify({ QueueUrl: 'https://sqs.eu-west-1.amazonaws.com/999999999999/drop', MessageBody: 'x' });
    const signed = await signer('sqs', 'eu-west-1').sign({
      method: 'POST',
      protocol: 'https:',
      hostname: 'sqs.eu-west-1.amazonaws.com',
      path: '/',
      headers: { host: 'sqs.eu-west-1.amazonaws.com', 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'AmazonSQS.SendMessage', 'content-length': String(payload.length) },
      body: payload,
    });
    const req = toFacts({ ...signed, query: {} }).req;
    expect(bodyPrefixNeeded(req)).toBeGreaterThan(0);
    expect(deriveFacts(req, Buffer.from(payload)).aws).toMatchObject({ action: 'sqs:SendMessage', resource_account: '999999999999' });
    expect(deriveFacts(req, Buffer.from(payload).subarray(0, 40)).aws).not.toHaveProperty('resource_account');
  });

  test('SQS query protocol sent to the queue URL: the account in the path, contradicted by a QueueUrl is unknown', () => {
    const atPath = signedForm('sqs', 'sqs.eu-west-1.amazonaws.com', '/123456789012/jobs', 'Action=SendMessage&MessageBody=hi');
    expect(deriveFacts(atPath.req, atPath.body).aws).toMatchObject({ action: 'sqs:SendMessage', resource_account: '123456789012' });
    const both = signedForm('sqs', 'sqs.eu-west-1.amazonaws.com', '/123456789012/jobs', 'Action=SendMessage&MessageBody=hi&QueueUrl=https%3A%2F%2Fsqs.eu-west-1.amazonaws.com%2F999999999999%2Fdrop');
    expect(deriveFacts(both.req, both.body).aws).not.toHaveProperty('resource_account');
    const junk = signedForm('sqs', 'sqs.eu-west-1.amazonaws.com', '/', 'Action=SendMessage&QueueUrl=drop');
    expect(deriveFacts(junk.req, junk.body).aws).not.toHaveProperty('resource_account');
  });

  test('SNS: the account of TopicArn or TargetArn; two different ones are unknown; a phone number names none', () => {
    const topic = signedForm('sns', 'sns.eu-west-1.amazonaws.com', '/', 'Action=Publish&Message=m&TopicArn=arn%3Aaws%3Asns%3Aeu-west-1%3A999999999999%3Adrop');
    expect(deriveFacts(topic.req, topic.body).aws).toMatchObject({ action: 'sns:Publish', resource_account: '999999999999' });
    const two = signedForm('sns', 'sns.eu-west-1.amazonaws.com', '/', 'Action=Publish&Message=m&TopicArn=arn%3Aaws%3Asns%3Aeu-west-1%3A123456789012%3Aok&TargetArn=arn%3Aaws%3Asns%3Aeu-west-1%3A999999999999%3Adrop');
    expect(deriveFacts(two.req, two.body).aws).not.toHaveProperty('resource_account');
    const sms = signedForm('sns', 'sns.eu-west-1.amazonaws.com', '/', 'Action=Publish&Message=m&PhoneNumber=%2B15550100');
    expect(deriveFacts(sms.req, sms.body).aws).toEqual({ service: 'sns', region: 'eu-west-1', action: 'sns:Publish', signed: true, resource_accounts: [] });
  });
});
