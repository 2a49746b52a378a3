// The non-privileged proof that a pod's interception rules are in place, run as the first init
// container in CNI mode (`sluice-init` with command check-network, no capabilities, not root, not
// the sidecar's UID): the rules were installed by the node's CNI plugin, which the pod cannot see,
// so it tests what they do instead. It listens where the rules send traffic (the transparent port,
// the DNS port), sends a fresh nonce to addresses nothing in the pod serves, and passes only when
// each nonce arrives at its own listener; it also expects other outbound UDP to be dropped
// (netfilter's DROP in OUTPUT makes sendmsg fail with EPERM). Any other outcome throws, the
// container exits non-zero, and the kubelet never starts the sidecar or the agent.
// It must never pass on a timeout, an error it did not expect, or when it runs as the exempt UID.
import { randomBytes } from 'node:crypto';
import type { Code } from '../../../api/src/codes.ts';
import { createSocket } from 'node:dgram';
import type { Socket as UdpSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { NetworkInterfaceInfo } from 'node:os';

export class InterceptionCheckError extends Error {
  readonly code = 'interception.not_in_place' satisfies Code;
}

export interface CheckOptions {
  proxyUID: number;
  transparentPort: number;
  dnsPort: number;
  fakeIpv4Cidr: string;
  /** The UID this process runs as (process.getuid()). */
  uid: number;
  /** Per probe. */
  timeoutMs?: number;
  /** Where the probes go (default: probeTarget of this pod's routes and interfaces). */
  target?: string;
}

function readRoutes(): string {
  try {
    return readFileSync('/proc/net/route', 'utf8');
  } catch {
    return '';
  }
}

/** TEST-NET-1 (RFC 5737): never routed, so only a local rule can answer for it. */
export const SENTINEL_V4 = '192.0.2.1';

const toInt = (a: string) => a.split('.').reduce((n, p) => ((n << 8) >>> 0) + Number(p), 0) >>> 0;
const toAddr = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

/**
 * Where the probes go: TEST-NET-1 when the pod has a default route; in a pod without one (a CNI
 * that gives pods only their subnet) an address of its own subnet that is not its own, since a
 * connection to an unroutable address fails before any rule sees it. Either way only a local rule
 * can bring the nonce back to this process: a real peer there cannot answer with it.
 */
export function probeTarget(routes: string, interfaces: readonly NetworkInterfaceInfo[]): string {
  const hasDefault = routes.split('\n').slice(1).some((l) => l.split('\t')[1] === '00000000');
  if (hasDefault) return SENTINEL_V4;
  const own = interfaces.find((i) => i.family === 'IPv4' && !i.internal && i.cidr);
  if (!own?.cidr) return SENTINEL_V4;
  const bits = Number(own.cidr.split('/')[1]);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  const network = (toInt(own.address) & mask) >>> 0;
  const first = network + 1;
  return toAddr(first === toInt(own.address) ? first + 1 : first);
}

/** The first address of an IPv4 CIDR after the network address (a fake IP the sidecar could hand out). */
export function firstHost(cidr: string): string {
  const [addr] = cidr.split('/');
  const parts = (addr ?? '').split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new InterceptionCheckError(`not an IPv4 CIDR: ${cidr}`);
  return toAddr(toInt(parts.join('.')) + 1);
}

function withTimeout<T>(what: string, ms: number, run: (done: (err: Error | null, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => finish(new InterceptionCheckError(`${what}: no answer within ${ms} ms`)), ms);
    function finish(err: Error | null, value?: T): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(value as T);
    }
    run(finish);
  });
}

/** Listens on the transparent port and resolves each nonce it reads to true. */
function tcpListener(port: number, seen: Map<string, () => void>): Promise<Server> {
  const server = createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      buf += d;
      const line = buf.split('\n')[0]!;
      if (buf.includes('\n')) {
        seen.get(line)?.();
        sock.end('ok\n');
      }
    });
    sock.on('error', () => undefined);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host: '0.0.0.0' }, () => resolve(server));
  });
}

function udpListener(port: number, seen: Map<string, () => void>): Promise<UdpSocket> {
  const sock = createSocket('udp4');
  sock.on('message', (msg) => seen.get(msg.toString('utf8'))?.());
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(port, '0.0.0.0', () => resolve(sock));
  });
}

function expectNonce(seen: Map<string, () => void>): { nonce: string; arrived: Promise<void> } {
  const nonce = randomBytes(16).toString('hex');
  let mark!: () => void;
  const arrived = new Promise<void>((resolve) => (mark = resolve));
  seen.set(nonce, mark);
  return { nonce, arrived };
}

async function tcpProbe(host: string, port: number, seen: Map<string, () => void>, ms: number, what: string): Promise<void> {
  const { nonce, arrived } = expectNonce(seen);
  await withTimeout<void>(what, ms, (done) => {
    const sock = connect({ host, port });
    sock.on('connect', () => sock.write(`${nonce}\n`));
    sock.on('error', (err) => done(new InterceptionCheckError(`${what}: ${err.message}`)));
    arrived.then(() => {
      sock.destroy();
      done(null);
    }, done);
  });
}

async function udpProbe(host: string, port: number, seen: Map<string, () => void>, ms: number, what: string): Promise<void> {
  const { nonce, arrived } = expectNonce(seen);
  const sock = createSocket('udp4');
  try {
    await withTimeout<void>(what, ms, (done) => {
      sock.send(nonce, port, host, (err) => err && done(new InterceptionCheckError(`${what}: ${err.message}`)));
      arrived.then(() => done(null), done);
    });
  } finally {
    sock.close();
  }
}

/** Outbound UDP that is not DNS must be dropped by SLUICE_OUT: the kernel reports EPERM to the sender. */
async function dropProbe(target: string, ms: number): Promise<void> {
  const sock = createSocket('udp4');
  try {
    await withTimeout<void>(`UDP to ${target}:9 (must be dropped)`, ms, (done) => {
      sock.send('sluice-check', 9, target, (err: NodeJS.ErrnoException | null) => {
        const code = err?.code;
        if (code === 'EPERM') done(null);
        else done(new InterceptionCheckError(`UDP to ${target}:9 was ${err ? `refused with ${code ?? err.message}` : 'sent'}: the drop rule for other outbound traffic is not in place`));
      });
    });
  } finally {
    sock.close();
  }
}

/** Resolves when the rules redirect and drop as sluice's rules do; throws InterceptionCheckError otherwise. */
export async function checkInterception(o: CheckOptions): Promise<void> {
  if (o.uid === o.proxyUID || o.uid === 0) {
    throw new InterceptionCheckError(`the check runs as UID ${o.uid}, which the rules exempt or which could change them; it proves nothing`);
  }
  const ms = o.timeoutMs ?? 3000;
  const seen = new Map<string, () => void>();
  const tcp = await tcpListener(o.transparentPort, seen);
  const udp = await udpListener(o.dnsPort, seen);
  const target = o.target ?? probeTarget(readRoutes(), Object.values(networkInterfaces()).flatMap((l) => l ?? []));
  try {
    await tcpProbe(target, 80, seen, ms, `TCP to ${target}:80 (must be redirected to the transparent port ${o.transparentPort})`);
    const fake = firstHost(o.fakeIpv4Cidr);
    await tcpProbe(fake, 443, seen, ms, `TCP to the fake IP ${fake}:443 (must reach the transparent port ${o.transparentPort})`);
    await udpProbe(target, 53, seen, ms, `DNS to ${target}:53 (must be redirected to the DNS port ${o.dnsPort})`);
    await dropProbe(target, ms);
  } finally {
    tcp.close();
    udp.close();
  }
}
