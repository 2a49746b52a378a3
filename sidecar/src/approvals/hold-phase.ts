// The hold phase of the request pipeline: a request the policy marked `require_approval` waits here. A standing grant (session or
// ttl scope) lets it on at once; otherwise the coordinator asks a human through an ApprovalRequest
// and the agent's connection stays open meanwhile. Nothing of the body beyond the facts prefix has
// been read, so the rest waits in the agent's socket (back-pressure) and nothing goes upstream
// before approval. Approved → the pipeline continues; anything else → sluice's own refusal (for a
// `git push`, in git's protocol so git prints the reason). Records on ctx how the request got past
// (or did not), for the audit's `scope_used`.
import type { ApprovalScope, PodIdentity } from '../../../api/src/index.ts';
import { HEADER_DECISION, HEADER_REQUEST_ID } from '../../../api/src/index.ts';
import type { HoldStep } from '../proxy/pipeline.ts';
import type { Decided } from '../proxy/request-context.ts';
import { decisionHeader } from '../proxy/sluice-responses.ts';
import { responseGone, writeResponseHead } from '../proxy/agent-request.ts';
import type { Masker } from '../masking/index.ts';
import { draftApproval } from './approval-draft.ts';
import { RECEIVE_PACK_RESULT, gitPushRejection } from './git-rejection.ts';
import type { HoldCoordinator, HoldResult } from './hold-coordinator.ts';
import type { Outcome } from './metrics.ts';

/** How a held request fared; on ctx as `ctx.approval`. */
export interface RequestApproval {
  /** asked: this request waited for a decision; grant: a standing grant let it through. */
  via: 'asked' | 'grant';
  outcome: Outcome;
  /** The ApprovalRequest that decided or granted. */
  name?: string | undefined;
  /** Scope used to let it through (once|session|ttl). */
  scope?: ApprovalScope | undefined;
  decidedBy?: string | undefined;
  waitedMs?: number | undefined;
}

declare module '../proxy/request-context.ts' {
  interface RequestContext {
    /** Set by the hold phase for every held request. */
    approval?: RequestApproval;
  }
}

export interface HoldPhaseDeps {
  coordinator: HoldCoordinator;
  pod: () => PodIdentity;
  podUid?: string | undefined;
  session: string;
  maxWaitMs: number;
  clock?: () => number;
  /** Masks what the ApprovalRequest shows (the sidecar's rules, the platform team's included). */
  masker?: Masker | undefined;
}

/** A refused push answered as git understands it; false when the request is not one git can take. */
function answerGitPush(ctx: Decided, result: Extract<HoldResult, { kind: 'refused' }>): boolean {
  const git = ctx.facts.git;
  if (git?.service !== 'git-receive-pack' || git.phase !== 'rpc' || ctx.res.headersSent) return false;
  const refs = (git.refs ?? []).map((r) => r.ref);
  const reason = `sluice ${result.code}: ${result.reason}`;
  const body = gitPushRejection(ctx.bodyPrefix, refs, reason, [
    `push held for approval${result.name ? ` (${result.name})` : ''} was refused: ${result.reason}`,
    `code ${result.code}, request ${ctx.id}`,
  ]);
  if (!body) return false;
  ctx.status = 200;
  ctx.answer = { code: result.code, reason: result.reason, kind: 'hold' };
  ctx.req.resume();
  writeResponseHead(ctx.res, 200, {
    'content-type': RECEIVE_PACK_RESULT,
    'content-length': body.length,
    'cache-control': 'no-store',
    [HEADER_DECISION]: decisionHeader({ status: 200, code: result.code, reason: result.reason, requestId: ctx.id, kind: 'hold' }),
    [HEADER_REQUEST_ID]: ctx.id,
  });
  ctx.res.end(body);
  return true;
}

/** The hold phase's handler (the pipeline runs it only for requests the policy held). */
export function approvalHold(deps: HoldPhaseDeps): (ctx: Decided) => Promise<HoldStep> {
  const clock = deps.clock ?? Date.now;
  return async (ctx) => {
    const pod = deps.pod();
    const draft = draftApproval({
      summary: ctx.summary,
      facts: ctx.facts,
      decision: ctx.evaluation.decision,
      pod: { namespace: pod.namespace, name: pod.name, uid: deps.podUid, serviceAccount: pod.service_account, creator: pod.creator },
      session: deps.session,
      expiresAt: new Date(clock() + deps.maxWaitMs).toISOString(),
      masker: deps.masker,
    });
    const grant = deps.coordinator.grantFor(draft.grantKey);
    if (grant) {
      deps.coordinator.grantUsed(grant, ctx.id);
      ctx.approval = { via: 'grant', outcome: 'approved', name: grant.name, scope: grant.scope, decidedBy: grant.decidedBy };
      return 'approved';
    }
    const gone = new AbortController();
    const onClose = () => gone.abort();
    ctx.res.once('close', onClose);
    if (responseGone(ctx.res)) gone.abort();
    let result: HoldResult;
    try {
      result = await deps.coordinator.hold(draft, gone.signal, ctx.id);
    } finally {
      ctx.res.off('close', onClose);
    }
    ctx.timings.approval_wait_ms = result.waitedMs;
    ctx.approval = {
      via: 'asked',
      outcome: result.kind === 'approved' ? 'approved' : result.outcome,
      name: result.name,
      scope: result.kind === 'approved' ? result.scope : undefined,
      decidedBy: result.decidedBy,
      waitedMs: result.waitedMs,
    };
    // The wait is the human's time, not the sidecar's overhead.
    ctx.overhead -= result.waitedMs / 1000;
    if (result.kind === 'approved') return gone.signal.aborted ? 'end' : 'approved';
    if (gone.signal.aborted || responseGone(ctx.res)) {
      ctx.status = 499;
      ctx.answer = { code: result.code, reason: result.reason, kind: 'hold' };
      return 'end';
    }
    if (answerGitPush(ctx, result)) return 'end';
    return { status: result.status, code: result.code, reason: result.reason, kind: 'hold' };
  };
}
