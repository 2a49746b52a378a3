// The facts phase of the request pipeline: derive facts (git refs, AWS action, k8s verb, LLM
// model) for the policy, buffering only the bounded body prefix they need. The request is
// classified once; a deriver fault denies rather than deciding on facts with a hole.
import { agentHead, requestHasBody } from '../proxy/agent-request.ts';
import { readBodyPrefix } from '../proxy/body-prefix-reader.ts';
import type { Step } from '../proxy/pipeline.ts';
import type { Summarized } from '../proxy/request-context.ts';
import { sendContinueIfAsked } from '../proxy/stages/continue.ts';
import { FactsError, classifyForFacts } from './derive-facts.ts';
import type { FactsConfig, FactsRequest } from './derive-facts.ts';

export function deriveRequestFacts(config: FactsConfig): (ctx: Summarized) => Promise<Step> {
  return async (ctx) => {
    const s = ctx.summary;
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
      return { status: err instanceof FactsError ? 403 : 400, code: err instanceof FactsError ? err.code : 'http.body_error', reason, kind: 'deny' };
    }
    return undefined;
  };
}
