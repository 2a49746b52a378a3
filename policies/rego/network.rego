# METADATA
# title: Network-level rules
# description: >-
#   Connection-level (CONNECT / TLS SNI) decisions, destination ports, IP-literal destinations and
#   passthrough hosts. A CONNECT is allowed to any host some concern recognises; each request
#   inside is decided again.
# schemas:
#   - input: schema.input
#   - data.organisation: schema.organisation
package sluice.network

import data.config
import data.organisation
import data.sluice.lib
import data.sluice.org

known_host_lists := [
	org.forge_hosts,
	org.api_hosts,
	org.registries_read,
	org.registries_images,
	organisation.registries.go_proxies,
	[r.host | some r in org.registries_own],
	[h | some p in organisation.llm.providers; some h in p.hosts],
	organisation.kubernetes.api_servers,
	[concat("", ["*.", s]) | some s in organisation.aws.host_suffixes],
]

# Ports are policy: https requests go to the https ports (443), plain-HTTP requests to the http
# ports (80); a CONNECT may carry either, and what runs inside it is decided again.
port_allowed if {
	input.request.method != "CONNECT"
	input.request.port in org.ports[input.request.scheme]
}

port_allowed if {
	input.request.method == "CONNECT"
	some scheme in ["https", "http"]
	input.request.port in org.ports[scheme]
}

# 98: below an IP-literal denial (the more telling reason), above every other concern.
verdicts contains lib.verdict(98, lib.deny(
	"net.port_denied",
	concat("", ["port ", format_int(input.request.port, 10), " is not allowed for ", input.request.scheme, " (", input.request.host, ")"]),
)) if {
	not port_allowed
}

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
