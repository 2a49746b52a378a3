// AWS facts: service, region, API action (`service:Operation`) and S3 bucket/key. The action
// comes from whichever wire protocol the request speaks: X-Amz-Target (JSON 1.0/1.1), the
// Smithy RPC v2 path, `Action=` in the query or a form body (query protocol, presigned STS), or
// the S3 REST shape. It must never emit facts without an action: a request it cannot name is
// left without `aws` facts so that policy denies it as unclassified instead of allowing a blank.
import type { AwsFacts } from '../../../api/src/index.ts';
import { credentialScope, iamPrefix, isAwsSigned, parseAwsHost } from './aws-endpoint.ts';
import type { AwsHost } from './aws-endpoint.ts';
import { decodedBodyPrefix } from './body-prefix.ts';
import { decodePercent, headerOf, queryOf } from './request.ts';
import type { FactsRequest } from './request.ts';
import { s3RestAction } from './s3-rest-action.ts';

export interface AwsRequestShape {
  /** IAM/CloudTrail service prefix used in the action string. */
  service: string;
  region: string;
  /** Operation named by headers, path or query; undefined when only the form body can say. */
  operation?: string;
  /** The query-protocol form body must be read to find `Action=`. */
  actionInBody: boolean;
  bucket?: string;
  key?: string;
}

const S3_SERVICES = new Set(['s3', 's3express']);
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
  } else if (req.method.toUpperCase() === 'POST' && isFormBody(req)) {
    shape.actionInBody = true;
  }
  return shape;
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

export function awsMoreBodyNeeded(req: FactsRequest, shape: AwsRequestShape | undefined, prefix: Buffer, maxBytes: number): number {
  if (!shape?.actionInBody || prefix.length >= maxBytes) return 0;
  const decoded = decodedBodyPrefix(req, prefix, maxBytes);
  if (decoded === undefined || formAction(decoded, false) !== undefined) return 0;
  return 1;
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
  return facts;
}
