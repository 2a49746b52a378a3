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
