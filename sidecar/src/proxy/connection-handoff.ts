// What happens to an agent connection once its first bytes are known — for redirected
// connections and for CONNECT tunnels alike: plain HTTP goes to the HTTP front; TLS is decided
// at the connection level (the name from SNI, the CONNECT target or the fake IP), then either
// tunnelled uninspected (passthrough hosts) or terminated with a leaf for that name; anything
// else is refused and recorded.
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { Http2Server } from 'node:http2';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { SecureContext } from 'node:tls';
import { classifyFirstBytes, MAX_HELLO_BYTES } from '../listener/first-bytes.ts';
import type { FirstBytes } from '../listener/first-bytes.ts';
import type { LeafCertificateCache } from '../tls/leaf-certificates.ts';
import { isMintableServerName } from '../tls/server-name.ts';
import { attachConnectionInfo } from './connection-info.ts';
import type { ConnectionInfo } from './connection-info.ts';
import { guardedHandler } from './server-events.ts';
import type { HandlerFaults } from './server-events.ts';

export interface ConnectionVerdict {
  action: 'terminate' | 'passthrough' | 'deny';
  code: string;
  reason: string;
}

export interface HandoffDeps {
  httpFront: Server;
  /** Offered through ALPN on terminated TLS when present; HTTP/1.1 only without it. */
  http2Front?: Http2Server;
  leaves: LeafCertificateCache;
  firstBytesTimeoutMs: number;
  /** Connection-level policy decision for a name (CONNECT / SNI); a denial is counted and recorded there. */
  decideConnection(host: string, port: number, via: ConnectionInfo['via']): ConnectionVerdict;
  /** Tunnels the raw socket to name:port without inspection. */
  passthrough(socket: Socket, host: string, port: number, conn: ConnectionInfo): void;
  refuse(socket: Socket, code: string, reason: string, conn: Partial<ConnectionInfo>): void;
  counted(via: ConnectionInfo['via'], kind: 'tls' | 'http' | 'opaque'): void;
  /** Marks a connection whose requests must all be denied with this verdict. */
  denyAll(conn: ConnectionInfo, verdict: ConnectionVerdict): void;
  /**
   * A handler here that threw (server-events.ts): its socket is destroyed, the fault counted. The
   * first bytes are the agent's and are parsed in a socket's 'data' event, where a throw would
   * otherwise take the process down.
   */
  faults: HandlerFaults;
}

export interface HandoffClaims {
  via: ConnectionInfo['via'];
  connectTarget?: { host: string; port: number };
  fakeIpName?: string;
  fakeIpNames?: readonly string[];
}

/** Reads the first bytes (bounded in size and time), puts them back, then hands the socket on. */
export function handOff(socket: Socket, claims: HandoffClaims, deps: HandoffDeps): void {
  let buffered: Buffer = Buffer.alloc(0);
  const timer = setTimeout(() => {
    cleanup();
    deps.refuse(socket, 'net.first_bytes_timeout', 'connection sent nothing in time', { via: claims.via });
  }, deps.firstBytesTimeoutMs);
  const onData = guardedHandler('data', (chunk: Buffer) => {
    buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
    const kind = classifyFirstBytes(buffered);
    if (kind.kind === 'need-more' && buffered.length < MAX_HELLO_BYTES + 5) return;
    cleanup();
    socket.pause();
    socket.unshift(buffered);
    dispatch(socket, kind.kind === 'need-more' ? { kind: 'opaque', reason: 'incomplete first bytes' } : kind, claims, deps);
  }, deps.faults, () => socket);
  const onEnd = () => {
    cleanup();
    socket.destroy();
  };
  const cleanup = () => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', onEnd);
  };
  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('error', () => socket.destroy());
}

function dispatch(socket: Socket, kind: FirstBytes, claims: HandoffClaims, deps: HandoffDeps): void {
  const base = { id: randomUUID(), via: claims.via, openedAt: Date.now(), connectTarget: claims.connectTarget, fakeIpName: claims.fakeIpName, fakeIpNames: claims.fakeIpNames };
  if (kind.kind === 'http') {
    deps.counted(claims.via, 'http');
    const conn: ConnectionInfo = { ...base, scheme: 'http' };
    attachConnectionInfo(socket, conn);
    deps.httpFront.emit('connection', socket);
    socket.resume();
    return;
  }
  if (kind.kind !== 'tls') {
    deps.counted(claims.via, 'opaque');
    deps.refuse(socket, 'net.not_http', `refused a connection that is ${kind.kind === 'opaque' ? kind.reason : 'not HTTP'}`, base);
    return;
  }
  deps.counted(claims.via, 'tls');
  const name = kind.sni ?? claims.connectTarget?.host ?? claims.fakeIpName;
  if (!name) {
    deps.refuse(socket, 'net.no_server_name', 'TLS connection without a server name to a destination sluice cannot name', base);
    return;
  }
  // Before any decision or certificate: a name that is not a hostname or an IP literal (a
  // wildcard, a NUL, bytes past ASCII, an endless name) is refused, whatever the policy says of it.
  if (!isMintableServerName(name)) {
    deps.refuse(socket, 'net.bad_server_name', `the TLS server name ${JSON.stringify(name.slice(0, 80))} is not a hostname or IP address`, base);
    return;
  }
  if (kind.sni && claims.connectTarget && kind.sni !== claims.connectTarget.host) {
    deps.refuse(socket, 'net.sni_mismatch', `TLS server name ${kind.sni} differs from the CONNECT target ${claims.connectTarget.host}`, base);
    return;
  }
  if (kind.sni && claims.fakeIpName && !(claims.fakeIpNames ?? [claims.fakeIpName]).includes(kind.sni)) {
    deps.refuse(socket, 'net.sni_mismatch', `TLS server name ${kind.sni} differs from the DNS name ${claims.fakeIpName}`, base);
    return;
  }
  const port = claims.connectTarget?.port ?? 443;
  const verdict = deps.decideConnection(name, port, claims.via);
  const conn: ConnectionInfo = { ...base, scheme: 'https', sni: name };
  if (verdict.action === 'passthrough') {
    deps.passthrough(socket, name, port, conn);
    return;
  }
  // A denied name is still terminated so the agent reads a 403 with the reason rather than a
  // TLS failure; every request on it is answered with that denial and nothing goes upstream.
  if (verdict.action === 'deny') deps.denyAll(conn, verdict);
  deps.leaves.contextFor(name).then(
    // Guarded: a throw here would be an unhandled rejection, which ends the process.
    guardedHandler('secure context', (secureContext: SecureContext) => {
      const h2 = deps.http2Front;
      const tls = new TLSSocket(socket, { isServer: true, secureContext, ALPNProtocols: h2 ? ['h2', 'http/1.1'] : ['http/1.1'] });
      // A TLS socket inherits allowHalfOpen from the socket it wraps, and a CONNECT tunnel's comes
      // from node:http (true): an HTTP/2 session on it would never see the agent hang up.
      tls.allowHalfOpen = false;
      // A handshake that fails (an agent that does not trust the pod CA, a broken hello) is a
      // refusal the operator should see; an error after it is an ordinary hang-up.
      let settled = false;
      const failed = (reason: string) => {
        if (settled) return;
        settled = true;
        deps.refuse(tls, 'tls.handshake_failed', reason, conn);
      };
      tls.once('secure', () => (settled = true));
      tls.on('error', (err: Error) => (settled ? tls.destroy() : failed(`TLS handshake with the agent failed: ${err.message}`)));
      tls.once('close', () => failed('the agent closed the connection during the TLS handshake (does it trust the pod CA?)'));
      attachConnectionInfo(tls, conn);
      // The TLS socket reads the bytes put back on `socket` itself; resuming `socket` here
      // would let them flow past it.
      if (!h2) {
        deps.httpFront.emit('connection', tls);
        return;
      }
      // Which front parses the connection is known once the handshake has chosen (ALPN).
      const timer = setTimeout(() => {
        settled = true;
        deps.refuse(tls, 'tls.handshake_timeout', 'TLS handshake with the agent did not complete in time', conn);
      }, deps.firstBytesTimeoutMs);
      tls.once('close', () => clearTimeout(timer));
      tls.once('secure', guardedHandler('secure', () => {
        clearTimeout(timer);
        if (tls.alpnProtocol !== 'h2') {
          deps.httpFront.emit('connection', tls);
          return;
        }
        // tls.Server clears this flag before it hands a server socket on; an HTTP/2 session
        // built on a socket still marked as connecting waits for an event that never comes.
        (tls as TLSSocket & { secureConnecting: boolean }).secureConnecting = false;
        h2.emit('connection', tls);
      }, deps.faults, () => tls));
    }, deps.faults, () => socket),
    guardedHandler('secure context', (err: Error) => deps.refuse(socket, 'tls.mint_failed', `could not mint a certificate for ${name}: ${err.message}`, conn), deps.faults, () => socket),
  );
}
