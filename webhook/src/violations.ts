// The guard's vocabulary: every refusal has a stable rule code (a metric label, a docs anchor, what
// tests assert on), the field it is about, and a sentence for the person whose request was refused.
// The set of codes is closed so metric label values stay bounded.

export const RULES = [
  'guard.host_namespace',
  'guard.share_process_namespace',
  'guard.privileged',
  'guard.capability',
  'guard.proxy_uid',
  'guard.proxy_gid',
  'guard.root_user',
  'guard.static_credential',
  'guard.host_path',
  'guard.sluice_settings',
  'guard.service_account_token',
  'guard.sluice_volume',
  'guard.reserved_name',
  'guard.sidecar_missing',
  'guard.sidecar_modified',
  'guard.ephemeral_target',
  'guard.exec_sidecar',
  'guard.creator_forged',
  'guard.creator_missing',
  'guard.creator_changed',
  // ApprovalRequest rules (webhook/src/approvals/rules.ts)
  'approval.not_the_sidecar',
  'approval.pod_mismatch',
  'approval.spec_immutable',
  'approval.self_approval',
  'approval.not_an_approver',
  'approval.creator_unknown',
  'approval.already_decided',
  'approval.decider_mismatch',
  'approval.bad_decision',
] as const;

export type Rule = (typeof RULES)[number];

export interface Violation {
  rule: Rule;
  /** Field path in the object under review, e.g. spec.containers[0].securityContext.privileged. */
  field: string;
  message: string;
}

export function violation(rule: Rule, field: string, message: string): Violation {
  return { rule, field, message };
}

/** One line per violation, the text the API server shows after "denied the request:". */
export function describeViolations(violations: readonly Violation[]): string {
  return violations.map((v) => `sluice ${v.rule}: ${v.field}: ${v.message}`).join('; ');
}

export function violationKey(v: Violation): string {
  return `${v.rule} ${v.field}`;
}
