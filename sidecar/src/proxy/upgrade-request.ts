// A protocol upgrade's own steps in the request pipeline (pipeline.ts), which runs an upgrade
// through the same phases as any request — guard, summarize, facts, decide, decided (the durable
// request record), hold, done — with these in between: after summarize, only a WebSocket opening
// handshake goes on (h2c and other protocols are refused); after facts, `facts.upgrade`; at the
// decision, the policy must also say `allow_upgrade` and inject no credential; and in place of
// the HTTP request's before-forward and forward, `upgradeForward`: outbound DLP on the
// handshake's head, sluice's own handshake upstream (upgrade.ts) and the inspecting relay, whose
// messages are written ahead into shared, bounded audit events (websocket/relay.ts: a message is
// carried only once its event is durable), until the connection ends. It never answers the agent
// itself before the 101: a refusal is returned to the pipeline, which answers, counts and records it.
import { HEADER_REQUEST_ID } from '../../../api/src/index.ts';
import type { AuditRecord, PodIdentity } from '../../../api/src/index.ts';
import type { RequestAudit } from '../audit/index.ts';
import { maskRequestHead } from '../masking/index.ts';
import type { MaskerCache, MaskingMetrics } from '../masking/index.ts';
import { batchRecord } from '../websocket/recording.ts';
import type { WebSocketSettingsInput } from '../websocket/settings.ts';
import { HANDSHAKE_HEADERS, checkUpgradeRequest, newKey, offeredSubprotocols, upgradeProtocol, upstreamRequestHead } from '../websocket/handshake.ts';
import type { WsEnd } from '../websocket/relay.ts';
import { agentHead } from './agent-request.ts';
import { upgradeRecord } from './audit-records.ts';
import { endToEndHeaders } from './hop-by-hop.ts';
import type { Step } from './pipeline.ts';
import type { ProxyMetrics } from './proxy-metrics.ts';
import type { Decided, RequestContext, Summarized, Upgrading } from './request-context.ts';
import type { SluiceAnswerSpec } from './stages/answer.ts';
import { originOf } from './stages/forward.ts';
import { openWebSocket } from './upgrade.ts';
import type { UpgradeDial } from './upgrade.ts';

/** After summarize: only a WebSocket opening handshake on HTTP/1.1 goes on. */
export function upgradeRefusal(ctx: Upgrading<Summarized>): SluiceAnswerSpec | undefined {
  const unusable = checkUpgradeRequest(ctx.summary.method, ctx.req.headers, ctx.req.httpVersion);
  if (unusable) return { ...unusable, kind: 'deny' };
  ctx.auditDetail = { ...ctx.auditDetail, websocket: true };
  return undefined;
}

/** After the facts phase: what the policy sees of the upgrade (`facts.upgrade`). */
export function addUpgradeFacts(ctx: Upgrading<Summarized>): void {
  const subprotocols = offeredSubprotocols(ctx.req.headers);
  ctx.facts.upgrade = { protocol: upgradeProtocol(ctx.req.headers), ...(subprotocols.length ? { subprotocols } : {}) };
}

/**
 * At the decision, for a decision that lets the request on (allowed or held): an upgrade needs
 * `allow_upgrade` too, and no injected credential — relaying the agent's own Authorization where
 * the policy wants an injected one would hand the upstream a credential the agent should not hold.
 */
export function upgradeTerms(ctx: Upgrading<Summarized> & Pick<Decided, 'evaluation'>): SluiceAnswerSpec | undefined {
  const decision = ctx.evaluation.decision;
  if (!decision.allow_upgrade) {
    return { status: 403, code: 'http.upgrade_denied', reason: `the policy allows this request (${decision.code}) but not an upgrade to ${ctx.upgrade.protocol}`, kind: 'deny' };
  }
  if (decision.credential) {
    return { status: 403, code: 'http.upgrade_credential', reason: `the policy injects ${decision.credential.provider} credentials here (${decision.code}), which an upgraded connection cannot carry`, kind: 'deny' };
  }
  return undefined;
}

export interface UpgradeDeps {
  pod(): PodIdentity;
  metrics: ProxyMetrics;
  /** The audit trail the relay writes the messages to (the request's own events are the audit phases'). */
  audit?: RequestAudit | undefined;
  events?: { websocketEnded?(info: { request_id: string } & WsEnd): void };
  /** The loaded masking rules (built once, on first use). */
  maskers(): MaskerCache;
  maskingMetrics?: MaskingMetrics | undefined;
  /** How the upstream is reached (built once, on first use). */
  dial(): UpgradeDial;
  websocket?: Partial<WebSocketSettingsInput> | undefined;
}

/**
 * An allowed upgrade's before-forward and forward: DLP on the handshake's path, query and headers
 * (an upgrade without a `dlp` blocks: its messages follow the same rule, see websocket/inspect.ts),
 * then the upstream's handshake and the relay. Resolves when the upgrade is over: with the
 * refusal to answer (DLP, the upstream's failed handshake), or 'end' once the relayed connection
 * (or the agent, before it) has ended.
 */
export function upgradeForward(d: UpgradeDeps): (ctx: Upgrading<Decided>) => Promise<Step> {
  return async (ctx) => {
    const { decision, revision } = ctx.evaluation;
    const summary = ctx.summary;
    const socket = ctx.upgrade.socket;
    const masker = d.maskers().get(decision.mask?.length ? decision.mask : '*');
    const dlp = decision.dlp ?? 'block';
    const headers = agentHead(ctx.req).headers;
    // The handshake's own fields are not forwarded (sluice writes its own key, version and no
    // extension offer); the offered subprotocols are, and are scanned like any header.
    const masked = maskRequestHead(ctx.pathAndQuery, endToEndHeaders(headers, HANDSHAKE_HEADERS), masker);
    if (masked.unscannable) return { status: 403, code: masked.unscannable.reason, reason: `the upgrade request's ${masked.unscannable.where} cannot be decoded within sluice's bounds`, kind: 'deny' };
    if (masked.findings.length && (dlp === 'block' || masked.unmaskable)) {
      const f = masked.unmaskable ?? masked.findings[0]!;
      const code = masked.unmaskable ? 'dlp.unmaskable_secret' : `dlp.secret_in_${f.where.startsWith('header:') ? 'header' : 'url'}`;
      return { status: 403, code, reason: `upgrade request blocked: its ${f.where} holds a secret (${f.rule})`, kind: 'deny' };
    }
    if (socket.destroyed) return 'end'; // the agent left while the request was recorded
    const identity = d.pod();
    const request: NonNullable<AuditRecord['request']> = { method: summary.method, scheme: summary.scheme, host: summary.host, port: summary.port, path: summary.path, facts: ctx.facts };
    const allowed = { action: 'allow' as const, code: decision.code, reason: decision.reason, ...(revision ? { revision } : {}) };
    const upgrade = ctx.upgrade.protocol;
    const upstreamKey = newKey();
    // The Host the upstream reads is the one decided and dialled (as for a plain request, whose Host
    // undici writes from the same origin): the agent's may name another port.
    const authority = originOf(summary.scheme, summary.host, summary.port).slice(summary.scheme.length + 3);
    const requestHead = upstreamRequestHead(masked.path, authority, masked.headers, upstreamKey);
    const m = d.metrics;
    ctx.upgrade.dialled = true;
    return new Promise<Step>((resolve) => {
      // Before sluice's 101 the agent may leave (the relay's end reports it after).
      socket.once('close', () => {
        if (!ctx.upgrade.opened) resolve('end');
      });
      openWebSocket(socket, ctx.upgrade.head, requestHead, upstreamKey, headers, summary, { [HEADER_REQUEST_ID]: ctx.id }, d.dial(), {
        limits: d.websocket ?? {},
        outMode: dlp,
        masker,
        recordContent: decision.record_body === true,
        // Write-ahead and bounded (websocket/relay.ts): messages share events; each is carried once its
        // event is durable, and a refused write (a full spool that fails closed) closes the connection 1011.
        record: (batch) => {
          const r = batchRecord(batch);
          return d.audit?.record(upgradeRecord(r.kind, identity, request, { decision: allowed, ...r.fields }, { upgrade, ...r.detail }, ctx.id)) ?? Promise.resolve();
        },
        onMessage: (msg) => {
          const outcome = msg.findings.length ? 'masked' : 'forwarded';
          m.websocketMessages.inc({ direction: msg.direction, outcome });
          for (const f of msg.findings) d.maskingMetrics?.recordRedaction({ rule: f.rule, direction: msg.direction === 'out' ? 'request' : 'response', offset: f.offset, length: f.length });
        },
        onEnd: (end) => {
          m.websocketCloses.inc({ code: end.code });
          // The done phase records how it ended (the audit's response event) and counts the upgrade.
          ctx.bytesOut = end.bytes.out;
          ctx.bytesIn = end.bytes.in;
          ctx.auditDetail = { upgrade, websocket: { end: end.code, by: end.by, reason: end.reason, ...(end.close !== undefined ? { close: end.close } : {}), messages: end.messages } };
          d.events?.websocketEnded?.({ request_id: ctx.id, ...end });
          resolve('end');
        },
      }, {
        opened: () => {
          ctx.status = 101;
          ctx.upgrade.opened = true;
        },
        refused: (r) => {
          m.upstreamErrors.inc({ code: r.code });
          resolve({ ...r, kind: 'error' });
        },
      });
    });
  };
}

/** The upgrade's part of a context: what the gateway knows before any phase runs. */
export function isUpgrade<C extends RequestContext>(ctx: C): ctx is Upgrading<C> {
  return ctx.upgrade !== undefined;
}
