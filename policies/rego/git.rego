# METADATA
# title: Git hosts
# description: >-
#   Fetch from allow-listed git hosts; push (the receive-pack POST that carries refs and objects)
#   is held for approval with secrets in the pack blocked. Web reads on git hosts are allowed,
#   web writes denied; API writes (issues, gists, comments) are held.
# schemas:
#   - input: schema.input
package sluice.git

import data.config
import data.sluice.lib

git_host if lib.host_in(input.request.host, config.git_hosts)

api_host if lib.host_in(input.request.host, config.git_api_hosts)

ref_names := concat(", ", [r.ref | some r in input.facts.git.refs])

# "acme/app (refs/heads/main)", or just the repository when the refs are unknown.
push_target := concat("", [input.facts.git.repo, " (", ref_names, ")"]) if {
	count(input.facts.git.refs) > 0
} else := input.facts.git.repo

verdicts contains lib.verdict(50, lib.allow("git.fetch", concat("", ["git fetch of ", input.facts.git.repo, " is allowed"]))) if {
	git_host
	input.facts.git.operation == "fetch"
}

# The receive-pack advertisement only lists refs; the POST that follows is what gets held.
verdicts contains lib.verdict(50, lib.allow("git.push_discovery", "listing refs before a push is allowed")) if {
	git_host
	input.facts.git.operation == "push"
	input.facts.git.phase == "discovery"
}

verdicts contains lib.verdict(80, object.union(
	lib.hold("git.push_requires_approval", concat("", ["git push to ", push_target, " needs approval"]), config.git_push_approval_scope),
	{"dlp": "block"},
)) if {
	git_host
	input.facts.git.operation == "push"
	input.facts.git.phase == "rpc"
}

# For a push over http.postBuffer git first sends a probe: a receive-pack POST holding only a
# flush-pkt, no ref update. It changes nothing, so it is not held (refs known and empty; unknown
# refs stay held).
verdicts contains lib.verdict(85, lib.allow("git.push_probe", "an empty receive-pack probe changes nothing")) if {
	git_host
	input.facts.git.operation == "push"
	input.facts.git.phase == "rpc"
	count(input.facts.git.refs) == 0
}

verdicts contains lib.verdict(40, lib.allow("git.web_read", "reading from a git host is allowed")) if {
	git_host
	not input.facts.git
	lib.is_read(input.request.method)
}

verdicts contains lib.verdict(40, lib.deny("git.web_write_denied", "writes to a git host outside the git protocol are not allowed")) if {
	git_host
	not api_host
	not input.facts.git
	not lib.is_read(input.request.method)
	input.request.method != "CONNECT"
}

verdicts contains lib.verdict(45, lib.allow("git.api_read", "reading the git host API is allowed")) if {
	api_host
	not input.facts.git
	lib.is_read(input.request.method)
}

verdicts contains lib.verdict(80, object.union(
	lib.hold("git.api_write_requires_approval", concat("", [input.request.method, " ", input.request.path, " on ", input.request.host, " needs approval"]), "once"),
	{"dlp": "block"},
)) if {
	api_host
	not input.facts.git
	not lib.is_read(input.request.method)
	input.request.method != "CONNECT"
}
