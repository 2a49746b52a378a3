// A WebSocket path with real parts and no sidecar around it, for the relay's (and replay's) tests: a real `ws`
// server upstream, a front HTTP server whose upgrade handler does what the gateway does once an
// upgrade is allowed (sluice's own handshake upstream, then the inspecting relay, through
// proxy/upgrade.ts), a real AuditRecorder writing a real spool, and real `ws` clients. Tests only;
// never imported by production code.
import { readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import WebSocket, { WebSocketServer } from 'ws';
import type { AuditEvent, AuditRecord } from '../../api/src/index.ts';
import { AuditRecorder } from '../../sidecar/src/audit/index.ts';
import type { AuditConfigInput } from '../../sidecar/src/audit/config.ts';
import { createMasker } from '../../sidecar/src/masking/index.ts';
import { upgradeRecord } from '../../sidecar/src/proxy/audit-records.ts';
import { openWebSocket } from '../../sidecar/src/proxy/upgrade.ts';
import { newKey, upstreamRequestHead } from '../../sidecar/src/websocket/handshake.ts';
import { batchRecord } from '../../sidecar/src/websocket/recording.ts';
import type { WsBatch } from '../../sidecar/src/websocket/recording.ts';
import type { WsBudget } from '../../sidecar/src/websocket/rate.ts';
import type { WsEnd, WsMessageInfo } from '../../sidecar/src/websocket/relay.ts';
import type { WebSocketSettingsInput } from '../../sidecar/src/websocket/settings.ts';

export const pod = { namespace: 'agents', name: 'agent-1', service_account: 'agent' };
/** The pod as the gateway knows it (labels and annotations from the downward API). */
const identity = { ...pod, labels: {}, annotations: {} };

export interface Upstream {
  port: number;
  /** Messages the upstream received, in order. */
  received: string[];
  pings: number;
  wss: WebSocketServer;
  /** Resolves once `received` holds `n` messages (checked as each arrives). */
  has(n: number): Promise<void>;
  close(): Promise<void>;
}

/** A real `ws` server; `onMessage` answers (default: nothing). */
export async function startUpstream(onMessage?: (ws: WebSocket, data: string) => void): Promise<Upstream> {
  const server: Server = createServer((_req, res) => res.end('plain'));
  const wss = new WebSocketServer({ noServer: true });
  const waiters: { n: number; resolve: () => void }[] = [];
  const up: Upstream = {
    port: 0,
    received: [],
    pings: 0,
    wss,
    has: (n) => (up.received.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
    close: async () => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)));
  wss.on('connection', (ws: WebSocket) => {
    ws.on('message', (data: Buffer) => {
      up.received.push(data.toString());
      for (const w of waiters.filter((x) => up.received.length >= x.n)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
      onMessage?.(ws, data.toString());
    });
    ws.on('ping', () => up.pings++);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  up.port = (server.address() as AddressInfo).port;
  return up;
}

export interface FrontOptions {
  upstreamPort: number;
  settings?: Partial<WebSocketSettingsInput>;
  /** The recorder the batches go to; without it, the relay carries messages as they pass (no `record`). */
  recorder?: AuditRecorder;
  /** Record each message as its own event from onMessage (the shape before batching: the measure's baseline). */
  perMessage?: boolean;
  recordContent?: boolean;
  dlp?: 'mask' | 'block';
  sidecarBudget?: WsBudget;
}

export interface Front {
  port: number;
  ends: WsEnd[];
  messages: WsMessageInfo[];
  /** Resolves with the next connection's end. */
  nextEnd(): Promise<WsEnd>;
  close(): Promise<void>;
}

const request = { method: 'GET', scheme: 'http', host: 'ws.example', port: 80, path: '/chat' };
const allowed = { action: 'allow' as const, code: 'test.ws', reason: 'websocket allowed' };

/** What the gateway does for an allowed upgrade, with `record` wired to a real recorder. */
export async function startFront(o: FrontOptions): Promise<Front> {
  const masker = createMasker('*');
  const ends: WsEnd[] = [];
  const waiting: ((e: WsEnd) => void)[] = [];
  const messages: WsMessageInfo[] = [];
  let ids = 0;
  const server = createServer((_req, res) => res.end('no'));
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const id = `req-${++ids}`;
    const rec = (r: AuditRecord) => o.recorder!.record(r);
    const key = newKey();
    const requestHead = upstreamRequestHead('/chat', 'ws.example', {}, key);
    const summary = { method: 'GET', scheme: 'http' as const, host: 'ws.example', port: 80, path: '/chat', query: {}, headers: {}, ip_literal: false };
    const batching = o.recorder && !o.perMessage;
    openWebSocket(socket, head, requestHead, key, req.headers, summary, { 'x-sluice-request-id': id }, { resolve: { 'ws.example:80': `127.0.0.1:${o.upstreamPort}` }, secureContext: createSecureContext({}), connectTimeoutMs: 5000 }, {
      limits: o.settings ?? {},
      outMode: o.dlp ?? 'mask',
      masker,
      recordContent: o.recordContent ?? false,
      ...(o.sidecarBudget ? { sidecarBudget: o.sidecarBudget } : {}),
      ...(batching
        ? {
            record: (batch: WsBatch) => {
              const r = batchRecord(batch);
              return rec(upgradeRecord(r.kind, identity, request, { decision: allowed, ...r.fields }, { upgrade: 'websocket', ...r.detail }, id));
            },
          }
        : {}),
      onMessage: (m) => {
        messages.push(m);
        if (o.recorder && o.perMessage) {
          // The gateway's per-message record before batching (gateway.ts at ac8ae6a).
          const direction = m.direction === 'out' ? ('request' as const) : ('response' as const);
          const masking = m.findings.slice(0, 100).map((f) => ({ rule: f.rule, direction, offset: f.offset }));
          const bytes = m.direction === 'out' ? { in: 0, out: m.bytes } : { in: m.bytes, out: 0 };
          void rec(upgradeRecord(direction, identity, request, { decision: allowed, bytes, ...(masking.length ? { masking } : {}) }, { upgrade: 'websocket', websocket: { direction: m.direction, kind: m.kind, frames: m.frames } }, id)).catch(() => undefined);
        }
      },
      onEnd: (end) => {
        // As the gateway records the end (not awaited: the connection is over).
        if (o.recorder) {
          const detail = { websocket: { end: end.code, by: end.by, reason: end.reason, ...(end.close !== undefined ? { close: end.close } : {}), messages: end.messages } };
          void rec(upgradeRecord('response', identity, request, { decision: allowed, bytes: { in: end.bytes.in, out: end.bytes.out } }, { upgrade: 'websocket', ...detail }, id)).catch(() => undefined);
        }
        ends.push(end);
        waiting.shift()?.(end);
      },
    }, {
      refused: (r) => socket.end(`HTTP/1.1 ${r.status} Refused\r\nx-code: ${r.code}\r\ncontent-length: 0\r\n\r\n`),
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    ends,
    messages,
    nextEnd: () => new Promise((resolve) => waiting.push(resolve)),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export function openClient(front: Front): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${front.port}/chat`);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`refused: ${res.statusCode} ${String(res.headers['x-code'])}`)));
  });
}

export function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })));
}

export function nextMessage(ws: WebSocket): Promise<string> {
  return new Promise((resolve) => ws.once('message', (d: Buffer) => resolve(d.toString())));
}

export async function startRecorder(spoolDir: string, extra: Partial<AuditConfigInput> = {}): Promise<AuditRecorder> {
  const r = new AuditRecorder({ spoolDir, pod, session: 'ws-test', spool: { fsync: 'none' }, ...extra });
  await r.start();
  return r;
}

/** Every spooled event and the spool's size in bytes. */
export function spooled(spoolDir: string): { events: AuditEvent[]; bytes: number } {
  let bytes = 0;
  const events: AuditEvent[] = [];
  for (const n of readdirSync(spoolDir).filter((f) => f.startsWith('seg-')).sort()) {
    const text = readFileSync(join(spoolDir, n), 'utf8');
    bytes += Buffer.byteLength(text);
    for (const l of text.split('\n')) if (l.startsWith('{')) events.push(JSON.parse(l) as AuditEvent);
  }
  return { events, bytes };
}

/** The message entries of the WebSocket events, in the connection's order. */
export function entries(events: AuditEvent[]): { n: number; kind: string; bytes: number; direction: string; text?: string; sha256?: string; base64?: string; masked?: string[]; undelivered?: boolean }[] {
  return events
    .flatMap((e) => {
      const w = e.detail?.websocket as { v?: number; direction: string; messages?: { n: number; kind: string; bytes: number }[]; undelivered?: boolean } | undefined;
      return w?.v === 2 && w.messages ? w.messages.map((m) => ({ ...m, direction: w.direction, ...(w.undelivered ? { undelivered: true } : {}) })) : [];
    })
    .sort((a, b) => a.n - b.n);
}
