// Fuzz-ish properties of the fact derivers, with a seeded generator so failures reproduce:
// hostile or truncated input never throws, results always satisfy the api/ Facts schema, the
// buffering protocol never asks past its cap, and the JSON scan agrees with JSON.parse.
import { describe, expect, test } from '@jest/globals';
import { Facts } from '../../../api/src/index.ts';
import { DEFAULT_FACTS_CONFIG, bodyPrefixNeeded, deriveFacts, moreBodyNeeded, parseFactsConfig } from '../../src/facts/derive-facts.ts';
import type { FactsRequest } from '../../src/facts/derive-facts.ts';
import { parseReceivePackCommands } from '../../src/facts/git-receive-pack.ts';
import { scanTopLevelJson } from '../../src/facts/json-top-level-scan.ts';
import { prng as rng } from '../../../testkit/prng.ts';

const rand = rng(0x5111ce);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const int = (n: number): number => Math.floor(rand() * n);
const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)));
const pkt = (s: string): string => (s.length + 4).toString(16).padStart(4, '0') + s;

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const SEEDS: Array<{ req: FactsRequest; body: Buffer }> = [
  {
    req: { method: 'POST', host: 'github.com', path: '/acme/app.git/git-receive-pack', query: {}, headers: {} },
    body: Buffer.from(pkt(`${A} ${B} refs/heads/main\0report-status push-options\n`) + pkt(`${B} ${A} refs/tags/v1`) + '0000' + pkt('ci.skip') + '0000PACK'),
  },
  {
    req: { method: 'POST', host: 'sts.amazonaws.com', path: '/', query: {}, headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=0' } },
    body: Buffer.from('Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fx'),
  },
  {
    req: { method: 'POST', host: 'api.anthropic.com', path: '/v1/messages', query: { beta: ['true'] }, headers: { 'content-type': 'application/json' } },
    body: Buffer.from(JSON.stringify({ max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'text', text: 'hi "there" \\ {[' }] }], model: 'claude', stream: true })),
  },
  { req: { method: 'DELETE', host: 'kubernetes.default.svc', path: '/api/v1/namespaces/ns/pods', query: { watch: ['1'] }, headers: {} }, body: Buffer.alloc(0) },
  { req: { method: 'PUT', host: 'b.s3.us-west-2.amazonaws.com', path: '/k%20y', query: { uploadId: ['u'], partNumber: ['1'] }, headers: {} }, body: Buffer.from('data') },
  {
    req: { method: 'POST', host: 'api.github.com', path: '/graphql', query: {}, headers: { 'content-type': 'application/json' } },
    body: Buffer.from(JSON.stringify({ query: 'query Q($o: String!) { repository(owner: $o, name: "a") { object(expression: "HEAD:.env") { ... on Blob { text } } } } # c\n', variables: { o: 'acme' } })),
  },
  {
    req: { method: 'POST', host: 'kms.eu-west-1.amazonaws.com', path: '/', query: {}, headers: { 'x-amz-target': 'TrentService.Encrypt', 'content-type': 'application/x-amz-json-1.1', authorization: 'AWS4-HMAC-SHA256 Credential=AKID/20250101/eu-west-1/kms/aws4_request, SignedHeaders=host, Signature=0' } },
    body: Buffer.from('{"KeyId":"arn:aws:kms:eu-west-1:999999999999:key/k","Entries":[{"EventBusName":"arn:aws:events:eu-west-1:123456789012:event-bus/b"}],"RequestItems":{"arn:aws:dynamodb:eu-west-1:1:table/t":[]}}'),
  },
  {
    req: { method: 'POST', host: 'monitoring.eu-west-1.amazonaws.com', path: '/service/GraniteServiceVersion20100801/operation/TagResource', query: {}, headers: { 'smithy-protocol': 'rpc-v2-cbor', authorization: 'AWS4-HMAC-SHA256 Credential=AKID/20250101/eu-west-1/monitoring/aws4_request, SignedHeaders=host, Signature=0' } },
    // {"ResourceARN": "arn:aws:cloudwatch:eu-west-1:999999999999:alarm:x", "Tags": [1.5, h'00', -2]} with an indefinite-length text key
    body: Buffer.concat([Buffer.from([0xa2, 0x7f, 0x65]), Buffer.from('Resou'), Buffer.from([0x66]), Buffer.from('rceARN'), Buffer.from([0xff, 0x78, 0x31]), Buffer.from('arn:aws:cloudwatch:eu-west-1:999999999999:alarm:x'), Buffer.from([0x64]), Buffer.from('Tags'), Buffer.from([0x83, 0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0x41, 0x00, 0x21])]),
  },
  {
    req: { method: 'PUT', host: 'acme.s3.eu-west-1.amazonaws.com', path: '/', query: { replication: [''] }, headers: { authorization: 'AWS4-HMAC-SHA256 Credential=AKID/20250101/eu-west-1/s3/aws4_request, SignedHeaders=host, Signature=0' } },
    body: Buffer.from('<?xml version="1.0"?><ReplicationConfiguration><Rule><Destination><Bucket>arn:aws:s3:::d</Bucket><Account>999999999999</Account></Destination></Rule></ReplicationConfiguration>'),
  },
];

const PATH_PIECES = ['/', '//', '..', '.', '%', '%2F', '%zz', '%00', 'info', 'refs', 'git-receive-pack', 'git-upload-pack', '.git', 'api', 'apis', 'v1', 'namespaces', 'watch', 'proxy', 'chat', 'completions', 'messages', 'service', 'operation', 'graphql', '2015-03-31', 'functions', 'invocations', 'arn%3Aaws%3Alambda%3Ax%3A999999999999%3Afunction%3Af', '\u00e9', '\ud800', ' '];
const HOSTS = ['api.github.com', 'lambda.eu-west-1.amazonaws.com', 'ap-999999999999.s3-accesspoint.eu-west-1.amazonaws.com', 'x-1.s3-accesspoint.eu-west-1.amazonaws.com', 'github.com', 'kubernetes.default.svc', 'api.openai.com', 'x.s3.amazonaws.com', 's3-.amazonaws.com', '.amazonaws.com', '[::1]:443', 'a:b:c', '', 'KUBERNETES.default.svc.', '1.2.3.4'];
const HEADER_NAMES = ['authorization', 'x-amz-target', 'x-amz-server-side-encryption-aws-kms-key-id', 'x-amz-expected-bucket-owner', 'content-type', 'content-encoding', 'content-length', 'x-amz-copy-source', 'smithy-protocol', 'x-amz-region-set'];
const HEADER_VALUES = ['AWS4-HMAC-SHA256 Credential=', 'arn:aws:kms:r:999999999999:key/k', 'arn:x', 'application/json', 'application/graphql', 'AWS4-X Credential=a/b/c/d/aws4_request', 'AWS4-ECDSA-P256-SHA256 Credential=a/b/s3/aws4_request', 'gzip', 'br', 'deflate', 'application/x-www-form-urlencoded', '12', '-1', '99999999999999999999', 'X.', '.', ''];

function randomRequest(): FactsRequest {
  const path = Array.from({ length: int(8) }, () => pick(PATH_PIECES)).join(pick(['/', '']));
  const headers: Record<string, string> = {};
  for (let i = int(4); i > 0; i--) headers[pick(HEADER_NAMES)] = pick(HEADER_VALUES);
  const query: Record<string, string[]> = {};
  for (let i = int(3); i > 0; i--) query[pick(['service', 'Action', 'query', 'TopicArn', 'X-Amz-Credential', 'watch', 'fieldSelector', 'uploads', 'delete', 'uploadId', 'list-type'])] = [pick(['git-receive-pack', 'a/b/c/s3/aws4_request', 'true', 'metadata.name=x', '', '2', 'Delete'])];
  return { method: pick(['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'PATCH', 'get', 'BREW']), host: pick(HOSTS), path: '/' + path, query, headers };
}

function mutate(body: Buffer): Buffer {
  const out = Buffer.from(body);
  for (let i = int(4); i > 0 && out.length > 0; i--) out[int(out.length)] = int(256);
  return out.subarray(0, int(out.length + 1));
}

function checkProtocol(req: FactsRequest, body: Buffer): void {
  const cap = bodyPrefixNeeded(req);
  expect(cap).toBeGreaterThanOrEqual(0);
  const prefix = body.subarray(0, cap);
  const more = moreBodyNeeded(req, prefix);
  expect(more).toBeGreaterThanOrEqual(0);
  if (more > 0) expect(prefix.length + more).toBeLessThanOrEqual(cap);
  expect(() => Facts.parse(deriveFacts(req, prefix))).not.toThrow();
  expect(() => Facts.parse(deriveFacts(req))).not.toThrow();
}

describe('never throws, always schema-valid', () => {
  test('every truncation of the realistic seeds', () => {
    for (const { req, body } of SEEDS) for (let n = 0; n <= body.length; n++) checkProtocol(req, body.subarray(0, n));
  });

  test('random byte damage to realistic bodies, gzip-labelled or not', () => {
    for (let i = 0; i < 3000; i++) {
      const seed = pick(SEEDS);
      const headers = rand() < 0.2 ? { ...seed.req.headers, 'content-encoding': pick(['gzip', 'br', 'deflate']) } : seed.req.headers;
      checkProtocol({ ...seed.req, headers }, mutate(seed.body));
    }
  });

  test('random requests with random bodies', () => {
    for (let i = 0; i < 5000; i++) checkProtocol(randomRequest(), bytes(int(300)));
  });

  test('pkt-line parser: random bytes and random pkt streams never throw and never overrun the cap', () => {
    for (let i = 0; i < 5000; i++) {
      const buf = rand() < 0.5 ? bytes(int(200)) : Buffer.from(Array.from({ length: int(6) }, () => pick(['0000', '0001', pkt(`${A} ${B} r`), pkt('shallow ' + A), pkt('push-cert\0x\n'), 'ffff', '0003', pkt('\n')])).join(''));
      const cap = 16 + int(300);
      const r = parseReceivePackCommands(buf, cap);
      if (r.status === 'complete') expect(r.bytes).toBeLessThanOrEqual(Math.min(cap, buf.length));
      if (r.status === 'incomplete') expect(buf.length + r.needBytes).toBeLessThanOrEqual(cap);
    }
  });
});

describe('top-level JSON scan agrees with JSON.parse', () => {
  function randomValue(depth: number): unknown {
    switch (int(depth > 3 ? 5 : 7)) {
      case 0:
        return pick(['', 'model', 'a"b', 'back\\slash', '\u2028', '}{][', 'ünï', '\ud83d\ude00']);
      case 1:
        return pick([0, -1.5, 1e21, 3]);
      case 2:
        return pick([true, false]);
      case 3:
        return null;
      case 4:
        return pick(['x', 'y']);
      case 5:
        return Array.from({ length: int(4) }, () => randomValue(depth + 1));
      default:
        return Object.fromEntries(Array.from({ length: int(4) }, () => [pick(['model', 'stream', 'k', 'm"odel']), randomValue(depth + 1)]));
    }
  }

  test('for random objects, whole and cut at every length', () => {
    const wanted = new Set(['model', 'stream']);
    for (let i = 0; i < 500; i++) {
      const obj = Object.fromEntries(Array.from({ length: int(6) }, () => [pick(['model', 'stream', 'messages', 'x']), randomValue(0)]));
      const text = rand() < 0.5 ? JSON.stringify(obj) : JSON.stringify(obj, null, pick([1, 2, '\t']));
      const buf = Buffer.from(text);
      const scan = scanTopLevelJson(buf, wanted);
      expect(scan.complete).toBe(true);
      expect(scan.invalid).toBe(false);
      const parsed = JSON.parse(text) as Record<string, unknown>;
      for (const key of wanted) {
        const v = parsed[key];
        if (v === undefined || (typeof v === 'object' && v !== null)) expect(scan.values.has(key)).toBe(false);
        else expect(scan.values.get(key)).toEqual(v);
      }
      for (let n = 0; n < buf.length; n += 1 + int(7)) {
        const cut = scanTopLevelJson(buf.subarray(0, n), wanted);
        expect(cut.complete).toBe(false);
        expect(cut.invalid).toBe(false);
        // Anything reported from a prefix is what the whole document says, or a later duplicate overrides it.
        for (const [k, v] of cut.values) if (!text.slice(n).includes(JSON.stringify(k))) expect(v).toEqual(parsed[k]);
      }
    }
  });

  test('non-objects are invalid, nested members are not top-level', () => {
    const wanted = new Set(['model']);
    expect(scanTopLevelJson(Buffer.from('[{"model":"x"}]'), wanted).invalid).toBe(true);
    expect(scanTopLevelJson(Buffer.from('"model"'), wanted).invalid).toBe(true);
    expect(scanTopLevelJson(Buffer.from('{"a":{"model":"x"}}'), wanted).values.size).toBe(0);
    expect(scanTopLevelJson(Buffer.from('{"model" "x"}'), wanted).invalid).toBe(true);
    expect(scanTopLevelJson(Buffer.from('\ufeff{"model":"x"}'), wanted).values.get('model')).toBe('x');
  });
});

describe('config', () => {
  test('defaults are frozen; a bad value names the field', () => {
    expect(Object.isFrozen(DEFAULT_FACTS_CONFIG)).toBe(true);
    expect(() => parseFactsConfig({ maxGitCommandBytes: 10 })).toThrow(/maxGitCommandBytes/);
    expect(() => parseFactsConfig({ llmHosts: { x: 'gemini' } })).toThrow(/llmHosts/);
    expect(() => parseFactsConfig({ unknownField: 1 })).toThrow(/unknownField/);
  });
});
