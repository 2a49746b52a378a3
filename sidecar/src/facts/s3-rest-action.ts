// Maps an S3 REST request (method, bucket/key presence, subresource query, copy header) to the
// S3 API operation name, as CloudTrail's eventName spells it (DeleteObjects, ListObjectsV2,
// CreateMultipartUpload), not the IAM permission it needs. It must return undefined rather than
// guess: an unknown shape is left for policy to deny as unclassified.
import { hasQuery, headerOf, queryOf } from './request.ts';
import type { FactsRequest } from './request.ts';

/** Bucket subresources: query name → operation by method. Order matters only for GET on a bucket. */
const BUCKET_SUBRESOURCES: ReadonlyArray<readonly [string, Partial<Record<string, string>>]> = [
  ['policy', { GET: 'GetBucketPolicy', PUT: 'PutBucketPolicy', DELETE: 'DeleteBucketPolicy' }],
  ['policyStatus', { GET: 'GetBucketPolicyStatus' }],
  ['acl', { GET: 'GetBucketAcl', PUT: 'PutBucketAcl' }],
  ['cors', { GET: 'GetBucketCors', PUT: 'PutBucketCors', DELETE: 'DeleteBucketCors' }],
  ['lifecycle', { GET: 'GetBucketLifecycleConfiguration', PUT: 'PutBucketLifecycleConfiguration', DELETE: 'DeleteBucketLifecycle' }],
  ['encryption', { GET: 'GetBucketEncryption', PUT: 'PutBucketEncryption', DELETE: 'DeleteBucketEncryption' }],
  ['tagging', { GET: 'GetBucketTagging', PUT: 'PutBucketTagging', DELETE: 'DeleteBucketTagging' }],
  ['versioning', { GET: 'GetBucketVersioning', PUT: 'PutBucketVersioning' }],
  ['website', { GET: 'GetBucketWebsite', PUT: 'PutBucketWebsite', DELETE: 'DeleteBucketWebsite' }],
  ['logging', { GET: 'GetBucketLogging', PUT: 'PutBucketLogging' }],
  ['notification', { GET: 'GetBucketNotificationConfiguration', PUT: 'PutBucketNotificationConfiguration' }],
  ['replication', { GET: 'GetBucketReplication', PUT: 'PutBucketReplication', DELETE: 'DeleteBucketReplication' }],
  ['object-lock', { GET: 'GetObjectLockConfiguration', PUT: 'PutObjectLockConfiguration' }],
  ['publicAccessBlock', { GET: 'GetPublicAccessBlock', PUT: 'PutPublicAccessBlock', DELETE: 'DeletePublicAccessBlock' }],
  ['ownershipControls', { GET: 'GetBucketOwnershipControls', PUT: 'PutBucketOwnershipControls', DELETE: 'DeleteBucketOwnershipControls' }],
  ['accelerate', { GET: 'GetBucketAccelerateConfiguration', PUT: 'PutBucketAccelerateConfiguration' }],
  ['requestPayment', { GET: 'GetBucketRequestPayment', PUT: 'PutBucketRequestPayment' }],
  ['analytics', { GET: 'GetBucketAnalyticsConfiguration', PUT: 'PutBucketAnalyticsConfiguration', DELETE: 'DeleteBucketAnalyticsConfiguration' }],
  ['metrics', { GET: 'GetBucketMetricsConfiguration', PUT: 'PutBucketMetricsConfiguration', DELETE: 'DeleteBucketMetricsConfiguration' }],
  ['inventory', { GET: 'GetBucketInventoryConfiguration', PUT: 'PutBucketInventoryConfiguration', DELETE: 'DeleteBucketInventoryConfiguration' }],
  ['intelligent-tiering', { GET: 'GetBucketIntelligentTieringConfiguration', PUT: 'PutBucketIntelligentTieringConfiguration', DELETE: 'DeleteBucketIntelligentTieringConfiguration' }],
  ['location', { GET: 'GetBucketLocation' }],
  ['versions', { GET: 'ListObjectVersions' }],
  ['uploads', { GET: 'ListMultipartUploads' }],
  ['delete', { POST: 'DeleteObjects' }],
];

const OBJECT_SUBRESOURCES: ReadonlyArray<readonly [string, Partial<Record<string, string>>]> = [
  ['acl', { GET: 'GetObjectAcl', PUT: 'PutObjectAcl' }],
  ['tagging', { GET: 'GetObjectTagging', PUT: 'PutObjectTagging', DELETE: 'DeleteObjectTagging' }],
  ['legal-hold', { GET: 'GetObjectLegalHold', PUT: 'PutObjectLegalHold' }],
  ['retention', { GET: 'GetObjectRetention', PUT: 'PutObjectRetention' }],
  ['attributes', { GET: 'GetObjectAttributes' }],
  ['torrent', { GET: 'GetObjectTorrent' }],
  ['restore', { POST: 'RestoreObject' }],
  ['select', { POST: 'SelectObjectContent' }],
  ['uploads', { POST: 'CreateMultipartUpload' }],
];

function fromTable(
  req: FactsRequest,
  method: string,
  table: ReadonlyArray<readonly [string, Partial<Record<string, string>>]>,
): string | null | undefined {
  for (const [name, byMethod] of table) {
    if (hasQuery(req, name)) return byMethod[method] ?? null; // a known subresource with an unknown method
  }
  return undefined;
}

function bucketAction(req: FactsRequest, method: string): string | undefined {
  const sub = fromTable(req, method, BUCKET_SUBRESOURCES);
  if (sub !== undefined) return sub ?? undefined;
  switch (method) {
    case 'GET':
      return queryOf(req, 'list-type') === '2' ? 'ListObjectsV2' : 'ListObjects';
    case 'HEAD':
      return 'HeadBucket';
    case 'PUT':
      return 'CreateBucket';
    case 'DELETE':
      return 'DeleteBucket';
    case 'POST':
      return 'PutObject'; // browser-based form upload
    default:
      return undefined;
  }
}

function objectAction(req: FactsRequest, method: string): string | undefined {
  const copy = headerOf(req, 'x-amz-copy-source') !== undefined;
  if (hasQuery(req, 'uploadId')) {
    switch (method) {
      case 'PUT':
        return copy ? 'UploadPartCopy' : 'UploadPart';
      case 'POST':
        return 'CompleteMultipartUpload';
      case 'DELETE':
        return 'AbortMultipartUpload';
      case 'GET':
        return 'ListParts';
      default:
        return undefined;
    }
  }
  const sub = fromTable(req, method, OBJECT_SUBRESOURCES);
  if (sub !== undefined) return sub ?? undefined;
  switch (method) {
    case 'GET':
      return 'GetObject';
    case 'HEAD':
      return 'HeadObject';
    case 'PUT':
      return copy ? 'CopyObject' : 'PutObject';
    case 'DELETE':
      return 'DeleteObject';
    default:
      return undefined;
  }
}

/** The S3 operation for a request addressed to `bucket` (and `key`), or ListBuckets at the root. */
export function s3RestAction(req: FactsRequest, bucket: string | undefined, key: string | undefined): string | undefined {
  const method = req.method.toUpperCase();
  if (bucket === undefined) return method === 'GET' ? 'ListBuckets' : undefined;
  return key === undefined ? bucketAction(req, method) : objectAction(req, method);
}
