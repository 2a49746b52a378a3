// AWS facts: service, region, API action (`service:Operation`) and S3 bucket/key. The action
// comes from whichever wire protocol the request speaks: X-Amz-Target (JSON 1.0/1.1), the
// Smithy RPC v2 path, `Action=` in the query or a form body (query protocol, presigned STS), or
// the S3 REST shape. Besides the action it reports what own-vs-foreign rules need: whether the
// agent signed the request, an S3 copy's source bucket, the role an AssumeRole asks for (RoleArn,
// from query, form or JSON body), SSM's WithDecryption, the account of an SQS queue or SNS topic,
// and every account the request's resources name (aws-resource-accounts.ts: EventBridge buses,
// Kinesis streams, KMS keys, Lambda functions, access points, ... in the query, the body, the
// headers, the path or the host). Lambda's REST API is named for its Invoke calls. It must never emit facts without an
// action: a request it cannot name is left without `aws` facts so that policy denies it as
// unclassified instead of allowing a blank; a parameter it cannot read unambiguously is left out.
import type { AwsFacts } from '../../../api/src/index.ts';
import { credentialScope, iamPrefix, isAwsSigned, parseAwsHost } from './aws-endpoint.ts';
import type { AwsHost } from './aws-endpoint.ts';
import { resourceAccounts } from './aws-resource-accounts.ts';
import type { AwsBodyKind } from './aws-resource-accounts.ts';
import { decodedBodyPrefix } from './body-prefix.ts';
import { scanTopLevelJson } from './json-top-level-scan.ts';
import { declaredBodyLength, decodePercent, headerOf, queryOf } from './request.ts';
import type { FactsRequest } from './request.ts';
import { defineDeriver } from './deriver.ts';
import { s3RestAction } from './s3-rest-action.ts';

export interface AwsRequestShape {
  /** IAM/CloudTrail service prefix used in the action string. */
  service: string;
  region: string;
  /** Operation named by headers, path or query; undefined when only the form body can say. */
  operation?: string;
  /** The query-protocol form body must be read to find `Action=`. */
  actionInBody: boolean;
  /** Where the parameters the facts report (RoleArn, WithDecryption) may be sent besides the query. */
  paramsIn?: 'form' | 'json';
  bucket?: string;
  key?: string;
  signed: boolean;
  copySourceBucket?: string;
  /** SQS query protocol sent to the queue URL itself: the account in its path. */
  pathAccount?: string;
  /** A body that carries parameters (read whole for the accounts it names); absent for REST payloads. */
  bodyKind?: AwsBodyKind;
  /** Resources named in the path (Lambda's FunctionName, an S3 bucket given as an ARN). */
  pathResources?: string[];
}

/** Parameters reported as facts, by the operations that take them. */
const ROLE_OPERATIONS = new Set(['sts:AssumeRole', 'sts:AssumeRoleWithWebIdentity', 'sts:AssumeRoleWithSAML']);
const DECRYPT_OPERATIONS = new Set(['ssm:GetParameter', 'ssm:GetParameters', 'ssm:GetParametersByPath', 'ssm:GetParameterHistory']);
const ROLE_ARN = /^arn:aws[a-z-]*:iam::(\d{12}):role\/[\w+=,.@/-]{1,512}$/;
const COPY_OPERATIONS = new Set(['CopyObject', 'UploadPartCopy']);
const QUEUE_URL = /^https?:\/\/[^/?#]+\/(\d{12})\/[^/?#]+\/?$/;
const QUEUE_PATH = /^\/(\d{12})\/[^/]+\/?$/;
const ARN_ACCOUNT = /^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(\d{12}):\S+$/;

function wantedParams(service: string, operation: string | undefined): string[] {
  if (operation === undefined) return [];
  const action = `${service}:${operation}`;
  if (ROLE_OPERATIONS.has(action)) return ['RoleArn'];
  if (DECRYPT_OPERATIONS.has(action)) return ['WithDecryption'];
  // Calls that name a queue or topic by URL/ARN, which may be another account's.
  if (service === 'sqs') return ['QueueUrl'];
  if (service === 'sns') return ['TopicArn', 'TargetArn'];
  return [];
}

/**
 * The bucket an `x-amz-copy-source` header names (`bucket/key`, `/bucket/key`, percent-encoded,
 * `?versionId=` allowed). An access point ARN is returned up to its object part; it is no bucket
 * name, so policy treats it as foreign unless the organisation lists it.
 */
export function copySourceBucket(header: string): string | undefined {
  const decoded = decodePercent(header.trim());
  if (decoded === undefined) return undefined;
  const source = decoded.startsWith('/') ? decoded.slice(1) : decoded;
  if (source.startsWith('arn:')) {
    const at = source.indexOf('/object/');
    return at > 0 ? source.slice(0, at) : undefined;
  }
  const slash = source.indexOf('/');
  const bucket = slash < 0 ? source : source.slice(0, slash);
  return bucket === '' || bucket.includes('?') ? undefined : bucket;
}

const S3_SERVICES = new Set(['s3', 's3express']);
/** Lambda's REST Invoke paths → the IAM action (InvokeWithResponseStream is authorised as InvokeFunction). */
const LAMBDA_INVOKE: readonly [RegExp, string][] = [
  [/^\/2015-03-31\/functions\/([^/]+)\/invocations\/?$/, 'InvokeFunction'],
  [/^\/2021-11-15\/functions\/([^/]+)\/response-streaming-invocations\/?$/, 'InvokeFunction'],
  [/^\/2014-11-13\/functions\/([^/]+)\/invoke-async\/?$/, 'InvokeAsync'],
];
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);
const OPERATION = /^[A-Za-z][A-Za-z0-9]{0,127}$/;

function targetOperation(target: string): string | undefined {
  const op = target.slice(target.lastIndexOf('.') + 1);
  return OPERATION.test(op) ? op : undefined;
}

function isFormBody(req: FactsRequest): boolean {
  const type = headerOf(req, 'content-type')?.toLowerCase() ?? '';
  return type.startsWith('application/x-www-form-urlencoded');
}

/** Bucket and key, virtual-hosted (bucket in the host) or path style (`/bucket/key`). */
function s3Address(path: string, host: AwsHost | undefined): { bucket?: string; key?: string } {
  const rest = path.startsWith('/') ? path.slice(1) : path;
  if (host?.bucket !== undefined) return { bucket: host.bucket, key: objectKey(rest) };
  const slash = rest.indexOf('/');
  const bucket = decodePercent(slash < 0 ? rest : rest.slice(0, slash));
  if (!bucket) return {};
  return { bucket, key: slash < 0 ? undefined : objectKey(rest.slice(slash + 1)) };
}

/** S3 keys are not path-normalised (`a//b`, `../x` are literal keys), only percent-decoded. */
function objectKey(raw: string): string | undefined {
  if (raw === '') return undefined;
  return decodePercent(raw) ?? raw;
}

/** What can be told about an AWS request before reading its body; undefined when it is not AWS. */
export function classifyAwsRequest(req: FactsRequest, hostSuffixes: readonly string[]): AwsRequestShape | undefined {
  const host = parseAwsHost(req.host, hostSuffixes);
  if (host === undefined && !isAwsSigned(req)) return undefined;
  const scope = credentialScope(req);
  const signingName = scope?.service ?? host?.service;
  if (signingName === undefined) return undefined;
  const shape: AwsRequestShape = {
    service: iamPrefix(signingName),
    region: scope?.region ?? host?.region ?? 'us-east-1',
    actionInBody: false,
    signed: isAwsSigned(req),
  };
  const target = headerOf(req, 'x-amz-target');
  const rpcV2 = /^\/service\/[^/]+\/operation\/([^/]+)$/.exec(req.path);
  const queryAction = queryOf(req, 'Action');
  if (target !== undefined) {
    shape.operation = targetOperation(target);
  } else if (rpcV2 && headerOf(req, 'smithy-protocol') !== undefined) {
    shape.operation = targetOperation(rpcV2[1]!);
  } else if (queryAction !== undefined) {
    shape.operation = OPERATION.test(queryAction) ? queryAction : undefined;
  } else if (S3_SERVICES.has(signingName) && (host === undefined || host.s3)) {
    const { bucket, key } = s3Address(req.path, host);
    shape.operation = s3RestAction(req, bucket, key);
    if (bucket !== undefined) shape.bucket = bucket;
    if (key !== undefined) shape.key = key;
    const copySource = headerOf(req, 'x-amz-copy-source');
    if (shape.operation !== undefined && COPY_OPERATIONS.has(shape.operation) && copySource !== undefined) {
      const source = copySourceBucket(copySource);
      if (source !== undefined) shape.copySourceBucket = source;
    }
    if (bucket?.toLowerCase().startsWith('arn:')) shape.pathResources = [bucket];
    // Bucket configuration (replication, notification, inventory, logging, ...) is an XML body
    // that names destinations: read it like a parameter body.
    if (key === undefined && BODY_METHODS.has(req.method.toUpperCase())) shape.bodyKind = 'xml';
  } else if (shape.service === 'lambda' && req.method.toUpperCase() === 'POST') {
    for (const [pattern, operation] of LAMBDA_INVOKE) {
      const m = pattern.exec(req.path);
      const fn = m ? decodePercent(m[1]!) : undefined;
      if (fn === undefined || fn === '') continue;
      shape.operation = operation;
      shape.pathResources = [fn];
      break;
    }
  } else if (req.method.toUpperCase() === 'POST' && isFormBody(req)) {
    shape.actionInBody = true;
  }
  if (shape.operation !== undefined || shape.actionInBody) {
    if (shape.bodyKind === undefined && BODY_METHODS.has(req.method.toUpperCase())) {
      if (isFormBody(req)) shape.bodyKind = 'form';
      else if (target !== undefined) shape.bodyKind = 'json';
      else if (rpcV2 && /cbor/i.test(headerOf(req, 'smithy-protocol') ?? '')) shape.bodyKind = 'cbor';
    }
  }
  const queuePath = shape.service === 'sqs' ? QUEUE_PATH.exec(req.path) : null;
  if (queuePath) shape.pathAccount = queuePath[1]!;
  if (shape.actionInBody) shape.paramsIn = 'form';
  else if (wantedParams(shape.service, shape.operation).length > 0 && req.method.toUpperCase() === 'POST') {
    shape.paramsIn = target !== undefined && !isFormBody(req) ? 'json' : isFormBody(req) ? 'form' : undefined;
    if (shape.paramsIn === undefined) delete shape.paramsIn;
  }
  return shape;
}

/** How many body bytes AWS facts can use: the form or JSON body prefix, when parameters live there. */
export function awsBodyPrefixNeeded(shape: AwsRequestShape | undefined, maxBytes: number): number {
  return shape?.paramsIn !== undefined || shape?.bodyKind !== undefined ? maxBytes : 0;
}

/** Every value of each wanted parameter in a form body prefix (only complete parameters count). */
function formParams(body: Buffer, complete: boolean, names: readonly string[]): Map<string, string[]> {
  let text = body.toString('latin1');
  if (!complete) {
    const amp = text.lastIndexOf('&');
    text = amp < 0 ? '' : text.slice(0, amp);
  }
  const params = new URLSearchParams(text);
  return new Map(names.map((n) => [n, params.getAll(n)]));
}

/** `Action=` from a form body prefix; only complete parameters count (the last may be cut). */
export function formAction(body: Buffer, complete: boolean): string | undefined {
  let text = body.toString('latin1');
  if (!complete) {
    const amp = text.lastIndexOf('&');
    text = amp < 0 ? '' : text.slice(0, amp);
  }
  const action = new URLSearchParams(text).get('Action');
  return action !== null && OPERATION.test(action) ? action : undefined;
}

/**
 * 0 once the prefix holds what the facts need (the action and, for the operations that take
 * them, their parameters) or can never hold it; else 1. A form parameter may be repeated later
 * in the body, so a form that names the parameter is still read to its end (within maxBytes).
 */
export function awsMoreBodyNeeded(req: FactsRequest, shape: AwsRequestShape | undefined, prefix: Buffer, maxBytes: number): number {
  return Math.max(paramsMoreBodyNeeded(req, shape, prefix, maxBytes), wholeBodyNeeded(req, shape, prefix, maxBytes));
}

/** A body that carries parameters is read whole (up to maxBytes): any value in it may name an account. */
function wholeBodyNeeded(req: FactsRequest, shape: AwsRequestShape | undefined, prefix: Buffer, maxBytes: number): number {
  if (shape?.bodyKind === undefined || prefix.length >= maxBytes) return 0;
  const declared = declaredBodyLength(req);
  if (declared === undefined) return 1;
  return prefix.length >= declared ? 0 : Math.min(declared, maxBytes) - prefix.length;
}

function paramsMoreBodyNeeded(req: FactsRequest, shape: AwsRequestShape | undefined, prefix: Buffer, maxBytes: number): number {
  if (shape?.paramsIn === undefined || prefix.length >= maxBytes) return 0;
  const decoded = decodedBodyPrefix(req, prefix, maxBytes);
  if (decoded === undefined) return 0;
  if (shape.paramsIn === 'json') {
    const scan = scanTopLevelJson(decoded, new Set(wantedParams(shape.service, shape.operation)));
    return scan.complete || scan.invalid ? 0 : 1;
  }
  const operation = shape.operation ?? formAction(decoded, false);
  if (operation === undefined) return 1;
  return wantedParams(shape.service, operation).length > 0 ? 1 : 0;
}

/** RoleArn and WithDecryption as facts; a parameter sent with conflicting values is left out. */
function paramFacts(
  req: FactsRequest,
  shape: AwsRequestShape,
  operation: string,
  body: Buffer | undefined,
  bodyComplete: boolean,
  maxBytes: number,
): Pick<AwsFacts, 'role_arn' | 'role_account' | 'with_decryption' | 'resource_account'> {
  const names = wantedParams(shape.service, operation);
  if (names.length === 0) return {};
  const values = new Map<string, unknown[]>(names.map((n) => [n, [...(req.query[n] ?? [])]]));
  if (shape.paramsIn !== undefined) {
    // Parameters may be sent in the body too: only a body seen whole says which values the
    // service will read (a value past the prefix could contradict the ones seen).
    const decoded = body === undefined ? undefined : decodedBodyPrefix(req, body, maxBytes);
    if (decoded === undefined) return {};
    if (shape.paramsIn === 'form') {
      if (!bodyComplete || decoded !== body) return {};
      for (const [n, vs] of formParams(decoded, true, names)) values.get(n)!.push(...vs);
    } else {
      const scan = scanTopLevelJson(decoded, new Set(names));
      if (!scan.complete) return {};
      for (const n of names) if (scan.values.has(n)) values.get(n)!.push(scan.values.get(n));
    }
  }
  const single = (n: string): unknown => {
    const vs = new Set(values.get(n));
    return vs.size === 1 ? [...vs][0] : undefined;
  };
  const out: Pick<AwsFacts, 'role_arn' | 'role_account' | 'with_decryption' | 'resource_account'> = {};
  const account = resourceAccount(shape.pathAccount, [...(values.get('QueueUrl') ?? [])], [...(values.get('TopicArn') ?? []), ...(values.get('TargetArn') ?? [])]);
  if (account !== undefined) out.resource_account = account;
  const roleArn = single('RoleArn');
  if (typeof roleArn === 'string') {
    const m = ROLE_ARN.exec(roleArn);
    if (m) {
      out.role_arn = roleArn;
      out.role_account = m[1]!;
    }
  }
  const decrypt = single('WithDecryption');
  if (decrypt === true || decrypt === 'true') out.with_decryption = true;
  else if (decrypt === false || decrypt === 'false') out.with_decryption = false;
  return out;
}

/** The one account a queue URL / topic ARN (and the request path) names; undefined when none or several, or one is unreadable. */
function resourceAccount(pathAccount: string | undefined, queueUrls: unknown[], arns: unknown[]): string | undefined {
  const accounts = new Set<string>(pathAccount === undefined ? [] : [pathAccount]);
  for (const [values, pattern] of [
    [queueUrls, QUEUE_URL],
    [arns, ARN_ACCOUNT],
  ] as const) {
    for (const v of values) {
      const m = typeof v === 'string' ? pattern.exec(v) : null;
      if (!m) return undefined;
      accounts.add(m[1]!);
    }
  }
  return accounts.size === 1 ? [...accounts][0] : undefined;
}

/**
 * AWS facts, or undefined when no action could be named. `bodyComplete` says whether `body` is
 * the whole body (its last form parameter is then whole too).
 */
export function awsFacts(req: FactsRequest, shape: AwsRequestShape, body: Buffer | undefined, bodyComplete: boolean, maxBytes: number): AwsFacts | undefined {
  let operation = shape.operation;
  if (operation === undefined && shape.actionInBody && body !== undefined) {
    const decoded = decodedBodyPrefix(req, body, maxBytes);
    if (decoded !== undefined) operation = formAction(decoded, bodyComplete && decoded === body); // an encoded body's end is unknown
  }
  if (operation === undefined) return undefined;
  const facts: AwsFacts = { service: shape.service, region: shape.region, action: `${shape.service}:${operation}` };
  if (shape.bucket !== undefined) facts.bucket = shape.bucket;
  if (shape.key !== undefined) facts.key = shape.key;
  facts.signed = shape.signed;
  if (shape.copySourceBucket !== undefined) facts.copy_source_bucket = shape.copySourceBucket;
  const accounts = resourceAccounts(req, shape, body, bodyComplete || (body === undefined && declaredBodyLength(req) === 0), maxBytes);
  if (accounts !== undefined) facts.resource_accounts = accounts;
  return { ...facts, ...paramFacts(req, shape, operation, body, bodyComplete, maxBytes) };
}

/** facts.aws: service, region, action and the accounts its resources name, for signed or AWS-hosted requests. */
export const awsDeriver = defineDeriver<'aws', AwsRequestShape>({
  key: 'aws',
  classify: (req, config) => classifyAwsRequest(req, config.awsHostSuffixes),
  bodyPrefixNeeded: (shape, config) => awsBodyPrefixNeeded(shape, config.maxAwsFormBytes),
  moreBodyNeeded: (req, shape, prefix, config) => awsMoreBodyNeeded(req, shape, prefix, config.maxAwsFormBytes),
  derive: (req, shape, body, config) => awsFacts(req, shape, body, body !== undefined && declaredBodyLength(req) === body.length, config.maxAwsFormBytes),
});
