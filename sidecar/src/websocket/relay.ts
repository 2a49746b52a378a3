// The WebSocket relay, the thin shell around frames.ts and inspect.ts: two connected sockets
// (the agent's, after sluice's 101, and the upstream's, after its 101), each direction read by a
// FrameReader, each message and control payload inspected, and only sluice's own re-encoding of
// what passed sent on (to the upstream masked with a fresh key, to the agent unmasked). A
// malformed frame, an oversized message, a secret that may not leave, or a payload that cannot be
// scanned closes both sides with a close code; nothing is relayed as raw bytes. It never decides
// policy: the gateway decided the upgrade, this only enforces what crosses it.
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { CLOSE, FrameReader, OPCODE, closePayload, encodeFrame } from './frames.ts';
import type { ReaderLimits, WsEvent, WsViolation } from './frames.ts';
import { inspectPayload, nextTail, splitSecret } from './inspect.ts';
import type { InspectOptions, WsDirection, WsVerdict } from './inspect.ts';
import type { Masker, ViewFinding } from '../masking/index.ts';

export interface WsMessageInfo {
  direction: WsDirection;
  kind: 'text' | 'binary' | 'ping' | 'pong' | 'close';
  bytes: number;
  frames: number;
  /** Redactions in this payload, by rule (never the value). */
  findings: readonly ViewFinding[];
}

export interface WsEnd {
  /** `ws.closed` (a close handshake), `ws.peer_gone` (a socket ended), or the sluice code that closed it. */
  code: string;
  reason: string;
  /** The close code sent or relayed, if any. */
  close?: number;
  /** Who ended it. */
  by: 'agent' | 'upstream' | 'sluice';
  messages: { out: number; in: number };
  bytes: { out: number; in: number };
}

export interface WsRelayOptions {
  limits: Partial<ReaderLimits>;
  /** Agent → upstream: the decision's dlp (block when it has none). */
  outMode: 'mask' | 'block';
  masker: Masker;
  onMessage(info: WsMessageInfo): void;
  onEnd(end: WsEnd): void;
}

/**
 * Relays one WebSocket connection. `clientHead`: bytes the agent sent after its handshake;
 * `upstreamRest`: bytes the upstream sent after its 101. Both sockets must be connected.
 */
export function relayWebSocket(client: Socket, upstream: Socket, clientHead: Buffer, upstreamRest: Buffer, o: WsRelayOptions): void {
  const readers = { out: new FrameReader('client', o.limits), in: new FrameReader('server', o.limits) };
  const counts = { messages: { out: 0, in: 0 }, bytes: { out: 0, in: 0 } };
  const closeSent = { out: false, in: false };
  // The end of the last message forwarded each way: a secret split across two messages is caught.
  const tails: Record<WsDirection, Buffer> = { out: Buffer.alloc(0), in: Buffer.alloc(0) };
  let ended = false;

  const sinkOf = (d: WsDirection) => (d === 'out' ? upstream : client);
  const sourceOf = (d: WsDirection) => (d === 'out' ? client : upstream);
  // Frames to a server are masked with a key it cannot predict (RFC 6455 §5.3); to a client, never.
  const frame = (d: WsDirection, opcode: number, payload: Buffer) => encodeFrame(opcode, payload, d === 'out' ? randomBytes(4) : undefined);

  const finish = (end: Omit<WsEnd, 'messages' | 'bytes'>) => {
    if (ended) return;
    ended = true;
    for (const s of [client, upstream]) {
      if (s.destroyed) continue;
      // The close frames written before are flushed first; a peer that never closes is cut.
      s.end(() => s.destroy());
    }
    o.onEnd({ ...end, messages: { ...counts.messages }, bytes: { ...counts.bytes } });
  };

  /** sluice ends the connection: a close frame each way (the agent learns why), then the sockets. */
  const refuse = (close: number, code: string, reason: string) => {
    if (ended) return;
    if (!closeSent.in && client.writable) client.write(frame('in', OPCODE.close, closePayload(close, `sluice: ${code}`)));
    if (!closeSent.out && upstream.writable) upstream.write(frame('out', OPCODE.close, closePayload(CLOSE.goingAway, '')));
    closeSent.in = closeSent.out = true;
    finish({ code, reason, close, by: 'sluice' });
  };

  const send = (d: WsDirection, bytes: Buffer) => {
    const sink = sinkOf(d);
    if (!sink.write(bytes)) {
      // Back-pressure: stop reading the side that feeds this sink until it drains.
      const source = sourceOf(d);
      source.pause();
      sink.once('drain', () => source.resume());
    }
  };

  const inspect = (d: WsDirection, payload: Buffer, opts: Partial<InspectOptions> & { text: boolean }): WsVerdict => {
    try {
      return inspectPayload(payload, d, { masker: o.masker, mode: d === 'out' ? o.outMode : 'mask', ...opts });
    } catch (err) {
      return { action: 'close', code: 'sidecar.internal_error', reason: `inspecting a WebSocket message failed: ${(err as Error).message}`, findings: [] };
    }
  };

  const onEvent = (d: WsDirection, ev: WsEvent) => {
    if (ev.type === 'close') {
      const v = inspect(d, Buffer.from(ev.reason, 'utf8'), { text: true, maxBytes: 123, mode: 'mask' });
      const reason = v.action === 'forward' ? v.payload.toString('utf8') : '';
      o.onMessage({ direction: d, kind: 'close', bytes: ev.payload.length, frames: 1, findings: v.findings });
      if (!closeSent[d]) send(d, frame(d, OPCODE.close, ev.code === undefined ? Buffer.alloc(0) : closePayload(ev.code, reason)));
      closeSent[d] = true;
      // Both sides have closed: the handshake is complete.
      if (readers.out.done && readers.in.done) finish({ code: 'ws.closed', reason: 'closed by both sides', ...(ev.code !== undefined ? { close: ev.code } : {}), by: d === 'out' ? 'agent' : 'upstream' });
      return true;
    }
    const kind = ev.type === 'message' ? (ev.opcode === OPCODE.text ? 'text' : 'binary') : ev.type;
    const v = inspect(d, ev.payload, { text: kind === 'text', ...(ev.type === 'message' ? {} : { maxBytes: 125 }) });
    o.onMessage({ direction: d, kind, bytes: ev.payload.length, frames: ev.type === 'message' ? ev.frames : 1, findings: v.findings });
    if (v.action === 'close') {
      refuse(CLOSE.policyViolation, v.code, v.reason);
      return false;
    }
    if (ev.type === 'message') {
      const split = splitSecret(tails[d], v.payload, o.masker);
      if (split) {
        refuse(CLOSE.policyViolation, 'dlp.secret_across_messages', `a secret (${split}) is split across two WebSocket messages ${d === 'out' ? 'to the upstream' : 'to the agent'}`);
        return false;
      }
      tails[d] = nextTail(tails[d], v.payload);
      counts.messages[d]++;
      counts.bytes[d] += ev.payload.length;
    }
    if (!closeSent[d]) send(d, frame(d, ev.type === 'message' ? ev.opcode : ev.type === 'ping' ? OPCODE.ping : OPCODE.pong, v.payload));
    return true;
  };

  const feed = (d: WsDirection, chunk: Buffer) => {
    if (ended) return;
    const r = readers[d].push(chunk);
    for (const ev of r.events) if (!onEvent(d, ev) || ended) return;
    if (r.violation) onViolation(d, r.violation);
  };

  const onViolation = (d: WsDirection, v: WsViolation) => {
    refuse(v.close, v.code, `${d === 'out' ? 'the agent' : 'the upstream'} broke the WebSocket protocol: ${v.reason}`);
  };

  const gone = (by: 'agent' | 'upstream', error?: Error) => {
    if (ended) return;
    finish({ code: 'ws.peer_gone', reason: error ? `${by} connection failed: ${error.message}` : `${by} closed the connection`, by });
  };

  client.on('data', (c: Buffer) => feed('out', c));
  upstream.on('data', (c: Buffer) => feed('in', c));
  client.once('end', () => gone('agent'));
  upstream.once('end', () => gone('upstream'));
  client.once('close', () => {
    gone('agent');
    upstream.destroy();
  });
  upstream.once('close', () => {
    gone('upstream');
    client.destroy();
  });
  client.on('error', (e) => {
    gone('agent', e);
    client.destroy();
  });
  upstream.on('error', (e) => {
    gone('upstream', e);
    upstream.destroy();
  });
  if (upstreamRest.length) feed('in', upstreamRest);
  if (clientHead.length) feed('out', clientHead);
  client.resume();
  upstream.resume();
}
