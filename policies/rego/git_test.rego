package sluice.git_test

import data.sluice.git
import data.sluice.lib_test

git_facts(op, phase) := {"git": {
	"service": sprintf("git-%s", [{"fetch": "upload-pack", "push": "receive-pack"}[op]]),
	"operation": op, "phase": phase, "repo": "acme/app",
	"refs": [{"ref": "refs/heads/main", "old": "a", "new": "b"}],
}}

codes(vs) := {v.decision.code | some v in vs}

test_fetch_allowed if {
	codes(git.verdicts) == {"git.fetch"} with input as lib_test.with_facts("POST", "github.com", "/acme/app.git/git-upload-pack", git_facts("fetch", "rpc"))
}

test_push_discovery_allowed if {
	codes(git.verdicts) == {"git.push_discovery"} with input as lib_test.with_facts("GET", "github.com", "/acme/app.git/info/refs", git_facts("push", "discovery"))
}

test_push_held_with_refs_in_reason if {
	vs := git.verdicts with input as lib_test.with_facts("POST", "github.com", "/acme/app.git/git-receive-pack", git_facts("push", "rpc"))
	some v in vs
	v.decision.code == "git.push_requires_approval"
	contains(v.decision.reason, "refs/heads/main")
	v.decision.dlp == "block"
}

test_unlisted_host_no_verdict if {
	count(git.verdicts) == 0 with input as lib_test.with_facts("POST", "git.evil.example", "/x", git_facts("push", "rpc"))
}

test_web_read if {
	codes(git.verdicts) == {"git.web_read"} with input as lib_test.request("GET", "github.com", "/acme/app")
}

test_web_write_denied if {
	codes(git.verdicts) == {"git.web_write_denied"} with input as lib_test.request("POST", "github.com", "/session")
}

test_api_read if {
	codes(git.verdicts) == {"git.api_read"} with input as lib_test.request("GET", "api.github.com", "/repos/acme/app")
}

test_api_write_held if {
	codes(git.verdicts) == {"git.api_write_requires_approval"} with input as lib_test.request("POST", "api.github.com", "/gists")
}

test_push_without_known_refs_names_the_repo if {
	facts := {"git": {"service": "git-receive-pack", "operation": "push", "phase": "rpc", "repo": "acme/app"}}
	vs := git.verdicts with input as lib_test.with_facts("POST", "github.com", "/acme/app.git/git-receive-pack", facts)
	some v in vs
	v.decision.reason == "git push to acme/app needs approval"
}

test_large_push_probe_is_not_held if {
	facts := {"git": {"service": "git-receive-pack", "operation": "push", "phase": "rpc", "repo": "acme/app", "refs": []}}
	vs := git.verdicts with input as lib_test.with_facts("POST", "github.com", "/acme/app.git/git-receive-pack", facts)
	some v in vs
	v.decision.code == "git.push_probe"
	v.priority > 80
}
