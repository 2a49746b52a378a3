// The agent-facing listeners: the transparent port (iptables-redirected TCP, handed on by its first
// bytes) and the explicit proxy port (absolute-form HTTP and CONNECT, parsed by the shared HTTP
// front). Both serve the pod only: a peer from outside it is refused and recorded before one byte
// is read. Every open agent connection is tracked so the kill switch can cut them all. This module
// accepts sockets and hands them on; it never decides anything about a request.
import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import type { Server as HttpServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import type { FakeIpMap } from '../dns/fake-ip-map.ts';
import type { PodPeers } from '../listener/pod-peers.ts';
import type { HandoffClaims } from './connection-handoff.ts';
import { attachConnectionInfo } from './connection-info.ts';
import type { ConnectionInfo } from './connection-info.ts';
import { namesForResolved } from './request-summary.ts';
import { guardedHandler } from './server-events.ts';
import type { HandlerFaults } from './server-events.ts';

export interface ListenerDeps {
  listen: { transparent?: { host: string; port: number }; proxy?: { host: string; port: number } };
  /** Which peers are inside the pod. */
  peers: PodPeers;
  fakeIps?: FakeIpMap;
  /** The pod resolver's search domains (see namesForResolved). */
  searchDomains: readonly string[];
  /** The shared HTTP/1.1 front the proxy port hands its sockets to. */
  front: HttpServer;
  /** A transparent connection, handed on by its first bytes (connection-handoff.ts). */
  handOff(socket: Socket, claims: HandoffClaims): void;
  refuse(socket: Socket, code: string, reason: string, conn: Partial<ConnectionInfo>): void;
  counted(via: ConnectionInfo['via'], kind: 'tls' | 'http' | 'opaque'): void;
  /** A connection handler that threw (server-events.ts): the socket is destroyed, the fault counted. */
  faults: HandlerFaults;
}

export class AgentListeners {
  readonly #d: ListenerDeps;
  readonly #servers: (NetServer | HttpServer)[] = [];
  readonly #open = new Set<Socket>();
  addresses: { transparent?: AddressInfo; proxy?: AddressInfo } = {};

  constructor(deps: ListenerDeps) {
    this.#d = deps;
  }

  async listen(): Promise<void> {
    const { transparent, proxy } = this.#d.listen;
    if (transparent) {
      // noDelay: without it Nagle holds small writes back ~40 ms on every redirected connection.
      const server = createNetServer({ noDelay: true }, guardedHandler('connection', (socket: Socket) => {
        this.#track(socket);
        if (!this.#fromPod(socket, 'transparent')) return;
        const local = socket.localAddress?.replace(/^::ffff:/, '');
        const fakeIpName = local ? this.#d.fakeIps?.lookupFakeIp(local) : undefined;
        const fakeIpNames = fakeIpName ? namesForResolved(fakeIpName, this.#d.searchDomains) : undefined;
        this.#d.handOff(socket, { via: 'transparent', fakeIpName, fakeIpNames });
      }, this.#d.faults));
      this.addresses.transparent = await listenOn(server, transparent);
      this.#servers.push(server);
    }
    if (proxy) {
      const server = createHttpServer();
      // The proxy port only accepts the socket and hands it to the shared front, so both ports
      // share one parser configuration and one pipeline.
      server.removeAllListeners('connection');
      server.on('connection', guardedHandler('connection', (socket: Socket) => {
        this.#track(socket);
        if (!this.#fromPod(socket, 'proxy')) return;
        attachConnectionInfo(socket, { id: randomUUID(), via: 'proxy', scheme: 'http', openedAt: Date.now() });
        this.#d.counted('proxy', 'http');
        this.#d.front.emit('connection', socket);
      }, this.#d.faults));
      this.addresses.proxy = await listenOn(server, proxy);
      this.#servers.push(server);
    }
  }

  /**
   * The agent-facing ports serve the pod only: a peer from outside (anyone who can reach the pod
   * IP) would otherwise send requests with the pod's identity and credentials.
   */
  #fromPod(socket: Socket, via: ConnectionInfo['via']): boolean {
    if (this.#d.peers.isInside(socket.remoteAddress)) return true;
    socket.on('error', () => undefined);
    this.#d.refuse(socket, 'net.outside_pod', `refused a connection from ${socket.remoteAddress ?? 'an unknown address'}, which is outside the pod`, { via });
    return false;
  }

  #track(socket: Socket): void {
    this.#open.add(socket);
    socket.once('close', () => this.#open.delete(socket));
  }

  /** Cuts every open agent connection (kill switch) without stopping the listeners. */
  cutAll(): number {
    const n = this.#open.size;
    for (const s of this.#open) s.destroy();
    return n;
  }

  async close(): Promise<void> {
    for (const s of this.#open) s.destroy();
    await Promise.all(this.#servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

function listenOn(server: NetServer | HttpServer, at: { host: string; port: number }): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: at.host, port: at.port, ipv6Only: false }, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
