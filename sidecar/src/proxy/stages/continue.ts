// 100-continue is ours to send (see http-front.ts): at most once, and only when the body is
// about to be read — for facts or for forwarding an allowed request.
import type { RequestContext } from '../request-context.ts';

export function sendContinueIfAsked(ctx: RequestContext): void {
  if (ctx.continued) return;
  if (ctx.req.headers.expect?.toLowerCase() !== '100-continue') return;
  ctx.continued = true;
  ctx.res.writeContinue();
}
