// The WebSocket relay, the thin shell around frames.ts, inspect.ts, rate.ts and recording.ts: two
// connected sockets (the agent's, after sluice's 101, and the upstream's, after its 101), each
// direction read by a FrameReader, each message and control payload inspected, and only sluice's
// own re-encoding of what passed sent on (to the upstream masked with a fresh key, to the agent
// unmasked). A malformed frame, an oversized message, a secret that may not leave, a payload that
// cannot be scanned, a connection or sidecar over its rate, an idle connection or one past its
// lifetime closes both sides with a close code; nothing is relayed as raw bytes.
//
// Recording (when the caller gives `record`): messages are written ahead. What passed inspection
// waits in its direction's queue until the audit event holding it is durable, and only then is
// sent on; messages that arrive while an event is being written, or once the direction has used
// its `recording.eventsPerSecond` (a token bucket: interactive traffic within it is recorded at
// once, one event per message), share the next event (at most maxMessages / maxBytes each). So a
// flood of tiny messages costs events per second, not one per message, and nothing is ever carried that is
// not recorded: a refused write (a full spool that fails closed, a disk error) closes the
// connection with 1011 before the messages it held are sent. A full queue pauses its source.
// It never decides policy: the gateway decided the upgrade, this only enforces what crosses it.
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { CLOSE, FrameReader, OPCODE, closePayload, encodeFrame } from './frames.ts';
import type { WsEvent, WsViolation } from './frames.ts';
import { inspectPayload, nextTail, splitSecret } from './inspect.ts';
import type { InspectOptions, WsDirection, WsVerdict } from './inspect.ts';
import { entryOf } from './recording.ts';
import type { WsBatch, WsEntry } from './recording.ts';
import { TokenBucket, WsBudget, sidecarBudget } from './rate.ts';
import { websocketSettings } from './settings.ts';
import type { WebSocketSettingsInput } from './settings.ts';
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
  /** websocket settings (settings.ts): message limits, idle and lifetime, rates, recording; unset fields take the defaults. */
  limits?: Partial<WebSocketSettingsInput>;
  /** Agent → upstream: the decision's dlp (block when it has none). */
  outMode: 'mask' | 'block';
  masker: Masker;
  /** Each message as inspected (metrics; a caller without `record` records here). */
  onMessage(info: WsMessageInfo): void;
  onEnd(end: WsEnd): void;
  /**
   * Writes one batch of messages as an audit event and resolves once it is durable; its messages
   * are carried only then. A rejection closes the connection (1011) with the error's `code`.
   * Without it, messages are carried as they pass inspection (the caller records each in onMessage).
   */
  record?(batch: WsBatch): Promise<unknown>;
  /** The decision's record_body: keep a masked sample of each message (recording.sampleBytes). */
  recordContent?: boolean;
  /** The sidecar-wide budget (default: one per settings object). */
  sidecarBudget?: WsBudget;
}

interface Item {
  opcode: number;
  payload: Buffer;
  entry: WsEntry;
  findings: readonly ViewFinding[];
}

interface Queue {
  items: Item[];
  bytes: number;
  /** An event of this direction is being written. */
  inFlight: boolean;
  /** Events this direction may write (recording.eventsPerSecond). */
  events: TokenBucket;
  timer: NodeJS.Timeout | undefined;
}

const now = (): number => performance.now();

/**
 * Relays one WebSocket connection. `clientHead`: bytes the agent sent after its handshake;
 * `upstreamRest`: bytes the upstream sent after its 101. Both sockets must be connected.
 */
export function relayWebSocket(client: Socket, upstream: Socket, clientHead: Buffer, upstreamRest: Buffer, o: WsRelayOptions): void {
  const s = websocketSettings(o.limits);
  const limits = { maxMessageBytes: s.maxMessageBytes, maxFragments: s.maxFragments };
  const readers = { out: new FrameReader('client', limits), in: new FrameReader('server', limits) };
  const counts = { messages: { out: 0, in: 0 }, bytes: { out: 0, in: 0 } };
  const closeSent = { out: false, in: false };
  // The end of the last message forwarded each way: a secret split across two messages is caught.
  const tails: Record<WsDirection, Buffer> = { out: Buffer.alloc(0), in: Buffer.alloc(0) };
  const openedAt = now();
  const ownBudget = new WsBudget(s.rate.connection, openedAt);
  const shared = o.sidecarBudget ?? sidecarBudget(s, openedAt);
  const queues: Record<WsDirection, Queue> = {
    out: { items: [], bytes: 0, inFlight: false, events: new TokenBucket(s.recording.eventsPerSecond, openedAt), timer: undefined },
    in: { items: [], bytes: 0, inFlight: false, events: new TokenBucket(s.recording.eventsPerSecond, openedAt), timer: undefined },
  };
  let seq = 0;
  let lastActivity = openedAt;
  let ended = false;
  /** A peer that went away while its direction still had messages waiting: the end, once they are out. */
  const endWhenDrained: Partial<Record<WsDirection, Omit<WsEnd, 'messages' | 'bytes'>>> = {};
  /** Why each source is paused (write back-pressure, a full recording queue); resumed when none is left. */
  const pausedFor: Record<WsDirection, Set<string>> = { out: new Set(), in: new Set() };

  const sinkOf = (d: WsDirection) => (d === 'out' ? upstream : client);
  const sourceOf = (d: WsDirection) => (d === 'out' ? client : upstream);
  // Frames to a server are masked with a key it cannot predict (RFC 6455 §5.3); to a client, never.
  const frame = (d: WsDirection, opcode: number, payload: Buffer) => encodeFrame(opcode, payload, d === 'out' ? randomBytes(4) : undefined);

  const pause = (d: WsDirection, why: string) => {
    pausedFor[d].add(why);
    sourceOf(d).pause();
  };
  const resume = (d: WsDirection, why: string) => {
    if (!pausedFor[d].delete(why) || pausedFor[d].size || ended) return;
    sourceOf(d).resume();
  };

  let idleTimer: NodeJS.Timeout | undefined;
  // The lifetime runs from the start, however busy the connection is (refuse is defined below; the timer fires later).
  const lifetime = setTimeout(() => refuse(CLOSE.goingAway, 'ws.max_lifetime', `the connection reached its maximum lifetime of ${s.maxLifetimeMs} ms`), s.maxLifetimeMs);
  lifetime.unref();
  const finish = (end: Omit<WsEnd, 'messages' | 'bytes'>) => {
    if (ended) return;
    ended = true;
    clearTimeout(idleTimer);
    clearTimeout(lifetime);
    for (const d of ['out', 'in'] as const) {
      const q = queues[d];
      if (q.timer) clearTimeout(q.timer);
      // Messages that passed inspection but were never carried are still recorded, marked so.
      if (q.items.length && o.record) o.record(batchOf(d, q.items, true)).catch(() => undefined);
      q.items = [];
      q.bytes = 0;
    }
    for (const sock of [client, upstream]) {
      if (sock.destroyed) continue;
      // The close frames written before are flushed first; a peer that never closes is cut.
      sock.end(() => sock.destroy());
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
    if (!sink.write(bytes) && !pausedFor[d].has('drain')) {
      // Back-pressure: stop reading the side that feeds this sink until it drains.
      pause(d, 'drain');
      sink.once('drain', () => resume(d, 'drain'));
    }
  };

  const batchOf = (d: WsDirection, items: Item[], undelivered = false): WsBatch => ({
    direction: d,
    entries: items.map((i) => i.entry),
    bytes: items.reduce((n, i) => n + i.entry.bytes, 0),
    masking: items.flatMap((i) => i.findings.map((f) => ({ rule: f.rule, offset: f.offset }))).slice(0, 100),
    ...(undelivered ? { undelivered: true as const } : {}),
  });

  /** Sends one item that passed inspection (and, when recording, is durable). */
  const deliver = (d: WsDirection, it: Item) => {
    if (it.opcode !== OPCODE.close) {
      if (!closeSent[d]) send(d, frame(d, it.opcode, it.payload));
      return;
    }
    if (!closeSent[d]) send(d, frame(d, OPCODE.close, it.payload));
    closeSent[d] = true;
    // Both sides have closed (and both closes are out): the handshake is complete.
    if (readers.out.done && readers.in.done && closeSent.out && closeSent.in && !queues.out.items.length && !queues.in.items.length) {
      finish({ code: 'ws.closed', reason: 'closed by both sides', ...(it.entry.close !== undefined ? { close: it.entry.close } : {}), by: d === 'out' ? 'agent' : 'upstream' });
    }
  };

  const drained = (d: WsDirection) => {
    const end = endWhenDrained[d];
    if (end && !queues[d].items.length && !queues[d].inFlight) finish(end);
  };

  /** Carries what is due in direction `d`: at once without recording, else after its event is durable. */
  const pump = (d: WsDirection) => {
    const q = queues[d];
    if (ended || !q.items.length) return drained(d);
    if (!o.record) {
      const items = q.items;
      q.items = [];
      q.bytes = 0;
      for (const it of items) if (!ended) deliver(d, it);
      return drained(d);
    }
    const full = q.items.length >= s.recording.maxMessages || q.bytes >= s.recording.maxBytes;
    if (q.inFlight) {
      if (full) pause(d, 'recording');
      return;
    }
    const t = now();
    // A full event, a close or a drain is written at once (a full event is the cheap kind, and the
    // message rates bound how many there are); otherwise the event waits for the direction's next token.
    const urgent = full || q.items.some((i) => i.opcode === OPCODE.close) || endWhenDrained[d] !== undefined;
    const wait = urgent ? 0 : q.events.waitMs(1, t);
    if (wait > 0) {
      q.timer ??= setTimeout(() => {
        q.timer = undefined;
        pump(d);
      }, Math.max(1, Math.ceil(wait)));
      return;
    }
    if (q.timer) {
      clearTimeout(q.timer);
      q.timer = undefined;
    }
    q.events.take(1, t);
    // One event: up to maxMessages messages and the first that reaches maxBytes.
    let take = 0;
    let bytes = 0;
    while (take < q.items.length && take < s.recording.maxMessages && bytes < s.recording.maxBytes) bytes += q.items[take++]!.entry.bytes;
    const items = q.items.splice(0, take);
    q.bytes -= bytes;
    q.inFlight = true;
    let written: Promise<unknown>;
    try {
      written = o.record(batchOf(d, items));
    } catch (err) {
      written = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    written.then(
      () => {
        q.inFlight = false;
        if (ended) return;
        for (const it of items) if (!ended) deliver(d, it);
        if (q.items.length < s.recording.maxMessages && q.bytes < s.recording.maxBytes) resume(d, 'recording');
        pump(d);
      },
      (err: unknown) => {
        q.inFlight = false;
        const e = err as { code?: unknown; message?: unknown };
        const code = typeof e?.code === 'string' ? e.code : 'audit.error';
        // Fail closed: what this event held is not carried, and nothing after it.
        refuse(CLOSE.internalError, code, `the audit trail cannot take this WebSocket's messages (${typeof e?.message === 'string' ? e.message : String(err)}): the connection is closed, nothing unrecorded is carried`);
      },
    );
  };

  const enqueue = (d: WsDirection, it: Item) => {
    const q = queues[d];
    q.items.push(it);
    q.bytes += it.entry.bytes;
    // Not recording here: carried at once, in order, before anything that follows is judged.
    if (!o.record) pump(d);
  };

  const inspect = (d: WsDirection, payload: Buffer, opts: Partial<InspectOptions> & { text: boolean }): WsVerdict => {
    try {
      return inspectPayload(payload, d, { masker: o.masker, mode: d === 'out' ? o.outMode : 'mask', ...opts });
    } catch (err) {
      return { action: 'close', code: 'sidecar.internal_error', reason: `inspecting a WebSocket message failed: ${(err as Error).message}`, findings: [] };
    }
  };

  const who = (d: WsDirection) => (d === 'out' ? 'the agent' : 'the upstream');
  const sampleBytes = o.recordContent ? s.recording.sampleBytes : 0;

  const onEvent = (d: WsDirection, ev: WsEvent): boolean => {
    const t = now();
    // Every message and control frame counts against the rates (a ping flood is a flood); the close does not.
    if (ev.type !== 'close') {
      if (!ownBudget.take(ev.payload.length, t)) {
        refuse(CLOSE.policyViolation, 'ws.rate_limited', `${who(d)} went over ${s.rate.connection.messagesPerSecond} messages or ${s.rate.connection.bytesPerSecond} bytes a second on one WebSocket`);
        return false;
      }
      if (!shared.take(ev.payload.length, t)) {
        refuse(CLOSE.policyViolation, 'ws.sidecar_rate_limited', `the sidecar's WebSockets went over ${s.rate.sidecar.messagesPerSecond} messages or ${s.rate.sidecar.bytesPerSecond} bytes a second`);
        return false;
      }
    }
    const at = Math.round(t - openedAt);
    if (ev.type === 'close') {
      const v = inspect(d, Buffer.from(ev.reason, 'utf8'), { text: true, maxBytes: 123, mode: 'mask' });
      const reason = v.action === 'forward' ? v.payload : Buffer.alloc(0);
      o.onMessage({ direction: d, kind: 'close', bytes: ev.payload.length, frames: 1, findings: v.findings });
      const payload = ev.code === undefined ? Buffer.alloc(0) : closePayload(ev.code, reason.toString('utf8'));
      const entry = entryOf({ n: ++seq, t: at, kind: 'close', bytes: ev.payload.length, frames: 1, findings: v.findings, forwarded: reason, ...(ev.code !== undefined ? { close: ev.code } : {}), sampleBytes });
      enqueue(d, { opcode: OPCODE.close, payload, entry, findings: v.findings });
      return true;
    }
    const kind = ev.type === 'message' ? (ev.opcode === OPCODE.text ? 'text' : 'binary') : ev.type;
    const v = inspect(d, ev.payload, { text: kind === 'text', ...(ev.type === 'message' ? {} : { maxBytes: 125 }) });
    const frames = ev.type === 'message' ? ev.frames : 1;
    o.onMessage({ direction: d, kind, bytes: ev.payload.length, frames, findings: v.findings });
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
      // Only messages are activity: pings and pongs would let either side hold an idle connection forever.
      lastActivity = t;
    }
    const opcode = ev.type === 'message' ? ev.opcode : ev.type === 'ping' ? OPCODE.ping : OPCODE.pong;
    const entry = entryOf({ n: ++seq, t: at, kind, bytes: ev.payload.length, frames, findings: v.findings, forwarded: v.payload, sampleBytes });
    enqueue(d, { opcode, payload: v.payload, entry, findings: v.findings });
    return true;
  };

  const feed = (d: WsDirection, chunk: Buffer) => {
    if (ended) return;
    const r = readers[d].push(chunk);
    for (const ev of r.events) if (!onEvent(d, ev) || ended) return;
    if (r.violation) return onViolation(d, r.violation);
    // A whole chunk's messages are queued first, so a burst shares one event.
    pump(d);
  };

  const onViolation = (d: WsDirection, v: WsViolation) => {
    refuse(v.close, v.code, `${who(d)} broke the WebSocket protocol: ${v.reason}`);
  };

  /** A socket ended or failed: what it sent before is still carried (once recorded), then the end. */
  const gone = (by: 'agent' | 'upstream', error?: Error) => {
    if (ended) return;
    const end = { code: 'ws.peer_gone', reason: error ? `${by} connection failed: ${error.message}` : `${by} closed the connection`, by } as const;
    const d: WsDirection = by === 'agent' ? 'out' : 'in';
    const sink = sinkOf(d);
    if (error || sink.destroyed || !sink.writable) return finish(end);
    endWhenDrained[d] ??= end;
    pump(d);
  };

  // Idle: no message either way for idleTimeoutMs. Checked when it could first expire, then re-armed for the rest.
  const armIdle = (ms: number) => {
    idleTimer = setTimeout(() => {
      if (ended) return;
      const idle = now() - lastActivity;
      if (idle >= s.idleTimeoutMs) refuse(CLOSE.goingAway, 'ws.idle_timeout', `no message either way for ${s.idleTimeoutMs} ms`);
      else armIdle(s.idleTimeoutMs - idle);
    }, Math.max(1, Math.ceil(ms)));
    idleTimer.unref();
  };
  armIdle(s.idleTimeoutMs);

  client.on('data', (c: Buffer) => feed('out', c));
  upstream.on('data', (c: Buffer) => feed('in', c));
  client.once('end', () => gone('agent'));
  upstream.once('end', () => gone('upstream'));
  client.once('close', () => gone('agent'));
  upstream.once('close', () => gone('upstream'));
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
