// A protocol upgrade request, decided like any request and relayed only where the decision allows
// it: the pipeline's guard phase (one Host, the connection's verdict, the kill switch), the
// summary, facts (with `facts.upgrade`), the policy (which must also say `allow_upgrade`, and no
// injected credential), outbound DLP on the handshake's head, the durable request record; then
// upgrade.ts dials the upstream and the inspecting relay carries the messages, written ahead into
// shared, bounded audit events (websocket/relay.ts: a message is carried only once its event is durable).
// Every refusal is answered on the socket, counted once (request-outcome.ts) and recorded.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { decisionAction } from '../../../api/src/index.ts';
import type { Facts, PodIdentity, SessionInfo } from '../../../api/src/index.ts';
import { HEADER_REQUEST_ID } from '../../../api/src/index.ts';
import type { RequestAudit } from '../audit/index.ts';
import { FactsError, deriveFacts } from '../facts/derive-facts.ts';
import type { FactsConfig } from '../facts/derive-facts.ts';
import { maskRequestHead } from '../masking/index.ts';
import type { MaskerCache, MaskingMetrics } from '../masking/index.ts';
import type { PolicyEngine } from '../../../lib/src/policy/engine.ts';
import { batchRecord } from '../websocket/recording.ts';
import type { WebSocketSettingsInput } from '../websocket/settings.ts';
import { HANDSHAKE_HEADERS, checkUpgradeRequest, newKey, offeredSubprotocols, upgradeProtocol, upstreamRequestHead } from '../websocket/handshake.ts';
import type { WsEnd } from '../websocket/relay.ts';
import { eventRecord, upgradeRecord } from './audit-records.ts';
import { connectionInfoOf } from './connection-info.ts';
import { endToEndHeaders } from './hop-by-hop.ts';
import type { Guarded } from './pipeline.ts';
import type { ProxyMetrics } from './proxy-metrics.ts';
import { requestEnded } from './request-outcome.ts';
import { summarizeRequest } from './request-summary.ts';
import { writeRawAnswer } from './sluice-responses.ts';
import type { SluiceAnswerSpec } from './stages/answer.ts';
import { openWebSocket } from './upgrade.ts';
import type { UpgradeDial } from './upgrade.ts';

export interface UpgradeDeps {
  nextId(): string;
  pod(): PodIdentity;
  session(): SessionInfo;
  engine: PolicyEngine;
  facts: FactsConfig;
  metrics: ProxyMetrics;
  /** The pipeline's guard phase. */
  guard(head: Guarded): Promise<SluiceAnswerSpec | undefined>;
  audit?: RequestAudit | undefined;
  events?: {
    upgradeDecided?(info: { request_id: string; status: number; code: string }): void;
    websocketEnded?(info: { request_id: string } & WsEnd): void;
  };
  /** The loaded masking rules (built once, on first use). */
  maskers(): MaskerCache;
  maskingMetrics?: MaskingMetrics | undefined;
  /** How the upstream is reached (built once, on first use). */
  dial(): UpgradeDial;
  websocket?: Partial<WebSocketSettingsInput> | undefined;
}

/** A protocol upgrade: decided like a request; relayed only where the decision allows it. */
export async function onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer, d: UpgradeDeps): Promise<void> {
  const id = d.nextId();
  socket.on('error', () => socket.destroy());
  const conn = connectionInfoOf(socket) ?? { id, via: 'proxy' as const, scheme: 'http' as const, openedAt: Date.now() };
  const identity = d.pod();
  const refuse = (status: number, code: string, reason: string, decided?: Record<string, unknown>) => {
    requestEnded(d.metrics, { action: 'deny', code });
    d.audit?.record(eventRecord('request', identity, { upgrade: String(req.headers.upgrade), status, code, reason, ...decided }, id)).catch(() => undefined);
    d.events?.upgradeDecided?.({ request_id: id, status, code });
    writeRawAnswer(socket, { status, code, reason, requestId: id, kind: 'deny' });
  };
  // The pipeline's guard phase, as for any request: one Host field, the connection's verdict (a
  // name denied at its TLS name or CONNECT target) and the kill switch.
  const barred = await d.guard({ id, req, conn });
  if (barred) return refuse(barred.status, barred.code, barred.reason);
  const summarized = summarizeRequest({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers }, conn);
  if (!summarized.ok) return refuse(summarized.status, summarized.code, summarized.reason);
  const summary = summarized.summary;
  const target = { host: summary.host, path: summary.path };
  // Only WebSocket is carried, and only as inspected messages: h2c and other protocols are refused here.
  const unusable = checkUpgradeRequest(summary.method, req.headers, req.httpVersion);
  if (unusable) return refuse(unusable.status, unusable.code, unusable.reason, target);
  let facts: Facts;
  try {
    facts = deriveFacts({ method: summary.method, host: summary.host, path: summary.path, query: summary.query, headers: req.headers as Record<string, string> }, undefined, d.facts);
  } catch (err) {
    return refuse(403, err instanceof FactsError ? err.code : 'facts.derive_failed', (err as Error).message, target);
  }
  const subprotocols = offeredSubprotocols(req.headers);
  facts.upgrade = { protocol: upgradeProtocol(req.headers), ...(subprotocols.length ? { subprotocols } : {}) };
  const { decision, revision } = d.engine.evaluate({ request: summary, facts, pod: identity, session: d.session() });
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
  const maskers = d.maskers();
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
    await d.audit?.record(upgradeRecord('request', identity, request, { decision: allowed }, { upgrade, websocket: true }, id));
  } catch (err) {
    const e = err as { code?: string; message?: string };
    writeRawAnswer(socket, { status: 503, code: e.code ?? 'audit.error', reason: `the audit trail cannot take this request: ${e.message ?? ''}`, requestId: id, kind: 'error' });
    return;
  }
  if (socket.destroyed) return; // the agent left while the request was recorded
  requestEnded(d.metrics, { action: 'allow', code: decision.code });
  const upstreamKey = newKey();
  const requestHead = upstreamRequestHead(masked.path, String(req.headers.host), masked.headers, upstreamKey);
  const dial = d.dial();
  // Not awaited: the recorder counts and logs its own failures (as for every end-of-request record).
  const record = (kind: 'request' | 'response', fields: Parameters<typeof upgradeRecord>[3], detail: Record<string, unknown>): void =>
    void d.audit?.record(upgradeRecord(kind, identity, request, { decision: allowed, ...fields }, { upgrade, ...detail }, id)).catch(() => undefined);
  const m = d.metrics;
  openWebSocket(socket, head, requestHead, upstreamKey, req.headers, summary, { [HEADER_REQUEST_ID]: id }, dial, {
    limits: d.websocket ?? {},
    outMode: dlp,
    masker,
    recordContent: decision.record_body === true,
    // Write-ahead and bounded (websocket/relay.ts): messages share events; each is carried once its
    // event is durable, and a refused write (a full spool that fails closed) closes the connection 1011.
    record: (batch) => {
      const r = batchRecord(batch);
      return d.audit?.record(upgradeRecord(r.kind, identity, request, { decision: allowed, ...r.fields }, { upgrade, ...r.detail }, id)) ?? Promise.resolve();
    },
    onMessage: (msg) => {
      const outcome = msg.findings.length ? 'masked' : 'forwarded';
      m.websocketMessages.inc({ direction: msg.direction, outcome });
      for (const f of msg.findings) d.maskingMetrics?.recordRedaction({ rule: f.rule, direction: msg.direction === 'out' ? 'request' : 'response', offset: f.offset, length: f.length });
    },
    onEnd: (end) => {
      m.websocketCloses.inc({ code: end.code });
      record('response', { bytes: { in: end.bytes.in, out: end.bytes.out } }, { websocket: { end: end.code, by: end.by, reason: end.reason, ...(end.close !== undefined ? { close: end.close } : {}), messages: end.messages } });
      d.events?.websocketEnded?.({ request_id: id, ...end });
    },
  }, {
    refused: (r) => {
      m.upstreamErrors.inc({ code: r.code });
      record('response', { status: r.status }, { code: r.code, reason: r.reason });
      writeRawAnswer(socket, { ...r, requestId: id, kind: 'error' });
    },
  });
}
