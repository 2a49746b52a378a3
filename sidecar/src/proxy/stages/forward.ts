// Core steps of the pipeline that talk to the upstream. prepareUpstream fixes what will be sent
// (origin, path, end-to-end headers, the body with any buffered prefix first) so before-forward
// handlers can rewrite it — the only code that makes a Decided request a Forwarding one; forward
// sends it through undici and streams the answer back through what the response-headers phase
// planned, both directions with back-pressure; nothing is buffered whole here (the phase may hold
// a short body to frame it exactly: masking/sniffed-response.ts).
import { EventEmitter } from 'node:events';
import { PassThrough, Transform } from 'node:stream';
import type { Readable, Writable } from 'node:stream';
import type { Agent } from 'undici';
import { isGrpc, requestHasBody, responseCompleted, responseGone, writeResponseHead } from '../agent-request.ts';
import type { AgentResponse } from '../agent-request.ts';
import { endToEndHeaders } from '../hop-by-hop.ts';
import type { ProxyMetrics } from '../proxy-metrics.ts';
import type { Decided, Forwarding, RequestContext, ResponseHead } from '../request-context.ts';
import { classifyUpstreamError } from '../upstream.ts';
import { answer } from './answer.ts';
import { sendContinueIfAsked } from './continue.ts';

function counter(onChunk: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      onChunk(chunk.length);
      cb(null, chunk);
    },
  });
}

function requestBody(ctx: RequestContext): Readable | null {
  if (!requestHasBody(ctx.req)) {
    ctx.req.resume();
    return null;
  }
  sendContinueIfAsked(ctx);
  if (!ctx.bodyPrefix) return ctx.req;
  const body = new PassThrough();
  body.write(ctx.bodyPrefix);
  if (ctx.req.readableEnded) body.end();
  else {
    // pipe() does not carry errors: an agent reset must fail the upstream body, not stall it.
    ctx.req.once('error', (err) => body.destroy(err));
    ctx.req.pipe(body);
  }
  return body;
}

/**
 * upstream body → transforms → agent, with back-pressure (pipe) and without stream.pipeline's
 * per-request error objects: the hot path of every response. Any failure cuts the whole chain;
 * resolves once the agent's response has finished or closed.
 */
function streamResponse(
  source: Readable,
  transforms: Transform[],
  sink: Writable,
  onBytes: (n: number) => void,
  beforeEnd?: () => Promise<void>,
  trailers?: () => Record<string, string | string[]> | undefined,
  fixedLength = false,
): Promise<void> {
  // With a Content-Length the agent holds the whole response once its last byte arrives, ended or
  // not: that byte waits for before-end (the response's audit event made durable), so no agent
  // reads a complete response whose record a crash could still lose. A chunked body is complete
  // only at its last chunk, which end() writes after before-end anyway, so it streams unheld.
  const held = beforeEnd && fixedLength ? holdLastChunk(beforeEnd) : undefined;
  return new Promise((resolve) => {
    const chain: (Readable | Transform)[] = [source, ...transforms, ...(held ? [held] : [])];
    const cut = () => {
      for (const s of chain) s.destroy();
      sink.destroy();
    };
    for (const s of chain) s.once('error', cut);
    sink.once('error', cut);
    sink.once('close', () => {
      if (!responseCompleted(sink)) for (const s of chain) s.destroy();
      resolve();
    });
    const relayed = transforms.reduce<Readable>((from, to) => from.pipe(to), source);
    const last = held ? relayed.pipe(held) : relayed;
    // HTTP/1.1: the agent's socket stays corked until this turn of the event loop is over, so what
    // the body brings in one turn leaves in one write. A body sluice re-frames (chunked, after
    // masking) otherwise sends its last chunk (`0\r\n\r\n`) in a write of its own once the data has
    // gone: a syscall and a TCP segment per response. end() uncorks on its own.
    const coalesce = !beforeEnd && !trailers && !('stream' in sink);
    let corked = false;
    const uncork = () => {
      corked = false;
      sink.uncork();
    };
    // counted before any held chunk: before-end records the response with every byte of it
    relayed.on('data', (c: Buffer) => onBytes(c.length));
    last.on('data', () => {
      if (coalesce && !corked) {
        corked = true;
        sink.cork();
        setImmediate(uncork);
      }
    });
    if (!beforeEnd && !trailers) {
      last.pipe(sink);
      return;
    }
    last.pipe(sink, { end: false });
    last.once('end', () => {
      (beforeEnd && !held ? beforeEnd() : Promise.resolve()).then(
        () => {
          // Trailers are known once the upstream body has ended (gRPC's grpc-status lives there).
          const t = trailers?.();
          if (t && Object.keys(t).length && 'addTrailers' in sink) (sink as unknown as AgentResponse).addTrailers(t);
          sink.end();
        },
        () => cut(),
      );
    });
  });
}

/** Passes a body on one chunk late and releases the last one only once `beforeEnd` resolved (a
 *  rejection fails the stream, which cuts the response short of its length). */
function holdLastChunk(beforeEnd: () => Promise<void>): Transform {
  let last: Buffer | undefined;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      const previous = last;
      last = chunk;
      done(null, previous);
    },
    flush(done) {
      beforeEnd().then(
        () => done(null, last),
        (err: unknown) => done(err instanceof Error ? err : new Error(String(err))),
      );
    },
  });
}

/** Drops an upstream body sluice will not relay (destroying it makes undici emit an abort error). */
function discard(body: Readable): void {
  body.on('error', () => undefined);
  body.destroy();
}

/** Whether the agent has gone (reset its stream or closed); if so the request is accounted 499. */
function agentLeft(ctx: RequestContext): boolean {
  if (!ctx.req.aborted && !responseGone(ctx.res)) return false;
  ctx.status = 499;
  ctx.answer = { code: 'http.client_closed', reason: 'the agent closed the request before it was answered', kind: 'error' };
  return true;
}

export function originOf(scheme: string, host: string, port: number): string {
  const defaultPort = scheme === 'https' ? 443 : 80;
  const hostForUrl = host.includes(':') ? `[${host}]` : host;
  return `${scheme}://${hostForUrl}${port === defaultPort ? '' : `:${port}`}`;
}

export function prepareUpstream(ctx: Decided): Forwarding {
  const s = ctx.summary;
  const f: Forwarding = Object.assign(ctx, {
    upstream: {
      origin: originOf(s.scheme, s.host, s.port),
      path: ctx.pathAndQuery,
      method: s.method,
      headers: endToEndHeaders(ctx.req.headers),
      body: requestBody(ctx),
    },
  });
  if (isGrpc(ctx.req)) {
    f.upstream.grpc = true;
    // gRPC servers require `te: trailers` (RFC 9110 drops TE as hop-by-hop; gRPC proxies re-add it).
    f.upstream.headers.te = 'trailers';
  }
  return f;
}

/** What the response-headers phase planned: the head, the body when a handler replaced it, and the stages. */
export interface ResponsePlanned {
  headers: ResponseHead['headers'];
  transforms: Transform[];
  /** Replaces the upstream body (which it was read from). */
  body?: Readable;
}

export interface ForwardDeps {
  agent: Agent;
  /** HTTP/2-capable agent for gRPC requests (UpstreamRequest.grpc) */
  grpcAgent?: Agent;
  metrics: ProxyMetrics;
  onBytesOut?: (n: number) => void;
  /**
   * The response-headers phase: the headers, body and body transforms the agent gets, or a
   * refusal. It may read the body's first bytes (or a short body whole) before the head is written.
   */
  responseHeaders: (ctx: Forwarding, head: ResponseHead) => ResponsePlanned | { refuse: { code: string; reason: string } } | Promise<ResponsePlanned | { refuse: { code: string; reason: string } }>;
  /**
   * The before-end phase: runs once the upstream body has been relayed and before the agent's
   * response is ended (the audit's response event); a rejection cuts the response instead of completing it.
   */
  beforeEnd?: (ctx: Forwarding) => Promise<void>;
}

export async function forward(ctx: Forwarding, deps: ForwardDeps): Promise<void> {
  const up = ctx.upstream;
  if (agentLeft(ctx)) {
    // The agent left while an earlier phase waited (facts, audit, approval): nothing to forward.
    up.body?.destroy();
    return;
  }
  // undici takes an EventEmitter as its signal as well as an AbortSignal: an emitter costs a third
  // of an AbortController with its EventTarget listeners, on every request. (It must not carry an
  // `aborted` property: undici would take it for an AbortSignal.)
  const cancel = new EventEmitter();
  let cancelled = false;
  ctx.res.once('close', () => {
    if (responseCompleted(ctx.res)) return;
    cancelled = true;
    cancel.emit('abort');
  });
  const body = up.body?.pipe(
    counter((n) => {
      ctx.bytesOut += n;
      deps.onBytesOut?.(n);
    }),
  );
  const beforeUpstream = process.hrtime.bigint();
  ctx.overhead += Number(beforeUpstream - ctx.receivedAt) / 1e9;
  let upstream;
  try {
    upstream = await (up.grpc && deps.grpcAgent ? deps.grpcAgent : deps.agent).request({
      origin: up.origin,
      path: up.path,
      method: up.method,
      headers: up.headers,
      body: body ?? null,
      signal: cancel,
    });
  } catch (err) {
    if (agentLeft(ctx) || cancelled) return;
    const e = classifyUpstreamError(err, up.origin);
    deps.metrics.upstreamErrors.inc({ code: e.code });
    answer(ctx, { status: e.status, code: e.code, reason: e.message, kind: 'error' });
    return;
  }
  const afterHeaders = process.hrtime.bigint();
  ctx.timings.upstream_headers_ms = Number(afterHeaders - beforeUpstream) / 1e6;
  ctx.status = upstream.statusCode;
  let plan: Awaited<ReturnType<ForwardDeps['responseHeaders']>>;
  try {
    const planned = deps.responseHeaders(ctx, { status: upstream.statusCode, headers: endToEndHeaders(upstream.headers), body: upstream.body });
    // No microtask turn when every handler planned synchronously.
    plan = 'then' in planned ? await planned : planned;
  } catch (err) {
    // The phase read the body and it failed (the upstream reset it, the agent left): no head was written.
    discard(upstream.body);
    if (agentLeft(ctx) || cancelled) return;
    const e = classifyUpstreamError(err, up.origin);
    deps.metrics.upstreamErrors.inc({ code: e.code });
    answer(ctx, { status: e.status, code: e.code, reason: e.message, kind: 'error' });
    return;
  }
  if ('refuse' in plan) {
    discard(upstream.body);
    answer(ctx, { status: 502, code: plan.refuse.code, reason: plan.refuse.reason, kind: 'error' });
    return;
  }
  const { headers, transforms } = plan;
  const source = plan.body ?? upstream.body;
  try {
    writeResponseHead(ctx.res, upstream.statusCode, headers);
  } catch (err) {
    // HTTP/2 refuses what HTTP/1.1 lets through (a repeated single-value field such as ETag):
    // a malformed upstream answer is a 502, never a crash.
    discard(source);
    discard(upstream.body);
    const e = err as Error & { code?: string };
    deps.metrics.upstreamErrors.inc({ code: 'upstream.bad_headers' });
    answer(ctx, { status: 502, code: 'upstream.bad_headers', reason: `upstream ${up.origin} sent headers the agent's protocol cannot carry: ${e.message}`, kind: 'error' });
    return;
  }
  ctx.overhead += Number(process.hrtime.bigint() - afterHeaders) / 1e9;
  const relayTrailers = up.grpc ? () => endToEndHeaders(upstream.trailers) : undefined;
  const beforeEnd = deps.beforeEnd;
  const fixedLength = headers['content-length'] !== undefined;
  await streamResponse(source, transforms, ctx.res, (n) => (ctx.bytesIn += n), beforeEnd && (() => beforeEnd(ctx)), relayTrailers, fixedLength);
  deps.metrics.bytes.add('out', ctx.bytesOut);
  deps.metrics.bytes.add('in', ctx.bytesIn);
}
