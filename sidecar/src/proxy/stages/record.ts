// Stage: nothing goes upstream without a durable audit record of the request and its decision;
// a spool that cannot take it fails the request closed (503 with the audit code).
import type { AuditRecord, PodIdentity } from '../../../../api/src/index.ts';
import { requestRecord } from '../audit-records.ts';
import type { RequestContext, Stage } from '../request-context.ts';
import type { Answerer } from './answer.ts';

export interface RequestAudit {
  record(rec: AuditRecord): Promise<unknown>;
  pod: () => PodIdentity;
}

/** Which events of a request are already durable (so the end-of-request hook adds the rest). */
const recorded = new WeakMap<RequestContext, { request: boolean; response: boolean }>();

export function auditState(ctx: RequestContext): { request: boolean; response: boolean } {
  let s = recorded.get(ctx);
  if (!s) {
    s = { request: false, response: false };
    recorded.set(ctx, s);
  }
  return s;
}

export function recordRequestStage(audit: RequestAudit, answer: Answerer): Stage {
  return async (ctx, next) => {
    try {
      await audit.record(requestRecord(ctx, audit.pod()));
      auditState(ctx).request = true;
    } catch (err) {
      const e = err as { code?: string; message?: string };
      answer(ctx, { status: 503, code: e.code ?? 'audit.error', reason: `the audit trail cannot take this request: ${e.message ?? String(err)}`, kind: 'error' });
      return;
    }
    await next();
  };
}
