// Stage: with the pod's kill switch on, every request is denied before anything else happens.
import type { Stage } from '../request-context.ts';
import type { Answerer } from './answer.ts';

export function killSwitchStage(killed: () => boolean, answer: Answerer): Stage {
  return async (ctx, next) => {
    if (killed()) {
      answer(ctx, { status: 403, code: 'pod.killed', reason: 'this pod has been cut off by its kill switch (sluice.io/kill)', kind: 'deny' });
      return;
    }
    await next();
  };
}
