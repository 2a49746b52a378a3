// Fuzzing AWS request parsing (facts/aws-request.ts through deriveFacts, the way the facts stage
// calls it): SigV4-signed and unsigned requests to service, regional, S3 virtual-host and path
// style hosts, query/JSON/form protocols with Action/RoleArn/WithDecryption repeated, encoded and
// cut, copy sources — then mutated. Properties: nothing throws; facts always satisfy the api/
// schema; the buffering protocol never asks past its cap; and the facts do not depend on how the
// body arrives — read in any chunks, stopping where the protocol says "enough", they are the
// facts of the whole body (an agent must not steer a decision by TCP segmentation).
import { afterAll, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { Facts } from '../../../api/src/index.ts';
import { bodyPrefixNeeded, deriveFacts, moreBodyNeeded } from '../../src/facts/derive-facts.ts';
import type { FactsRequest } from '../../src/facts/derive-facts.ts';
import { fuzz, printReports } from './fuzz-harness.ts';

afterAll(printReports);

const SERVICES = ['sts', 's3', 'ssm', 'iam', 'dynamodb', 'kms', 'lambda', 'secretsmanager', 'execute-api'];
const REGIONS = ['us-east-1', 'eu-west-1', 'cn-north-1', 'us-gov-west-1', 'x'];
const host = fc.oneof(
  fc.tuple(fc.constantFrom(...SERVICES), fc.constantFrom(...REGIONS)).map(([s, r]) => `${s}.${r}.amazonaws.com`),
  fc.constantFrom(...SERVICES).map((s) => `${s}.amazonaws.com`),
  fc.tuple(fc.stringMatching(/^[a-z0-9][a-z0-9.-]{1,20}$/), fc.constantFrom(...REGIONS)).map(([b, r]) => `${b}.s3.${r}.amazonaws.com`),
  fc.constantFrom('s3.amazonaws.com', 'sts.amazonaws.com.cn', 'bucket.s3-accelerate.amazonaws.com', 'AMAZONAWS.COM', 'amazonaws.com.evil.example', 'example.com', 'sts.amazonaws.com:443', '[::1]'),
);
const OPERATIONS = ['AssumeRole', 'GetCallerIdentity', 'AssumeRoleWithWebIdentity', 'GetParameter', 'GetParameters', 'PutObject', 'DeleteBucket', 'assumerole', 'Assume%52ole', ''];
const ROLE_ARNS = ['arn:aws:iam::123456789012:role/dev', 'arn:aws:iam::999999999999:role/admin', 'arn:aws-cn:iam::123456789012:role/a/b', 'arn:aws:iam::12345:role/short', 'arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fdev'];
const param = fc.oneof(
  fc.constantFrom(...OPERATIONS).map((o) => `Action=${o}`),
  fc.constantFrom(...ROLE_ARNS).map((a) => `RoleArn=${a}`),
  fc.constantFrom('true', 'false', 'TRUE', '1').map((v) => `WithDecryption=${v}`),
  fc.constantFrom('Version=2011-06-15', 'Name=%2Fprod%2Fdb', 'Ac%74ion=AssumeRole', 'action=AssumeRole', 'Action', '=', '&', '%', '%zz'),
);
const formBody = fc.array(param, { maxLength: 8 }).map((ps) => Buffer.from(ps.join('&'), 'latin1'));
const jsonBody = fc
  .array(fc.tuple(fc.constantFrom('Name', 'Names', 'WithDecryption', 'RoleArn', 'Action', 'nested'), fc.constantFrom<unknown>(true, false, 'x', ROLE_ARNS[0], ['a'], { WithDecryption: true }, null, 1)), { maxLength: 5 })
  .map((kv) => Buffer.from(kv.length && kv[0]![0] === 'nested' ? `{"a":${JSON.stringify(Object.fromEntries(kv))}` : JSON.stringify(Object.fromEntries(kv))));

const awsRequest = fc
  .record({
    method: fc.constantFrom('POST', 'GET', 'PUT', 'DELETE', 'HEAD', 'post'),
    host,
    path: fc.constantFrom('/', '/bucket/key', '/bucket', '/key%2Fwith%2Fslashes', '//', '/2015-03-31/functions/f/invocations'),
    query: fc.dictionary(fc.constantFrom('Action', 'RoleArn', 'X-Amz-Credential', 'uploads', 'uploadId', 'partNumber', 'delete', 'list-type', 'x-id'), fc.array(fc.constantFrom('AssumeRole', 'GetCallerIdentity', 'AKID/20250101/us-east-1/sts/aws4_request', '', 'PutObject', '1'), { minLength: 1, maxLength: 2 }), { maxKeys: 3 }),
    signed: fc.option(fc.tuple(fc.constantFrom(...SERVICES, 'S3', ''), fc.constantFrom(...REGIONS)), { nil: undefined }),
    target: fc.option(fc.constantFrom('AmazonSSM.GetParameter', 'DynamoDB_20120810.DeleteTable', 'AWSSecurityTokenServiceV20110615.AssumeRole', 'x', '.'), { nil: undefined }),
    contentType: fc.constantFrom('application/x-www-form-urlencoded', 'application/x-amz-json-1.1', 'application/json', 'text/plain', 'application/x-www-form-urlencoded; charset=utf-8', undefined),
    copySource: fc.option(fc.constantFrom('/src-bucket/key', 'src%2Dbucket/k?versionId=1', 'arn:aws:s3:us-east-1:123456789012:accesspoint/ap/object/k', ''), { nil: undefined }),
    body: fc.oneof(formBody, jsonBody, fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a))),
    declareLength: fc.boolean(),
    cuts: fc.array(fc.nat(), { maxLength: 5 }),
  })
  .map((r) => {
    const headers: Record<string, string> = {};
    if (r.signed) headers.authorization = `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/${r.signed[1]}/${r.signed[0]}/aws4_request, SignedHeaders=host, Signature=00`;
    if (r.target) headers['x-amz-target'] = r.target;
    if (r.contentType) headers['content-type'] = r.contentType;
    if (r.copySource !== undefined) headers['x-amz-copy-source'] = r.copySource;
    if (r.declareLength) headers['content-length'] = String(r.body.length);
    const req: FactsRequest = { method: r.method, host: r.host, path: r.path, query: r.query, headers };
    return { req, body: r.body, cuts: r.cuts };
  });

/** What the facts stage reads: chunks until the protocol says enough, or the cap. */
function readInChunks(req: FactsRequest, body: Buffer, cuts: number[], cap: number): Buffer {
  const points = [...new Set(cuts.map((c) => (body.length ? c % body.length : 0)))].filter((p) => p > 0).sort((a, b) => a - b);
  const ends = [...points, body.length];
  for (const end of ends) {
    const prefix = body.subarray(0, end);
    if (prefix.length >= cap || moreBodyNeeded(req, prefix) === 0) return prefix;
  }
  return body;
}

test('AWS requests: schema-valid facts, a bounded body protocol, and facts independent of chunking', async () => {
  await fuzz('aws-request', awsRequest, 2500, ({ req, body, cuts }) => {
    const cap = bodyPrefixNeeded(req);
    expect(cap).toBeGreaterThanOrEqual(0);
    const whole = deriveFacts(req, cap > 0 ? body : undefined);
    expect(() => Facts.parse(whole)).not.toThrow();
    expect(() => Facts.parse(deriveFacts(req))).not.toThrow();
    if (cap === 0) return;
    const more = moreBodyNeeded(req, body.subarray(0, Math.min(cap, body.length)));
    expect(more).toBeGreaterThanOrEqual(0);
    if (more > 0) expect(Math.min(cap, body.length) + more).toBeLessThanOrEqual(cap);
    if (body.length > cap) return;
    const prefix = readInChunks(req, body, cuts, cap);
    expect({ chunked: deriveFacts(req, prefix), at: prefix.length }).toEqual({ chunked: whole, at: prefix.length });
  });
});
