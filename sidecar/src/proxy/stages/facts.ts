// Stage: derive facts (git refs, AWS action, k8s verb, LLM model), buffering only the bounded
// body prefix they need. A deriver fault denies rather than deciding on facts with a hole.
import { FactsError, classifyForFacts } from '../../facts/derive-facts.ts';
import type { FactsConfig, FactsRequest } from '../../facts/derive-facts.ts';
import { agentHead, requestHasBody } from '../agent-request.ts';
import { readBodyPrefix } from '../body-prefix-reader.ts';
import type { Stage } from '../request-context.ts';
import { sendContinueIfAsked } from './continue.ts';
import type { Answerer } from './answer.ts';

export function factsStage(config: FactsConfig, answer: Answerer): Stage {
  return async (ctx, next) => {
    const s = ctx.summary!;
    const req: FactsRequest = { method: s.method, host: s.host, path: s.path, query: s.query, headers: agentHead(ctx.req).headers as Record<string, string> };
    try {
      // Classified once: the three questions below are asked of the same shapes.
      const classified = classifyForFacts(req, config);
      const cap = classified.bodyPrefixNeeded();
      let body: Buffer | undefined;
      if (cap > 0 && requestHasBody(ctx.req)) {
        sendContinueIfAsked(ctx);
        const read = await readBodyPrefix(ctx.req, (prefix) => classified.moreBodyNeeded(prefix) === 0, cap);
        body = read.prefix;
        ctx.bodyPrefix = read.prefix;
      }
      ctx.facts = classified.derive(body);
    } catch (err) {
      const reason = err instanceof FactsError ? err.message : `reading the request failed: ${(err as Error).message}`;
      answer(ctx, { status: err instanceof FactsError ? 403 : 400, code: err instanceof FactsError ? err.code : 'http.body_error', reason, kind: 'deny' });
      return;
    }
    await next();
  };
}
