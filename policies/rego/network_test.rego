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
