// The pod's interception rules, rendered as iptables-restore / ip6tables-restore input plus the
// routes the fake-IP range needs. One pure function is used by the init container, the CNI node
// agent and the tests, so what is tested is what runs. Policy: every TCP connection from any UID but the
// sidecar's goes to the sidecar's transparent port (connections to the DNS fake-IP range keep
// their address so the sidecar can name them); DNS (UDP and TCP 53) goes to the sidecar's DNS
// listener; loopback stays local except the admin port, which agents cannot reach; everything
// else outbound (other UDP, ICMP, SCTP, …) is dropped. Never exempt anything but the sidecar UID.
// Inbound, the sidecar's agent-facing ports (transparent, explicit proxy, DNS) answer only what
// the pod itself sends (it arrives on lo, redirected or not): from another host they are refused,
// or anyone who can reach the pod IP would get requests out with the pod's identity and credentials.

export interface InterceptionOptions {
  proxyUID: number;
  transparentPort: number;
  /** the explicit proxy port (HTTPS_PROXY) */
  proxyPort: number;
  dnsPort: number;
  adminPort: number;
  /** DNS fake-IP ranges (from the sidecar's DNS config); null disables IPv6 fake IPs. */
  fakeIpv4Cidr: string;
  fakeIpv6Cidr: string | null;
}

export interface InterceptionPlan {
  iptables: string;
  ip6tables: string;
  /** `ip` commands (argument lists) run before the rules: local routes for the fake ranges. */
  routes: string[][];
}

const CHAIN_NAT = 'SLUICE_NAT';
const CHAIN_FILTER = 'SLUICE_OUT';
const CHAIN_INPUT = 'SLUICE_IN';

function family(o: InterceptionOptions, v6: boolean): string {
  const fake = v6 ? o.fakeIpv6Cidr : o.fakeIpv4Cidr;
  const uid = `-m owner --uid-owner ${o.proxyUID}`;
  const nat = [
    '*nat',
    `:${CHAIN_NAT} - [0:0]`,
    `-A OUTPUT -j ${CHAIN_NAT}`,
    `-A ${CHAIN_NAT} ${uid} -j RETURN`,
    `-A ${CHAIN_NAT} -p udp --dport 53 -j REDIRECT --to-ports ${o.dnsPort}`,
    `-A ${CHAIN_NAT} -p tcp --dport 53 -j REDIRECT --to-ports ${o.dnsPort}`,
    // Only the port changes: the fake address survives, routed locally, so the sidecar sees
    // which name the agent resolved even when the client sends no SNI/Host.
    ...(fake ? [`-A ${CHAIN_NAT} -p tcp -d ${fake} -j DNAT --to-destination :${o.transparentPort}`] : []),
    `-A ${CHAIN_NAT} -p tcp -o lo -j RETURN`,
    `-A ${CHAIN_NAT} -p tcp -j REDIRECT --to-ports ${o.transparentPort}`,
    'COMMIT',
  ];
  // In the OUTPUT hook every table sees the route chosen before NAT, so a redirected packet
  // still looks as if it leaves by the original interface: accept it by its conntrack DNAT state
  // (REDIRECT is a DNAT), not by `-o lo`.
  const filter = [
    '*filter',
    `:${CHAIN_FILTER} - [0:0]`,
    `:${CHAIN_INPUT} - [0:0]`,
    `-A OUTPUT -j ${CHAIN_FILTER}`,
    `-A ${CHAIN_FILTER} ${uid} -j ACCEPT`,
    `-A ${CHAIN_FILTER} -p tcp --dport ${o.adminPort} -m addrtype --dst-type LOCAL -j REJECT --reject-with tcp-reset`,
    `-A ${CHAIN_FILTER} -m conntrack --ctstate DNAT -j ACCEPT`,
    `-A ${CHAIN_FILTER} -o lo -j ACCEPT`,
    // Replies on connections that came in (probes, a dev server the agent runs); an outbound
    // flow can never get here, its first packet was redirected or dropped.
    `-A ${CHAIN_FILTER} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT`,
    // IPv6 needs neighbour discovery to reach anything, the sidecar's upstreams included.
    ...(v6 ? ['neighbour-solicitation', 'neighbour-advertisement', 'router-solicitation'].map((t) => `-A ${CHAIN_FILTER} -p ipv6-icmp --icmpv6-type ${t} -j ACCEPT`) : []),
    `-A ${CHAIN_FILTER} -j DROP`,
  ];
  // Everything the pod sends itself, redirected or addressed to its own IP, comes in on lo; the
  // admin port stays open (the kubelet probes it from the node).
  const agentPorts = `${o.transparentPort},${o.proxyPort},${o.dnsPort}`;
  const input = [
    `-A INPUT -j ${CHAIN_INPUT}`,
    `-A ${CHAIN_INPUT} -i lo -j RETURN`,
    `-A ${CHAIN_INPUT} -p tcp -m multiport --dports ${agentPorts} -j REJECT --reject-with tcp-reset`,
    `-A ${CHAIN_INPUT} -p udp --dport ${o.dnsPort} -j REJECT --reject-with ${v6 ? 'icmp6-port-unreachable' : 'icmp-port-unreachable'}`,
    'COMMIT',
  ];
  return `${[...nat, ...filter, ...input].join('\n')}\n`;
}

export function renderInterception(o: InterceptionOptions): InterceptionPlan {
  const routes = [['route', 'replace', 'local', o.fakeIpv4Cidr, 'dev', 'lo']];
  if (o.fakeIpv6Cidr) routes.push(['-6', 'route', 'replace', 'local', o.fakeIpv6Cidr, 'dev', 'lo']);
  return { iptables: family(o, false), ip6tables: family(o, true), routes };
}
