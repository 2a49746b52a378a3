// Label, annotation and object names shared by the webhook, the sidecar, the chart and the CLI.
// Every component imports them from here so a rename cannot leave one side behind.

export const GROUP = 'sluice.io';

export const LABEL_INJECT = `${GROUP}/inject`;
/**
 * Pod label only the injector writes ("true" on every pod it injected) and the guard keeps: the
 * webhook registrations and the ValidatingAdmissionPolicy key "is this pod guarded" on it (and on
 * the status annotation of the old object), never on LABEL_INJECT, which the pod's author edits.
 */
export const LABEL_INJECTED = `${GROUP}/injected`;
/** Pod annotation the webhook writes: the injector version that produced the pod (idempotency). */
export const ANNOTATION_STATUS = `${GROUP}/status`;
/** Pod annotation the webhook stamps from AdmissionReview userInfo; agents cannot set it. */
export const ANNOTATION_CREATOR = `${GROUP}/creator`;
/** Kill switch: "true" denies every new request and cuts open streams within a second. */
export const ANNOTATION_KILL = `${GROUP}/kill`;
/** Label on ApprovalRequests so approvers can select by pod. */
export const LABEL_APPROVAL_POD = `${GROUP}/pod`;

export const SIDECAR_CONTAINER = 'sluice-proxy';
export const INIT_CONTAINER = 'sluice-init';

/** Response header on every answer the sidecar itself produces (deny, hold timeout, faults). */
export const HEADER_DECISION = 'x-sluice-decision';
export const HEADER_REQUEST_ID = 'x-sluice-request-id';

/** OPA entrypoint the bundle is built with (`opa build -e sluice/decision`). */
export const POLICY_ENTRYPOINT = 'sluice/decision';
