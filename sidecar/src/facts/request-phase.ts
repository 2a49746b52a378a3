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

export function deriveRequestFacts(config: FactsConfig): (ctx: Summarized) => Step | Promise<Step> {
  // Synchronous unless a fact needs the body: no promise and no microtask turn for the common request.
  return (ctx) => {
    const s = ctx.summary;
    const req: FactsRequest = { method: s.method, host: s.host, path: s.path, query: s.query, headers: agentHead(ctx.req).headers as Record<string, string> };
    try {
      // Classified once: the three questions below are asked of the same shapes.
      const classified = classifyForFacts(req, config);
      const cap = classified.bodyPrefixNeeded();
      if (cap > 0 && requestHasBody(ctx.req)) return withBodyPrefix(ctx, classified, cap);
      ctx.facts = classified.derive(undefined);
    } catch (err) {
      return refusal(err);
    }
    return undefined;
  };
}

/** The facts of a request whose body they read: its bounded prefix first (kept for forwarding). */
async function withBodyPrefix(ctx: Summarized, classified: ReturnType<typeof classifyForFacts>, cap: number): Promise<Step> {
  try {
    sendContinueIfAsked(ctx);
    const read = await readBodyPrefix(ctx.req, (prefix) => classified.moreBodyNeeded(prefix) === 0, cap);
    ctx.bodyPrefix = read.prefix;
    ctx.facts = classified.derive(read.prefix);
  } catch (err) {
    return refusal(err);
  }
  return undefined;
}

/** A deriver fault denies (403); a body that could not be read is the agent's error (400). */
function refusal(err: unknown): Step {
  const reason = err instanceof FactsError ? err.message : `reading the request failed: ${(err as Error).message}`;
  return { status: err instanceof FactsError ? 403 : 400, code: err instanceof FactsError ? err.code : 'http.body_error', reason, kind: 'deny' };
}
