// The agent-facing timeouts, kept by the sidecar itself. Its HTTP fronts never listen(): sockets
// are handed to them ('connection' / 'session' emitted by the listeners), and node:http only runs
// its header and request timers for connections of a server that listens — so a client sending
// one header line every second would hold a connection forever. These trackers watch every
// handed-off connection:
//   HTTP/1.1  head    a request head must be complete within headersTimeoutMs of its first byte
//                     (of the connection, for the first request) → 408, recorded;
//             idle    between requests, a connection that sends nothing for keepAliveTimeoutMs
//                     is closed;
//             body    while the sidecar reads a request body, the agent must send some of it
//                     every requestBodyTimeoutMs → 408 (or the exchange is cut once answered).
//   HTTP/2    head    the first stream must open within headersTimeoutMs of the session;
//             idle    a session with no open stream for keepAliveTimeoutMs gets GOAWAY — PINGs
//                     and SETTINGS do not keep it (node's session timeout counts any frame).
// Time spent while the sidecar holds a request (policy, approval, a slow upstream) never counts:
// only waits on the agent do. Never answers or records itself: it reports to its caller.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Http2Server, Http2ServerRequest, ServerHttp2Session, ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { guardedHandler } from './server-events.ts';
import type { HandlerFaults } from './server-events.ts';

export interface AgentTimeouts {
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** 0: off */
  requestBodyTimeoutMs: number;
  /** A tracker's handler that threw (server-events.ts): its connection is destroyed, the fault counted. */
  faults: HandlerFaults;
}

export interface Http1TimeoutEvents {
  /** The request head did not complete in time: answer 408 and record it. */
  headersTimedOut(socket: Socket): void;
  /** The agent stalled mid-body while the sidecar was reading it. */
  bodyTimedOut(socket: Socket, req: IncomingMessage, res: ServerResponse): void;
  /** An idle keep-alive connection was closed (not a refusal). */
  idleClosed?(socket: Socket): void;
}

type Phase = 'head' | 'busy' | 'idle';

interface Tracked {
  phase: Phase;
  since: number;
  bytes: number;
  inflight: Set<{ req: IncomingMessage; res: ServerResponse }>;
}

/**
 * Is the sidecar reading this body and has it read all that came? Someone consumes it, and
 * nothing is buffered: bytes the agent sent but nobody read (a hold, a slow upstream) would sit in
 * the request's buffer, and then the wait is the sidecar's, not the agent's.
 */
function waitsForAgent(req: IncomingMessage | Http2ServerRequest): boolean {
  if (req.complete || req.destroyed || req.readableLength > 0) return false;
  return req.readableFlowing === true || req.listenerCount('readable') > 0;
}

/** How often the HTTP/1.1 tracker looks at its connections: a quarter of the shortest timeout. */
export function tickMs(t: AgentTimeouts): number {
  const shortest = Math.min(t.headersTimeoutMs, t.keepAliveTimeoutMs, t.requestBodyTimeoutMs || Infinity);
  return Math.max(10, Math.min(1000, Math.floor(shortest / 4)));
}

/**
 * Tracks every connection handed to an HTTP/1.1 server. Progress on a connection is read from
 * socket.bytesRead: node:http parses straight from the socket's handle, so no 'data' event shows
 * it; the first new byte after an idle gap starts the next head's clock (to within one tick).
 */
export function trackHttp1Timeouts(server: Server, t: AgentTimeouts, events: Http1TimeoutEvents, now: () => number = Date.now): { size(): number } {
  const tracked = new Map<Socket, Tracked>();
  const on = <A extends unknown[]>(event: string, handler: (...args: A) => unknown) => server.on(event, guardedHandler(event, handler, t.faults));
  let interval: NodeJS.Timeout | undefined;
  const untrack = (socket: Socket) => {
    tracked.delete(socket);
    if (tracked.size === 0 && interval) {
      clearInterval(interval);
      interval = undefined;
    }
  };
  const tick = () => {
    const at = now();
    for (const [socket, s] of tracked) {
      if (socket.destroyed) {
        untrack(socket);
        continue;
      }
      const read = socket.bytesRead;
      if (s.phase === 'idle') {
        if (read !== s.bytes) {
          s.phase = 'head';
          s.since = at;
        } else if (at - s.since >= t.keepAliveTimeoutMs) {
          untrack(socket);
          events.idleClosed?.(socket);
          socket.destroy();
        }
        continue;
      }
      if (s.phase === 'head') {
        if (at - s.since >= t.headersTimeoutMs) {
          untrack(socket);
          events.headersTimedOut(socket);
        }
        continue;
      }
      // busy: only a body the sidecar is waiting for counts, and only while nothing arrives.
      if (!t.requestBodyTimeoutMs) continue;
      const waiting = [...s.inflight].find(({ req }) => waitsForAgent(req));
      if (!waiting || read !== s.bytes) {
        s.bytes = read;
        s.since = at;
        continue;
      }
      if (at - s.since >= t.requestBodyTimeoutMs) {
        untrack(socket);
        events.bodyTimedOut(socket, waiting.req, waiting.res);
      }
    }
  };
  on('connection', (socket: Socket) => {
    tracked.set(socket, { phase: 'head', since: now(), bytes: socket.bytesRead, inflight: new Set() });
    socket.once('close', () => untrack(socket));
    interval ??= setInterval(tick, tickMs(t)).unref();
  });
  const started = (req: IncomingMessage, res: ServerResponse) => {
    const s = tracked.get(req.socket);
    if (!s) return;
    const exchange = { req, res };
    s.inflight.add(exchange);
    s.phase = 'busy';
    s.since = now();
    s.bytes = req.socket.bytesRead;
    res.once('close', () => {
      s.inflight.delete(exchange);
      if (s.inflight.size > 0 || !tracked.has(req.socket)) return;
      s.phase = 'idle';
      s.since = now();
      s.bytes = req.socket.bytesRead;
    });
  };
  on('request', started);
  on('checkContinue', started);
  on('checkExpectation', started);
  // A CONNECT or an upgrade takes the socket out of HTTP: what runs on it is timed elsewhere
  // (a tunnel is handed off again and tracked anew).
  on('connect', (req: IncomingMessage) => untrack(req.socket));
  on('upgrade', (req: IncomingMessage) => untrack(req.socket));
  return { size: () => tracked.size };
}

export interface Http2TimeoutEvents {
  /** No stream opened in time on a new session. */
  headersTimedOut(session: ServerHttp2Session): void;
  idleClosed?(session: ServerHttp2Session): void;
  /** The agent stalled mid-body on a stream while the sidecar was reading it. */
  bodyTimedOut?(req: Http2ServerRequest): void;
}

/** Tracks the sessions of an HTTP/2 server by their open streams (see the header comment). */
export function trackHttp2Timeouts(server: Http2Server, t: AgentTimeouts, events: Http2TimeoutEvents): void {
  const on = <A extends unknown[]>(event: string, handler: (...args: A) => unknown) => server.on(event, guardedHandler(event, handler, t.faults));
  on('session', (session: ServerHttp2Session) => {
    let open = 0;
    let everOpened = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = (ms: number, fire: () => void) => {
      clearTimeout(timer);
      timer = setTimeout(fire, ms);
      timer.unref();
    };
    arm(t.headersTimeoutMs, () => {
      if (session.destroyed || everOpened) return;
      events.headersTimedOut(session);
    });
    session.on(
      'stream',
      guardedHandler('stream', (stream: ServerHttp2Stream) => {
      everOpened = true;
      open++;
      clearTimeout(timer);
      stream.once('close', () => {
        if (--open > 0 || session.destroyed) return;
        arm(t.keepAliveTimeoutMs, () => {
          if (open > 0 || session.destroyed) return;
          events.idleClosed?.(session);
          session.close();
        });
      });
      }, t.faults),
    );
    session.once('close', () => clearTimeout(timer));
  });
  if (!t.requestBodyTimeoutMs || !events.bodyTimedOut) return;
  const onStall = (req: Http2ServerRequest) => events.bodyTimedOut?.(req);
  // Request bodies: a stream's DATA frames are its progress (PINGs or other streams are not).
  const bodies = new Map<Http2ServerRequest, { last: number; watching: boolean }>();
  let interval: NodeJS.Timeout | undefined;
  const untrack = (req: Http2ServerRequest) => {
    bodies.delete(req);
    if (bodies.size === 0 && interval) {
      clearInterval(interval);
      interval = undefined;
    }
  };
  const tick = () => {
    const at = Date.now();
    for (const [req, b] of bodies) {
      if (req.complete || req.stream.destroyed) {
        untrack(req);
        continue;
      }
      if (!waitsForAgent(req)) {
        b.last = at;
        continue;
      }
      // node:http2 starts reading the stream ('data') only when the request is first read; a
      // 'data' listener added before that would switch the stream on and take the body away.
      if (!b.watching && req.stream.readableFlowing === true) {
        b.watching = true;
        b.last = at;
        req.stream.on('data', () => (b.last = Date.now()));
        continue;
      }
      if (b.watching && at - b.last >= t.requestBodyTimeoutMs) {
        untrack(req);
        onStall(req);
      }
    }
  };
  const started = (req: Http2ServerRequest) => {
    if (req.complete || req.stream.readableEnded) return;
    bodies.set(req, { last: Date.now(), watching: false });
    req.stream.once('close', () => untrack(req));
    interval ??= setInterval(tick, tickMs(t)).unref();
  };
  on('request', started);
  on('checkContinue', started);
}
