// The egress gateway: the transparent listener (iptables-redirected TCP), the explicit proxy
// listener (CONNECT and absolute-form HTTP), one HTTP front behind both, and the per-request
// pipeline of small stages. Other capabilities (approvals, masking, credentials, recording)
// join as stages; this module only wires them.
import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Http2Server } from 'node:http2';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import type { Agent } from 'undici';
import { decisionAction } from '../../../api/src/index.ts';
import type { PodIdentity, SessionInfo } from '../../../api/src/index.ts';
import type { FakeIpMap } from '../dns/fake-ip-map.ts';
import { podPeers } from '../listener/pod-peers.ts';
import type { PodPeers } from '../listener/pod-peers.ts';
import type { FactsConfig } from '../facts/derive-facts.ts';
import type { PolicyEngine } from '../policy/engine.ts';
import type { LeafCertificateCache } from '../tls/leaf-certificates.ts';
import { handOff } from './connection-handoff.ts';
import type { ConnectionVerdict, HandoffDeps } from './connection-handoff.ts';
import { attachConnectionInfo, connectionInfoOf } from './connection-info.ts';
import type { ConnectionInfo } from './connection-info.ts';
import { createHttpFront } from './http-front.ts';
import { createHttp2Front } from './http2-front.ts';
import { isHttp2 } from './agent-request.ts';
import type { AgentRequest, AgentResponse } from './agent-request.ts';
import { resolveOverride, tunnel } from './passthrough.ts';
import type { ProxyMetrics } from './proxy-metrics.ts';
import { composeStages } from './request-context.ts';
import type { RequestContext, Stage } from './request-context.ts';
import { connectSummary, namesForResolved, splitHostPort, summarizeRequest } from './request-summary.ts';
import { sendAnswer, writeRawAnswer } from './sluice-responses.ts';
import { createAnswerer } from './stages/answer.ts';
import type { Answerer } from './stages/answer.ts';
import { connectionDenial, connectionVerdictStage, markConnectionDenied } from './stages/connection-verdict.ts';
import { decideStage, refuseHoldStage } from './stages/decide.ts';
import { factsStage } from './stages/facts.ts';
import { forwardStage, prepareUpstreamStage } from './stages/forward.ts';
import { killSwitchStage } from './stages/kill-switch.ts';
import { summarizeStage } from './stages/summarize.ts';
import { auditState, recordRequestStage } from './stages/record.ts';
import type { RequestAudit } from './stages/record.ts';
import { answeredRecord, eventRecord, responseRecord, upgradeRecord } from './audit-records.ts';
import { openWebSocket } from './upgrade.ts';
import { endToEndHeaders } from './hop-by-hop.ts';
import { HEADER_REQUEST_ID } from '../../../api/src/index.ts';
import type { Facts } from '../../../api/src/index.ts';
import { FactsError, deriveFacts } from '../facts/derive-facts.ts';
import { MaskerCache, maskRequestHead } from '../masking/index.ts';
import type { MaskingMetrics } from '../masking/index.ts';
import { HANDSHAKE_HEADERS, checkUpgradeRequest, newKey, offeredSubprotocols, upgradeProtocol, upstreamRequestHead } from '../websocket/handshake.ts';
import type { ReaderLimits } from '../websocket/frames.ts';
import type { WsEnd } from '../websocket/relay.ts';
import { upstreamSecureContext } from './upstream.ts';
import type { SecureContext } from 'node:tls';

export interface GatewayEvents {
  /** A request entered the pipeline (each one is followed by exactly one requestDone). */
  requestStart?(ctx: RequestContext): void;
  /** A request finished (answered by sluice or by the upstream). */
  requestDone?(ctx: RequestContext): void;
  /** A connection was refused before any request. */
  refused?(info: { code: string; reason: string; via: string; name?: string }): void;
  /** A protocol upgrade was decided (it is recorded in the audit trail as a request). */
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
   * Stages between the policy decision and forwarding (approval hold, outbound masking,
   * credential injection). Without an approvals stage a hold is refused.
   */
  extraStages?: (answer: Answerer) => { holdStage?: Stage; beforeForward?: Stage[] };
  /** The loaded masking rules (WebSocket messages are inspected with them); default: the built-in rules. */
  masking?: { maskers: MaskerCache; metrics: MaskingMetrics };
  /** WebSocket limits: largest message, most fragments (websocket/frames.ts defaults). */
  websocket?: Partial<ReaderLimits>;
}

export class Gateway {
  readonly #o: GatewayOptions;
  readonly #front: HttpServer;
  readonly #front2: Http2Server | undefined;
  readonly #handle: (ctx: RequestContext) => Promise<void>;
  readonly #servers: (NetServer | HttpServer)[] = [];
  #seq = 0;
  #upstreamTls: SecureContext | undefined;
  #maskers: MaskerCache | undefined;
  #bytesOut = 0;
  readonly #open = new Set<Socket>();
  readonly #peers: PodPeers;
  addresses: { transparent?: AddressInfo; proxy?: AddressInfo } = {};

  constructor(options: GatewayOptions) {
    this.#o = options;
    this.#peers = options.podPeers ?? podPeers({ localCidrs: [options.fakeIps?.config.ipv4Cidr, options.fakeIps?.config.ipv6Cidr] });
    const answer = createAnswerer();
    const extra = options.extraStages?.(answer) ?? {};
    const stages: Stage[] = [
      singleHostStage(answer),
      connectionVerdictStage(answer),
      killSwitchStage(options.killed, answer),
      summarizeStage(answer),
      factsStage(options.facts, answer),
      decideStage({
        engine: options.engine,
        pod: options.pod,
        session: () => this.#sessionInfo(),
        metrics: options.metrics,
        answer,
      }),
      ...(options.audit ? [recordRequestStage(options.audit, answer)] : []),
      extra.holdStage ?? refuseHoldStage(answer),
      prepareUpstreamStage(),
      ...(extra.beforeForward ?? []),
      forwardStage({
        agent: options.agent,
        ...(options.grpcAgent ? { grpcAgent: options.grpcAgent } : {}),
        metrics: options.metrics,
        answer,
        onBytesOut: (n) => (this.#bytesOut += n),
        ...(options.audit ? { beforeResponseEnd: (ctx: RequestContext) => this.#recordResponse(ctx) } : {}),
      }),
    ];
    this.#handle = composeStages(stages);
    this.#front = createHttpFront({
      ...options.limits,
      requestBodyTimeoutMs: options.limits.requestBodyTimeoutMs ?? 0,
      onRequest: (req, res) => this.#onRequest(req, res),
      onConnect: (req, socket, head) => this.#onConnect(req, socket, head, connectionInfoOf(socket)),
      onUpgrade: (req, socket, head) => void this.#onUpgrade(req, socket, head),
      refuse: (socket, r) => this.#refuseRequest(socket, r),
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
          onSessionError: (code, reason, status) => this.#recordRefusal({ status: status ?? 400, code, reason }, 'transparent', this.#nextId()),
        })
      : undefined;
  }

  #sessionInfo(): SessionInfo {
    return { id: this.#o.session.id, seq: this.#seq, bytes_out: this.#bytesOut };
  }

  #nextId(): string {
    return `${this.#o.session.id.slice(0, 8)}-${++this.#seq}`;
  }

  #onRequest(req: AgentRequest, res: AgentResponse): void {
    // HTTP/2 only ever arrives on a terminated TLS connection, which always carries its info.
    const conn = connectionInfoOf(req.socket) ?? (isHttp2(req) ? undefined : { id: 'direct', via: 'proxy' as const, scheme: 'http' as const, openedAt: Date.now() });
    if (!conn) {
      sendAnswer(res, { status: 502, code: 'sidecar.internal_error', reason: 'sidecar error: an HTTP/2 stream without its connection', requestId: this.#nextId(), kind: 'error' });
      return;
    }
    if (isHttp2(req)) {
      // node:http2 ends an agent's reset stream like a complete body; turn the reset into an error
      // so no stage reads, and no upstream receives, a truncated body as if it were whole.
      req.on('error', () => undefined);
      req.once('aborted', () => req.destroy(new Error('the agent reset the stream')));
    }
    const ctx: RequestContext = {
      id: this.#nextId(),
      req,
      res,
      conn,
      receivedAt: process.hrtime.bigint(),
      facts: {},
      responseHooks: [],
      redactions: [],
      continued: false,
      bytesIn: 0,
      bytesOut: 0,
      overhead: 0,
      timings: {},
    };
    this.#o.events?.requestStart?.(ctx);
    this.#handle(ctx)
      .catch((err: Error) => {
        try {
          if (!res.headersSent) {
            createAnswerer()(ctx, { status: 502, code: 'sidecar.internal_error', reason: `sidecar error: ${err.message}`, kind: 'error' });
            return;
          }
        } catch {
          // the answer itself failed: nothing left but to cut the exchange (below)
        }
        res.destroy();
      })
      .finally(() => {
        // One place counts every request, however it ended: sluice's own answer (deny, refused
        // hold, fault — including answers a stage wrote in a client's own protocol) or upstream's.
        if (ctx.answer) {
          this.#o.metrics.requests.inc({ action: ctx.answer.kind, code: ctx.answer.code });
        } else {
          this.#o.metrics.requests.inc({ action: ctx.action ?? 'allow', code: ctx.evaluation?.decision.code ?? 'none' });
          this.#o.metrics.addedLatency.observe(ctx.overhead);
        }
        this.#recordEnd(ctx);
        this.#o.events?.requestDone?.(ctx);
      });
  }

  async #recordResponse(ctx: RequestContext): Promise<void> {
    const audit = this.#o.audit!;
    await audit.record(responseRecord(ctx, audit.pod()));
    auditState(ctx).response = true;
  }

  /**
   * Whatever a request's stages did not record durably on the way (a deny, a refused hold, an
   * upstream fault, a cut response), recorded now. Not awaited: the answer is already out.
   */
  #recordEnd(ctx: RequestContext): void {
    const audit = this.#o.audit;
    if (!audit) return;
    const state = auditState(ctx);
    if (state.response) return;
    const rec = state.request ? responseRecord(ctx, audit.pod()) : answeredRecord(ctx, audit.pod());
    audit.record(rec).catch(() => undefined); // the recorder counts and logs its own failures
  }

  /** A protocol upgrade: decided like a request; relayed only where the decision allows it. */
  async #onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    const id = this.#nextId();
    socket.on('error', () => socket.destroy());
    const conn = connectionInfoOf(socket) ?? { id, via: 'proxy' as const, scheme: 'http' as const, openedAt: Date.now() };
    const identity = this.#o.pod();
    const refuse = (status: number, code: string, reason: string, decided?: Record<string, unknown>) => {
      this.#o.metrics.requests.inc({ action: 'deny', code });
      this.#o.audit?.record(eventRecord('request', identity, { upgrade: String(req.headers.upgrade), status, code, reason, ...decided }, id)).catch(() => undefined);
      this.#o.events?.upgradeDecided?.({ request_id: id, status, code });
      writeRawAnswer(socket, { status, code, reason, requestId: id, kind: 'deny' });
    };
    // A connection denied at its TLS name or CONNECT target stays denied for upgrades too.
    const denial = connectionDenial(conn);
    if (denial) return refuse(403, denial.code, denial.reason);
    const summarized = summarizeRequest({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers }, conn);
    if (!summarized.ok) return refuse(summarized.status, summarized.code, summarized.reason);
    if (this.#o.killed()) return refuse(403, 'pod.killed', 'this pod has been cut off by its kill switch (sluice.io/kill)');
    const summary = summarized.summary;
    const target = { host: summary.host, path: summary.path };
    // Only WebSocket is carried, and only as inspected messages: h2c and other protocols are refused here.
    const unusable = checkUpgradeRequest(summary.method, req.headers);
    if (unusable) return refuse(unusable.status, unusable.code, unusable.reason, target);
    let facts: Facts;
    try {
      facts = deriveFacts({ method: summary.method, host: summary.host, path: summary.path, query: summary.query, headers: req.headers as Record<string, string> }, undefined, this.#o.facts);
    } catch (err) {
      return refuse(403, err instanceof FactsError ? err.code : 'facts.derive_failed', (err as Error).message, target);
    }
    const subprotocols = offeredSubprotocols(req.headers);
    facts.upgrade = { protocol: upgradeProtocol(req.headers), ...(subprotocols.length ? { subprotocols } : {}) };
    const { decision, revision } = this.#o.engine.evaluate({ request: summary, facts, pod: identity, session: this.#sessionInfo() });
    const action = decisionAction(decision);
    const decided = { ...target, facts, revision };
    if (action !== 'allow') return refuse(403, decision.code, decision.reason, decided);
    if (!decision.allow_upgrade) {
      return refuse(403, 'http.upgrade_denied', `the policy allows this request (${decision.code}) but not an upgrade to ${String(req.headers.upgrade)}`, decided);
    }
    // Credentials are not injected into upgrades: relaying the agent's own Authorization where the
    // policy wants an injected one would hand the upstream a credential the agent should not hold.
    if (decision.credential) {
      return refuse(403, 'http.upgrade_credential', `the policy injects ${decision.credential.provider} credentials here (${decision.code}), which an upgraded connection cannot carry`, decided);
    }
    // Outbound DLP on the handshake's path, query and headers, as on any request (an upgrade
    // without a `dlp` blocks: its messages follow the same rule, see websocket/inspect.ts).
    const maskers = (this.#maskers ??= this.#o.masking?.maskers ?? new MaskerCache());
    const masker = maskers.get(decision.mask?.length ? decision.mask : '*');
    const dlp = decision.dlp ?? 'block';
    // The handshake's own fields are not forwarded (sluice writes its own key, version and no
    // extension offer); the offered subprotocols are, and are scanned like any header.
    const masked = maskRequestHead(summarized.pathAndQuery, endToEndHeaders(req.headers, HANDSHAKE_HEADERS), masker);
    if (masked.unscannable) return refuse(403, masked.unscannable.reason, `the upgrade request's ${masked.unscannable.where} cannot be decoded within sluice's bounds`, decided);
    if (masked.findings.length && (dlp === 'block' || masked.unmaskable)) {
      const f = masked.unmaskable ?? masked.findings[0]!;
      const code = masked.unmaskable ? 'dlp.unmaskable_secret' : `dlp.secret_in_${f.where.startsWith('header:') ? 'header' : 'url'}`;
      return refuse(403, code, `upgrade request blocked: its ${f.where} holds a secret (${f.rule})`, decided);
    }
    const request = { method: summary.method, scheme: summary.scheme, host: summary.host, port: summary.port, path: summary.path, facts };
    const allowed = { action: 'allow' as const, code: decision.code, reason: decision.reason, ...(revision ? { revision } : {}) };
    const upgrade = String(req.headers.upgrade);
    try {
      await this.#o.audit?.record(upgradeRecord('request', identity, request, { decision: allowed }, { upgrade, websocket: true }, id));
    } catch (err) {
      const e = err as { code?: string; message?: string };
      writeRawAnswer(socket, { status: 503, code: e.code ?? 'audit.error', reason: `the audit trail cannot take this request: ${e.message ?? ''}`, requestId: id, kind: 'error' });
      return;
    }
    if (socket.destroyed) return; // the agent left while the request was recorded
    this.#o.metrics.requests.inc({ action: 'allow', code: decision.code });
    const upstreamKey = newKey();
    const requestHead = upstreamRequestHead(masked.path, String(req.headers.host), masked.headers, upstreamKey);
    const secureContext = (this.#upstreamTls ??= this.#o.upstream.secureContext ?? upstreamSecureContext([]));
    const dial = { resolve: this.#o.upstream.resolve, secureContext, connectTimeoutMs: this.#o.upstream.connectTimeoutMs };
    // Not awaited: the recorder counts and logs its own failures (as for every end-of-request record).
    const record = (kind: 'request' | 'response', fields: Parameters<typeof upgradeRecord>[3], d: Record<string, unknown>): void =>
      void this.#o.audit?.record(upgradeRecord(kind, identity, request, { decision: allowed, ...fields }, { upgrade, ...d }, id)).catch(() => undefined);
    const m = this.#o.metrics;
    openWebSocket(socket, head, requestHead, upstreamKey, req.headers, summary, { [HEADER_REQUEST_ID]: id }, dial, {
      limits: this.#o.websocket ?? {},
      outMode: dlp,
      masker,
      onMessage: (msg) => {
        const outcome = msg.findings.length ? 'masked' : 'forwarded';
        m.websocketMessages.inc({ direction: msg.direction, outcome });
        for (const f of msg.findings) this.#o.masking?.metrics.recordRedaction({ rule: f.rule, direction: msg.direction === 'out' ? 'request' : 'response', offset: f.offset, length: f.length });
        const direction = msg.direction === 'out' ? ('request' as const) : ('response' as const);
        const masking = msg.findings.slice(0, 100).map((f) => ({ rule: f.rule, direction, offset: f.offset }));
        const bytes = msg.direction === 'out' ? { in: 0, out: msg.bytes } : { in: msg.bytes, out: 0 };
        record(direction, { bytes, ...(masking.length ? { masking } : {}) }, { websocket: { direction: msg.direction, kind: msg.kind, frames: msg.frames } });
      },
      onEnd: (end) => {
        m.websocketCloses.inc({ code: end.code });
        record('response', { bytes: { in: end.bytes.in, out: end.bytes.out } }, { websocket: { end: end.code, by: end.by, reason: end.reason, ...(end.close !== undefined ? { close: end.close } : {}), messages: end.messages } });
        this.#o.events?.websocketEnded?.({ request_id: id, ...end });
      },
    }, {
      refused: (r) => {
        m.upstreamErrors.inc({ code: r.code });
        record('response', { status: r.status }, { code: r.code, reason: r.reason });
        writeRawAnswer(socket, { ...r, requestId: id, kind: 'error' });
      },
    });
  }

  #decideConnection(host: string, port: number): ConnectionVerdict {
    if (this.#o.killed()) return { action: 'deny', code: 'pod.killed', reason: 'this pod has been cut off by its kill switch (sluice.io/kill)' };
    const { decision } = this.#o.engine.evaluate({
      request: connectSummary(host, port),
      facts: {},
      pod: this.#o.pod(),
      session: this.#sessionInfo(),
    });
    const action = decisionAction(decision);
    if (action === 'deny') return { action: 'deny', code: decision.code, reason: decision.reason };
    return { action: decision.passthrough ? 'passthrough' : 'terminate', code: decision.code, reason: decision.reason };
  }

  #handoffDeps(): HandoffDeps {
    return {
      httpFront: this.#front,
      ...(this.#front2 ? { http2Front: this.#front2 } : {}),
      leaves: this.#o.leaves,
      firstBytesTimeoutMs: this.#o.limits.firstBytesTimeoutMs,
      decideConnection: (host, port) => this.#decideConnection(host, port),
      passthrough: (socket, host, port) => {
        const to = resolveOverride(this.#o.upstream.resolve, host, port);
        tunnel(socket, to, this.#o.upstream.connectTimeoutMs, (r) => this.#o.events?.tunnelled?.({ host, port, bytesIn: r.bytesIn, bytesOut: r.bytesOut, error: r.error }));
      },
      refuse: (socket, code, reason, conn) => this.#refuse(socket, code, reason, conn),
      counted: (via, kind) => this.#o.metrics.connections.inc({ via, kind }),
      denyAll: (conn, verdict) => markConnectionDenied(conn, verdict),
    };
  }

  #refuse(socket: Socket, code: string, reason: string, conn: Partial<ConnectionInfo>): void {
    this.#o.metrics.refusals.inc({ code });
    this.#o.events?.refused?.({ code, reason, via: conn.via ?? 'transparent', name: conn.sni ?? conn.connectTarget?.host ?? conn.fakeIpName });
    socket.destroy();
  }

  /**
   * The one place that refuses a request the pipeline never saw (parser rejections, timeouts,
   * unusable CONNECTs): answered on the socket with the decision header, counted, recorded.
   */
  #refuseRequest(socket: Socket, r: { status: number; code: string; reason: string }, id = this.#nextId()): void {
    socket.on('error', () => socket.destroy());
    this.#recordRefusal(r, connectionInfoOf(socket)?.via ?? 'proxy', id);
    writeRawAnswer(socket, { ...r, requestId: id, kind: 'deny' });
  }

  #recordRefusal(r: { status: number; code: string; reason: string }, via: string, id: string): void {
    this.#o.metrics.httpErrors.inc({ code: r.code });
    this.#o.events?.malformed?.({ code: r.code, status: r.status, reason: r.reason, via, request_id: id });
  }

  #onConnect(req: IncomingMessage, socket: Socket, head: Buffer, outer: ConnectionInfo | undefined): void {
    const target = splitHostPort(req.url ?? '', 443);
    const id = this.#nextId();
    socket.on('error', () => socket.destroy());
    if (!target || !/:\d+$/.test(req.url ?? '')) {
      this.#refuseRequest(socket, { status: 400, code: 'http.bad_connect_target', reason: 'CONNECT needs host:port' }, id);
      return;
    }
    if (outer?.connectTarget || outer?.scheme === 'https') {
      this.#refuseRequest(socket, { status: 400, code: 'http.nested_connect', reason: 'CONNECT inside a tunnel is not allowed' }, id);
      return;
    }
    const verdict = this.#decideConnection(target.host, target.port);
    if (verdict.action === 'deny') {
      this.#o.metrics.requests.inc({ action: 'deny', code: verdict.code });
      this.#o.events?.refused?.({ code: verdict.code, reason: verdict.reason, via: 'proxy', name: target.host });
      writeRawAnswer(socket, { status: 403, code: verdict.code, reason: verdict.reason, requestId: id, kind: 'deny' });
      return;
    }
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length) socket.unshift(head);
    handOff(socket, { via: 'proxy', connectTarget: target }, this.#handoffDeps());
  }

  /**
   * The agent-facing ports serve the pod only: a peer from outside (anyone who can reach the pod
   * IP) would otherwise send requests with the pod's identity and credentials.
   */
  #fromPod(socket: Socket, via: ConnectionInfo['via']): boolean {
    if (this.#peers.isInside(socket.remoteAddress)) return true;
    socket.on('error', () => undefined);
    this.#refuse(socket, 'net.outside_pod', `refused a connection from ${socket.remoteAddress ?? 'an unknown address'}, which is outside the pod`, { via });
    return false;
  }

  #track(socket: Socket): void {
    this.#open.add(socket);
    socket.once('close', () => this.#open.delete(socket));
  }

  async listen(): Promise<void> {
    const { transparent, proxy } = this.#o.listen;
    if (transparent) {
      // noDelay: without it Nagle holds small writes back ~40 ms on every redirected connection.
      const server = createNetServer({ noDelay: true }, (socket) => {
        this.#track(socket);
        if (!this.#fromPod(socket, 'transparent')) return;
        const local = socket.localAddress?.replace(/^::ffff:/, '');
        const fakeIpName = local ? this.#o.fakeIps?.lookupFakeIp(local) : undefined;
        const fakeIpNames = fakeIpName ? namesForResolved(fakeIpName, this.#o.searchDomains ?? []) : undefined;
        handOff(socket, { via: 'transparent', fakeIpName, fakeIpNames }, this.#handoffDeps());
      });
      this.addresses.transparent = await listenOn(server, transparent);
      this.#servers.push(server);
    }
    if (proxy) {
      const server = createHttpServer();
      // The proxy port only accepts the socket and hands it to the shared front, so both ports
      // share one parser configuration and one pipeline.
      server.removeAllListeners('connection');
      server.on('connection', (socket: Socket) => {
        this.#track(socket);
        if (!this.#fromPod(socket, 'proxy')) return;
        attachConnectionInfo(socket, { id: randomUUID(), via: 'proxy', scheme: 'http', openedAt: Date.now() });
        this.#o.metrics.connections.inc({ via: 'proxy', kind: 'http' });
        this.#front.emit('connection', socket);
      });
      this.addresses.proxy = await listenOn(server, proxy);
      this.#servers.push(server);
    }
  }

  /** Cuts every open agent connection (kill switch) without stopping the listeners. */
  cutAll(): number {
    const n = this.#open.size;
    for (const s of this.#open) s.destroy();
    return n;
  }

  async close(): Promise<void> {
    for (const s of this.#open) s.destroy();
    await Promise.all(this.#servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    this.#front.close();
  }
}

/**
 * RFC 9112 §3.2: a request with more than one Host field line is a 400. node:http keeps the first
 * and drops the rest, so without this the request would be decided on one of two authorities.
 */
function singleHostStage(answer: Answerer): Stage {
  return async (ctx, next) => {
    const raw = ctx.req.rawHeaders;
    let hosts = 0;
    for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === 'host') hosts++;
    if (hosts > 1) {
      answer(ctx, { status: 400, code: 'http.bad_host', reason: 'the request has more than one Host field', kind: 'deny' });
      return;
    }
    await next();
  };
}

function listenOn(server: NetServer | HttpServer, at: { host: string; port: number }): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: at.host, port: at.port, ipv6Only: false }, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
