// Where an AWS request goes: service and region from the SigV4 credential scope (Authorization
// header or presigned X-Amz-Credential) and, failing that, from the endpoint host name; plus the
// S3 bucket when the host is virtual-hosted. Pure string work; it must never throw and never
// invent a service it cannot name.
import { hostName, headerOf, queryOf } from './request.ts';
import type { FactsRequest } from './request.ts';

export interface CredentialScope {
  service: string;
  /** Absent for SigV4a scopes, which carry a region set in X-Amz-Region-Set instead. */
  region?: string;
}

export interface AwsHost {
  service?: string;
  region?: string;
  /** Virtual-hosted S3 bucket (`bucket.s3.region.amazonaws.com`). */
  bucket?: string;
  /** The host is an S3 data-plane endpoint (REST shape applies). */
  s3: boolean;
}

const REGION = /^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/;

/** Signing names whose IAM/CloudTrail prefix differs (action strings use the IAM prefix). */
const SIGNING_NAME_PREFIX: Readonly<Record<string, string>> = {
  monitoring: 'cloudwatch',
  email: 'ses',
};

/** Endpoint host prefixes whose signing name differs from the first label. */
const HOST_SERVICE: Readonly<Record<string, string>> = {
  monitoring: 'cloudwatch',
  email: 'ses',
  'bedrock-runtime': 'bedrock',
  'bedrock-agent-runtime': 'bedrock',
  'runtime.sagemaker': 'sagemaker',
  'api.ecr': 'ecr',
  'dkr.ecr': 'ecr',
  'runtime.lex': 'lex',
  'data.iot': 'iot',
};

export function iamPrefix(signingName: string): string {
  return SIGNING_NAME_PREFIX[signingName] ?? signingName;
}

/** `AKID/20240101/us-east-1/s3/aws4_request` → {service, region}; SigV4a drops the region. */
export function parseCredential(credential: string): CredentialScope | undefined {
  const parts = credential.split('/');
  if (parts[parts.length - 1] !== 'aws4_request') return undefined;
  if (parts.length === 5 && parts[2] && parts[3]) return { region: parts[2], service: parts[3] };
  if (parts.length === 4 && parts[2]) return { service: parts[2] };
  return undefined;
}

/** The credential scope of a SigV4/SigV4a signed request (header or presigned query). */
export function credentialScope(req: FactsRequest): CredentialScope | undefined {
  const auth = headerOf(req, 'authorization');
  let scope: CredentialScope | undefined;
  if (auth?.startsWith('AWS4-')) {
    const m = /Credential=([^,\s]+)/.exec(auth);
    if (m) scope = parseCredential(m[1]!);
  } else {
    const credential = queryOf(req, 'X-Amz-Credential');
    if (credential !== undefined) scope = parseCredential(credential);
  }
  if (scope && scope.region === undefined) {
    const set = headerOf(req, 'x-amz-region-set') ?? queryOf(req, 'X-Amz-Region-Set');
    if (set !== undefined) scope.region = set.split(',')[0]!.trim();
  }
  return scope;
}

/** True when the request carries any AWS signature (SigV4, SigV4a, SigV2 header or presigned). */
export function isAwsSigned(req: FactsRequest): boolean {
  const auth = headerOf(req, 'authorization');
  if (auth !== undefined && (auth.startsWith('AWS4-') || auth.startsWith('AWS '))) return true;
  return queryOf(req, 'X-Amz-Credential') !== undefined || queryOf(req, 'AWSAccessKeyId') !== undefined;
}

export function matchingSuffix(host: string, suffixes: readonly string[]): string | undefined {
  for (const suffix of suffixes) {
    if (host.endsWith(`.${suffix}`)) return suffix;
  }
  return undefined;
}

// Data-plane S3 endpoints, incl. access points and multi-region access points (`…s3-global`).
const S3_LABELS = new Set(['s3', 's3-accelerate', 's3-fips', 's3-external-1', 's3-accesspoint', 's3-accesspoint-fips', 's3-global', 's3-object-lambda']);

function s3Label(label: string): { s3: true; region?: string } | undefined {
  if (S3_LABELS.has(label)) return { s3: true };
  if (label.startsWith('s3express-')) return { s3: true };
  const legacy = /^s3-(?:fips-)?(.+)$/.exec(label);
  if (legacy && REGION.test(legacy[1]!)) return { s3: true, region: legacy[1]! };
  return undefined;
}

/** Service, region and S3 bucket read from an AWS endpoint host name. */
export function parseAwsHost(rawHost: string, suffixes: readonly string[]): AwsHost | undefined {
  const host = hostName(rawHost);
  const suffix = matchingSuffix(host, suffixes);
  if (suffix === undefined) return undefined;
  const labels = host.slice(0, -(suffix.length + 1)).split('.');
  const region = labels.find((l) => REGION.test(l)) ?? (suffix.endsWith('.cn') ? 'cn-north-1' : 'us-east-1');
  // S3 control-plane hosts (`123456789012.s3-control.…`) sign as s3 but are not the object REST API.
  if (labels.includes('s3-control')) return { service: 's3', region, s3: false };
  const s3At = labels.findIndex((l) => s3Label(l) !== undefined);
  if (s3At >= 0) {
    const label = labels[s3At]!;
    const service = label.startsWith('s3express-') ? 's3express' : 's3';
    const out: AwsHost = { service, region: s3Label(label)?.region ?? region, s3: true };
    if (s3At > 0) out.bucket = labels.slice(0, s3At).join('.');
    return out;
  }
  const named = labels.filter((l) => !/^\d+$/.test(l));
  const two = named.slice(0, 2).join('.');
  const service = HOST_SERVICE[two] ?? HOST_SERVICE[named[0] ?? ''] ?? serviceLabel(named);
  return service === undefined ? { region, s3: false } : { service, region, s3: false };
}

/** First label that names a service: skips API Gateway ids and the like (`abc123.execute-api`). */
function serviceLabel(labels: string[]): string | undefined {
  if (labels.includes('execute-api')) return 'execute-api';
  // Account-scoped endpoints (`123456789012.dkr.ecr…`) lead with the account id.
  const first = labels.find((l) => !/^\d+$/.test(l));
  return first === undefined || first === '' || REGION.test(first) ? undefined : first;
}
