// The audit trail's public surface for the rest of the sidecar: the recorder the proxy calls, its
// config, errors and metrics, and its work in the request pipeline (auditFeature: the request
// record in `decided`, the response record in `before-end`, the rest in `done`). Everything else
// in this folder is an implementation detail.
import type { Feature } from '../proxy/pipeline.ts';
import { auditPhases } from './request-phases.ts';
import type { RequestAudit } from './request-phases.ts';

export type { RequestAudit } from './request-phases.ts';

/** audit: decided (request record, fail closed), before-end (response record), done (the rest). */
export function auditFeature(audit: RequestAudit): Feature {
  return { name: 'audit', phases: auditPhases(audit) };
}
export { AuditRecorder } from './recorder.ts';
export type { AuditRecorderDeps, AuditStartInfo, AuditStopOptions } from './recorder.ts';
export { AuditConfig, parseAuditConfig } from './config.ts';
export type { AuditConfigInput } from './config.ts';
export { AuditError } from '../../../lib/src/audit/errors.ts';
export type { AuditErrorCode } from '../../../lib/src/audit/errors.ts';
export { registerAuditMetrics } from './metrics.ts';
export type { AuditMetrics } from './metrics.ts';
export type { AuditLogger } from './shipper.ts';
export { verifyChain } from '../../../lib/src/audit/chain.ts';
export type { VerifyResult } from '../../../lib/src/audit/chain.ts';
