// FakeIpMap: stable, bounded, bidirectional; expiry and eviction with an injected clock.
import { describe, expect, test } from '@jest/globals';
import { FakeIpMap } from '../../src/dns/fake-ip-map.ts';
import { bigIntToIpv6, ipv4Pool, ipv6Pool, ipv6ToBigInt } from '../../src/dns/ip-pool.ts';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('FakeIpMap', () => {
  test('a name keeps its addresses; names get distinct addresses; both map back', () => {
    const map = new FakeIpMap();
    const gh = map.addressesFor('github.com');
    expect(gh).toEqual({ ipv4: '198.18.0.1', ipv6: 'fd73:6c75:6963::1' });
    expect(map.addressesFor('github.com')).toEqual(gh);
    const npm = map.addressesFor('registry.npmjs.org');
    expect(npm.ipv4).not.toBe(gh.ipv4);
    expect(npm.ipv6).not.toBe(gh.ipv6);
    expect(map.lookupFakeIp(gh.ipv4)).toBe('github.com');
    expect(map.lookupFakeIp(gh.ipv6!)).toBe('github.com');
    expect(map.lookupFakeIp(`::ffff:${npm.ipv4}`)).toBe('registry.npmjs.org');
    expect(map.lookupFakeIp('fd73:6c75:6963:0:0:0:0:2')).toBe('registry.npmjs.org');
    expect(map.lookupFakeIp('198.18.0.200')).toBeUndefined(); // in range, not mapped
    expect(map.lookupFakeIp('8.8.8.8')).toBeUndefined();
    expect(map.lookupFakeIp('not an ip')).toBeUndefined();
    expect(map.isFakeIp('198.19.255.254')).toBe(true);
    expect(map.isFakeIp('198.20.0.1')).toBe(false);
  });

  test('bounded: the least recently used name is evicted, and its address is not handed out again soon', () => {
    const map = new FakeIpMap({ capacity: 16 });
    const first = map.addressesFor('n0.example');
    for (let i = 1; i < 16; i++) map.addressesFor(`n${i}.example`);
    map.addressesFor('n0.example'); // touch: n1 is now the oldest
    map.addressesFor('n16.example');
    expect(map.size).toBe(16);
    expect(map.evictions).toBe(1);
    expect(map.lookupFakeIp(first.ipv4)).toBe('n0.example');
    expect(map.lookupFakeIp('198.18.0.2')).toBeUndefined(); // n1's address, dropped
    const again = map.addressesFor('n1.example');
    expect(again.ipv4).not.toBe('198.18.0.2'); // the cursor moved on: no quick reuse
    // No address ever belongs to two live names.
    const live = new Map<string, string>();
    for (let i = 0; i < 200; i++) {
      const name = `m${i % 40}.example`;
      const { ipv4 } = map.addressesFor(name);
      const owner = map.lookupFakeIp(ipv4);
      expect(owner).toBe(name);
      live.set(ipv4, name);
    }
    for (const [ip, name] of live) {
      const owner = map.lookupFakeIp(ip);
      if (owner !== undefined) expect(owner).toBe(name);
    }
  });

  test('idle entries expire; lookups keep an entry alive', () => {
    const c = clock();
    const map = new FakeIpMap({ entryTtlSeconds: 60, answerTtlSeconds: 10 }, c.now);
    const a = map.addressesFor('a.example');
    const b = map.addressesFor('b.example');
    c.advance(50_000);
    expect(map.lookupFakeIp(a.ipv4)).toBe('a.example');
    c.advance(20_000);
    expect(map.lookupFakeIp(b.ipv4)).toBeUndefined();
    expect(map.lookupFakeIp(a.ipv4)).toBe('a.example');
    map.addressesFor('c.example');
    expect(map.size).toBe(2);
    c.advance(61_000);
    expect(map.addressesFor('a.example').ipv4).not.toBe(a.ipv4); // re-mapped after expiry, fresh address
  });

  test('IPv6 disabled: only IPv4 addresses', () => {
    const map = new FakeIpMap({ ipv6Cidr: null, ipv4Cidr: '10.255.0.0/24', capacity: 100 });
    expect(map.addressesFor('x.example')).toEqual({ ipv4: '10.255.0.1' });
    expect(map.hasIpv6).toBe(false);
  });

  test('config is validated and names the field', () => {
    expect(() => new FakeIpMap({ ipv4Cidr: '198.18.0.1/15' })).toThrow(/^ipv4Cidr: .*beyond the prefix/);
    expect(() => new FakeIpMap({ ipv4Cidr: '10.0.0.0/28', capacity: 100 })).toThrow(/capacity/);
    expect(() => new FakeIpMap({ answerTtlSeconds: 600, entryTtlSeconds: 600 })).toThrow(/answerTtlSeconds/);
    expect(() => new FakeIpMap({ ipv6Cidr: 'fd00::/16' })).toThrow(/^ipv6Cidr: .*IPv6 CIDR/);
    expect(() => new FakeIpMap({ capacity: 1 })).toThrow(/capacity/);
  });
});

describe('address arithmetic', () => {
  test('IPv6 parse/format round trips in canonical form', () => {
    for (const a of ['::', '::1', 'fd73:6c75:6963::1', '2001:db8::1:0:0:1', '1:2:3:4:5:6:7:8', '::ffff:198.18.0.1']) {
      const v = ipv6ToBigInt(a)!;
      expect(ipv6ToBigInt(bigIntToIpv6(v))).toBe(v);
    }
    expect(bigIntToIpv6(ipv6ToBigInt('2001:0db8:0:0:1:0:0:1')!)).toBe('2001:db8::1:0:0:1');
    expect(ipv6ToBigInt('1::2::3')).toBeUndefined();
  });

  test('pools stay inside their block', () => {
    const v4 = ipv4Pool('198.18.0.0/15');
    expect(v4.size).toBe(131070);
    expect(v4.at(0)).toBe('198.18.0.1');
    expect(v4.at(v4.size - 1)).toBe('198.19.255.254');
    expect(v4.indexOf('198.18.0.0')).toBeUndefined();
    expect(v4.indexOf('198.19.255.255')).toBeUndefined();
    const v6 = ipv6Pool('fd00:1:2:3::/120');
    expect(v6.size).toBe(255);
    expect(v6.at(254)).toBe('fd00:1:2:3::ff');
    expect(v6.indexOf('fd00:1:2:3::100')).toBeUndefined();
  });
});
