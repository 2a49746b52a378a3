// The agent-facing HTTP/1.1 parser: one node:http Server that never listens itself; listeners
// hand it sockets (plain or TLS-terminated). Strict parsing is llhttp's (CL+TE together,
// duplicate or invalid Content-Length, invalid header bytes are errors); oversized header
// blocks are 431 and slow headers 408. Each rejection goes to `refuse`, the one place that
// answers and records it; node:http is never left to answer on its own (no bare 400 for a
// missing Host, no bare 417). The timeouts are the sidecar's own (connection-timers.ts).
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { codeStatus } from '../../../api/src/codes.ts';
import type { Code } from '../../../api/src/codes.ts';
import { trackHttp1Timeouts } from './connection-timers.ts';
import { guardedHandler, responsePending } from './server-events.ts';
import type { HandlerFaults } from './server-events.ts';

export interface HttpFrontOptions {
  maxHeaderBytes: number;
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** a request body the sidecar reads that stalls this long → 408; 0: off */
  requestBodyTimeoutMs: number;
  onRequest: (req: IncomingMessage, res: ServerResponse) => void;
  onConnect: (req: IncomingMessage, socket: Socket, head: Buffer) => void;
  onUpgrade: (req: IncomingMessage, socket: Socket, head: Buffer) => void;
  /** Answers a refusal straight on the socket (then closes it), counts and records it. */
  refuse: (socket: Socket, refusal: FrontRefusal) => void;
  /**
   * A CONNECT or upgrade pipelined behind a request still being answered: the socket cannot be
   * taken over, nor answered on (the bytes would land inside that response). Counted, recorded
   * and the connection destroyed; the request in flight ends cut.
   */
  pipelinedTakeover: (socket: Socket, req: IncomingMessage) => void;
  /** A handler that threw (its socket has been destroyed): counted and logged. */
  faults: HandlerFaults;
}

export interface FrontRefusal {
  status: number;
  code: Code;
  reason: string;
}

interface ParserError extends Error {
  code?: string;
  reason?: string;
}

/** Maps llhttp/node parser errors to the stable code the agent and audit see, answered with the
 *  code's status in the catalogue. */
export function classifyParserError(err: ParserError): FrontRefusal {
  const detail = err.reason ?? err.message;
  const refusal = (code: Code<'error'>, reason: string): FrontRefusal => ({ status: codeStatus(code), code, reason });
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return refusal('http.header_too_large', 'request header block exceeds the limit');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'HPE_HEADERS_TIMEOUT':
      return refusal('http.headers_timeout', 'request headers were not received in time');
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
      return refusal('http.ambiguous_length', `ambiguous message length: ${detail}`);
    case 'HPE_INVALID_CONTENT_LENGTH':
      return refusal('http.bad_content_length', `invalid Content-Length: ${detail}`);
    case 'HPE_INVALID_TRANSFER_ENCODING':
      if (/Content-Length/i.test(detail)) return refusal('http.ambiguous_length', `ambiguous message length: ${detail}`);
      return refusal('http.bad_transfer_encoding', `invalid Transfer-Encoding: ${detail}`);
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_LF_EXPECTED':
    case 'HPE_CR_EXPECTED':
      return refusal('http.bad_header', `malformed header: ${detail}`);
    case 'HPE_INVALID_CHUNK_SIZE':
      return refusal('http.bad_chunk', `malformed chunked body: ${detail}`);
    default:
      return refusal('http.malformed', `malformed request: ${detail} (${err.code ?? 'unknown'})`);
  }
}

export function createHttpFront(options: HttpFrontOptions): Server {
  const server = createServer({
    maxHeaderSize: options.maxHeaderBytes,
    // A request without Host reaches the pipeline, which refuses it like any bad authority
    // (http.no_host) with an answer and a record; node:http's own check answers a bare 400.
    requireHostHeader: false,
    insecureHTTPParser: false,
    joinDuplicateHeaders: false,
    headersTimeout: options.headersTimeoutMs,
    requestTimeout: 0,
    keepAliveTimeout: options.keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, options.headersTimeoutMs),
  });
  // Every handler here runs inside node:http's own event emission: guarded, so a throw destroys
  // that connection instead of the process (server-events.ts).
  const on = <A extends unknown[]>(event: string, handler: (...args: A) => unknown) => server.on(event, guardedHandler(event, handler, options.faults));
  // Who takes a socket over from node:http (CONNECT, upgrade) must own it: with a response still
  // pending on it (a request pipelined ahead), refused before anything is written or handed on.
  const takeover =
    (handler: (req: IncomingMessage, socket: Socket, head: Buffer) => void) =>
    (req: IncomingMessage, socket: Socket, head: Buffer): void => {
      if (responsePending(socket)) options.pipelinedTakeover(socket, req);
      else handler(req, socket, head);
    };
  on('request', options.onRequest);
  on('connect', takeover(options.onConnect));
  on('upgrade', takeover(options.onUpgrade));
  // With a checkContinue listener Node leaves 100-continue to us: it is sent only once the
  // policy lets the request through (or a fact needs the body), so a denied upload never starts.
  on('checkContinue', options.onRequest);
  on('clientError', (err: ParserError, socket: Duplex) => {
    const c = classifyParserError(err);
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    options.refuse(socket as Socket, c);
  });
  // Without a listener node:http answers any Expect but 100-continue with a bare 417.
  on('checkExpectation', (req: IncomingMessage) => {
    options.refuse(req.socket, { status: codeStatus('http.bad_expect'), code: 'http.bad_expect', reason: `unsupported Expect: ${String(req.headers.expect).slice(0, 100)}` });
  });
  trackHttp1Timeouts(server, options, {
    headersTimedOut: (socket) => options.refuse(socket, { status: codeStatus('http.headers_timeout'), code: 'http.headers_timeout', reason: `request headers were not received within ${options.headersTimeoutMs} ms` }),
    // The answer ends the connection, which aborts the request: the pipeline releases the
    // upstream request and records its end (destroying the request first would lose the answer).
    bodyTimedOut: (socket, _req, res) => {
      if (res.headersSent) socket.destroy();
      else options.refuse(socket, { status: codeStatus('http.request_timeout'), code: 'http.request_timeout', reason: `the request body stalled for ${options.requestBodyTimeoutMs} ms` });
    },
  });
  return server;
}
