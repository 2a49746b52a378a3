// AdmissionReview v1 as it crosses the wire: the request schema (checked before anything reads
// it, so a malformed review is a 400 naming the field, never an exception deeper in) and the
// response builders. admission.k8s.io/v1 only; v1beta1 has been unnecessary since Kubernetes 1.16.
import { z } from 'zod';
import { describeIssues } from '../../api/src/index.ts';
import type { JsonPatchOp } from './json-patch.ts';

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

export function parseAdmissionReview(body: unknown): AdmissionRequest {
  const parsed = AdmissionReview.safeParse(body);
  if (!parsed.success) throw new MalformedReviewError(`malformed AdmissionReview: ${describeIssues(parsed.error).join('; ')}`);
  return parsed.data.request;
}

/** Validates an embedded object (request.object/oldObject) as a Pod, naming the field when it is not one. */
export function podOf(value: unknown, field: 'object' | 'oldObject'): z.infer<typeof PodShape> {
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
  return wrap({ uid, allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') });
}

export function deny(uid: string, message: string, code = 403): AdmissionReviewResponse {
  return wrap({ uid, allowed: false, status: { code, reason: code === 403 ? 'Forbidden' : 'InternalError', message } });
}
