// Stage: the policy's view of the request, or a 4xx when the request's names disagree.
import type { Stage } from '../request-context.ts';
import { agentHead } from '../agent-request.ts';
import { summarizeRequest } from '../request-summary.ts';
import type { Answerer } from './answer.ts';

export function summarizeStage(answer: Answerer): Stage {
  return async (ctx, next) => {
    const head = agentHead(ctx.req);
    if (head.conflict) {
      answer(ctx, { status: 400, code: 'net.host_mismatch', reason: head.conflict, kind: 'deny' });
      return;
    }
    if (head.method === 'CONNECT') {
      // An HTTP/2 CONNECT stream would be a tunnel inside an intercepted connection.
      answer(ctx, { status: 400, code: 'http.nested_connect', reason: 'CONNECT inside a tunnel is not allowed', kind: 'deny' });
      return;
    }
    const result = summarizeRequest(head, ctx.conn);
    if (!result.ok) {
      answer(ctx, { status: result.status, code: result.code, reason: result.reason, kind: 'deny' });
      return;
    }
    ctx.summary = result.summary;
    ctx.pathAndQuery = result.pathAndQuery;
    await next();
  };
}
