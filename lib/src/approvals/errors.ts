// Stable codes for every way a held request ends without being forwarded. They are the `error`
// in the agent's answer, the audit decision code and a metric label; docs/approvals.md lists them.
import type { Code } from '../../../api/src/codes.ts';

export const APPROVAL_CODES = {
  denied: 'approval.denied',
  expired: 'approval.expired',
  unavailable: 'approval.unavailable',
  forbidden: 'approval.forbidden',
  tooManyHolds: 'approval.too_many_holds',
  deleted: 'approval.deleted',
  killed: 'pod.killed',
  stopped: 'approval.sidecar_stopping',
} as const satisfies Readonly<Record<string, Code>>;

export type ApprovalCode = (typeof APPROVAL_CODES)[keyof typeof APPROVAL_CODES];

/** A failed call to the API server, classified so the hold can say why it failed closed. */
export class ApprovalApiError extends Error {
  readonly code: 'SLUICE_APPROVAL_API_UNREACHABLE' | 'SLUICE_APPROVAL_API_FORBIDDEN' | 'SLUICE_APPROVAL_API_CONFLICT' | 'SLUICE_APPROVAL_API_NOT_FOUND' | 'SLUICE_APPROVAL_API_REJECTED' | 'SLUICE_APPROVAL_API_TIMEOUT';
  readonly status: number | undefined;
  constructor(code: ApprovalApiError['code'], message: string, status?: number) {
    super(message);
    this.name = 'ApprovalApiError';
    this.code = code;
    this.status = status;
  }
}
