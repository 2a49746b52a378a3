// The audit trail's work in the request pipeline. decided: nothing goes upstream without a durable
// record of the request and its decision — a spool that cannot take it fails the request closed
// (503 with the audit code). before-end: the response's record is durable before the agent's
// response ends. done: whatever the request's phases did not record on the way (a deny, a refused
// hold, an upstream fault, a cut response) is recorded then, not awaited (the answer is out).
// Which events are durable is the request's own state (`ctx.recorded`), never a module's.
import type { AuditRecord, PodIdentity } from '../../../api/src/index.ts';
import { answeredRecord, requestRecord, responseRecord } from '../proxy/audit-records.ts';
import type { PhaseHandlers } from '../proxy/pipeline.ts';

export interface RequestAudit {
  record(rec: AuditRecord): Promise<unknown>;
  pod: () => PodIdentity;
}

declare module '../proxy/request-context.ts' {
  interface RequestContext {
    /** Which of this request's audit events are durable (set by the audit's phases). */
    recorded?: { request: boolean; response: boolean };
  }
}

export function auditPhases(audit: RequestAudit): PhaseHandlers {
  return {
    async decided(ctx) {
      try {
        await audit.record(requestRecord(ctx, audit.pod()));
      } catch (err) {
        const e = err as { code?: string; message?: string };
        return { status: 503, code: e.code ?? 'audit.error', reason: `the audit trail cannot take this request: ${e.message ?? String(err)}`, kind: 'error' };
      }
      ctx.recorded = { request: true, response: false };
      return undefined;
    },
    async 'before-end'(ctx) {
      await audit.record(responseRecord(ctx, audit.pod()));
      ctx.recorded = { request: true, response: true };
    },
    done(ctx) {
      if (ctx.recorded?.response) return;
      const rec = ctx.recorded?.request ? responseRecord(ctx, audit.pod()) : answeredRecord(ctx, audit.pod());
      audit.record(rec).catch(() => undefined); // the recorder counts and logs its own failures
    },
  };
}
