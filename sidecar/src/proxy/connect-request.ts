// An HTTP CONNECT on the explicit proxy port: the target is decided at the connection level by the
// ConnectionGate (as a TLS name is), which counts and records a denial as a refusal of the
// connection; the CONNECT request itself is then answered with that denial as a request like any
// (the pipeline's `refuse`: counted, recorded, done). An allowed target is opened and the tunnel
// handed on by its first bytes like a redirected connection. A CONNECT inside a tunnel and a
// target without a port are refused before any decision (the gateway's parser-level refusals).
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { ConnectionGate } from './connection-gate.ts';
import type { HandoffClaims } from './connection-handoff.ts';
import type { ConnectionInfo } from './connection-info.ts';
import { splitHostPort } from './request-summary.ts';
import type { SluiceAnswerSpec } from './stages/answer.ts';

export interface ConnectDeps {
  gate: ConnectionGate;
  nextId(): string;
  /** Answers, counts and records a request refused before the pipeline. */
  refuseRequest(socket: Socket, r: { status: number; code: string; reason: string }, id: string): void;
  /** The CONNECT request answered with its target's denial, through the pipeline (a request like any). */
  denied(req: IncomingMessage, socket: Socket, id: string, target: { host: string; port: number }, answer: SluiceAnswerSpec): void;
  handOff(socket: Socket, claims: HandoffClaims): void;
}

export function onConnect(req: IncomingMessage, socket: Socket, head: Buffer, outer: ConnectionInfo | undefined, deps: ConnectDeps): void {
  const target = splitHostPort(req.url ?? '', 443);
  const id = deps.nextId();
  socket.on('error', () => socket.destroy());
  if (!target || !/:\d+$/.test(req.url ?? '')) {
    deps.refuseRequest(socket, { status: 400, code: 'http.bad_connect_target', reason: 'CONNECT needs host:port' }, id);
    return;
  }
  if (outer?.connectTarget || outer?.scheme === 'https') {
    deps.refuseRequest(socket, { status: 400, code: 'http.nested_connect', reason: 'CONNECT inside a tunnel is not allowed' }, id);
    return;
  }
  const verdict = deps.gate.decide(target.host, target.port, 'proxy');
  if (verdict.action === 'deny') {
    deps.denied(req, socket, id, target, { status: 403, code: verdict.code, reason: verdict.reason, kind: 'deny' });
    return;
  }
  socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  if (head.length) socket.unshift(head);
  deps.handOff(socket, { via: 'proxy', connectTarget: target });
}
