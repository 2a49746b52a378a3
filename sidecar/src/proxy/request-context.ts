// The state one agent request carries through the pipeline's phases (pipeline.ts), and what each
// phase may rely on by type: a guard sees a bare RequestContext, the facts phase a Summarized one,
// the hold phase a Decided one, before-forward and the response phases a Forwarding one. The
// pipeline's core steps are the only code that adds those fields, so a handler never needs `!`.
// Features keep their per-request state here too (declared in their own module with
// `declare module`), never in module-level maps.
import type { Socket } from 'node:net';
import type { Readable, Transform } from 'node:stream';
import type { Action, Facts, PolicyInput, RequestSummary } from '../../../api/src/index.ts';
import type { Evaluation } from '../../../lib/src/policy/engine.ts';
import type { AgentRequest, AgentResponse } from './agent-request.ts';
import type { ConnectionInfo } from './connection-info.ts';

export interface RequestContext {
  readonly id: string;
  /**
   * Set on a protocol upgrade (gateway.ts; its `res` is a response on the upgrade's socket): the
   * pipeline runs the upgrade's own steps between its phases (upgrade-request.ts).
   */
  readonly upgrade?: UpgradeIo;
  /** What this request's audit events carry besides the request part (an upgrade: its protocol, how its WebSocket ended). */
  auditDetail?: Record<string, unknown>;
  /** HTTP/1.1 or HTTP/2 (agent-request.ts reads both alike) */
  readonly req: AgentRequest;
  readonly res: AgentResponse;
  readonly conn: ConnectionInfo;
  /** process.hrtime.bigint() when the request head was parsed */
  readonly receivedAt: bigint;
  /** The policy's view of the request (set by the pipeline before the facts phase). */
  summary?: RequestSummary;
  /** path and query to send upstream (origin-form) */
  pathAndQuery?: string;
  /** Bytes of the body already read (for facts); forwarded before the rest. */
  bodyPrefix?: Buffer;
  facts: Facts;
  input?: PolicyInput;
  evaluation?: Evaluation;
  action?: Action;
  /** Status the agent got, and for sluice's own answers the code and reason. */
  status?: number;
  answer?: { code: string; reason: string; kind: 'deny' | 'hold' | 'error' };
  /**
   * What will be sent upstream, prepared after the decision; before-forward handlers may rewrite
   * it (outbound masking replaces the body, credentials rewrite headers and re-sign).
   */
  upstream?: UpstreamRequest;
  /** Every redaction in either direction, by rule id and offset — never the value. */
  redactions: { rule: string; direction: 'request' | 'response'; offset: number }[];
  /** 100 Continue already sent to an agent that asked for it */
  continued: boolean;
  bytesOut: number;
  bytesIn: number;
  /** seconds spent by the sidecar itself before/after the upstream exchange */
  overhead: number;
  timings: Record<string, number>;
}

/** A protocol upgrade's own connection. */
export interface UpgradeIo {
  /** The agent's socket: `res` answers on it until sluice's 101 is out. */
  readonly socket: Socket;
  /** Bytes the agent sent after its request head. */
  readonly head: Buffer;
  /** The Upgrade field as the agent sent it. */
  readonly protocol: string;
  /** The upstream was dialled: a refusal from here on is the upstream's, not the decision's. */
  dialled?: boolean;
  /** sluice's 101 is out: the connection is the relay's, no answer can be written any more. */
  opened?: boolean;
}

/** A context of a protocol upgrade, at any phase: `Upgrading<Decided>` is a decided upgrade. */
export type Upgrading<C extends RequestContext> = C & { readonly upgrade: UpgradeIo };

/** A request the pipeline has summarized: what the facts phase and later see. */
export type Summarized = RequestContext & { summary: RequestSummary; pathAndQuery: string };

/** A request the policy allowed or held: what the decided and hold phases see. */
export type Decided = Summarized & { input: PolicyInput; evaluation: Evaluation; action: Action };

/** A request on its way upstream: what before-forward and the response phases see. */
export type Forwarding = Decided & { upstream: UpstreamRequest };

export interface UpstreamRequest {
  origin: string;
  /** origin-form path and query */
  path: string;
  method: string;
  headers: Record<string, string | string[]>;
  body: Readable | null;
  /** gRPC: sent over HTTP/2 (it has no HTTP/1.1 form), with its trailers relayed back */
  grpc?: boolean;
}

/** The upstream's response head as the response-headers phase sees it. */
export interface ResponseHead {
  status: number;
  headers: Record<string, string | string[]>;
  /**
   * The body as it stands (the upstream's, or an earlier handler's replacement): a handler that
   * must read some of it before the head is written (masking's framing by the body's bytes)
   * reads it here and returns what the agent gets instead as its plan's `body`.
   */
  body?: Readable;
}

/** What a response-headers handler makes of the response. */
export interface ResponsePlan {
  headers: Record<string, string | string[]>;
  /** Stages the body goes through, in order (decode → mask → encode). */
  transforms?: Transform[];
  /** Replaces the body (read from the head's `body`): later handlers and every transform get this one. */
  body?: Readable;
  /** The response must not reach the agent (e.g. an encoding that cannot be scanned). */
  refuse?: { code: string; reason: string };
}

/** A response-headers step for one response (echo redaction builds one per request). */
export type ResponseHook = (response: ResponseHead) => ResponsePlan;
