// Which peers the agent-facing listeners serve: the pod's own addresses only.
import { expect, test } from '@jest/globals';
import { podPeers } from '../../src/listener/pod-peers.ts';

test('loopback, the pod interface addresses and the fake-IP ranges are inside; other hosts are not', () => {
  const peers = podPeers({ localCidrs: ['198.18.0.0/15', 'fd73:6c75:6963::/64'], interfaceAddresses: () => ['10.1.2.3', 'fd00::3', 'fe80::1'] });
  for (const a of ['127.0.0.1', '127.9.9.9', '::1', '::ffff:127.0.0.1', '10.1.2.3', '::ffff:10.1.2.3', 'FD00::3', 'fe80::1%eth0', '198.19.255.1', 'fd73:6c75:6963::5']) {
    expect({ a, inside: peers.isInside(a) }).toEqual({ a, inside: true });
  }
  for (const a of ['10.1.2.4', '::ffff:10.1.2.4', 'fd00::4', '198.20.0.1', '0.0.0.0', '::', 'not-an-address', '', undefined]) {
    expect({ a, inside: peers.isInside(a) }).toEqual({ a, inside: false });
  }
});

test('an address added after start is seen, but a miss re-reads the interfaces at most once a second', () => {
  let now = 0;
  let reads = 0;
  const addresses = ['10.1.2.3'];
  const peers = podPeers({ interfaceAddresses: () => (reads++, [...addresses]), now: () => now });
  addresses.push('10.9.9.9');
  expect(peers.isInside('10.9.9.9')).toBe(false); // just read at start
  for (let i = 0; i < 100; i++) peers.isInside('192.0.2.1');
  expect(reads).toBe(1);
  now = 1500;
  expect(peers.isInside('10.9.9.9')).toBe(true);
  expect(reads).toBe(2);
});
