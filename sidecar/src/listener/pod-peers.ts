// Which peers count as "inside the pod" for the sidecar's agent-facing listeners (transparent,
// explicit proxy). Whatever the pod sends itself has a source address of the pod: loopback, one
// of its interface addresses (a redirected connection keeps the source the route chose), or a
// DNS fake IP (routed `local dev lo`, so the kernel uses the destination as the source). Any
// other peer is another host reaching the pod IP: it must never get a request out with the pod's
// identity and injected credentials. The interception rules refuse such connections in the
// kernel; this check holds where those rules are missing or were changed.
// Never trusts anything the peer sends: only the socket's addresses.
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { networkInterfaces } from 'node:os';

export interface PodPeers {
  /** Is this remote address one the pod itself uses? */
  isInside(remoteAddress: string | undefined): boolean;
}

export interface PodPeersOptions {
  /** CIDRs routed locally in the pod (the DNS fake-IP ranges). */
  localCidrs?: readonly (string | null | undefined)[];
  /** The pod's interface addresses (default: os.networkInterfaces()). */
  interfaceAddresses?: () => string[];
  now?: () => number;
}

/** Strips what a socket address may carry beyond the address: a v4-mapped prefix, an IPv6 zone. */
export function plainAddress(address: string): string {
  const noZone = address.replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(noZone);
  return (mapped ? mapped[1]! : noZone).toLowerCase();
}

function systemInterfaceAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => plainAddress(i.address)));
}

// An address that misses re-reads the interfaces (an address added after start), at most this
// often, so a stream of outside connections cannot turn into a stream of getifaddrs calls.
const REFRESH_MS = 1000;

export function podPeers(o: PodPeersOptions = {}): PodPeers {
  const fixed = new BlockList();
  fixed.addSubnet('127.0.0.0', 8, 'ipv4');
  fixed.addAddress('::1', 'ipv6');
  for (const cidr of o.localCidrs ?? []) {
    if (!cidr) continue;
    const [base, bits] = cidr.split('/');
    if (!base || bits === undefined) continue;
    fixed.addSubnet(base, Number(bits), isIPv6(base) ? 'ipv6' : 'ipv4');
  }
  const read = o.interfaceAddresses ?? systemInterfaceAddresses;
  const now = o.now ?? Date.now;
  let own = new Set(read());
  let readAt = now();
  return {
    isInside(remoteAddress) {
      if (!remoteAddress) return false;
      const a = plainAddress(remoteAddress);
      const type = isIPv4(a) ? 'ipv4' : isIPv6(a) ? 'ipv6' : undefined;
      if (!type) return false;
      if (fixed.check(a, type) || own.has(a)) return true;
      if (now() - readAt < REFRESH_MS) return false;
      own = new Set(read());
      readAt = now();
      return own.has(a);
    },
  };
}
