// Whose resources an AWS request addresses (facts.aws.resource_accounts), from requests built and
// signed by the AWS SDK v3 (S3, DynamoDB) and by @smithy/signature-v4 for the JSON, query and
// Smithy RPC v2 CBOR protocols (the CBOR bodies encoded by the SDK's own codec), fed to the facts
// the way the proxy feeds them: the body prefix grows while moreBodyNeeded asks for more.
import { describe, expect, test } from '@jest/globals';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { cbor } from '@smithy/core/cbor';
import * as s3 from '@aws-sdk/client-s3';
import { BatchWriteItemCommand, DynamoDBClient, PutItemCommand, TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
import { Facts } from '../../../api/src/index.ts';
import type { AwsFacts } from '../../../api/src/index.ts';
import { bodyPrefixNeeded, deriveFacts, moreBodyNeeded } from '../../src/facts/derive-facts.ts';
import { resourceAccounts } from '../../src/facts/aws-resource-accounts.ts';
import type { FactsRequest } from '../../src/facts/derive-facts.ts';

const credentials = { accessKeyId: 'SLUICEPLACEHOLDER', secretAccessKey: 'sluice-placeholder' };
const OWN = '123456789012';
const FOREIGN = '999999999999';

interface Captured {
  req: FactsRequest;
  body?: Buffer;
}

interface SdkRequest {
  method: string;
  hostname: string;
  path: string;
  query?: Record<string, string | string[] | null>;
  headers: Record<string, string>;
  body?: unknown;
}

function captured(r: SdkRequest): Captured {
  const query: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(r.query ?? {})) query[k] = v === null ? [''] : Array.isArray(v) ? v : [v];
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.headers)) headers[k.toLowerCase()] = v;
  const out: Captured = { req: { method: r.method, host: r.hostname, path: r.path, query, headers } };
  if (typeof r.body === 'string') out.body = Buffer.from(r.body);
  else if (r.body instanceof Uint8Array) out.body = Buffer.from(r.body.buffer, r.body.byteOffset, r.body.byteLength);
  return out;
}

/** Feeds the body as the proxy does (prefix grown while more is asked for), then derives the AWS facts. */
function awsFactsOf(c: Captured): AwsFacts | undefined {
  const cap = bodyPrefixNeeded(c.req);
  let body: Buffer | undefined;
  if (cap > 0 && c.body !== undefined) {
    let n = Math.min(1, c.body.length);
    while (n < Math.min(cap, c.body.length)) {
      const more = moreBodyNeeded(c.req, c.body.subarray(0, n));
      if (more === 0) break;
      n = Math.min(n + more, c.body.length);
    }
    body = c.body.subarray(0, n);
  }
  return Facts.parse(deriveFacts(c.req, body)).aws;
}

/** An SDK client whose requests are recorded and answered with an empty 200. */
function recorder() {
  const seen: Captured[] = [];
  const requestHandler = {
    handle: (request: SdkRequest) => {
      seen.push(captured(request));
      return Promise.resolve({ response: { statusCode: 200, headers: {}, body: Readable.from([Buffer.alloc(0)]) } });
    },
  };
  return { seen, requestHandler };
}

async function sdk(client: { send(c: never): Promise<unknown> }, seen: Captured[], command: unknown): Promise<{ c: Captured; aws: AwsFacts | undefined }> {
  const before = seen.length;
  await client.send(command as never).catch(() => undefined);
  const c = seen[before];
  if (!c) throw new Error('no request captured');
  return { c, aws: awsFactsOf(c) };
}

const sign = async (service: string, host: string, opts: { path?: string; headers: Record<string, string>; body?: string | Buffer; method?: string; query?: Record<string, string> }): Promise<Captured> => {
  const body = opts.body ?? '';
  const signed = await new SignatureV4({ service, region: 'eu-west-1', credentials, sha256: Hash.bind(null, 'sha256') }).sign({
    method: opts.method ?? 'POST',
    protocol: 'https:',
    hostname: host,
    path: opts.path ?? '/',
    query: opts.query ?? {},
    headers: { host, 'content-length': String(Buffer.byteLength(body)), ...opts.headers },
    body,
  });
  return captured({ ...signed, body });
};

const json = (service: string, target: string, payload: unknown, host = `${service}.eu-west-1.amazonaws.com`) =>
  sign(service, host, { headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': target }, body: JSON.stringify(payload) });

const form = (service: string, params: Record<string, string>) =>
  sign(service, `${service}.eu-west-1.amazonaws.com`, { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params).toString() });

describe('S3 through the SDK: access points, keys, owners, bucket configuration', () => {
  const rec = recorder();
  const client = new s3.S3Client({ region: 'eu-west-1', credentials, maxAttempts: 1, requestHandler: rec.requestHandler as never });

  test('an own bucket names no account', async () => {
    const { aws } = await sdk(client, rec.seen, new s3.PutObjectCommand({ Bucket: 'acme-artifacts', Key: 'k', Body: 'x' }));
    expect(aws).toMatchObject({ action: 's3:PutObject', bucket: 'acme-artifacts', resource_accounts: [] });
  });

  test('an access point ARN becomes a host of its account, whatever it is called', async () => {
    const { c, aws } = await sdk(client, rec.seen, new s3.PutObjectCommand({ Bucket: `arn:aws:s3:eu-west-1:${FOREIGN}:accesspoint/acme-drop`, Key: 'loot', Body: 'x' }));
    expect(c.req.host).toBe(`acme-drop-${FOREIGN}.s3-accesspoint.eu-west-1.amazonaws.com`);
    expect(aws).toMatchObject({ action: 's3:PutObject', resource_accounts: [FOREIGN] });
  });

  test('an Object Lambda access point (signed as s3-object-lambda) is not named at all: policy denies it as unclassified', async () => {
    const { c, aws } = await sdk(client, rec.seen, new s3.GetObjectCommand({ Bucket: `arn:aws:s3-object-lambda:eu-west-1:${FOREIGN}:accesspoint/olap`, Key: 'k' }));
    expect(c.req.host).toBe(`olap-${FOREIGN}.s3-object-lambda.eu-west-1.amazonaws.com`);
    expect(aws).toBeUndefined();
  });

  test('a KMS key of another account for server-side encryption, an expected owner', async () => {
    const kms = await sdk(client, rec.seen, new s3.PutObjectCommand({ Bucket: 'acme-a', Key: 'k', Body: 'x', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: `arn:aws:kms:eu-west-1:${FOREIGN}:key/1234abcd-12ab-34cd-56ef-1234567890ab` }));
    expect(kms.aws).toMatchObject({ bucket: 'acme-a', resource_accounts: [FOREIGN] });
    const owner = await sdk(client, rec.seen, new s3.PutObjectCommand({ Bucket: 'acme-a', Key: 'k', Body: 'x', ExpectedBucketOwner: FOREIGN }));
    expect(owner.aws).toMatchObject({ resource_accounts: [FOREIGN] });
  });

  test('replication into another account, read from the XML body', async () => {
    const { c, aws } = await sdk(
      client,
      rec.seen,
      new s3.PutBucketReplicationCommand({
        Bucket: 'acme-prod-data',
        ReplicationConfiguration: {
          Role: `arn:aws:iam::${OWN}:role/replication`,
          Rules: [{ Status: 'Enabled', Priority: 1, Filter: {}, DeleteMarkerReplication: { Status: 'Disabled' }, Destination: { Bucket: 'arn:aws:s3:::drop', Account: FOREIGN } }],
        },
      }),
    );
    expect(bodyPrefixNeeded(c.req)).toBeGreaterThan(0);
    expect(aws).toMatchObject({ action: 's3:PutBucketReplication', resource_accounts: [OWN, FOREIGN] });
  });

  test('event notifications to a topic of another account', async () => {
    const { aws } = await sdk(
      client,
      rec.seen,
      new s3.PutBucketNotificationConfigurationCommand({
        Bucket: 'acme-a',
        NotificationConfiguration: { TopicConfigurations: [{ TopicArn: `arn:aws:sns:eu-west-1:${FOREIGN}:drop`, Events: ['s3:ObjectCreated:*'] }] },
      }),
    );
    expect(aws).toMatchObject({ resource_accounts: [FOREIGN] });
  });

  test('object data is not read: a PutObject body full of ARNs names nothing', async () => {
    const { c, aws } = await sdk(client, rec.seen, new s3.PutObjectCommand({ Bucket: 'acme-a', Key: 'k', Body: `<Topic>arn:aws:sns:eu-west-1:${FOREIGN}:x</Topic>` }));
    expect(bodyPrefixNeeded(c.req)).toBe(0);
    expect(aws).toMatchObject({ resource_accounts: [] });
  });
});

describe('DynamoDB through the SDK (JSON 1.0)', () => {
  const rec = recorder();
  const client = new DynamoDBClient({ region: 'eu-west-1', credentials, maxAttempts: 1, requestHandler: rec.requestHandler as never });
  const foreignTable = `arn:aws:dynamodb:eu-west-1:${FOREIGN}:table/drop`;

  test('a table by ARN of another account; an ARN stored as item data names nothing', async () => {
    expect((await sdk(client, rec.seen, new PutItemCommand({ TableName: foreignTable, Item: { id: { S: '1' } } }))).aws).toMatchObject({ action: 'dynamodb:PutItem', resource_accounts: [FOREIGN] });
    expect((await sdk(client, rec.seen, new PutItemCommand({ TableName: 'jobs', Item: { RoleArn: { S: `arn:aws:iam::${FOREIGN}:role/x` } } }))).aws).toMatchObject({ resource_accounts: [] });
  });

  test('BatchWriteItem names tables by key; TransactWriteItems deep inside', async () => {
    expect((await sdk(client, rec.seen, new BatchWriteItemCommand({ RequestItems: { [foreignTable]: [{ PutRequest: { Item: { id: { S: '1' } } } }] } }))).aws).toMatchObject({ resource_accounts: [FOREIGN] });
    const transact = new TransactWriteItemsCommand({ TransactItems: [{ Put: { TableName: 'jobs', Item: { id: { S: '1' } } } }, { Put: { TableName: foreignTable, Item: { id: { S: '2' } } } }] });
    expect((await sdk(client, rec.seen, transact)).aws).toMatchObject({ resource_accounts: [FOREIGN] });
  });

  test('a body larger than the facts read (16 KiB) leaves the resources unknown', async () => {
    const { c, aws } = await sdk(client, rec.seen, new PutItemCommand({ TableName: foreignTable, Item: { id: { S: '1' }, pad: { S: 'x'.repeat(20_000) } } }));
    expect(c.body!.length).toBeGreaterThan(16 * 1024);
    expect(aws).toMatchObject({ action: 'dynamodb:PutItem' });
    expect(aws).not.toHaveProperty('resource_accounts');
  });
});

describe('JSON protocol calls signed with SigV4', () => {
  test('EventBridge PutEvents: a bus of another account by ARN; by name or default: none; an event’s Resources are data', async () => {
    const foreign = await json('events', 'AWSEvents.PutEvents', { Entries: [{ Source: 's', DetailType: 'd', Detail: '{}' }, { EventBusName: `arn:aws:events:eu-west-1:${FOREIGN}:event-bus/drop`, Source: 's', DetailType: 'd', Detail: '{}' }] });
    expect(awsFactsOf(foreign)).toMatchObject({ action: 'events:PutEvents', resource_accounts: [FOREIGN] });
    const own = await json('events', 'AWSEvents.PutEvents', { Entries: [{ EventBusName: 'orders', Resources: [`arn:aws:ec2:eu-west-1:${FOREIGN}:instance/i-1`], Source: 's', DetailType: 'd', Detail: '{}' }] });
    expect(awsFactsOf(own)).toMatchObject({ resource_accounts: [] });
  });

  test('Kinesis: a stream ARN of another account, also through its account endpoint', async () => {
    const put = await json('kinesis', 'Kinesis_20131202.PutRecords', { StreamARN: `arn:aws:kinesis:eu-west-1:${FOREIGN}:stream/drop`, Records: [{ Data: 'eA==', PartitionKey: 'p' }] });
    expect(awsFactsOf(put)).toMatchObject({ action: 'kinesis:PutRecords', resource_accounts: [FOREIGN] });
    const endpoint = await json('kinesis', 'Kinesis_20131202.PutRecord', { StreamName: 'drop', Data: 'eA==', PartitionKey: 'p' }, `${FOREIGN}.data-kinesis.eu-west-1.amazonaws.com`);
    expect(awsFactsOf(endpoint)).toMatchObject({ action: 'kinesis:PutRecord', resource_accounts: [FOREIGN] });
    const byName = await json('kinesis', 'Kinesis_20131202.PutRecord', { StreamName: 'events', Data: 'eA==', PartitionKey: 'p' });
    expect(awsFactsOf(byName)).toMatchObject({ resource_accounts: [] });
  });

  test('Firehose names delivery streams only by name: the caller’s own', async () => {
    const put = await json('firehose', 'Firehose_20150804.PutRecord', { DeliveryStreamName: 'logs', Record: { Data: 'eA==' } });
    expect(awsFactsOf(put)).toMatchObject({ action: 'firehose:PutRecord', resource_accounts: [] });
  });

  test('KMS: Encrypt, GenerateDataKey and ReEncrypt with keys of another account', async () => {
    expect(awsFactsOf(await json('kms', 'TrentService.Encrypt', { KeyId: `arn:aws:kms:eu-west-1:${FOREIGN}:alias/drop`, Plaintext: 'eA==' }))).toMatchObject({ action: 'kms:Encrypt', resource_accounts: [FOREIGN] });
    expect(awsFactsOf(await json('kms', 'TrentService.GenerateDataKey', { KeyId: `arn:aws:kms:eu-west-1:${FOREIGN}:key/1234abcd-12ab-34cd-56ef-1234567890ab` }))).toMatchObject({ resource_accounts: [FOREIGN] });
    expect(awsFactsOf(await json('kms', 'TrentService.ReEncrypt', { CiphertextBlob: 'eA==', DestinationKeyId: `arn:aws:kms:eu-west-1:${FOREIGN}:key/k` }))).toMatchObject({ resource_accounts: [FOREIGN] });
    expect(awsFactsOf(await json('kms', 'TrentService.Encrypt', { KeyId: 'alias/build', Plaintext: 'eA==' }))).toMatchObject({ resource_accounts: [] });
  });

  test('a key sent twice counts both values (a service may read the first)', async () => {
    const c = await sign('dynamodb', 'dynamodb.eu-west-1.amazonaws.com', {
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.PutItem' },
      body: `{"TableName":"arn:aws:dynamodb:eu-west-1:${FOREIGN}:table/drop","Item":{},"TableName":"jobs"}`,
    });
    expect(awsFactsOf(c)).toMatchObject({ resource_accounts: [FOREIGN] });
  });

  test('an ARN-like value that cannot be read, or a body that is not JSON, is unknown', async () => {
    expect(awsFactsOf(await json('kms', 'TrentService.Encrypt', { KeyId: 'arn:aws:kms:eu-west-1:99999:key/x' }))).not.toHaveProperty('resource_accounts');
    const broken = await sign('kms', 'kms.eu-west-1.amazonaws.com', { headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'TrentService.Encrypt' }, body: '{"KeyId":' });
    expect(awsFactsOf(broken)).not.toHaveProperty('resource_accounts');
  });

  test('a gzip-encoded body is read decoded', async () => {
    const body = gzipSync(JSON.stringify({ KeyId: `arn:aws:kms:eu-west-1:${FOREIGN}:key/k`, Plaintext: 'eA==' }));
    const c = await sign('kms', 'kms.eu-west-1.amazonaws.com', { headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'TrentService.Encrypt', 'content-encoding': 'gzip' }, body });
    expect(awsFactsOf(c)).toMatchObject({ resource_accounts: [FOREIGN] });
  });
});

describe('bodies written to hide an account', () => {
  const notification = (xml: string) =>
    sign('s3', 'acme-a.s3.eu-west-1.amazonaws.com', { method: 'PUT', path: '/', query: { notification: '' }, headers: { 'content-type': 'application/xml' }, body: xml });
  const topic = `arn:aws:sns:eu-west-1:${FOREIGN}:t`;

  test('a `>` inside a quoted XML attribute does not end the tag: the ARN after it is still read', async () => {
    for (const attr of ['x=">"', "x='>'"]) {
      const c = await notification(`<NotificationConfiguration><TopicConfiguration><Topic ${attr}>${topic}</Topic><Event>s3:ObjectCreated:*</Event></TopicConfiguration></NotificationConfiguration>`);
      expect(awsFactsOf(c)).toMatchObject({ resource_accounts: [FOREIGN] });
    }
  });

  test('a stray `<` (a tag that never closes) makes the XML unreadable, not empty', async () => {
    for (const xml of [`<NotificationConfiguration><Topic>${topic}</Topic><`, `<a${'<a'.repeat(2000)}`, `<${'a'.repeat(4000)}`]) {
      expect(awsFactsOf(await notification(xml))).not.toHaveProperty('resource_accounts');
    }
  });

  test('a compressed body that decodes past the cap is unknown, never read as if it ended at the cap', async () => {
    const params = new URLSearchParams({ Action: 'SendMessage', Pad: 'A'.repeat(40_000), QueueUrl: `https://sqs.eu-west-1.amazonaws.com/${FOREIGN}/q`, MessageBody: 'm' }).toString();
    const c = await sign('sqs', 'sqs.eu-west-1.amazonaws.com', { headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'gzip' }, body: gzipSync(params) });
    // The parser itself, given the whole compressed body as complete (16 KiB cap, the default).
    expect(resourceAccounts(c.req, { bodyKind: 'form' }, c.body, true, 16 * 1024)).toBeUndefined();
    // The same body uncompressed and within the cap is read.
    const small = await sign('sqs', 'sqs.eu-west-1.amazonaws.com', { headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'gzip' }, body: gzipSync(params.replace(/Pad=A+&/, '')) });
    expect(resourceAccounts(small.req, { bodyKind: 'form' }, small.body, true, 16 * 1024)).toEqual([FOREIGN]);
  });
});

describe('query protocol', () => {
  test('SNS PublishBatch to a topic of another account; SQS GetQueueUrl of another account’s queue', async () => {
    expect(awsFactsOf(await form('sns', { Action: 'PublishBatch', TopicArn: `arn:aws:sns:eu-west-1:${FOREIGN}:drop`, 'PublishBatchRequestEntries.member.1.Id': '1', 'PublishBatchRequestEntries.member.1.Message': 'm' }))).toMatchObject({
      action: 'sns:PublishBatch',
      resource_accounts: [FOREIGN],
    });
    expect(awsFactsOf(await form('sqs', { Action: 'GetQueueUrl', QueueName: 'drop', QueueOwnerAWSAccountId: FOREIGN }))).toMatchObject({ action: 'sqs:GetQueueUrl', resource_accounts: [FOREIGN] });
  });

  test('SNS Subscribe of another account’s queue: the Endpoint ARN', async () => {
    const sub = await form('sns', { Action: 'Subscribe', TopicArn: `arn:aws:sns:eu-west-1:${OWN}:builds`, Protocol: 'sqs', Endpoint: `arn:aws:sqs:eu-west-1:${FOREIGN}:drop` });
    expect(awsFactsOf(sub)).toMatchObject({ action: 'sns:Subscribe', resource_accounts: [OWN, FOREIGN] });
  });

  test('a message that is an ARN is data', async () => {
    expect(awsFactsOf(await form('sns', { Action: 'Publish', TopicArn: `arn:aws:sns:eu-west-1:${OWN}:builds`, Message: `arn:aws:iam::${FOREIGN}:role/x` }))).toMatchObject({ resource_accounts: [OWN] });
  });
});

describe('Lambda Invoke (REST): the function in the path', () => {
  const invoke = (fn: string, path = `/2015-03-31/functions/${encodeURIComponent(fn)}/invocations`) =>
    sign('lambda', 'lambda.eu-west-1.amazonaws.com', { path, headers: { 'content-type': 'application/json' }, body: '{"arn":"arn:aws:iam::999999999999:role/payload-is-data"}' });

  test.each([
    [`arn:aws:lambda:eu-west-1:${FOREIGN}:function:collect`, [FOREIGN]],
    [`arn:aws:lambda:eu-west-1:${FOREIGN}:function:collect:prod`, [FOREIGN]],
    [`${FOREIGN}:function:collect`, [FOREIGN]],
    ['build-report', []],
    ['build-report:live', []],
  ])('%s', async (fn, accounts) => {
    const c = await invoke(fn);
    expect(bodyPrefixNeeded(c.req)).toBe(0); // the payload is the function's input, not parameters
    expect(awsFactsOf(c)).toMatchObject({ service: 'lambda', action: 'lambda:InvokeFunction', resource_accounts: accounts });
  });

  test('response streaming and the legacy InvokeAsync', async () => {
    const fn = encodeURIComponent(`arn:aws:lambda:eu-west-1:${FOREIGN}:function:collect`);
    expect(awsFactsOf(await invoke('', `/2021-11-15/functions/${fn}/response-streaming-invocations`))).toMatchObject({ action: 'lambda:InvokeFunction', resource_accounts: [FOREIGN] });
    expect(awsFactsOf(await invoke('', `/2014-11-13/functions/${fn}/invoke-async/`))).toMatchObject({ action: 'lambda:InvokeAsync', resource_accounts: [FOREIGN] });
  });
});

describe('Smithy RPC v2 CBOR', () => {
  const rpc = (operation: string, body: Uint8Array | Buffer) =>
    sign('monitoring', 'monitoring.eu-west-1.amazonaws.com', {
      path: `/service/GraniteServiceVersion20100801/operation/${operation}`,
      headers: { 'content-type': 'application/cbor', 'smithy-protocol': 'rpc-v2-cbor', accept: 'application/cbor' },
      body: Buffer.from(body),
    });

  test('the body is decoded with the SDK’s own codec: an ARN of another account is found, plain data names none', async () => {
    const tag = await rpc('TagResource', cbor.serialize({ ResourceARN: `arn:aws:cloudwatch:eu-west-1:${FOREIGN}:alarm:drop`, Tags: [{ Key: 'k', Value: 'v' }] }));
    expect(awsFactsOf(tag)).toMatchObject({ service: 'cloudwatch', action: 'cloudwatch:TagResource', resource_accounts: [FOREIGN] });
    const metrics = await rpc('PutMetricData', cbor.serialize({ Namespace: 'builds', MetricData: [{ MetricName: 'm', Value: 1.5, Timestamp: new Date(0) }] }));
    expect(awsFactsOf(metrics)).toMatchObject({ action: 'cloudwatch:PutMetricData', resource_accounts: [] });
  });

  test('a truncated or trailing-garbage CBOR body is unknown', async () => {
    const whole = Buffer.from(cbor.serialize({ ResourceARN: `arn:aws:cloudwatch:eu-west-1:${FOREIGN}:alarm:drop` }));
    expect(awsFactsOf(await rpc('TagResource', whole.subarray(0, whole.length - 3)))).not.toHaveProperty('resource_accounts');
    expect(awsFactsOf(await rpc('TagResource', Buffer.concat([whole, Buffer.from([0x00])])))).not.toHaveProperty('resource_accounts');
  });
});
