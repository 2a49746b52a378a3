// An HTTP CONNECT on the explicit proxy port: the target is decided at the connection level by the
// ConnectionGate (as a TLS name is); a denied target is answered on the socket, counted as a
// request and recorded as a refusal; an allowed one is opened and the tunnel handed on by its
// first bytes like a redirected connection. A CONNECT inside a tunnel and a target without a port
// are refused before any decision.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { ConnectionGate } from './connection-gate.ts';
import type { HandoffClaims } from './connection-handoff.ts';
import type { ConnectionInfo } from './connection-info.ts';
import { requestEnded } from './request-outcome.ts';
import type { ProxyMetrics } from './proxy-metrics.ts';
import { splitHostPort } from './request-summary.ts';
import { writeRawAnswer } from './sluice-responses.ts';

export interface ConnectDeps {
  gate: ConnectionGate;
  metrics: ProxyMetrics;
  nextId(): string;
  /** Answers, counts and records a request refused before the pipeline. */
  refuseRequest(socket: Socket, r: { status: number; code: string; reason: string }, id: string): void;
  /** A connection-level denial, for the audit trail. */
  refused?(info: { code: string; reason: string; via: string; name?: string }): void;
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
  const verdict = deps.gate.decide(target.host, target.port);
  if (verdict.action === 'deny') {
    requestEnded(deps.metrics, { action: 'deny', code: verdict.code });
    deps.refused?.({ code: verdict.code, reason: verdict.reason, via: 'proxy', name: target.host });
    writeRawAnswer(socket, { status: 403, code: verdict.code, reason: verdict.reason, requestId: id, kind: 'deny' });
    return;
  }
  socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  if (head.length) socket.unshift(head);
  deps.handOff(socket, { via: 'proxy', connectTarget: target });
}
