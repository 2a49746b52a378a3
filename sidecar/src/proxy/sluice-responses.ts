// Answers the sidecar gives itself (deny, hold outcome, faults): JSON `{error, reason,
// request_id}` plus x-sluice-decision, so agents, humans and scripts can all tell a sluice
// decision from an upstream's answer.
import type { Socket } from 'node:net';
import { HEADER_DECISION, HEADER_REQUEST_ID } from '../../../api/src/index.ts';
import { writeResponseHead } from './agent-request.ts';
import type { AgentResponse } from './agent-request.ts';

export interface SluiceAnswer {
  status: number;
  code: string;
  reason: string;
  requestId: string;
  /** deny (policy), hold (approval outcome), error (sidecar or upstream fault) */
  kind: 'deny' | 'hold' | 'error';
}

export function answerBody(a: SluiceAnswer): string {
  return `${JSON.stringify({ error: a.code, reason: a.reason, request_id: a.requestId })}\n`;
}

export function decisionHeader(a: SluiceAnswer): string {
  return `${a.kind}; code=${a.code}`;
}

export function sendAnswer(res: AgentResponse, a: SluiceAnswer): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = answerBody(a);
  // A failed writeHead (an upstream header HTTP/2 refuses) leaves its headers on the response.
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  writeResponseHead(res, a.status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    [HEADER_DECISION]: decisionHeader(a),
    [HEADER_REQUEST_ID]: a.requestId,
    'cache-control': 'no-store',
  });
  res.end(body);
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 403: 'Forbidden', 408: 'Request Timeout', 417: 'Expectation Failed', 431: 'Request Header Fields Too Large', 502: 'Bad Gateway', 503: 'Service Unavailable' };

/** The same answer written straight to a socket (CONNECT refusals, parser errors). */
export function writeRawAnswer(socket: Socket, a: SluiceAnswer): void {
  const body = answerBody(a);
  if (socket.writable) {
    socket.end(
      `HTTP/1.1 ${a.status} ${STATUS_TEXT[a.status] ?? 'Error'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
        `${HEADER_DECISION}: ${decisionHeader(a)}\r\n${HEADER_REQUEST_ID}: ${a.requestId}\r\nconnection: close\r\n\r\n${body}`,
    );
  } else {
    socket.destroy();
  }
}
