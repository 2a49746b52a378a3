// What the sidecar knows about an agent connection before any HTTP request on it: how it
// arrived and which destination it claims at the connection level (SNI, CONNECT target, fake IP).
// Every request on the connection is checked against these claims (domain fronting).
import type { Socket } from 'node:net';
import type { ConnectionVerdict } from './connection-handoff.ts';

export interface ConnectionInfo {
  id: string;
  /** transparent: redirected by iptables; proxy: the explicit HTTP proxy port. */
  via: 'transparent' | 'proxy';
  scheme: 'http' | 'https';
  /** TLS server name the client sent (lower-case), when TLS was terminated. */
  sni?: string;
  /** host:port of an HTTP CONNECT that opened this tunnel. */
  connectTarget?: { host: string; port: number };
  /** Name behind the fake IP the client dialled (DNS lockdown), when it dialled one. */
  fakeIpName?: string;
  /**
   * Names the client may legitimately use for that fake IP: the resolved name and, when the
   * resolver appended a search domain (ndots), the name the client actually asked for.
   */
  fakeIpNames?: readonly string[];
  openedAt: number;
  /** Set when the name was denied at the connection level: every request on it gets this (connection-gate.ts). */
  denied?: ConnectionVerdict;
}

// A symbol property rather than a WeakMap: an HTTP/2 request's `socket` is node:http2's Proxy
// of the TLS socket, which routes property reads to the socket itself but is not the same key.
const INFO = Symbol('sluice.connectionInfo');
type WithInfo = { [INFO]?: ConnectionInfo };

export function attachConnectionInfo(socket: Socket, info: ConnectionInfo): void {
  (socket as WithInfo)[INFO] = info;
}

export function connectionInfoOf(socket: Socket | null | undefined): ConnectionInfo | undefined {
  return socket ? (socket as WithInfo)[INFO] : undefined;
}
