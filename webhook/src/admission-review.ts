// AdmissionReview v1 as it crosses the wire: the request schema (checked before anything reads
// it, so a malformed review is a 400 naming the field, never an exception deeper in) and the
// response builders. admission.k8s.io/v1 only; v1beta1 has been unnecessary since Kubernetes 1.16.
import { z } from 'zod';
import { describeIssues } from '../../api/src/index.ts';
import { patchJson } from './json-patch.ts';
import type { JsonPatchOp } from './json-patch.ts';
import { isString, listOf, nonEmpty, optListOf, optString, plain, stringRecord } from './json-shape.ts';

const GroupVersionKind = z.object({ group: z.string(), version: z.string(), kind: z.string() });
const GroupVersionResource = z.object({ group: z.string(), version: z.string(), resource: z.string() });

const ContainerShape = z.looseObject({ name: z.string().min(1) });
/** Just enough of a Pod to be sure the pure code can walk it; everything else passes through. */
export const PodShape = z.looseObject({
  metadata: z.looseObject({
    name: z.string().optional(),
    namespace: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  }),
  spec: z.looseObject({
    containers: z.array(ContainerShape).min(1),
    initContainers: z.array(ContainerShape).optional(),
    ephemeralContainers: z.array(ContainerShape).optional(),
    volumes: z.array(z.looseObject({ name: z.string().min(1) })).optional(),
  }),
});

export const AdmissionRequest = z.looseObject({
  uid: z.string().min(1),
  kind: GroupVersionKind,
  resource: GroupVersionResource,
  subResource: z.string().optional(),
  name: z.string().optional(),
  namespace: z.string().optional(),
  operation: z.enum(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']),
  userInfo: z.looseObject({
    username: z.string().optional(),
    uid: z.string().optional(),
    groups: z.array(z.string()).optional(),
  }),
  object: z.unknown().optional(),
  oldObject: z.unknown().optional(),
  dryRun: z.boolean().optional(),
});
export type AdmissionRequest = z.infer<typeof AdmissionRequest>;

export const AdmissionReview = z.looseObject({
  apiVersion: z.literal('admission.k8s.io/v1'),
  kind: z.literal('AdmissionReview'),
  request: AdmissionRequest,
});

export class MalformedReviewError extends Error {
  readonly code = 'SLUICE_WEBHOOK_MALFORMED_REVIEW';
  constructor(message: string) {
    super(message);
    this.name = 'MalformedReviewError';
  }
}

// The same checks as the schemas above, written out by hand for the admission path (every review
// runs them, most twice for the pod): they read the value in place instead of building zod's copy
// of it, which was a tenth of a review's CPU. They are conservative, never more lenient: true only
// where the schema surely accepts and its output would equal the input (a plain JSON object, no
// own `__proto__` key, which zod drops, nor `constructor`, which its record check reads). Anything
// else goes to the schema itself, which then decides and words the error, so what is accepted,
// what is refused and every message stay the schema's (admission-review.test.ts compares the two).

const named = (v: unknown) => plain(v) && nonEmpty(v.name);

function podShapeHolds(v: unknown): boolean {
  if (!plain(v)) return false;
  const { metadata: m, spec: s } = v;
  if (!plain(m) || !optString(m.name) || !optString(m.namespace)) return false;
  if ((m.labels !== undefined && !stringRecord(m.labels)) || (m.annotations !== undefined && !stringRecord(m.annotations))) return false;
  if (!plain(s) || !listOf(s.containers, named, 1)) return false;
  return optListOf(s.initContainers, named) && optListOf(s.ephemeralContainers, named) && optListOf(s.volumes, named);
}

const OPERATIONS: ReadonlySet<unknown> = new Set(AdmissionRequest.shape.operation.options);
/** kind and resource are strict objects (zod strips other keys), so the fast path takes them only without any. */
function gvHolds(v: unknown, last: 'kind' | 'resource'): boolean {
  if (!plain(v) || !isString(v.group) || !isString(v.version) || !isString(v[last])) return false;
  let keys = 0;
  for (const _ in v) keys++;
  return keys === 3;
}

function reviewHolds(v: unknown): v is { request: AdmissionRequest } {
  if (!plain(v) || v.apiVersion !== 'admission.k8s.io/v1' || v.kind !== 'AdmissionReview') return false;
  const r = v.request;
  if (!plain(r) || !nonEmpty(r.uid) || !gvHolds(r.kind, 'kind') || !gvHolds(r.resource, 'resource')) return false;
  if (!optString(r.subResource) || !optString(r.name) || !optString(r.namespace) || !OPERATIONS.has(r.operation)) return false;
  const u = r.userInfo;
  if (!plain(u) || !optString(u.username) || !optString(u.uid) || !(u.groups === undefined || listOf(u.groups, isString))) return false;
  return r.dryRun === undefined || typeof r.dryRun === 'boolean';
}

export function parseAdmissionReview(body: unknown): AdmissionRequest {
  if (reviewHolds(body)) return body.request;
  const parsed = AdmissionReview.safeParse(body);
  if (!parsed.success) throw new MalformedReviewError(`malformed AdmissionReview: ${describeIssues(parsed.error).join('; ')}`);
  return parsed.data.request;
}

/** Validates an embedded object (request.object/oldObject) as a Pod, naming the field when it is not one. */
export function podOf(value: unknown, field: 'object' | 'oldObject'): z.infer<typeof PodShape> {
  if (podShapeHolds(value)) return value as z.infer<typeof PodShape>;
  const parsed = PodShape.safeParse(value);
  if (!parsed.success) throw new MalformedReviewError(`malformed AdmissionReview: request.${field} is not a Pod: ${describeIssues(parsed.error).join('; ')}`);
  return parsed.data;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; reason: string; message: string };
  patchType?: 'JSONPatch';
  patch?: string;
  warnings?: string[];
}

export interface AdmissionReviewResponse {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

const wrap = (response: AdmissionResponse): AdmissionReviewResponse => ({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response });

export function allow(uid: string, patch?: readonly JsonPatchOp[]): AdmissionReviewResponse {
  if (!patch?.length) return wrap({ uid, allowed: true });
  return wrap({ uid, allowed: true, patchType: 'JSONPatch', patch: Buffer.from(patchJson(patch)).toString('base64') });
}

export function deny(uid: string, message: string, code = 403): AdmissionReviewResponse {
  return wrap({ uid, allowed: false, status: { code, reason: code === 403 ? 'Forbidden' : 'InternalError', message } });
}
