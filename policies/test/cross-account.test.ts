// Own vs foreign AWS resources end to end through the pieces the sidecar runs: a request built and
// signed by the AWS SDK (or @smithy/signature-v4), its facts derived as the proxy derives them, and
// the decision of the compiled default library (policy.wasm) for the example organisation acme
// (account 123456789012, buckets acme-*). Whatever names the resource — body, path, header or
// host — a resource of another account must be denied, and one the sidecar could not read held.
import { Readable } from 'node:stream';
import { beforeAll, describe, expect, test } from '@jest/globals';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import * as s3 from '@aws-sdk/client-s3';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { decisionAction } from '../../api/src/index.ts';
import { readBundle } from '../../lib/src/policy/bundle.ts';
import { PolicyEngine } from '../../lib/src/policy/engine.ts';
import { bodyPrefixNeeded, deriveFacts, moreBodyNeeded } from '../../sidecar/src/facts/derive-facts.ts';
import type { FactsRequest } from '../../sidecar/src/facts/derive-facts.ts';
import { defaultBundle } from '../../testkit/policy/opa-build.ts';
import { agentInput } from '../cases/cases.ts';

const credentials = { accessKeyId: 'SLUICEPLACEHOLDER', secretAccessKey: 'sluice-placeholder' };
const FOREIGN = '999999999999';
const engine = new PolicyEngine();

beforeAll(async () => {
  await engine.load(await readBundle(defaultBundle));
});

interface Wire {
  req: FactsRequest;
  body?: Buffer;
}

function wire(r: { method: string; hostname: string; path: string; query?: Record<string, string | string[] | null>; headers: Record<string, string>; body?: unknown }): Wire {
  const query: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(r.query ?? {})) query[k] = v === null ? [''] : Array.isArray(v) ? v : [v];
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.headers)) headers[k.toLowerCase()] = v;
  const body = typeof r.body === 'string' ? Buffer.from(r.body) : r.body instanceof Uint8Array ? Buffer.from(r.body) : undefined;
  return { req: { method: r.method, host: r.hostname, path: r.path, query, headers }, ...(body ? { body } : {}) };
}

/** The decision the sidecar would reach: facts from the bounded body prefix, then the policy. */
function decide(w: Wire): { action: string; code: string } {
  const cap = bodyPrefixNeeded(w.req);
  let prefix: Buffer | undefined;
  if (cap > 0 && w.body) {
    let n = Math.min(1, w.body.length);
    while (n < Math.min(cap, w.body.length) && moreBodyNeeded(w.req, w.body.subarray(0, n)) > 0) n = Math.min(n + moreBodyNeeded(w.req, w.body.subarray(0, n)), w.body.length);
    prefix = w.body.subarray(0, n);
  }
  const facts = deriveFacts(w.req, prefix);
  const { decision, fault } = engine.evaluate(agentInput({ method: w.req.method, host: w.req.host, path: w.req.path, query: w.req.query, headers: w.req.headers }, facts));
  expect(fault).toBeUndefined();
  return { action: decisionAction(decision), code: decision.code };
}

function sdkClient<C>(make: (handler: unknown) => C): { client: C; last: () => Wire } {
  const seen: Wire[] = [];
  const handler = {
    handle: (request: Parameters<typeof wire>[0]) => {
      seen.push(wire(request));
      return Promise.resolve({ response: { statusCode: 200, headers: {}, body: Readable.from([Buffer.alloc(0)]) } });
    },
  };
  return { client: make(handler), last: () => seen[seen.length - 1]! };
}

async function send(c: { client: { send(x: never): Promise<unknown> }; last: () => Wire }, command: unknown): Promise<{ action: string; code: string }> {
  await c.client.send(command as never).catch(() => undefined);
  return decide(c.last());
}

const signed = async (service: string, target: string | undefined, payload: string, path = '/') => {
  const host = `${service}.eu-west-1.amazonaws.com`;
  const headers: Record<string, string> = { host, 'content-type': 'application/x-amz-json-1.1', 'content-length': String(Buffer.byteLength(payload)) };
  if (target) headers['x-amz-target'] = target;
  const r = await new SignatureV4({ service, region: 'eu-west-1', credentials, sha256: Hash.bind(null, 'sha256') }).sign({ method: 'POST', protocol: 'https:', hostname: host, path, headers, body: payload });
  return wire({ ...r, body: payload });
};

describe('S3 (SDK)', () => {
  const c = sdkClient((h) => new s3.S3Client({ region: 'eu-west-1', credentials, maxAttempts: 1, requestHandler: h as never }));

  test('an own bucket is allowed; a foreign account’s access point called acme-drop is denied', async () => {
    expect(await send(c, new s3.PutObjectCommand({ Bucket: 'acme-artifacts', Key: 'k', Body: 'x' }))).toEqual({ action: 'allow', code: 'cloud.aws' });
    expect(await send(c, new s3.PutObjectCommand({ Bucket: `arn:aws:s3:eu-west-1:${FOREIGN}:accesspoint/acme-drop`, Key: 'k', Body: 'x' }))).toEqual({ action: 'deny', code: 'cloud.foreign_resource_denied' });
  });

  test('an access point alias that matches acme-* is not an own bucket', async () => {
    expect(await send(c, new s3.PutObjectCommand({ Bucket: 'acme-drop-hrzrlukc5m36ft7okagglf3gmwluquse1b-s3alias', Key: 'k', Body: 'x' }))).toEqual({ action: 'deny', code: 'cloud.s3_foreign_write_denied' });
  });

  test('an own bucket written with another account’s KMS key, or replicated into another account, is denied', async () => {
    expect(await send(c, new s3.PutObjectCommand({ Bucket: 'acme-a', Key: 'k', Body: 'x', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: `arn:aws:kms:eu-west-1:${FOREIGN}:key/k` }))).toEqual({ action: 'deny', code: 'cloud.foreign_resource_denied' });
    const replication = new s3.PutBucketReplicationCommand({
      Bucket: 'acme-prod-data',
      ReplicationConfiguration: { Role: 'arn:aws:iam::123456789012:role/r', Rules: [{ Status: 'Enabled', Priority: 1, Filter: {}, DeleteMarkerReplication: { Status: 'Disabled' }, Destination: { Bucket: 'arn:aws:s3:::drop', Account: FOREIGN } }] },
    });
    expect(await send(c, replication)).toEqual({ action: 'deny', code: 'cloud.foreign_resource_denied' });
  });
});

describe('DynamoDB (SDK)', () => {
  const c = sdkClient((h) => new DynamoDBClient({ region: 'eu-west-1', credentials, maxAttempts: 1, requestHandler: h as never }));

  test('own table allowed, a foreign table by ARN denied, a body too large to read held', async () => {
    expect(await send(c, new PutItemCommand({ TableName: 'jobs', Item: { id: { S: '1' } } }))).toEqual({ action: 'allow', code: 'cloud.aws' });
    expect(await send(c, new PutItemCommand({ TableName: `arn:aws:dynamodb:eu-west-1:${FOREIGN}:table/drop`, Item: { id: { S: '1' } } }))).toEqual({ action: 'deny', code: 'cloud.foreign_resource_denied' });
    expect(await send(c, new PutItemCommand({ TableName: 'jobs', Item: { id: { S: '1' }, pad: { S: 'x'.repeat(20_000) } } }))).toEqual({ action: 'hold', code: 'cloud.resource_unknown_held' });
  });
});

describe('KMS, SNS, Lambda (SigV4)', () => {
  test('KMS Encrypt with another account’s key denied, with an own alias allowed', async () => {
    expect(decide(await signed('kms', 'TrentService.Encrypt', JSON.stringify({ KeyId: `arn:aws:kms:eu-west-1:${FOREIGN}:alias/drop`, Plaintext: 'eA==' })))).toEqual({ action: 'deny', code: 'cloud.foreign_resource_denied' });
    expect(decide(await signed('kms', 'TrentService.Encrypt', JSON.stringify({ KeyId: 'alias/build', Plaintext: 'eA==' })))).toEqual({ action: 'allow', code: 'cloud.aws' });
  });

  test('SNS Publish (JSON) to another account’s topic denied', async () => {
    expect(decide(await signed('sns', 'SNS_20100331.Publish', JSON.stringify({ TopicArn: `arn:aws:sns:eu-west-1:${FOREIGN}:drop`, Message: 'm' })))).toEqual({ action: 'deny', code: 'cloud.foreign_resource_denied' });
  });

  test('Lambda Invoke of another account’s function denied, of an own one allowed', async () => {
    const fn = encodeURIComponent(`arn:aws:lambda:eu-west-1:${FOREIGN}:function:collect`);
    expect(decide(await signed('lambda', undefined, '{}', `/2015-03-31/functions/${fn}/invocations`))).toEqual({ action: 'deny', code: 'cloud.foreign_resource_denied' });
    expect(decide(await signed('lambda', undefined, '{}', '/2015-03-31/functions/build-report/invocations'))).toEqual({ action: 'allow', code: 'cloud.aws' });
  });
});
