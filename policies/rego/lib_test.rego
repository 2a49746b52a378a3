package sluice.lib_test

import data.sluice.lib

# Shared by the other *_test.rego files: a request from the standard test pod.
request(method, host, path) := {
	"request": {
		"method": method, "scheme": "https", "host": host, "port": 443, "path": path,
		"query": {}, "headers": {}, "ip_literal": false,
	},
	"facts": {},
	"pod": {"namespace": "agents", "name": "coder", "service_account": "coder", "labels": {}, "annotations": {}},
	"session": {"id": "s", "seq": 1, "bytes_out": 0},
}

with_facts(method, host, path, facts) := object.union(request(method, host, path), {"facts": facts})

test_exact_host_matches if lib.host_matches("github.com", "github.com")

test_wildcard_matches_subdomain if lib.host_matches("raw.githubusercontent.com", "*.githubusercontent.com")

test_wildcard_does_not_match_bare_suffix if not lib.host_matches("githubusercontent.com", "*.githubusercontent.com")

test_wildcard_does_not_match_lookalike if not lib.host_matches("evilgithubusercontent.com", "*.githubusercontent.com")

test_host_in_list if lib.host_in("pypi.org", ["github.com", "pypi.org"])

test_reads if {
	lib.is_read("GET")
	lib.is_read("HEAD")
	not lib.is_read("POST")
}

test_hold_carries_scope if {
	h := lib.hold("x.y", "why", "session")
	h.require_approval.scope == "session"
	h.allow
}

test_name_exact if lib.name_matches("acme-data", "acme-data")

test_name_prefix if lib.name_matches("acme-data", "acme-*")

test_name_any if lib.name_matches("anything", "*")

test_name_prefix_is_not_substring if not lib.name_matches("evil-acme-data", "acme-*")

test_name_in if lib.name_in("b", ["a", "b*"])
