// Stage: the policy's view of the request, or a 4xx when the request's names disagree.
import type { Stage } from '../request-context.ts';
import { summarizeRequest } from '../request-summary.ts';
import type { Answerer } from './answer.ts';

export function summarizeStage(answer: Answerer): Stage {
  return async (ctx, next) => {
    const result = summarizeRequest({ method: ctx.req.method ?? 'GET', url: ctx.req.url ?? '/', headers: ctx.req.headers }, ctx.conn);
    if (!result.ok) {
      answer(ctx, { status: result.status, code: result.code, reason: result.reason, kind: 'deny' });
      return;
    }
    ctx.summary = result.summary;
    ctx.pathAndQuery = result.pathAndQuery;
    await next();
  };
}
