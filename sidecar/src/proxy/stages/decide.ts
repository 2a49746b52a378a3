// Stage: ask the policy. deny → 403 with the policy's code and reason; hold → the approvals
// stage (when present) takes over, otherwise the request is refused saying approval is needed;
// allow → on. An engine fault is already a deny (fail closed) inside the engine.
import { decisionAction } from '../../../../api/src/index.ts';
import type { PodIdentity, SessionInfo } from '../../../../api/src/index.ts';
import type { PolicyEngine } from '../../policy/engine.ts';
import type { ProxyMetrics } from '../proxy-metrics.ts';
import type { Stage } from '../request-context.ts';
import type { Answerer } from './answer.ts';

export interface DecideDeps {
  engine: PolicyEngine;
  pod: () => PodIdentity;
  session: () => SessionInfo;
  metrics: ProxyMetrics;
  answer: Answerer;
}

export function decideStage(deps: DecideDeps): Stage {
  return async (ctx, next) => {
    ctx.input = { request: ctx.summary!, facts: ctx.facts, pod: deps.pod(), session: deps.session() };
    const t0 = process.hrtime.bigint();
    const evaluation = deps.engine.evaluate(ctx.input);
    deps.metrics.policyEval.observe(Number(process.hrtime.bigint() - t0) / 1e9);
    ctx.evaluation = evaluation;
    const { decision } = evaluation;
    ctx.action = decisionAction(decision);
    if (ctx.action === 'deny') {
      deps.answer(ctx, { status: 403, code: decision.code, reason: decision.reason, kind: 'deny' });
      return;
    }
    await next();
  };
}

/** Until an approvals backend is configured, a hold is a refusal that says approval is needed. */
export function refuseHoldStage(answer: Answerer): Stage {
  return async (ctx, next) => {
    if (ctx.action === 'hold') {
      const d = ctx.evaluation!.decision;
      answer(ctx, { status: 403, code: d.code, reason: `approval required: ${d.require_approval?.reason ?? d.reason} (no approval backend configured)`, kind: 'hold' });
      return;
    }
    await next();
  };
}
