# METADATA
# title: Package registries
# description: Registries are read-only for agents; publishing or deleting packages is denied.
# schemas:
#   - input: schema.input
package sluice.registries

import data.config
import data.sluice.lib

registry_host if lib.host_in(input.request.host, config.registry_hosts)

verdicts contains lib.verdict(50, lib.allow("registry.read", concat("", ["reading from ", input.request.host, " is allowed"]))) if {
	registry_host
	lib.is_read(input.request.method)
}

verdicts contains lib.verdict(90, lib.deny("registry.write_denied", concat("", ["package registries are read-only (", input.request.method, " ", input.request.host, ")"]))) if {
	registry_host
	not lib.is_read(input.request.method)
	input.request.method != "CONNECT"
}
