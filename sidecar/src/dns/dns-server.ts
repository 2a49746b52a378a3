// The pod's DNS listener (UDP and TCP on one port): a thin socket shell around answerQuery. It
// owns no upstream socket at all: no query is ever forwarded, so DNS cannot tunnel anything out.
// Every query is reported to onQuery (audit) and counted. TCP is bounded: a connection limit,
// an idle timeout, one frame (≤ 64 KiB) buffered at a time, and reads pause under back-pressure.
import { createSocket } from 'node:dgram';
import type { Socket as UdpSocket } from 'node:dgram';
import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { answerQuery } from './answer-query.ts';
import type { AnswerOptions, DnsQueryEvent } from './answer-query.ts';
import type { DnsMetrics } from './dns-metrics.ts';
import type { FakeIpMap } from './fake-ip-map.ts';
import { frontFaults, guardedHandler } from '../proxy/server-events.ts';
import type { HandlerFaults } from '../proxy/server-events.ts';

export type DnsTransport = 'udp' | 'tcp';
export type DnsAuditEvent = DnsQueryEvent & { transport: DnsTransport };

export interface DnsServerOptions {
  /** Port for both UDP and TCP; 0 picks a free TCP port and tries the same number for UDP. */
  port: number;
  /** Address to bind; an IPv6 address (e.g. '::') binds a udp6/tcp6 socket. Default 127.0.0.1. */
  host?: string;
  map: FakeIpMap;
  /** Called for every query; it must not throw (an exception is swallowed, the answer still goes out). */
  onQuery?: (event: DnsAuditEvent) => void;
  metrics?: DnsMetrics;
  answer?: AnswerOptions;
  maxTcpConnections?: number;
  tcpIdleTimeoutMs?: number;
  /**
   * A handler that threw on an agent's query (server-events.ts): a TCP connection is destroyed,
   * a datagram dropped; counted and logged (default: logged only). The listener stays up.
   */
  faults?: HandlerFaults;
}

export interface DnsServer {
  udp: AddressInfo;
  tcp: AddressInfo;
  close(): Promise<void>;
}

export async function startDnsServer(options: DnsServerOptions): Promise<DnsServer> {
  const host = options.host ?? '127.0.0.1';
  const handle = (packet: Buffer, transport: DnsTransport): Buffer | undefined => {
    const { response, event } = answerQuery(packet, options.map, options.answer);
    options.metrics?.observe(event, transport);
    try {
      options.onQuery?.({ ...event, transport });
    } catch {
      // The audit sink reports its own failures; a DNS answer must not depend on it.
    }
    return response;
  };
  const faults = options.faults ?? frontFaults(() => undefined);
  const sockets = new Set<Socket>();
  const tcp = createServer(guardedHandler('connection', (socket: Socket) => serveTcp(socket, handle, options.tcpIdleTimeoutMs ?? 10_000, sockets, faults), faults));
  tcp.maxConnections = options.maxTcpConnections ?? 64;
  await listen(tcp, options.port, host);
  const tcpAddress = tcp.address() as AddressInfo;
  let udp: UdpSocket;
  try {
    udp = await bindUdp(options.port === 0 ? tcpAddress.port : options.port, host);
  } catch (err) {
    if (options.port !== 0) {
      tcp.close();
      throw err;
    }
    udp = await bindUdp(0, host);
  }
  // No victim: the datagram socket serves every query; the one that failed is dropped.
  udp.on(
    'message',
    guardedHandler('message', (msg: Buffer, rinfo: { port: number; address: string }) => {
      const response = handle(msg, 'udp');
      if (response) udp.send(response, rinfo.port, rinfo.address, () => undefined);
    }, faults, () => undefined),
  );
  udp.on('error', () => undefined); // per-datagram send errors; the socket stays up
  return {
    udp: udp.address(),
    tcp: tcpAddress,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        let pending = 2;
        const done = (): void => {
          if (--pending === 0) resolve();
        };
        tcp.close(() => done());
        udp.close(() => done());
      }),
  };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function bindUdp(port: number, host: string): Promise<UdpSocket> {
  const socket = createSocket({ type: host.includes(':') ? 'udp6' : 'udp4' });
  return new Promise((resolve, reject) => {
    socket.once('error', (err) => {
      socket.close();
      reject(err);
    });
    socket.bind({ port, address: host, exclusive: true }, () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
  });
}

/** RFC 1035 §4.2.2 / RFC 7766: each message is preceded by a two-byte length. */
function serveTcp(socket: Socket, handle: (packet: Buffer, t: DnsTransport) => Buffer | undefined, idleMs: number, sockets: Set<Socket>, faults: HandlerFaults): void {
  sockets.add(socket);
  socket.setTimeout(idleMs, () => socket.destroy());
  socket.on('error', () => undefined);
  socket.on('close', () => sockets.delete(socket));
  let buffered: Buffer = Buffer.alloc(0);
  socket.on('data', guardedHandler('data', (chunk: Buffer) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    while (buffered.length >= 2) {
      const len = buffered.readUInt16BE(0);
      if (buffered.length < 2 + len) break;
      const frame = buffered.subarray(2, 2 + len);
      buffered = buffered.subarray(2 + len);
      const response = handle(frame, 'tcp');
      if (!response) continue;
      const prefix = Buffer.alloc(2);
      prefix.writeUInt16BE(response.length);
      if (!socket.write(Buffer.concat([prefix, response]))) {
        socket.pause();
        socket.once('drain', () => socket.resume());
      }
    }
  }, faults, () => socket));
}
