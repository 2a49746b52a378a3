// What one request looks like in the audit trail: pure functions from the request's context to
// AuditRecords (the recorder adds id, time, session, seq and the hash chain). Never a header
// value, a body or a secret: the request summary, facts, the decision and redactions by rule id
// and offset. Everything the agent wrote that reaches a record — path, host, method, facts, the
// decision's reason (policies quote paths), event details (DNS names, refusal reasons) — is
// masked first with every rule and decoded view (masking/audit-text.ts), whatever the policy
// chose to mask on the wire.
import type { AuditRecord, PodIdentity } from '../../../api/src/index.ts';
import { createMasker, maskAuditValue } from '../masking/index.ts';
import type { Masker } from '../masking/index.ts';
import type { RequestContext } from './request-context.ts';

let auditMasker: Masker | undefined;

/** The rules audit text is masked with: the built-in set until the sidecar loads its own (built-in plus the platform's). */
export function useAuditMasker(masker: Masker): void {
  auditMasker = masker;
}

function masker(): Masker {
  auditMasker ??= createMasker('*');
  return auditMasker;
}

declare module './request-context.ts' {
  interface RequestContext {
    /** The masked request part of this request's audit events: built for the request event, reused for the response event. */
    auditRequestPart?: { summary: unknown; facts: unknown; part: AuditRecord['request'] };
  }
}

type Pod = AuditRecord['pod'];

/** Redactions listed on one response event (all are counted in metrics); stages keep no more. */
export const MAX_RECORDED_REDACTIONS = 1000;

export function podOf(identity: PodIdentity): Pod {
  return { namespace: identity.namespace, name: identity.name, service_account: identity.service_account };
}

function base(kind: AuditRecord['kind'], identity: PodIdentity): Pick<AuditRecord, 'kind' | 'pod' | 'creator'> {
  return { kind, pod: podOf(identity), ...(identity.creator ? { creator: identity.creator } : {}) };
}

function requestPart(ctx: RequestContext): AuditRecord['request'] {
  // Request parts are built twice per request (request and response events): masked once.
  const memo = ctx.auditRequestPart;
  if (memo && memo.summary === ctx.summary && memo.facts === ctx.facts) return memo.part;
  const part = maskAuditValue(rawRequestPart(ctx), masker());
  ctx.auditRequestPart = { summary: ctx.summary, facts: ctx.facts, part };
  return part;
}

function rawRequestPart(ctx: RequestContext): AuditRecord['request'] {
  const s = ctx.summary;
  if (!s) {
    // Answered before it was summarized (a guard: the connection's verdict, the kill switch): the
    // destination the connection named, on the port the connection phase decided it for.
    const port = ctx.conn.connectTarget?.port ?? (ctx.conn.sni ? 443 : 0);
    return { method: ctx.req.method ?? '', scheme: ctx.conn.scheme, host: ctx.conn.sni ?? ctx.conn.connectTarget?.host ?? '', port, path: (ctx.req.url ?? '').split('?')[0] ?? '' };
  }
  const facts = Object.keys(ctx.facts).length ? { facts: ctx.facts } : {};
  return { method: s.method, scheme: s.scheme, host: s.host, port: s.port, path: s.path, ...facts };
}

function decisionPart(ctx: RequestContext): AuditRecord['decision'] {
  const ev = ctx.evaluation;
  const answered = ctx.answer;
  if (!ev && !answered) return undefined;
  const d = ev?.decision;
  const scope = (ctx as { approval?: { scope?: string } }).approval?.scope;
  return {
    action: answered && answered.kind !== 'hold' && ctx.action !== 'deny' ? 'deny' : (ctx.action ?? 'deny'),
    code: answered?.code ?? d?.code ?? 'none',
    reason: maskAuditValue(answered?.reason ?? d?.reason ?? '', masker()),
    ...(ev?.revision ? { revision: ev.revision } : {}),
    ...(scope ? { scope_used: scope } : {}),
  };
}

/** What the request's events carry besides its request part (an upgrade's protocol and end), masked. */
function detailPart(ctx: RequestContext): Pick<AuditRecord, 'detail'> {
  return ctx.auditDetail ? { detail: maskAuditValue(ctx.auditDetail, masker()) } : {};
}

/** The request as decided, recorded before anything is sent upstream. */
export function requestRecord(ctx: RequestContext, identity: PodIdentity): AuditRecord {
  return { ...base('request', identity), request_id: ctx.id, request: requestPart(ctx), decision: decisionPart(ctx), ...detailPart(ctx) };
}

/** How the request ended: the upstream's answer (streamed) or sluice's own. */
export function responseRecord(ctx: RequestContext, identity: PodIdentity): AuditRecord {
  return {
    ...base('response', identity),
    request_id: ctx.id,
    request: requestPart(ctx),
    decision: decisionPart(ctx),
    ...(ctx.status !== undefined ? { status: ctx.status } : {}),
    ...(ctx.redactions.length ? { masking: ctx.redactions.slice(0, MAX_RECORDED_REDACTIONS) } : {}),
    bytes: { in: ctx.bytesIn, out: ctx.bytesOut },
    timings: { ...ctx.timings, total_ms: Number(process.hrtime.bigint() - ctx.receivedAt) / 1e6 },
    ...detailPart(ctx),
  };
}

/** A request sluice answered without a request event (denied before the record stage). */
export function answeredRecord(ctx: RequestContext, identity: PodIdentity): AuditRecord {
  return { ...responseRecord(ctx, identity), kind: 'request' };
}

export function eventRecord(kind: AuditRecord['kind'], identity: PodIdentity, detail: Record<string, unknown>, requestId?: string): AuditRecord {
  return { ...base(kind, identity), ...(requestId ? { request_id: requestId } : {}), detail: maskAuditValue(detail, masker()) };
}

/**
 * An event of an upgraded connection — its request, each WebSocket message, its end — shaped like
 * a request's events (request part, decision, bytes, redactions by rule) so replay shows it as one;
 * the request part, the reason and the detail masked like any.
 */
export function upgradeRecord(
  kind: 'request' | 'response',
  identity: PodIdentity,
  request: NonNullable<AuditRecord['request']>,
  fields: Pick<AuditRecord, 'decision' | 'bytes' | 'masking' | 'status'>,
  detail: Record<string, unknown>,
  requestId: string,
): AuditRecord {
  const m = masker();
  return {
    ...base(kind, identity),
    request_id: requestId,
    request: maskAuditValue(request, m),
    ...fields,
    ...(fields.decision ? { decision: { ...fields.decision, reason: maskAuditValue(fields.decision.reason, m) } } : {}),
    detail: maskAuditValue(detail, m),
  };
}
