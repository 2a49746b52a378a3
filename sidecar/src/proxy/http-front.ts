// The agent-facing HTTP/1.1 parser: one node:http Server that never listens itself; listeners
// hand it sockets (plain or TLS-terminated). Strict parsing is llhttp's (CL+TE together,
// duplicate or invalid Content-Length, invalid header bytes are errors); oversized header
// blocks are 431 and slow headers 408. Each rejection is answered, counted and reported.
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { writeRawAnswer } from './sluice-responses.ts';

export interface HttpFrontOptions {
  maxHeaderBytes: number;
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
  onRequest: (req: IncomingMessage, res: ServerResponse) => void;
  onConnect: (req: IncomingMessage, socket: Socket, head: Buffer) => void;
  onUpgrade: (req: IncomingMessage, socket: Socket, head: Buffer) => void;
  onClientError: (code: string, status: number, reason: string, socket: Duplex) => void;
  newRequestId: () => string;
}

interface ParserError extends Error {
  code?: string;
  reason?: string;
}

/** Maps llhttp/node parser errors to the status and stable code the agent and audit see. */
export function classifyParserError(err: ParserError): { status: number; code: string; reason: string } {
  const detail = err.reason ?? err.message;
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, code: 'http.header_too_large', reason: 'request header block exceeds the limit' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'HPE_HEADERS_TIMEOUT':
      return { status: 408, code: 'http.headers_timeout', reason: 'request headers were not received in time' };
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
      return { status: 400, code: 'http.ambiguous_length', reason: `ambiguous message length: ${detail}` };
    case 'HPE_INVALID_CONTENT_LENGTH':
      return { status: 400, code: 'http.bad_content_length', reason: `invalid Content-Length: ${detail}` };
    case 'HPE_INVALID_TRANSFER_ENCODING':
      if (/Content-Length/i.test(detail)) return { status: 400, code: 'http.ambiguous_length', reason: `ambiguous message length: ${detail}` };
      return { status: 400, code: 'http.bad_transfer_encoding', reason: `invalid Transfer-Encoding: ${detail}` };
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_LF_EXPECTED':
    case 'HPE_CR_EXPECTED':
      return { status: 400, code: 'http.bad_header', reason: `malformed header: ${detail}` };
    case 'HPE_INVALID_CHUNK_SIZE':
      return { status: 400, code: 'http.bad_chunk', reason: `malformed chunked body: ${detail}` };
    default:
      return { status: 400, code: 'http.malformed', reason: `malformed request: ${detail} (${err.code ?? 'unknown'})` };
  }
}

export function createHttpFront(options: HttpFrontOptions): Server {
  const server = createServer({
    maxHeaderSize: options.maxHeaderBytes,
    requireHostHeader: true,
    insecureHTTPParser: false,
    joinDuplicateHeaders: false,
    headersTimeout: options.headersTimeoutMs,
    requestTimeout: 0,
    keepAliveTimeout: options.keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, options.headersTimeoutMs),
  });
  server.on('request', options.onRequest);
  server.on('connect', options.onConnect);
  server.on('upgrade', options.onUpgrade);
  // With a checkContinue listener Node leaves 100-continue to us: it is sent only once the
  // policy lets the request through (or a fact needs the body), so a denied upload never starts.
  server.on('checkContinue', options.onRequest);
  server.on('clientError', (err: ParserError, socket: Duplex) => {
    const c = classifyParserError(err);
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    options.onClientError(c.code, c.status, c.reason, socket);
    writeRawAnswer(socket as Socket, { ...c, requestId: options.newRequestId(), kind: 'deny' });
  });
  return server;
}
