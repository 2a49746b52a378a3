// The audit trail's public surface for the rest of the sidecar: the recorder the proxy calls, its
// config, errors and metrics. Everything else in this folder is an implementation detail.
export { AuditRecorder } from './recorder.ts';
export type { AuditRecorderDeps, AuditStartInfo, AuditStopOptions } from './recorder.ts';
export { AuditConfig, parseAuditConfig } from './config.ts';
export type { AuditConfigInput } from './config.ts';
export { AuditError } from './errors.ts';
export type { AuditErrorCode } from './errors.ts';
export { registerAuditMetrics } from './metrics.ts';
export type { AuditMetrics } from './metrics.ts';
export type { AuditLogger } from './shipper.ts';
export { verifyChain } from './chain.ts';
export type { VerifyResult } from './chain.ts';
