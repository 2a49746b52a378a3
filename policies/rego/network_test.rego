package sluice.network_test

import data.sluice.lib_test
import data.sluice.network

ip_input(method, ip) := object.union(lib_test.request(method, ip, "/"), {"request": {"ip_literal": true}})

codes(vs) := {v.decision.code | some v in vs}

test_ip_literal_denied if {
	"net.ip_literal_denied" in codes(network.verdicts) with input as ip_input("GET", "203.0.113.7")
}

test_ip_in_allowed_cidr if {
	vs := network.verdicts with input as ip_input("GET", "10.0.0.5") with data.config.allowed_ip_cidrs as ["10.0.0.0/8"]
	codes(vs) == {"net.ip_allowed"}
}

test_connect_known_host if {
	"net.connect" in codes(network.verdicts) with input as lib_test.request("CONNECT", "github.com", "")
}

test_connect_aws_wildcard if {
	"net.connect" in codes(network.verdicts) with input as lib_test.request("CONNECT", "sts.us-east-1.amazonaws.com", "")
}

test_connect_unknown_host_has_no_verdict if {
	count(network.verdicts) == 0 with input as lib_test.request("CONNECT", "exfil.example", "")
}

test_passthrough if {
	vs := network.verdicts with input as lib_test.request("CONNECT", "pinned.example", "")
		with data.config.passthrough_hosts as ["pinned.example"]
	some v in vs
	v.decision.passthrough
	v.priority == 60
}

with_port(inp, scheme, port) := object.union(inp, {"request": {"scheme": scheme, "port": port}})

test_https_on_443_passes if {
	not "net.port_denied" in codes(network.verdicts) with input as lib_test.request("GET", "github.com", "/")
}

test_https_on_other_port_denied if {
	"net.port_denied" in codes(network.verdicts) with input as with_port(lib_test.request("GET", "github.com", "/"), "https", 8443)
}

test_plain_http_on_80_passes if {
	not "net.port_denied" in codes(network.verdicts) with input as with_port(lib_test.request("GET", "deb.debian.org", "/"), "http", 80)
}

test_https_on_80_denied if {
	"net.port_denied" in codes(network.verdicts) with input as with_port(lib_test.request("GET", "github.com", "/"), "https", 80)
}

test_connect_to_either_port if {
	not "net.port_denied" in codes(network.verdicts) with input as with_port(lib_test.request("CONNECT", "github.com", ""), "https", 80)
	"net.port_denied" in codes(network.verdicts) with input as with_port(lib_test.request("CONNECT", "github.com", ""), "https", 22)
}

test_data_adds_a_port if {
	inp := with_port(lib_test.request("GET", "kubernetes.default.svc", "/version"), "https", 6443)
	not "net.port_denied" in codes(network.verdicts) with input as inp with data.organisation.network.ports.https as [443, 6443]
}

test_namespace_override_adds_a_port if {
	inp := with_port(lib_test.request("GET", "github.com", "/"), "https", 8443)
	not "net.port_denied" in codes(network.verdicts) with input as inp with data.organisation.namespaces as {"agents": {"network": {"ports": {"https": [8443]}}}}
}

test_connect_image_registry_known if {
	"net.connect" in codes(network.verdicts) with input as lib_test.request("CONNECT", "ghcr.io", "")
}

test_namespace_override_keeps_the_other_scheme if {
	inp := with_port(lib_test.request("GET", "deb.debian.org", "/"), "http", 80)
	not "net.port_denied" in codes(network.verdicts) with input as inp with data.organisation.namespaces as {"agents": {"network": {"ports": {"https": [8443]}}}}
}
