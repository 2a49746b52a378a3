// Labels the sidecar puts on the ApprovalRequests it creates, so approvers, the CLI (`revoke POD|
// SESSION`) and the sidecar's own watch can select by pod and session. Label values are at most 63
// characters; longer pod names are shortened with a hash so selection stays exact. The webhook
// refuses an ApprovalRequest whose pod label is not this value for the pod its token is bound to.
import { LABEL_APPROVAL_POD, approvalLabelValue } from '../../../api/src/index.ts';

export { LABEL_APPROVAL_POD, approvalLabelValue };
export const LABEL_APPROVAL_SESSION = 'sluice.io/session';

export function podSelector(pod: string): string {
  return `${LABEL_APPROVAL_POD}=${approvalLabelValue(pod)}`;
}

export function sessionSelector(session: string): string {
  return `${LABEL_APPROVAL_SESSION}=${approvalLabelValue(session)}`;
}
