// The rendered rules are what the init container installs; these tests pin the properties that
// make interception hold (the e2e test bed proves them on a real kernel).
import { expect, test } from '@jest/globals';
import { renderInterception } from '../../../lib/src/interception/rules.ts';

const plan = renderInterception({ proxyUID: 1337, transparentPort: 15001, proxyPort: 15080, dnsPort: 15053, adminPort: 15090, fakeIpv4Cidr: '198.18.0.0/15', fakeIpv6Cidr: 'fd73:6c75:6963::/64' });

test('only the sidecar UID is exempt, in both tables and both families', () => {
  for (const text of [plan.iptables, plan.ip6tables]) {
    const exemptions = text.split('\n').filter((l) => l.includes('--uid-owner'));
    expect(exemptions).toEqual(['-A SLUICE_NAT -m owner --uid-owner 1337 -j RETURN', '-A SLUICE_OUT -m owner --uid-owner 1337 -j ACCEPT']);
  }
});

test('DNS goes to the sidecar, TCP to the transparent port, everything else is dropped last', () => {
  expect(plan.iptables).toContain('-A SLUICE_NAT -p udp --dport 53 -j REDIRECT --to-ports 15053');
  expect(plan.iptables).toContain('-A SLUICE_NAT -p tcp -j REDIRECT --to-ports 15001');
  const out = plan.iptables.split('\n').filter((l) => l.startsWith('-A SLUICE_OUT'));
  expect(out.at(-1)).toBe('-A SLUICE_OUT -j DROP');
  expect(plan.iptables.trim().split('\n').at(-1)).toBe('COMMIT');
});

test('fake-IP destinations keep their address (DNAT of the port only) and are routed locally', () => {
  expect(plan.iptables).toContain('-A SLUICE_NAT -p tcp -d 198.18.0.0/15 -j DNAT --to-destination :15001');
  expect(plan.ip6tables).toContain('-A SLUICE_NAT -p tcp -d fd73:6c75:6963::/64 -j DNAT --to-destination :15001');
  expect(plan.routes).toEqual([
    ['route', 'replace', 'local', '198.18.0.0/15', 'dev', 'lo'],
    ['-6', 'route', 'replace', 'local', 'fd73:6c75:6963::/64', 'dev', 'lo'],
  ]);
});

test('the admin port is rejected for agents before any accept rule', () => {
  const filter = plan.iptables.slice(plan.iptables.indexOf('*filter')).split('\n');
  const admin = filter.findIndex((l) => l.includes('--dport 15090'));
  const firstAccept = filter.findIndex((l) => l.endsWith('-j ACCEPT') && !l.includes('uid-owner'));
  expect(admin).toBeGreaterThan(0);
  expect(admin).toBeLessThan(firstAccept);
});

test('IPv6 keeps neighbour discovery working; IPv4 has no ICMPv6 rules', () => {
  expect(plan.ip6tables).toContain('--icmpv6-type neighbour-solicitation -j ACCEPT');
  expect(plan.iptables).not.toContain('icmpv6');
});

test("the sidecar's agent ports refuse whatever does not come in on lo; the admin port stays open to the kubelet", () => {
  for (const text of [plan.iptables, plan.ip6tables]) {
    const input = text.split('\n').filter((l) => l.startsWith('-A INPUT') || l.startsWith('-A SLUICE_IN'));
    expect(input[0]).toBe('-A INPUT -j SLUICE_IN');
    expect(input[1]).toBe('-A SLUICE_IN -i lo -j RETURN');
    expect(input[2]).toBe('-A SLUICE_IN -p tcp -m multiport --dports 15001,15080,15053 -j REJECT --reject-with tcp-reset');
    expect(input[3]).toMatch(/^-A SLUICE_IN -p udp --dport 15053 -j REJECT/);
    expect(input.join('\n')).not.toContain('15090');
    expect(text).toContain(':SLUICE_IN - [0:0]');
  }
});
