// Where the unprivileged CNI-mode check sends its probes: an unroutable test address when the pod
// has a default route, else an address of its own subnet (a pod without a gateway cannot even try
// to reach 192.0.2.1, so no rule would ever see the probe and the check would refuse a good pod).
import { expect, test } from '@jest/globals';
import type { NetworkInterfaceInfo } from 'node:os';
import { firstHost, probeTarget, SENTINEL_V4 } from '../../sidecar/src/interception/check.ts';

const header = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT';
const eth0 = (address: string, cidr: string): NetworkInterfaceInfo => ({ address, cidr, family: 'IPv4', internal: false, netmask: '', mac: '' });
const lo: NetworkInterfaceInfo = { address: '127.0.0.1', cidr: '127.0.0.1/8', family: 'IPv4', internal: true, netmask: '', mac: '' };

test('a default route: TEST-NET-1', () => {
  const routes = `${header}\neth0\t00000000\t0100F40A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n`;
  expect(probeTarget(routes, [lo, eth0('10.244.0.7', '10.244.0.7/24')])).toBe(SENTINEL_V4);
});

test('no default route: the first address of the pod subnet, or the second when that is the pod', () => {
  const routes = `${header}\neth0\t0000F70A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n`;
  expect(probeTarget(routes, [lo, eth0('10.247.3.40', '10.247.3.40/24')])).toBe('10.247.3.1');
  expect(probeTarget(routes, [lo, eth0('10.247.3.1', '10.247.3.1/24')])).toBe('10.247.3.2');
});

test('the fake-IP probe goes to the first address of the range', () => {
  expect(firstHost('198.18.0.0/15')).toBe('198.18.0.1');
  expect(firstHost('198.20.255.0/24')).toBe('198.20.255.1');
});
