# METADATA
# title: Package and image registries
# description: >-
#   Registries are read-only for agents: package and image reads are allowed, a publish to the
#   organisation's own registry namespace is held (secrets in the upload blocked), any other
#   write is denied. A Go module proxy fetches whatever module path it is asked for, so it is only
#   asked for modules on the git forges and module hosts the organisation lists.
# schemas:
#   - input: schema.input
#   - data.organisation: schema.organisation
package sluice.registries

import data.organisation
import data.sluice.lib
import data.sluice.org

host := input.request.host

go_proxy if lib.host_in(host, organisation.registries.go_proxies)

registry_host if lib.host_in(host, org.registries_read)

registry_host if lib.host_in(host, org.registries_images)

registry_host if go_proxy

own_registries := [r | some r in org.registries_own; lib.host_matches(host, r.host)]

registry_host if count(own_registries) > 0

# The organisation's namespace on a shared registry: /v2/acme/ on ghcr.io, /@acme on npm.
own_push_target if {
	some r in own_registries
	count(r.path_prefixes) == 0
}

own_push_target if {
	some r in own_registries
	some prefix in r.path_prefixes
	startswith(org.decoded_path, lower(prefix))
}

is_read if lib.is_read(input.request.method)

write if {
	not is_read
	input.request.method != "CONNECT"
}

verdicts contains lib.verdict(50, lib.allow("registry.read", concat("", ["reading from ", host, " is allowed"]))) if {
	registry_host
	is_read
	not go_proxy
}

# A module proxy path is /<module path>/@v/..., a checksum database path /lookup/<module>@<v>,
# /tile/... or /latest; the proxy also serves checksum databases under /sumdb/<name>/...
proxy_segments := [s | some s in split(org.decoded_path, "/"); s != ""]

sumdb_relay if {
	proxy_segments[0] == "sumdb"
	lib.host_in(proxy_segments[1], organisation.registries.go_proxies)
}

module_segments := array.slice(proxy_segments, 2, count(proxy_segments)) if sumdb_relay

else := proxy_segments

sumdb_static if module_segments[0] in {"tile", "latest", "supported"}

module_host := module_segments[1] if module_segments[0] == "lookup"

else := module_segments[0]

module_host_listed if lib.host_in(module_host, org.forge_hosts)

module_host_listed if lib.host_in(module_host, org.registries_go_module_hosts)

module_read_allowed if sumdb_static

module_read_allowed if {
	not proxy_segments[0] == "sumdb"
	module_host_listed
}

module_read_allowed if {
	sumdb_relay
	module_host_listed
}

verdicts contains lib.verdict(50, lib.allow("registry.module_read", concat("", ["Go module read from ", host, " is allowed"]))) if {
	go_proxy
	is_read
	module_read_allowed
}

verdicts contains lib.verdict(90, lib.deny(
	"registry.module_host_denied",
	concat("", [host, " would fetch ", input.request.path, " from a host that is not a listed module host"]),
)) if {
	go_proxy
	is_read
	not module_read_allowed
}

verdicts contains lib.verdict(80, object.union(
	lib.hold("registry.push_held", concat("", [input.request.method, " ", input.request.path, " publishes to the organisation's registry ", host]), "once"),
	{"dlp": "block"},
)) if {
	registry_host
	write
	own_push_target
}

verdicts contains lib.verdict(90, lib.deny("registry.write_denied", concat("", ["package registries are read-only (", input.request.method, " ", host, ")"]))) if {
	registry_host
	write
	not own_push_target
}
