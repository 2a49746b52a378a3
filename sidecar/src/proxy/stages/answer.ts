// How stages end a request with sluice's own answer: one place sets status, code and metrics.
import { sendAnswer } from '../sluice-responses.ts';
import type { RequestContext } from '../request-context.ts';

export type Answerer = (ctx: RequestContext, a: { status: number; code: string; reason: string; kind: 'deny' | 'hold' | 'error' }) => void;

export function createAnswerer(onAnswer?: (ctx: RequestContext) => void): Answerer {
  return (ctx, a) => {
    ctx.status = a.status;
    ctx.answer = { code: a.code, reason: a.reason, kind: a.kind };
    // Whatever of the body the agent is still sending is not forwarded; drain it so a keep-alive
    // connection stays usable, bounded by the parser's own limits.
    ctx.req.resume();
    sendAnswer(ctx.res, { ...a, requestId: ctx.id });
    onAnswer?.(ctx);
  };
}
