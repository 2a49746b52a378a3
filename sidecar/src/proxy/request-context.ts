// The state one agent request carries through the pipeline's stages.
import type { Readable, Transform } from 'node:stream';
import type { Action, Facts, PolicyInput, RequestSummary } from '../../../api/src/index.ts';
import type { Evaluation } from '../policy/engine.ts';
import type { AgentRequest, AgentResponse } from './agent-request.ts';
import type { ConnectionInfo } from './connection-info.ts';

export interface RequestContext {
  readonly id: string;
  /** HTTP/1.1 or HTTP/2 (agent-request.ts reads both alike) */
  readonly req: AgentRequest;
  readonly res: AgentResponse;
  readonly conn: ConnectionInfo;
  /** process.hrtime.bigint() when the request head was parsed */
  readonly receivedAt: bigint;
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
   * What will be sent upstream, prepared after the decision; stages before the forwarder may
   * rewrite it (outbound masking replaces the body, credentials rewrite headers and re-sign).
   */
  upstream?: UpstreamRequest;
  /**
   * Hooks for the response, run by the forwarder in order: each may rewrite status headers and
   * add a transform to the body stream (response masking).
   */
  responseHooks: ResponseHook[];
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

export type Next = () => Promise<void>;
export type Stage = (ctx: RequestContext, next: Next) => Promise<void>;

/** Runs stages in order; each decides whether to call the rest. */
export function composeStages(stages: readonly Stage[]): (ctx: RequestContext) => Promise<void> {
  return (ctx) => {
    const run = (i: number): Promise<void> => {
      const stage = stages[i];
      return stage ? stage(ctx, () => run(i + 1)) : Promise.resolve();
    };
    return run(0);
  };
}

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

export type ResponseHook = (response: { status: number; headers: Record<string, string | string[]> }) => {
  headers: Record<string, string | string[]>;
  /** Stages the body goes through, in order (decode → mask → encode). */
  transforms?: Transform[];
  /** The response must not reach the agent (e.g. an encoding that cannot be scanned). */
  refuse?: { code: string; reason: string };
};
