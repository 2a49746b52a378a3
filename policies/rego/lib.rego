# METADATA
# title: Shared helpers
# description: Host matching, method classes and the verdict shape every concern package returns.
package sluice.lib

import data.config

# A pattern is an exact host or "*.suffix" (any subdomain, never the bare suffix).
host_matches(host, pattern) if host == pattern

host_matches(host, pattern) if {
	startswith(pattern, "*.")
	endswith(host, substring(pattern, 1, -1))
}

# Written out rather than through host_matches: the WASM runtime evaluates every body of a rule
# and a function call per pattern costs more than the membership test and suffix tests inline.
host_in(host, patterns) if host in patterns

host_in(host, patterns) if {
	some pattern in patterns
	startswith(pattern, "*.")
	endswith(host, substring(pattern, 1, -1))
}

# A name pattern is an exact name, "prefix*" (any name starting with prefix) or "*" (any name).
name_matches(_, "*")

name_matches(name, pattern) if name == pattern

name_matches(name, pattern) if {
	endswith(pattern, "*")
	startswith(name, trim_suffix(pattern, "*"))
}

name_in(name, patterns) if name in patterns

name_in(name, patterns) if {
	some pattern in patterns
	endswith(pattern, "*")
	startswith(name, trim_suffix(pattern, "*"))
}

# path is prefix or below it ("/gists" covers "/gists/1", not "/gistsx").
path_under(path, prefix) if path == prefix

path_under(path, prefix) if startswith(path, concat("", [prefix, "/"]))

read_methods := {"GET", "HEAD", "OPTIONS"}

is_read(method) if method in read_methods

# A concern package proposes decisions; the highest priority wins (see sluice.decision).
# Priorities: 100 network denies, 98 ports, 95 unsigned AWS, 90 hard denies, 80 holds, 75 holds for
# unknown AWS resources, 60 passthrough,
# 50 allows, 40 host-level defaults (docs/policy.md lists them all).
verdict(priority, decision) := {"priority": priority, "decision": decision}

# Allowed responses are masked with the configured rules (default: all).
allow(code, reason) := {"allow": true, "code": code, "reason": reason, "mask": config.mask_rules}

deny(code, reason) := {"allow": false, "code": code, "reason": reason}

hold(code, reason, scope) := {
	"allow": true,
	"code": code,
	"reason": reason,
	"require_approval": {"reason": reason, "scope": scope, "ttl": config.approval_ttl},
	"mask": config.mask_rules,
}
