// Labels the sidecar puts on the ApprovalRequests it creates, so approvers, the CLI (`revoke POD|
// SESSION`) and the sidecar's own watch can select by pod and session. Label values are at most 63
// characters; longer pod names are shortened with a hash so selection stays exact.
import { createHash } from 'node:crypto';
import { LABEL_APPROVAL_POD } from '../../../api/src/index.ts';

export { LABEL_APPROVAL_POD };
export const LABEL_APPROVAL_SESSION = 'sluice.io/session';

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** The label value for a pod name or session id: itself when it is a valid value, else prefix + hash. */
export function approvalLabelValue(value: string): string {
  if (value.length <= 63 && LABEL_VALUE.test(value)) return value;
  const hash = createHash('sha256').update(value).digest('hex').slice(0, 16);
  const prefix = value.slice(0, 46).replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  return `${prefix}${prefix ? '-' : ''}${hash}`;
}

export function podSelector(pod: string): string {
  return `${LABEL_APPROVAL_POD}=${approvalLabelValue(pod)}`;
}

export function sessionSelector(session: string): string {
  return `${LABEL_APPROVAL_SESSION}=${approvalLabelValue(session)}`;
}
