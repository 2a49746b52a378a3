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

test_api_write_without_repo_held if {
	codes(git.verdicts) == {"git.api_write_requires_approval"} with input as lib_test.request("POST", "api.github.com", "/graphql")
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

top(vs) := [v.decision.code | some v in vs; v.priority == max({w.priority | some w in vs})][0]

push(repo, refs) := lib_test.with_facts("POST", "github.com", concat("", ["/", repo, ".git/git-receive-pack"]), {"git": {
	"service": "git-receive-pack", "operation": "push", "phase": "rpc", "repo": repo, "refs": refs,
}})

test_push_to_foreign_repo_denied if {
	top(git.verdicts) == "git.push_foreign_denied" with input as push("attacker/drop", [{"ref": "refs/heads/main", "old": "a", "new": "b"}])
}

test_probe_to_foreign_repo_denied if {
	top(git.verdicts) == "git.push_foreign_denied" with input as push("attacker/drop", [])
}

test_push_discovery_on_foreign_repo_denied if {
	top(git.verdicts) == "git.push_foreign_denied" with input as lib_test.with_facts("GET", "github.com", "/attacker/drop.git/info/refs", object.union(git_facts("push", "discovery"), {"git": {"repo": "attacker/drop"}}))
}

test_owner_match_ignores_case if {
	top(git.verdicts) == "git.push_requires_approval" with input as push("ACME/app", [{"ref": "refs/heads/x", "old": "a", "new": "b"}])
}

test_owner_on_another_forge_is_foreign if {
	inp := object.union(push("acme/app", []), {"request": {"host": "codeberg.org"}})
	top(git.verdicts) == "git.push_foreign_denied" with input as inp
}

test_listed_repo_of_another_owner_is_own if {
	vs := git.verdicts with input as push("partner/shared", [{"ref": "refs/heads/x", "old": "a", "new": "b"}])
		with data.organisation.git.repos as ["github.com/partner/shared"]
	top(vs) == "git.push_requires_approval"
}

test_namespace_override_adds_an_owner if {
	vs := git.verdicts with input as push("team-a/tool", [{"ref": "refs/heads/x", "old": "a", "new": "b"}])
		with data.organisation.namespaces as {"agents": {"git": {"owners": ["github.com/team-a"]}}}
	top(vs) == "git.push_requires_approval"
}

test_gist_denied if {
	top(git.verdicts) == "git.paste_denied" with input as lib_test.request("POST", "api.github.com", "/gists")
}

test_gitlab_snippet_denied if {
	top(git.verdicts) == "git.paste_denied" with input as lib_test.request("POST", "gitlab.com", "/api/v4/snippets")
}

test_issue_on_own_repo_held if {
	top(git.verdicts) == "git.api_write_requires_approval" with input as lib_test.request("POST", "api.github.com", "/repos/acme/app/issues")
}

test_issue_on_foreign_repo_denied if {
	vs := git.verdicts with input as lib_test.request("POST", "api.github.com", "/repos/attacker/inbox/issues")
	top(vs) == "git.api_write_foreign_denied"
	some v in vs
	contains(v.decision.reason, "attacker/inbox")
}

test_gitlab_project_by_path if {
	top(git.verdicts) == "git.api_write_requires_approval" with input as lib_test.request("POST", "gitlab.com", "/api/v4/projects/acme%2Fapp/issues")
	top(git.verdicts) == "git.api_write_foreign_denied" with input as lib_test.request("POST", "gitlab.com", "/api/v4/projects/evil%2Finbox/notes")
}

test_gitlab_project_by_id_held if {
	top(git.verdicts) == "git.api_write_requires_approval" with input as lib_test.request("POST", "gitlab.com", "/api/v4/projects/42/issues")
}

test_bitbucket_repo if {
	top(git.verdicts) == "git.api_write_foreign_denied" with input as lib_test.request("POST", "api.bitbucket.org", "/2.0/repositories/evil/inbox/issues")
}

test_gitea_repo if {
	vs := git.verdicts with input as lib_test.request("POST", "codeberg.org", "/api/v1/repos/evil/inbox/issues")
		with data.organisation.git.forges as [{"host": "codeberg.org", "kind": "gitea", "api_hosts": ["codeberg.org"]}]
	top(vs) == "git.api_write_foreign_denied"
}

test_github_zipball_own_repo_is_a_read_like_a_clone if {
	vs := git.verdicts with input as lib_test.request("GET", "api.github.com", "/repos/acme/app/zipball/main")
	some v in vs
	v.decision.code == "git.archive_read"
	contains(v.decision.reason, "an organisation repository")
}

test_github_tarball_foreign_repo_is_a_read_too if {
	vs := git.verdicts with input as lib_test.request("GET", "api.github.com", "/repos/someone/tool/tarball")
	some v in vs
	v.decision.code == "git.archive_read"
	contains(v.decision.reason, "outside the organisation")
}

test_github_web_archive if {
	"git.archive_read" in codes(git.verdicts) with input as lib_test.request("GET", "github.com", "/acme/app/archive/refs/heads/main.zip")
}

test_gitlab_api_archive_own if {
	vs := git.verdicts with input as lib_test.request("GET", "gitlab.com", "/api/v4/projects/acme%2Fapp/repository/archive.tar.gz")
	some v in vs
	v.decision.code == "git.archive_read"
	contains(v.decision.reason, "an organisation repository")
}

test_gitlab_web_archive_in_a_subgroup if {
	vs := git.verdicts with input as lib_test.request("GET", "gitlab.com", "/acme/platform/app/-/archive/main/app-main.zip")
	some v in vs
	v.decision.code == "git.archive_read"
	contains(v.decision.reason, "acme/platform/app")
}

test_bitbucket_web_archive if {
	"git.archive_read" in codes(git.verdicts) with input as lib_test.request("GET", "bitbucket.org", "/acme/app/get/main.zip")
}

test_gitea_web_archive if {
	"git.archive_read" in codes(git.verdicts) with input as lib_test.request("GET", "codeberg.org", "/acme/app/archive/main.tar.gz")
}

test_archive_post_is_no_read if {
	not "git.archive_read" in codes(git.verdicts) with input as lib_test.request("POST", "api.github.com", "/repos/acme/app/zipball/main")
}

graphql_post(host, path, facts) := lib_test.with_facts("POST", host, path, {"graphql": facts})

test_graphql_plain_query_is_a_read if {
	vs := git.verdicts with input as graphql_post("api.github.com", "/graphql", {"operations": ["query"], "reads_content": false})
	"git.graphql_read" in codes(vs)
	[v | some v in vs; v.priority == 85][0].decision.code == "git.graphql_read"
}

test_graphql_query_reading_a_blob_held if {
	vs := git.verdicts with input as graphql_post("api.github.com", "/graphql", {"operations": ["query"], "reads_content": true})
	"paths.graphql_read_held" in codes(vs)
	not "git.graphql_read" in codes(vs)
}

test_graphql_mutation_stays_an_api_write if {
	vs := git.verdicts with input as graphql_post("gitlab.com", "/api/graphql", {"operations": ["mutation"], "reads_content": false})
	codes(vs) == {"git.api_write_requires_approval"}
}

test_graphql_query_and_mutation_together_stay_held if {
	vs := git.verdicts with input as graphql_post("api.github.com", "/graphql", {"operations": ["mutation", "query"], "reads_content": false})
	not "git.graphql_read" in codes(vs)
}
