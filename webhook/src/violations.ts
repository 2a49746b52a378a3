// The guard's vocabulary: every refusal has a stable rule code (a metric label, a docs anchor, what
// tests assert on), the field it is about, and a sentence for the person whose request was refused.
// The set of codes is closed so metric label values stay bounded, and each is a row of the code
// catalogue (api/src/codes.ts): a rule that is not fails the typecheck.
import type { Code } from '../../api/src/codes.ts';

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
  // Injected means injected: the markers only sluice writes (sluice.io/injected, sluice.io/status)
  // and the pod's sluice.io/inject label never change once a pod is injected.
  'guard.injection_marker',
  // No way into the sidecar's UID exemption (docs/webhook.md "The UID exemption").
  'guard.privilege_escalation',
  'guard.uid_change',
  'guard.uid_unset',
  'guard.legacy_token_secret',
  'guard.reserved_port',
  'guard.kill_switch',
  'guard.port_forward',
  'guard.sidecar_resize',
  // ValidatingAdmissionPolicy only: the sidecar settings ConfigMap is written by holders of the
  // virtual permission sidecarsettings.sluice.io alone.
  'guard.sluice_settings_write',
  // ValidatingAdmissionPolicy only: no ServiceAccount writes SluicePolicy objects, but from the
  // writer namespaces the chart lists (webhook/manifests/policy-admission-policy.yaml).
  'guard.sluice_policy_write',
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
  // ApprovalRequests only from the sidecar of the pod they name (webhook/src/approvals/rules.ts)
  'approval.not_pod_bound',
  'approval.pod_unknown',
  'approval.creator_forged',
  'approval.summary_mismatch',
  'approval.owner_missing',
  'approval.expired',
  // Creator stamps of workloads and controller-made pods (webhook/src/workload-creator.ts)
  'creator.forged',
  'creator.unresolved',
] as const satisfies readonly Code[];

export type Rule = (typeof RULES)[number];

export interface Violation {
  rule: Rule;
  /** Field path in the object under review, e.g. spec.containers[0].securityContext.privileged. */
  field: string;
  message: string;
  /**
   * The container a rule judged when `field` is shared (a pod-level securityContext field that a
   * container inherits): keeps "the update introduces this" per container, so an ephemeral
   * container inheriting a grandfathered pod-level value is still judged on its own.
   */
  subject?: string;
}

export function violation(rule: Rule, field: string, message: string, subject?: string): Violation {
  return subject === undefined ? { rule, field, message } : { rule, field, message, subject };
}

/** One line per violation, the text the API server shows after "denied the request:". */
export function describeViolations(violations: readonly Violation[]): string {
  return violations.map((v) => `sluice ${v.rule}: ${v.field}: ${v.message}`).join('; ');
}

export function violationKey(v: Violation): string {
  return v.subject === undefined ? `${v.rule} ${v.field}` : `${v.rule} ${v.field} ${v.subject}`;
}
