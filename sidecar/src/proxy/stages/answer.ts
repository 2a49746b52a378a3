// How a request ends with sluice's own answer: one place sets status, code and reason on the
// context and sends the JSON answer. Handlers do not call it: they return the answer and the
// pipeline sends it (pipeline.ts).
import { sendAnswer } from '../sluice-responses.ts';
import type { RequestContext } from '../request-context.ts';

/** sluice's own answer to a request: deny (policy), hold (approval outcome), error (a fault). */
export interface SluiceAnswerSpec {
  status: number;
  code: string;
  reason: string;
  kind: 'deny' | 'hold' | 'error';
}

export function answer(ctx: RequestContext, a: SluiceAnswerSpec): void {
  ctx.status = a.status;
  ctx.answer = { code: a.code, reason: a.reason, kind: a.kind };
  // Whatever of the body the agent is still sending is not forwarded; drain it so a keep-alive
  // connection stays usable, bounded by the parser's own limits.
  ctx.req.resume();
  sendAnswer(ctx.res, { ...a, requestId: ctx.id });
}
