// Core step of the pipeline: the policy's view of the request, or a 4xx when the request's names
// disagree. The only code that makes a RequestContext a Summarized one.
import type { RequestContext, Summarized } from '../request-context.ts';
import { agentHead } from '../agent-request.ts';
import { summarizeRequest } from '../request-summary.ts';
import type { SluiceAnswerSpec } from './answer.ts';

export function summarize(ctx: RequestContext): { ok: true; ctx: Summarized } | { ok: false; answer: SluiceAnswerSpec } {
  const head = agentHead(ctx.req);
  if (head.conflict) return { ok: false, answer: { status: 400, code: 'net.host_mismatch', reason: head.conflict, kind: 'deny' } };
  if (head.method === 'CONNECT') {
    // An HTTP/2 CONNECT stream would be a tunnel inside an intercepted connection.
    return { ok: false, answer: { status: 400, code: 'http.nested_connect', reason: 'CONNECT inside a tunnel is not allowed', kind: 'deny' } };
  }
  const result = summarizeRequest(head, ctx.conn);
  if (!result.ok) return { ok: false, answer: { status: result.status, code: result.code, reason: result.reason, kind: 'deny' } };
  return { ok: true, ctx: Object.assign(ctx, { summary: result.summary, pathAndQuery: result.pathAndQuery }) };
}
