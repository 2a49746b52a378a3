// The request pipeline: one agent request from its head to its end, as named phases (as fastify's
// lifecycle). Features declare, in their own folder's index.ts, which phases they work in; the
// pipeline runs the handlers of a phase in the order the features were given, between its own
// core steps, which are the only code that adds what the next phase relies on:
//
//   guard             Guarded         single Host, the connection's verdict and the kill switch (ConnectionGate)
//   ── summarize ──   the policy's view of the request, or a 4xx          → Summarized
//                     (an upgrade: only a WebSocket opening handshake goes on)
//   facts             Summarized      facts, reading the bounded body prefix they need
//                     (an upgrade: then `facts.upgrade`)
//   ── decide ──      the policy; a deny is answered here                 → Decided
//                     (an upgrade: the policy must also say allow_upgrade and inject no credential)
//   decided           Decided         the durable request record (audit)
//   hold              Decided         only for `hold`: approvals; unless a handler says 'approved' → refused
//   ── upgrade ──     an upgrade leaves here for its own before-forward and forward
//                     (upgrade-request.ts: DLP on the handshake's head, the upstream's 101, the
//                     inspecting relay until the connection ends), then goes to done
//   ── prepare ──     what goes upstream (origin, path, end-to-end headers, body) → Forwarding
//   before-forward    Forwarding      response masking's request changes, outbound DLP, credentials (last)
//   ── forward ──     undici; the response head goes through:
//   response-headers  Forwarding      each handler may rewrite headers, add body transforms (the
//                                     response-body work: masking, echo redaction), replace the
//                                     body after reading its first bytes (masking's framing) or refuse
//   before-end        Forwarding      after the body, before the agent's response ends (audit's
//                                     response record; a rejection cuts the response)
//   done              RequestContext  always, once: the request is counted (request-outcome.ts), then
//                                     whatever is not yet recorded; each step isolated
//
// Plain requests, protocol upgrades (the gateway gives them a response on their socket,
// socket-response.ts) and CONNECTs whose target is denied (answered, then done: `refuse`) all
// end here, so one decision path decides them and one place counts them.
// A handler returns nothing to go on, a SluiceAnswer to end the request with sluice's own answer
// (the pipeline sends it), or 'end' when it ended the request itself (wrote its own answer, or the
// agent left). The connection phase is not per request: ConnectionGate decides a connection
// (CONNECT target, TLS name) once, and its verdict is what the guard phase checks.
// A fault (a throw) in any phase is sluice's 502 while the agent has no answer yet, else the
// exchange is cut; a fault in a done step is warned about and skips no other step.
// This module never reads a feature's own state and holds none across requests.
import type { Readable, Transform } from 'node:stream';
import { decisionAction } from '../../../api/src/index.ts';
import type { PodIdentity, SessionInfo } from '../../../api/src/index.ts';
import type { PolicyEngine } from '../../../lib/src/policy/engine.ts';
import type { Agent } from 'undici';
import type { AgentRequest } from './agent-request.ts';
import type { ConnectionInfo } from './connection-info.ts';
import type { FaultPhase, ProxyMetrics } from './proxy-metrics.ts';
import type { Decided, Forwarding, RequestContext, ResponseHead, ResponsePlan, Summarized, Upgrading } from './request-context.ts';
import { answer } from './stages/answer.ts';
import type { SluiceAnswerSpec } from './stages/answer.ts';
import { forward, prepareUpstream } from './stages/forward.ts';
import type { ForwardDeps, ResponsePlanned } from './stages/forward.ts';
import { summarize } from './stages/summarize.ts';
import { requestEnded } from './request-outcome.ts';
import { addUpgradeFacts, isUpgrade, upgradeRefusal, upgradeTerms } from './upgrade-request.ts';

export type { SluiceAnswerSpec } from './stages/answer.ts';

/** What a handler tells the pipeline: go on (nothing), answer and end, or ended already. */
export type Step = void | SluiceAnswerSpec | 'end';

/**
 * What a hold handler tells the pipeline: 'approved' lets the held request on; nothing passes it
 * to the next handler; a held request no handler approves is refused (fail closed).
 */
export type HoldStep = Step | 'approved';

type Handler<C> = (ctx: C) => Step | Promise<Step>;

/**
 * What the guard phase sees: the request head and its connection. A guard answers or lets the
 * request on; it never writes to the agent itself.
 */
export interface Guarded {
  readonly id: string;
  readonly req: AgentRequest;
  readonly conn: ConnectionInfo;
}

type Guard = (head: Guarded) => SluiceAnswerSpec | undefined | Promise<SluiceAnswerSpec | undefined>;

/** The work a feature registers, by phase. */
export interface PhaseHandlers {
  guard?: Guard;
  facts?: Handler<Summarized>;
  decided?: Handler<Decided>;
  hold?: (ctx: Decided) => HoldStep | Promise<HoldStep>;
  'before-forward'?: Handler<Forwarding>;
  /** Undefined: nothing to change for this response. */
  'response-headers'?: (ctx: Forwarding, head: ResponseHead) => ResponsePlan | undefined | Promise<ResponsePlan | undefined>;
  'before-end'?: (ctx: Forwarding) => Promise<void>;
  done?: (ctx: RequestContext) => void;
}

export type Phase = keyof PhaseHandlers;

/** A feature as the pipeline sees it: a name (for reading and errors) and its phase handlers. */
export interface Feature {
  readonly name: string;
  readonly phases: PhaseHandlers;
}

export interface PipelineDeps {
  engine: PolicyEngine;
  pod: () => PodIdentity;
  session: () => SessionInfo;
  metrics: ProxyMetrics;
  agent: Agent;
  /** HTTP/2-capable upstream agent for gRPC (which has no HTTP/1.1 form) */
  grpcAgent?: Agent;
  onBytesOut: (n: number) => void;
  /** After the done phase (the gateway's requestDone event). */
  requestDone?: (ctx: RequestContext) => void;
  /**
   * An upgrade's before-forward and forward once it is decided and held if need be
   * (upgrade-request.ts upgradeForward): resolves when the upgrade is over, with the refusal to
   * answer or 'end'. Without it an upgrade that gets that far is a fault (502).
   */
  upgrade?: (ctx: Upgrading<Decided>) => Promise<Step>;
}

type Handlers = { readonly [P in Phase]-?: readonly NonNullable<PhaseHandlers[P]>[] };

function byPhase(features: readonly Feature[]): Handlers {
  const of = <P extends Phase>(p: P) => features.flatMap((f) => (f.phases[p] ? [f.phases[p]] : [])) as NonNullable<PhaseHandlers[P]>[];
  return {
    guard: of('guard'),
    facts: of('facts'),
    decided: of('decided'),
    hold: of('hold'),
    'before-forward': of('before-forward'),
    'response-headers': of('response-headers'),
    'before-end': of('before-end'),
    done: of('done'),
  };
}

function isPromise<T>(x: T | Promise<T>): x is Promise<T> {
  return typeof (x as { then?: unknown } | undefined)?.then === 'function';
}

/** A handler's step applied: true when it ended the request (its answer sent). */
function ended<C extends RequestContext>(ctx: C, step: Step): boolean {
  if (step === undefined) return false;
  if (step !== 'end') answer(ctx, step);
  return true;
}

/**
 * Runs a phase's handlers in order from `from`; true when one of them ended the request.
 * Synchronous while the handlers are: a promise (and a turn of the microtask queue) only from the
 * first handler that returns one — the hot path of every request. A handler's throw reaches the
 * caller either way (as a throw, or as the returned promise's rejection).
 */
function run<C extends RequestContext>(handlers: readonly Handler<C>[], ctx: C, from = 0): boolean | Promise<boolean> {
  for (let i = from; i < handlers.length; i++) {
    const step = handlers[i]!(ctx);
    if (isPromise(step)) return step.then((s) => ended(ctx, s) || run(handlers, ctx, i + 1));
    if (ended(ctx, step)) return true;
  }
  return false;
}

export class Pipeline {
  readonly #h: Handlers;
  readonly #d: PipelineDeps;
  /** The forward step with the response phases (built once). */
  readonly #forward: ForwardDeps;

  constructor(features: readonly Feature[], deps: PipelineDeps) {
    const h = (this.#h = byPhase(features));
    this.#d = deps;
    const beforeEnd = h['before-end'];
    this.#forward = {
      agent: deps.agent,
      ...(deps.grpcAgent ? { grpcAgent: deps.grpcAgent } : {}),
      metrics: deps.metrics,
      onBytesOut: deps.onBytesOut,
      responseHeaders: (ctx, head) => planResponse(h['response-headers'], ctx, head),
      ...(beforeEnd.length
        ? {
            beforeEnd: async (ctx: Forwarding) => {
              for (const end of beforeEnd) await end(ctx);
            },
          }
        : {}),
    };
  }

  /** The request from its head to its end; never rejects (a fault is a 502 or a cut response, counted by phase). */
  async handle(ctx: RequestContext): Promise<void> {
    const at: { phase: FaultPhase } = { phase: 'guard' };
    try {
      await this.#phases(ctx, at);
    } catch (err) {
      this.#d.metrics.faults.inc({ phase: at.phase });
      fault(ctx, err as Error);
    }
    this.#done(ctx);
  }

  /**
   * A request sluice answers before any phase: a CONNECT whose target the connection phase
   * denied. Answered, then the done phase (counted and recorded like any request).
   */
  refuse(ctx: RequestContext, a: SluiceAnswerSpec): void {
    try {
      answer(ctx, a);
    } catch (err) {
      this.#d.metrics.faults.inc({ phase: 'decide' });
      fault(ctx, err as Error);
    }
    this.#done(ctx);
  }

  /** The guard phase: the first answer a guard gives, if any (synchronous while the guards are). */
  #guard(head: Guarded, from = 0): SluiceAnswerSpec | undefined | Promise<SluiceAnswerSpec | undefined> {
    const guards = this.#h.guard;
    for (let i = from; i < guards.length; i++) {
      const barred = guards[i]!(head);
      if (isPromise(barred)) return barred.then((b) => b ?? this.#guard(head, i + 1));
      if (barred) return barred;
    }
    return undefined;
  }

  /** The phases in order; `at` says which one runs (a fault is counted by it). */
  async #phases(ctx: RequestContext, at: { phase: FaultPhase }): Promise<void> {
    const h = this.#h;
    // Each phase awaited only when it returned a promise: no microtask turn for a synchronous one.
    let barred = this.#guard(ctx);
    if (isPromise(barred)) barred = await barred;
    if (barred) return void answer(ctx, barred);
    at.phase = 'summarize';
    const summarized = summarize(ctx);
    if (!summarized.ok) return void answer(ctx, summarized.answer);
    const s: Summarized = summarized.ctx;
    if (isUpgrade(s)) {
      const unusable = upgradeRefusal(s);
      if (unusable) return void answer(s, unusable);
    }
    at.phase = 'facts';
    const facts = run(h.facts, s);
    if (facts === true || (facts !== false && (await facts))) return;
    if (isUpgrade(s)) addUpgradeFacts(s);
    at.phase = 'decide';
    const d = this.#decide(s);
    if (!d) return;
    at.phase = 'decided';
    const decided = run(h.decided, d);
    if (decided === true || (decided !== false && (await decided))) return;
    at.phase = 'hold';
    if (d.action === 'hold' && !(await held(h.hold, d))) return;
    at.phase = 'upgrade';
    if (isUpgrade(d)) return this.#upgrade(d);
    at.phase = 'before-forward';
    const f: Forwarding = prepareUpstream(d);
    const prepared = run(h['before-forward'], f);
    if (prepared === true || (prepared !== false && (await prepared))) return;
    at.phase = 'forward';
    await forward(f, this.#forward);
  }

  /**
   * The policy's decision; a deny is answered here (an engine fault is already a deny), and so is
   * an upgrade the decision does not carry (upgradeTerms), before any hold asks a human.
   */
  #decide(ctx: Summarized): Decided | undefined {
    const input = { request: ctx.summary, facts: ctx.facts, pod: this.#d.pod(), session: this.#d.session() };
    const t0 = process.hrtime.bigint();
    const evaluation = this.#d.engine.evaluate(input);
    this.#d.metrics.policyEval.observe(Number(process.hrtime.bigint() - t0) / 1e9);
    const action = decisionAction(evaluation.decision);
    const d: Decided = Object.assign(ctx, { input, evaluation, action });
    const refused: SluiceAnswerSpec | undefined =
      action === 'deny' ? { status: 403, code: evaluation.decision.code, reason: evaluation.decision.reason, kind: 'deny' } : isUpgrade(d) ? upgradeTerms(d) : undefined;
    if (refused) {
      answer(d, refused);
      return undefined;
    }
    return d;
  }

  /** An upgrade's before-forward and forward (upgrade-request.ts); its refusal is answered here. */
  async #upgrade(ctx: Upgrading<Decided>): Promise<void> {
    if (!this.#d.upgrade) throw new Error('no upgrade step is configured');
    const step = await this.#d.upgrade(ctx);
    if (step !== undefined && step !== 'end') answer(ctx, step);
  }

  /** Once per request, however it ended: the done handlers, then the one count of the request. */
  #done(ctx: RequestContext): void {
    // Each step on its own: a fault in one (a record that cannot be built) must neither skip the
    // others nor reject handle(), whose caller does not wait — an unhandled rejection ends the sidecar.
    // (No array of closures per request: the steps are called in place.)
    try {
      requestEnded(this.#d.metrics, ctx);
    } catch (err) {
      this.#doneFault(err);
    }
    for (const h of this.#h.done) {
      try {
        h(ctx);
      } catch (err) {
        this.#doneFault(err);
      }
    }
    try {
      this.#d.requestDone?.(ctx);
    } catch (err) {
      this.#doneFault(err);
    }
  }

  #doneFault(err: unknown): void {
    this.#d.metrics.faults.inc({ phase: 'done' });
    process.emitWarning(`sluice: a done-phase step failed (sidecar.internal_error): ${(err as Error).message}`);
  }
}

/** The hold phase: true when a handler approved the held request; otherwise it has been answered. */
async function held(handlers: Handlers['hold'], ctx: Decided): Promise<boolean> {
  for (const h of handlers) {
    const step = await h(ctx);
    if (step === undefined) continue;
    if (step === 'approved') return true;
    if (step !== 'end') answer(ctx, step);
    return false;
  }
  // Nobody decided: without an approval backend a hold is a refusal that says approval is needed.
  const d = ctx.evaluation.decision;
  answer(ctx, { status: 403, code: d.code, reason: `approval required: ${d.require_approval?.reason ?? d.reason} (no approval backend configured)`, kind: 'hold' });
  return false;
}

/** What the response-headers phase has made of a response so far. */
interface PlanSoFar {
  headers: ResponseHead['headers'];
  body: Readable | undefined;
  transforms: Transform[];
}

type Planned = ResponsePlanned | { refuse: { code: string; reason: string } };

/**
 * The response head through every response-headers handler: the headers the agent gets, the body
 * (the upstream's, or a handler's replacement) and the body's transforms. A handler that replaces
 * the body comes before any that adds transforms (its replacement is read before them).
 * Synchronous while the handlers are (as `run`).
 */
function planResponse(handlers: Handlers['response-headers'], ctx: Forwarding, head: ResponseHead): Planned | Promise<Planned> {
  return planFrom(handlers, ctx, head, { headers: head.headers, body: head.body, transforms: [] }, 0);
}

function planFrom(handlers: Handlers['response-headers'], ctx: Forwarding, head: ResponseHead, so: PlanSoFar, from: number): Planned | Promise<Planned> {
  for (let i = from; i < handlers.length; i++) {
    const plan = handlers[i]!(ctx, { status: head.status, headers: so.headers, ...(so.body ? { body: so.body } : {}) });
    if (isPromise(plan)) return plan.then((p) => applyPlan(so, p) ?? planFrom(handlers, ctx, head, so, i + 1));
    const refused = applyPlan(so, plan);
    if (refused) return refused;
  }
  return { headers: so.headers, transforms: so.transforms, ...(so.body && so.body !== head.body ? { body: so.body } : {}) };
}

/** One handler's plan onto what the phase has so far; its refusal, if it refuses. */
function applyPlan(so: PlanSoFar, plan: ResponsePlan | undefined): { refuse: { code: string; reason: string } } | undefined {
  if (!plan) return undefined;
  if (plan.refuse) return { refuse: plan.refuse };
  so.headers = plan.headers;
  if (plan.body) {
    // A replacement after transforms were added would bypass them: a feature-order bug, never silent.
    if (so.transforms.length) throw new Error('a response-headers handler replaced the body after another added transforms');
    so.body = plan.body;
  }
  if (plan.transforms) so.transforms.push(...plan.transforms);
  return undefined;
}

/** A fault in a phase: sluice's 502 while the agent has no answer yet, else the exchange is cut. */
function fault(ctx: RequestContext, err: Error): void {
  // A relayed upgrade's 101 is out on the raw socket (not through `res`): no answer fits any more.
  if (ctx.upgrade?.opened) return void ctx.upgrade.socket.destroy();
  try {
    if (!ctx.res.headersSent) {
      answer(ctx, { status: 502, code: 'sidecar.internal_error', reason: `sidecar error: ${err.message}`, kind: 'error' });
      return;
    }
  } catch {
    // the answer itself failed: nothing left but to cut the exchange (below)
  }
  ctx.res.destroy();
}
