// Address arithmetic for the fake-IP pools: a CIDR block as a base and a size, index ⇄ address.
// IPv4 uses numbers, IPv6 BigInt. It must never produce an address outside its block.
import { isIPv4, isIPv6 } from 'node:net';
import type { Code } from '../../../api/src/codes.ts';

export class IpPoolError extends Error {
  readonly code = 'dns.bad_cidr' satisfies Code;
  constructor(message: string) {
    super(message);
    this.name = 'IpPoolError';
  }
}

export function ipv4ToInt(address: string): number | undefined {
  if (!isIPv4(address)) return undefined;
  return address.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

export function intToIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

export function ipv6ToBigInt(address: string): bigint | undefined {
  if (!isIPv6(address)) return undefined;
  let text = address.toLowerCase();
  const pct = text.indexOf('%');
  if (pct >= 0) text = text.slice(0, pct);
  // A dotted-quad tail (::ffff:1.2.3.4) becomes two hex groups.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const v4 = ipv4ToInt(dotted[1]!)!;
    text = `${text.slice(0, dotted.index)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const [head = '', tail] = text.split('::') as [string, string | undefined];
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const fill = tail === undefined ? 0 : 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...Array<string>(fill).fill('0'), ...tailGroups];
  if (groups.length !== 8) return undefined;
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

export function bigIntToIpv6(value: bigint): string {
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((value >> BigInt(i * 16)) & 0xffffn).toString(16));
  // Canonical form (RFC 5952): compress the longest run of ≥2 zero groups.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** A block of synthetic addresses, numbered 0..size-1. */
export interface IpPool {
  readonly family: 4 | 6;
  readonly cidr: string;
  readonly size: number;
  at(index: number): string;
  indexOf(address: string): number | undefined;
}

/** IPv4 block without its first (network) and last (broadcast) address. */
export function ipv4Pool(cidr: string): IpPool {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(cidr);
  const base = m ? ipv4ToInt(m[1]!) : undefined;
  const bits = m ? Number(m[2]) : NaN;
  if (base === undefined || !(bits >= 8 && bits <= 30)) throw new IpPoolError(`${cidr}: expected an IPv4 CIDR with a prefix of /8 to /30`);
  const span = 2 ** (32 - bits);
  if (base % span !== 0) throw new IpPoolError(`${cidr}: address has bits set beyond the prefix`);
  const size = span - 2;
  return {
    family: 4,
    cidr,
    size,
    at: (index) => intToIpv4(base + 1 + index),
    indexOf: (address) => {
      const v = ipv4ToInt(address);
      if (v === undefined) return undefined;
      const i = v - base - 1;
      return i >= 0 && i < size ? i : undefined;
    },
  };
}

/** IPv6 block (a ULA /64 in practice) without its first address; large blocks are capped at 2^53 slots. */
export function ipv6Pool(cidr: string): IpPool {
  const m = /^([0-9a-fA-F:.]+)\/(\d{1,3})$/.exec(cidr);
  const base = m ? ipv6ToBigInt(m[1]!) : undefined;
  const bits = m ? Number(m[2]) : NaN;
  if (base === undefined || !(bits >= 48 && bits <= 120)) throw new IpPoolError(`${cidr}: expected an IPv6 CIDR with a prefix of /48 to /120`);
  const span = 1n << BigInt(128 - bits);
  if (base % span !== 0n) throw new IpPoolError(`${cidr}: address has bits set beyond the prefix`);
  const size = Number(span - 1n > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(Number.MAX_SAFE_INTEGER) : span - 1n);
  return {
    family: 6,
    cidr,
    size,
    at: (index) => bigIntToIpv6(base + 1n + BigInt(index)),
    indexOf: (address) => {
      const v = ipv6ToBigInt(address);
      if (v === undefined) return undefined;
      const i = v - base - 1n;
      return i >= 0n && i < BigInt(size) ? Number(i) : undefined;
    },
  };
}
