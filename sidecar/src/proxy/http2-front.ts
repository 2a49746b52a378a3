// The agent-facing HTTP/2 server: like the HTTP/1.1 front it never listens itself; the TLS
// handoff gives it connections whose ALPN chose h2. Requests reach the same pipeline through
// node:http2's compatibility API (agent-request.ts reads both protocols alike). nghttp2 does
// the strict framing (malformed frames, pseudo-header rules, flow control); the limits here keep
// one agent connection from holding unbounded memory or streams.
import { constants, createServer } from 'node:http2';
import type { Code } from '../../../api/src/codes.ts';
import type { Http2Server, Http2ServerRequest, Http2ServerResponse, ServerHttp2Session } from 'node:http2';
import { trackHttp2Timeouts } from './connection-timers.ts';
import { guardedHandler } from './server-events.ts';
import type { HandlerFaults } from './server-events.ts';

export interface Http2FrontOptions {
  maxHeaderBytes: number;
  maxConcurrentStreams: number;
  /** an idle session (no open stream) is closed after this, whatever PINGs it sends */
  keepAliveTimeoutMs: number;
  /** a new session must open its first stream within this */
  headersTimeoutMs: number;
  /** a request body the sidecar reads that stalls this long → the stream is cancelled; 0: off */
  requestBodyTimeoutMs?: number;
  onRequest: (req: Http2ServerRequest, res: Http2ServerResponse) => void;
  /** a session ended by a protocol error (bad frames, a peer that broke the rules) or a timeout */
  onSessionError: (code: Code<'error'>, reason: string, status?: number) => void;
  /** A handler that threw (its stream or session has been destroyed): counted and logged. */
  faults: HandlerFaults;
}

const PEER_GONE = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ETIMEDOUT', 'ERR_STREAM_PREMATURE_CLOSE']);

export function createHttp2Front(options: Http2FrontOptions): Http2Server {
  const server = createServer({
    settings: {
      enablePush: false,
      maxConcurrentStreams: options.maxConcurrentStreams,
      maxHeaderListSize: options.maxHeaderBytes,
    },
    // Header blocks past the limit are refused by nghttp2 (the stream is reset: HTTP/2's 431).
    maxHeaderListPairs: 256,
    // MiB of nghttp2 memory per session before new streams are refused.
    maxSessionMemory: 16,
  });
  // Every handler runs inside node:http2's event emission: guarded (server-events.ts).
  const on = <A extends unknown[]>(event: string, handler: (...args: A) => unknown) => server.on(event, guardedHandler(event, handler, options.faults));
  on('request', options.onRequest);
  // node:http2 hands a CONNECT stream (a tunnel, or RFC 8441's extended CONNECT) to 'connect', not
  // 'request', and answers 405 itself when nobody listens: the pipeline would never see it, record
  // it or count it. It goes to the pipeline like any request, which refuses it (http.nested_connect).
  // Extended CONNECT (:protocol) is never offered (SETTINGS_ENABLE_CONNECT_PROTOCOL stays 0):
  // WebSocket is carried over HTTP/1.1 only, where its frames are read (websocket/relay.ts).
  on('connect', options.onRequest);
  // As on HTTP/1.1 (http-front.ts): 100-continue is sent only once the policy lets the body come.
  on('checkContinue', options.onRequest);
  on('session', (session: ServerHttp2Session) => {
    session.on(
      'error',
      guardedHandler('error', (err: Error & { code?: string }) => {
        // An agent that hangs up is not malformed input; a peer that breaks the protocol is.
        if (err.code && PEER_GONE.has(err.code)) return;
        options.onSessionError('http.h2_protocol_error', `HTTP/2 session error: ${err.code ?? err.message}`);
      }, options.faults),
    );
  });
  on('sessionError', () => undefined); // reported through the session's own 'error'
  trackHttp2Timeouts(server, { ...options, requestBodyTimeoutMs: options.requestBodyTimeoutMs ?? 0 }, {
    bodyTimedOut: (req) => {
      options.onSessionError('http.request_timeout', `the request body stalled for ${options.requestBodyTimeoutMs} ms`, 408);
      // The pipeline sees the stream cut (recorded as 499) and releases the upstream request.
      req.stream.close(constants.NGHTTP2_CANCEL);
    },
    headersTimedOut: (session) => {
      options.onSessionError('http.headers_timeout', `no request headers within ${options.headersTimeoutMs} ms of the HTTP/2 session`, 408);
      session.close();
      // A peer in the middle of a header block keeps no stream open that close() would wait for.
      session.destroy();
    },
  });
  return server;
}
