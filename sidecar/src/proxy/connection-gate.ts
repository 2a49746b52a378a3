// The connection phase: the one place that decides an agent connection and the one place that
// reads the kill switch. decide() answers for a name before any request (a CONNECT target, a TLS
// server name, a fake IP's name): deny, tunnel uninspected (passthrough) or terminate — and a
// denial is reported once, as a refusal of that connection (sluice_refusals_total and a `refusal`
// audit event, through `refused`), the same whichever way the connection arrived. A connection
// denied at its name is still terminated so the agent reads the reason; denyAll() marks it, and
// check() — run by the pipeline's guard phase for requests and upgrades alike — answers every
// request on it with that denial (each such request, like a denied CONNECT itself, is a request:
// answered, counted and recorded by the pipeline), and every request anywhere with the kill
// switch's while it is on. Pure over the engine and the pod's state: it writes nothing to a socket.
import { decisionAction } from '../../../api/src/index.ts';
import type { PodIdentity, SessionInfo } from '../../../api/src/index.ts';
import type { PolicyEngine } from '../../../lib/src/policy/engine.ts';
import type { ConnectionVerdict } from './connection-handoff.ts';
import type { ConnectionInfo } from './connection-info.ts';
import { connectSummary } from './request-summary.ts';
import type { SluiceAnswerSpec } from './stages/answer.ts';

export interface ConnectionGateDeps {
  engine: PolicyEngine;
  pod: () => PodIdentity;
  /** The pod's kill switch (sluice.io/kill). */
  killed: () => boolean;
  session: () => SessionInfo;
  /** A connection denied at its name: counted and recorded as a refusal (the gateway's one place for them). */
  refused(info: { code: string; reason: string; via: ConnectionInfo['via']; name: string }): void;
}

const KILLED = { code: 'pod.killed', reason: 'this pod has been cut off by its kill switch (sluice.io/kill)' } as const;

export class ConnectionGate {
  readonly #d: ConnectionGateDeps;

  constructor(deps: ConnectionGateDeps) {
    this.#d = deps;
  }

  /** A connection-level decision for a name (CONNECT target, TLS server name); a denial is reported as a refusal. */
  decide(host: string, port: number, via: ConnectionInfo['via']): ConnectionVerdict {
    const verdict = this.#verdict(host, port);
    if (verdict.action === 'deny') this.#d.refused({ code: verdict.code, reason: verdict.reason, via, name: host });
    return verdict;
  }

  #verdict(host: string, port: number): ConnectionVerdict {
    if (this.#d.killed()) return { action: 'deny', ...KILLED };
    const { decision } = this.#d.engine.evaluate({ request: connectSummary(host, port), facts: {}, pod: this.#d.pod(), session: this.#d.session() });
    const action = decisionAction(decision);
    if (action === 'deny') return { action: 'deny', code: decision.code, reason: decision.reason };
    return { action: decision.passthrough ? 'passthrough' : 'terminate', code: decision.code, reason: decision.reason };
  }

  /** Every request on `conn` gets this denial (a name denied at the connection level). */
  denyAll(conn: ConnectionInfo, verdict: ConnectionVerdict): void {
    conn.denied = verdict;
  }

  /** The answer a request (or upgrade) on `conn` gets before anything else, if any: the connection's denial, then the kill switch. */
  check(conn: ConnectionInfo): SluiceAnswerSpec | undefined {
    if (conn.denied) return { status: 403, code: conn.denied.code, reason: conn.denied.reason, kind: 'deny' };
    if (this.#d.killed()) return { status: 403, ...KILLED, kind: 'deny' };
    return undefined;
  }
}
