# METADATA
# title: Network-level rules
# description: >-
#   Connection-level (CONNECT / TLS SNI) decisions, IP-literal destinations and passthrough hosts.
#   A CONNECT is allowed to any host some concern recognises; each request inside is decided again.
# schemas:
#   - input: schema.input
package sluice.network

import data.config
import data.sluice.lib

known_host_lists := [
	config.git_hosts,
	config.git_api_hosts,
	config.registry_hosts,
	[host | some host, _ in config.llm_hosts],
	config.kubernetes_hosts,
	[concat("", ["*.", s]) | some s in config.aws_host_suffixes],
]

known_host(host) if {
	some list in known_host_lists
	lib.host_in(host, list)
}

ip_allowed(ip) if {
	some cidr in config.allowed_ip_cidrs
	net.cidr_contains(cidr, ip)
}

verdicts contains lib.verdict(100, lib.deny(
	"net.ip_literal_denied",
	concat("", ["direct connections to IP addresses are not allowed (", input.request.host, "); use a host name"]),
)) if {
	input.request.ip_literal
	not ip_allowed(input.request.host)
}

verdicts contains lib.verdict(50, lib.allow("net.ip_allowed", "destination address is in an allowed range")) if {
	input.request.ip_literal
	ip_allowed(input.request.host)
}

verdicts contains lib.verdict(60, object.union(
	lib.allow("net.passthrough", "host is tunnelled uninspected (pinned certificate or mTLS)"),
	{"passthrough": true},
)) if {
	input.request.method == "CONNECT"
	lib.host_in(input.request.host, config.passthrough_hosts)
}

verdicts contains lib.verdict(50, lib.allow("net.connect", concat("", [input.request.host, " is a known destination"]))) if {
	input.request.method == "CONNECT"
	not input.request.ip_literal
	known_host(input.request.host)
}
