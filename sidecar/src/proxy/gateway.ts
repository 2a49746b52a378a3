// The egress gateway, as wiring: the agent-facing listeners (listeners.ts), one HTTP front behind
// both (http-front.ts, and HTTP/2 on terminated TLS), the ConnectionGate that decides connections
// (connection-gate.ts: CONNECT, TLS names, and the verdict every request and upgrade on a
// connection checks), CONNECT (connect-request.ts), the request pipeline and its phases
// (pipeline.ts) with the features given — which every request, protocol upgrade
// (upgrade-request.ts) and denied CONNECT goes through — and the one place that counts and records
// a refused connection and a request the pipeline never saw. It decides nothing itself.
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Http2Server } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import type { Agent } from 'undici';
import type { PodIdentity, SessionInfo } from '../../../api/src/index.ts';
import { auditFeature } from '../audit/index.ts';
import type { RequestAudit } from '../audit/index.ts';
import type { FakeIpMap } from '../dns/fake-ip-map.ts';
import { factsFeature } from '../facts/index.ts';
import type { FactsConfig } from '../facts/derive-facts.ts';
import { podPeers } from '../listener/pod-peers.ts';
import type { PodPeers } from '../listener/pod-peers.ts';
import { MaskerCache } from '../masking/index.ts';
import type { MaskingMetrics } from '../masking/index.ts';
import type { PolicyEngine } from '../../../lib/src/policy/engine.ts';
import type { LeafCertificateCache } from '../tls/leaf-certificates.ts';
import type { WsEnd } from '../websocket/relay.ts';
import type { WebSocketSettingsInput } from '../websocket/settings.ts';
import { isHttp2 } from './agent-request.ts';
import { onConnect } from './connect-request.ts';
import type { ConnectDeps } from './connect-request.ts';
import { ConnectionGate } from './connection-gate.ts';
import { handOff } from './connection-handoff.ts';
import type { HandoffClaims, HandoffDeps } from './connection-handoff.ts';
import { connectionInfoOf } from './connection-info.ts';
import type { ConnectionInfo } from './connection-info.ts';
import { connectSummary } from './request-summary.ts';
import { createHttpFront } from './http-front.ts';
import { createHttp2Front } from './http2-front.ts';
import { AgentListeners } from './listeners.ts';
import { resolveOverride, tunnel } from './passthrough.ts';
import { Pipeline } from './pipeline.ts';
import type { Feature } from './pipeline.ts';
import type { ProxyMetrics } from './proxy-metrics.ts';
import type { AgentRequest, AgentResponse } from './agent-request.ts';
import type { RequestContext, UpgradeIo } from './request-context.ts';
import { sendAnswer, writeRawAnswer } from './sluice-responses.ts';
import { frontFaults } from './server-events.ts';
import { socketResponse } from './socket-response.ts';
import type { SluiceAnswerSpec } from './stages/answer.ts';
import { singleHost } from './stages/single-host.ts';
import { upgradeForward } from './upgrade-request.ts';
import { upstreamSecureContext } from './upstream.ts';

export interface GatewayEvents {
  /**
   * A request entered the pipeline (each one is followed by exactly one requestDone): a plain
   * request, a protocol upgrade, a CONNECT answered with its target's denial.
   */
  requestStart?(ctx: RequestContext): void;
  /** A request finished (answered by sluice or by the upstream; an upgrade once its connection ended). */
  requestDone?(ctx: RequestContext): void;
  /** A connection was refused before any request (also a name the policy denies at the connection level). */
  refused?(info: { code: string; reason: string; via: string; name?: string }): void;
  /** A protocol upgrade was refused before its upstream was dialled (it is recorded in the audit trail as a request). */
  upgradeDecided?(info: { request_id: string; status: number; code: string }): void;
  /** A WebSocket connection ended (closed by a side, or by sluice with the code that closed it). */
  websocketEnded?(info: { request_id: string } & WsEnd): void;
  /** A passthrough tunnel ended. */
  tunnelled?(info: { host: string; port: number; bytesIn: number; bytesOut: number; error?: string }): void;
  /**
   * A request refused before it reached the pipeline: the HTTP parser's own rejections, a
   * timeout, an unusable CONNECT, an HTTP/2 protocol error.
   */
  malformed?(info: { code: string; status: number; reason: string; via?: string; request_id?: string }): void;
}

export interface GatewayOptions {
  listen: { transparent?: { host: string; port: number }; proxy?: { host: string; port: number } };
  limits: { maxHeaderBytes: number; headersTimeoutMs: number; keepAliveTimeoutMs: number; firstBytesTimeoutMs: number; requestBodyTimeoutMs?: number };
  /** HTTP/2 for agents on terminated TLS (offered through ALPN); absent or off: HTTP/1.1 only. */
  http2?: { enabled: boolean; maxConcurrentStreams: number };
  upstream: { resolve: Readonly<Record<string, string>>; connectTimeoutMs: number; secureContext?: SecureContext };
  facts: FactsConfig;
  engine: PolicyEngine;
  agent: Agent;
  /** HTTP/2-capable upstream agent for gRPC (which has no HTTP/1.1 form) */
  grpcAgent?: Agent;
  leaves: LeafCertificateCache;
  metrics: ProxyMetrics;
  pod: () => PodIdentity;
  killed: () => boolean;
  session: { id: string };
  fakeIps?: FakeIpMap;
  /**
   * Which peers are inside the pod (default: loopback, the pod's interface addresses and the
   * fake-IP ranges). The agent-facing listeners refuse and record every other peer.
   */
  podPeers?: PodPeers;
  /** The audit trail: request events before forwarding, response events before completion. */
  audit?: RequestAudit;
  /** The pod resolver's search domains (see namesForResolved). */
  searchDomains?: readonly string[];
  events?: GatewayEvents;
  /**
   * Features working in the request pipeline after the gateway's own (the guards, facts, the
   * audit trail), in order: within a phase their handlers run in this order (approval hold,
   * masking, credentials last). Without a feature in the hold phase a hold is refused.
   */
  features?: readonly Feature[];
  /** The loaded masking rules (WebSocket messages are inspected with them); default: the built-in rules. */
  masking?: { maskers: MaskerCache; metrics: MaskingMetrics };
  /** The websocket settings (websocket/settings.ts): message limits, idle and lifetime, rates, recording; unset fields take the defaults. */
  websocket?: Partial<WebSocketSettingsInput>;
}

/** The session the policy sees: its id, the request sequence and the bytes sent so far. */
class SessionCounter {
  readonly #id: string;
  #seq = 0;
  #bytesOut = 0;

  constructor(id: string) {
    this.#id = id;
  }

  nextId(): string {
    return `${this.#id.slice(0, 8)}-${++this.#seq}`;
  }

  sent(n: number): void {
    this.#bytesOut += n;
  }

  info(): SessionInfo {
    return { id: this.#id, seq: this.#seq, bytes_out: this.#bytesOut };
  }
}

export class Gateway {
  readonly #o: GatewayOptions;
  readonly #front: HttpServer;
  readonly #front2: Http2Server | undefined;
  readonly #pipeline: Pipeline;
  readonly #session: SessionCounter;
  readonly #listeners: AgentListeners;
  readonly #handoff: HandoffDeps;
  #upstreamTls: SecureContext | undefined;
  #maskers: MaskerCache | undefined;

  constructor(options: GatewayOptions) {
    this.#o = options;
    const session = (this.#session = new SessionCounter(options.session.id));
    const gate = new ConnectionGate({ engine: options.engine, pod: options.pod, killed: options.killed, session: () => session.info(), refused: (info) => this.#refused(info) });
    const features: Feature[] = [
      // The gateway's own guards: one Host, then the connection's verdict and the kill switch.
      { name: 'gateway', phases: { guard: (ctx) => singleHost(ctx) ?? gate.check(ctx.conn) } },
      factsFeature(options.facts),
      ...(options.audit ? [auditFeature(options.audit)] : []),
      ...(options.features ?? []),
    ];
    this.#pipeline = new Pipeline(features, {
      engine: options.engine,
      pod: options.pod,
      session: () => session.info(),
      metrics: options.metrics,
      agent: options.agent,
      ...(options.grpcAgent ? { grpcAgent: options.grpcAgent } : {}),
      onBytesOut: (n) => session.sent(n),
      requestDone: (ctx) => {
        if (ctx.upgrade && ctx.answer && !ctx.upgrade.dialled) options.events?.upgradeDecided?.({ request_id: ctx.id, status: ctx.status ?? 0, code: ctx.answer.code });
        options.events?.requestDone?.(ctx);
      },
      upgrade: upgradeForward({
        pod: options.pod,
        metrics: options.metrics,
        audit: options.audit,
        events: { websocketEnded: (i) => options.events?.websocketEnded?.(i) },
        maskers: () => (this.#maskers ??= options.masking?.maskers ?? new MaskerCache()),
        maskingMetrics: options.masking?.metrics,
        dial: () => {
          const secureContext = (this.#upstreamTls ??= options.upstream.secureContext ?? upstreamSecureContext([]));
          return { resolve: options.upstream.resolve, secureContext, connectTimeoutMs: options.upstream.connectTimeoutMs };
        },
        websocket: options.websocket,
      }),
    });
    // A throw in any agent-facing server's event handler: that connection is destroyed, counted, logged.
    const faults = frontFaults(() => options.metrics.faults.inc({ phase: 'front' }));
    const connect: ConnectDeps = {
      gate,
      nextId: () => session.nextId(),
      refuseRequest: (s, r, id) => this.#refuseRequest(s, r, id),
      denied: (req, socket, id, target, a) => this.#connectDenied(req, socket, id, target, a),
      handOff: (s, claims) => this.#handOff(s, claims),
    };
    this.#front = createHttpFront({
      ...options.limits,
      requestBodyTimeoutMs: options.limits.requestBodyTimeoutMs ?? 0,
      onRequest: (req, res) => this.#onRequest(req, res),
      onConnect: (req, socket, head) => onConnect(req, socket, head, connectionInfoOf(socket), connect),
      onUpgrade: (req, socket, head) => this.#onUpgrade(req, socket, head),
      refuse: (socket, r) => this.#refuseRequest(socket, r),
      pipelinedTakeover: (socket, req) => {
        const conn = connectionInfoOf(socket);
        this.#refuse(socket, 'http.pipelined_takeover', `a ${req.method === 'CONNECT' ? 'CONNECT' : 'protocol upgrade'} was pipelined behind a request still being answered`, conn ?? { via: 'proxy' });
      },
      faults,
    });
    this.#front2 = options.http2?.enabled
      ? createHttp2Front({
          maxHeaderBytes: options.limits.maxHeaderBytes,
          keepAliveTimeoutMs: options.limits.keepAliveTimeoutMs,
          headersTimeoutMs: options.limits.headersTimeoutMs,
          requestBodyTimeoutMs: options.limits.requestBodyTimeoutMs ?? 0,
          maxConcurrentStreams: options.http2.maxConcurrentStreams,
          onRequest: (req, res) => this.#onRequest(req, res),
          // No stream to answer on: the session ends (GOAWAY); it is counted and recorded.
          onSessionError: (code, reason, status) => this.#recordRefusal({ status: status ?? 400, code, reason }, 'transparent', session.nextId()),
          faults,
        })
      : undefined;
    this.#handoff = {
      httpFront: this.#front,
      ...(this.#front2 ? { http2Front: this.#front2 } : {}),
      leaves: options.leaves,
      firstBytesTimeoutMs: options.limits.firstBytesTimeoutMs,
      decideConnection: (host, port, via) => gate.decide(host, port, via),
      passthrough: (socket, host, port) => {
        const to = resolveOverride(options.upstream.resolve, host, port);
        tunnel(socket, to, options.upstream.connectTimeoutMs, (r) => options.events?.tunnelled?.({ host, port, bytesIn: r.bytesIn, bytesOut: r.bytesOut, error: r.error }));
      },
      refuse: (socket, code, reason, conn) => this.#refuse(socket, code, reason, conn),
      counted: (via, kind) => options.metrics.connections.inc({ via, kind }),
      denyAll: (conn, verdict) => gate.denyAll(conn, verdict),
      faults,
    };
    this.#listeners = new AgentListeners({
      listen: options.listen,
      peers: options.podPeers ?? podPeers({ localCidrs: [options.fakeIps?.config.ipv4Cidr, options.fakeIps?.config.ipv6Cidr] }),
      ...(options.fakeIps ? { fakeIps: options.fakeIps } : {}),
      searchDomains: options.searchDomains ?? [],
      front: this.#front,
      handOff: (socket, claims) => this.#handOff(socket, claims),
      refuse: (socket, code, reason, conn) => this.#refuse(socket, code, reason, conn),
      counted: (via, kind) => options.metrics.connections.inc({ via, kind }),
      faults,
    });
  }

  get addresses(): { transparent?: AddressInfo; proxy?: AddressInfo } {
    return this.#listeners.addresses;
  }

  #handOff(socket: Socket, claims: HandoffClaims): void {
    handOff(socket, claims, this.#handoff);
  }

  #onRequest(req: AgentRequest, res: AgentResponse): void {
    // HTTP/2 only ever arrives on a terminated TLS connection, which always carries its info.
    const conn = connectionInfoOf(req.socket) ?? (isHttp2(req) ? undefined : { id: 'direct', via: 'proxy' as const, scheme: 'http' as const, openedAt: Date.now() });
    if (!conn) {
      sendAnswer(res, { status: 502, code: 'sidecar.internal_error', reason: 'sidecar error: an HTTP/2 stream without its connection', requestId: this.#session.nextId(), kind: 'error' });
      return;
    }
    if (isHttp2(req)) {
      // node:http2 ends an agent's reset stream like a complete body; turn the reset into an error
      // so no phase reads, and no upstream receives, a truncated body as if it were whole.
      req.on('error', () => undefined);
      req.once('aborted', () => req.destroy(new Error('the agent reset the stream')));
    }
    const ctx = this.#started(this.#session.nextId(), req, res, conn);
    void this.#pipeline.handle(ctx);
  }

  /** A protocol upgrade: a request through the same phases, answered on its socket until its 101. */
  #onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const id = this.#session.nextId();
    const conn = connectionInfoOf(socket) ?? { id, via: 'proxy' as const, scheme: 'http' as const, openedAt: Date.now() };
    let ctx: RequestContext;
    try {
      const upgrade: UpgradeIo = { socket, head, protocol: String(req.headers.upgrade) };
      ctx = this.#started(id, req, socketResponse(req, socket), conn, upgrade);
    } catch (err) {
      // No context to run the pipeline with: answered here (the socket is this request's alone:
      // http-front.ts refused a takeover behind a pending response), counted as a front fault.
      this.#o.metrics.faults.inc({ phase: 'front' });
      writeRawAnswer(socket, { status: 502, code: 'sidecar.internal_error', reason: `sidecar error: ${(err as Error).message}`, requestId: id, kind: 'error' });
      return;
    }
    void this.#pipeline.handle(ctx);
  }

  /** A CONNECT whose target the connection phase denied: the CONNECT request is answered with it, as a request like any. */
  #connectDenied(req: IncomingMessage, socket: Socket, id: string, target: { host: string; port: number }, a: SluiceAnswerSpec): void {
    const conn = connectionInfoOf(socket) ?? { id, via: 'proxy' as const, scheme: 'http' as const, openedAt: Date.now() };
    const ctx = this.#started(id, req, socketResponse(req, socket), conn);
    // The policy's view of a CONNECT (as the connection phase decided it), for the audit trail.
    ctx.summary = connectSummary(target.host, target.port);
    this.#pipeline.refuse(ctx, a);
  }

  /** A request's context as the pipeline starts it (the requestStart event). */
  #started(id: string, req: AgentRequest, res: AgentResponse, conn: ConnectionInfo, upgrade?: UpgradeIo): RequestContext {
    const ctx: RequestContext = {
      id,
      req,
      res,
      conn,
      receivedAt: process.hrtime.bigint(),
      facts: {},
      redactions: [],
      continued: false,
      bytesIn: 0,
      bytesOut: 0,
      overhead: 0,
      timings: {},
      ...(upgrade ? { upgrade, auditDetail: { upgrade: upgrade.protocol } } : {}),
    };
    this.#o.events?.requestStart?.(ctx);
    return ctx;
  }

  #refuse(socket: Socket, code: string, reason: string, conn: Partial<ConnectionInfo>): void {
    this.#refused({ code, reason, via: conn.via ?? 'transparent', name: conn.sni ?? conn.connectTarget?.host ?? conn.fakeIpName });
    socket.destroy();
  }

  /** The one place a refused connection is counted and recorded (also a name denied at the connection level). */
  #refused(info: { code: string; reason: string; via: string; name?: string | undefined }): void {
    this.#o.metrics.refusals.inc({ code: info.code });
    this.#o.events?.refused?.({ code: info.code, reason: info.reason, via: info.via, ...(info.name !== undefined ? { name: info.name } : {}) });
  }

  /**
   * The one place that refuses a request the pipeline never saw (parser rejections, timeouts,
   * unusable CONNECTs): answered on the socket with the decision header, counted, recorded.
   */
  #refuseRequest(socket: Socket, r: { status: number; code: string; reason: string }, id = this.#session.nextId()): void {
    socket.on('error', () => socket.destroy());
    this.#recordRefusal(r, connectionInfoOf(socket)?.via ?? 'proxy', id);
    writeRawAnswer(socket, { ...r, requestId: id, kind: 'deny' });
  }

  #recordRefusal(r: { status: number; code: string; reason: string }, via: string, id: string): void {
    this.#o.metrics.httpErrors.inc({ code: r.code });
    this.#o.events?.malformed?.({ code: r.code, status: r.status, reason: r.reason, via, request_id: id });
  }

  async listen(): Promise<void> {
    await this.#listeners.listen();
  }

  /** Cuts every open agent connection (kill switch) without stopping the listeners. */
  cutAll(): number {
    return this.#listeners.cutAll();
  }

  async close(): Promise<void> {
    await this.#listeners.close();
    this.#front.close();
  }
}
