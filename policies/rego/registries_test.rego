package sluice.registries_test

import data.sluice.lib_test
import data.sluice.registries

codes(vs) := {v.decision.code | some v in vs}

test_read_allowed if {
	codes(registries.verdicts) == {"registry.read"} with input as lib_test.request("GET", "registry.npmjs.org", "/express")
}

test_publish_denied if {
	codes(registries.verdicts) == {"registry.write_denied"} with input as lib_test.request("PUT", "registry.npmjs.org", "/pkg")
}

test_connect_is_not_a_write if {
	count(registries.verdicts) == 0 with input as lib_test.request("CONNECT", "registry.npmjs.org", "")
}

test_other_host_ignored if {
	count(registries.verdicts) == 0 with input as lib_test.request("GET", "example.org", "/")
}

top(vs) := [v.decision.code | some v in vs; v.priority == max({w.priority | some w in vs})][0]

test_image_pull_from_ghcr if {
	top(registries.verdicts) == "registry.read" with input as lib_test.request("GET", "ghcr.io", "/v2/cli/cli/manifests/latest")
}

test_image_pull_from_docker_hub if {
	every host_path in [
		["auth.docker.io", "/token"],
		["registry-1.docker.io", "/v2/library/alpine/manifests/3"],
		["production.cloudflare.docker.com", "/registry-v2/docker/registry/v2/blobs/sha256/aa/x/data"],
	] {
		top(registries.verdicts) == "registry.read" with input as lib_test.request("GET", host_path[0], host_path[1])
	}
}

test_gem_download if {
	top(registries.verdicts) == "registry.read" with input as lib_test.request("GET", "rubygems.org", "/gems/rake-13.2.1.gem")
	top(registries.verdicts) == "registry.read" with input as lib_test.request("GET", "index.rubygems.org", "/info/rake")
}

test_image_push_to_own_namespace_held if {
	vs := registries.verdicts with input as lib_test.request("POST", "ghcr.io", "/v2/acme/app/blobs/uploads/")
	top(vs) == "registry.push_held"
	some v in vs
	v.decision.dlp == "block"
}

test_image_push_to_own_namespace_ignores_case_and_encoding if {
	top(registries.verdicts) == "registry.push_held" with input as lib_test.request("PUT", "ghcr.io", "/v2/%41cme/app/manifests/1")
}

test_image_push_elsewhere_denied if {
	top(registries.verdicts) == "registry.write_denied" with input as lib_test.request("POST", "ghcr.io", "/v2/attacker/drop/blobs/uploads/")
	top(registries.verdicts) == "registry.write_denied" with input as lib_test.request("PUT", "registry-1.docker.io", "/v2/acme/app/manifests/1")
}

test_own_registry_without_prefixes_is_all_own if {
	vs := registries.verdicts with input as lib_test.request("PUT", "npm.acme.example", "/@acme%2fapp")
		with data.organisation.registries.own as [{"host": "npm.acme.example", "path_prefixes": []}]
	top(vs) == "registry.push_held"
}

test_go_module_on_forge if {
	top(registries.verdicts) == "registry.module_read" with input as lib_test.request("GET", "proxy.golang.org", "/github.com/google/uuid/@v/list")
}

test_go_module_on_listed_host if {
	top(registries.verdicts) == "registry.module_read" with input as lib_test.request("GET", "proxy.golang.org", "/golang.org/x/mod/@v/v0.20.0.zip")
}

test_go_module_on_foreign_host_denied if {
	vs := registries.verdicts with input as lib_test.request("GET", "proxy.golang.org", "/exfil.example/c2VjcmV0/@v/list")
	top(vs) == "registry.module_host_denied"
}

test_go_module_root_denied if {
	top(registries.verdicts) == "registry.module_host_denied" with input as lib_test.request("GET", "proxy.golang.org", "/")
}

test_sumdb_lookup if {
	top(registries.verdicts) == "registry.module_read" with input as lib_test.request("GET", "sum.golang.org", "/lookup/github.com/google/uuid@v1.6.0")
	top(registries.verdicts) == "registry.module_host_denied" with input as lib_test.request("GET", "sum.golang.org", "/lookup/exfil.example/x@v1.0.0")
}

test_sumdb_tiles if {
	top(registries.verdicts) == "registry.module_read" with input as lib_test.request("GET", "sum.golang.org", "/tile/8/0/x123/456")
	top(registries.verdicts) == "registry.module_read" with input as lib_test.request("GET", "sum.golang.org", "/latest")
}

test_sumdb_through_proxy if {
	top(registries.verdicts) == "registry.module_read" with input as lib_test.request("GET", "proxy.golang.org", "/sumdb/sum.golang.org/supported")
	top(registries.verdicts) == "registry.module_read" with input as lib_test.request("GET", "proxy.golang.org", "/sumdb/sum.golang.org/lookup/github.com/a/b@v1.0.0")
	top(registries.verdicts) == "registry.module_host_denied" with input as lib_test.request("GET", "proxy.golang.org", "/sumdb/sum.golang.org/lookup/exfil.example/a@v1.0.0")
	top(registries.verdicts) == "registry.module_host_denied" with input as lib_test.request("GET", "proxy.golang.org", "/sumdb/evil.example/latest")
}

test_go_module_override_adds_a_host if {
	vs := registries.verdicts with input as lib_test.request("GET", "proxy.golang.org", "/go.acme.example/lib/@v/list")
		with data.organisation.namespaces as {"agents": {"registries": {"go_module_hosts": ["go.acme.example"]}}}
	top(vs) == "registry.module_read"
}
