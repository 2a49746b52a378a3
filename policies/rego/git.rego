# METADATA
# title: Git hosts
# description: >-
#   Fetch from the organisation's git forges; a push (the receive-pack POST that carries refs and
#   objects) to the organisation's repositories is held for approval with secrets in the pack
#   blocked, a push anywhere else is denied. Web reads on forges are allowed, web writes denied.
#   API writes to the organisation's repositories are held; to other repositories, and pastes
#   (gists, snippets), they are denied; other API writes are held.
# schemas:
#   - input: schema.input
#   - data.organisation: schema.organisation
package sluice.git

import data.config
import data.sluice.lib
import data.sluice.org

git_host if lib.host_in(input.request.host, org.forge_hosts)

api_host if lib.host_in(input.request.host, org.api_hosts)

# Every rule here needs one of the two (sluice.decision evaluates this package only then).
applies if git_host

applies if api_host

ref_names := concat(", ", [r.ref | some r in input.facts.git.refs])

# "acme/app (refs/heads/main)", or just the repository when the refs are unknown.
push_target := concat("", [input.facts.git.repo, " (", ref_names, ")"]) if {
	count(input.facts.git.refs) > 0
} else := input.facts.git.repo

own_push_repo if org.own_repo(input.request.host, input.facts.git.repo)

verdicts contains lib.verdict(50, lib.allow("git.fetch", concat("", ["git fetch of ", input.facts.git.repo, " is allowed"]))) if {
	git_host
	input.facts.git.operation == "fetch"
}

# The receive-pack advertisement only lists refs; the POST that follows is what gets held.
verdicts contains lib.verdict(50, lib.allow("git.push_discovery", "listing refs before a push is allowed")) if {
	git_host
	input.facts.git.operation == "push"
	input.facts.git.phase == "discovery"
	own_push_repo
}

verdicts contains lib.verdict(80, object.union(
	lib.hold("git.push_requires_approval", concat("", ["git push to ", push_target, " needs approval"]), config.git_push_approval_scope),
	{"dlp": "block"},
)) if {
	git_host
	input.facts.git.operation == "push"
	input.facts.git.phase == "rpc"
	own_push_repo
}

# A push to a repository that is not the organisation's is how code and secrets leave: denied,
# whatever its phase (a probe or the ref listing included).
verdicts contains lib.verdict(90, lib.deny(
	"git.push_foreign_denied",
	concat("", [input.request.host, "/", input.facts.git.repo, " is not a repository of the organisation; pushing there is not allowed"]),
)) if {
	git_host
	input.facts.git.operation == "push"
	not own_push_repo
}

# For a push over http.postBuffer git first sends a probe: a receive-pack POST holding only a
# flush-pkt, no ref update. It changes nothing, so it is not held (refs known and empty; unknown
# refs stay held).
verdicts contains lib.verdict(85, lib.allow("git.push_probe", "an empty receive-pack probe changes nothing")) if {
	git_host
	input.facts.git.operation == "push"
	input.facts.git.phase == "rpc"
	count(input.facts.git.refs) == 0
	own_push_repo
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

# The repository an API path addresses, by forge kind. GitLab names a project by id or by its
# URL-encoded path (acme%2Fapp); a numeric id names no repository here.
segments := [s | some s in split(input.request.path, "/"); s != ""]

api_repo := concat("/", array.slice(segments, 1, 3)) if {
	org.api_kind == "github"
	segments[0] == "repos"
	count(segments) >= 3
}

api_repo := concat("/", array.slice(segments, 2, 4)) if {
	org.api_kind == "bitbucket"
	segments[0] == "2.0"
	segments[1] == "repositories"
	count(segments) >= 4
}

api_repo := concat("/", array.slice(segments, 3, 5)) if {
	org.api_kind == "gitea"
	array.slice(segments, 0, 3) == ["api", "v1", "repos"]
	count(segments) >= 5
}

api_repo := lower(strings.replace_n({"%2f": "/", "%2F": "/"}, segments[3])) if {
	org.api_kind == "gitlab"
	array.slice(segments, 0, 3) == ["api", "v4", "projects"]
	contains(lower(segments[3]), "%2f")
}

api_write if {
	api_host
	not input.facts.git
	not lib.is_read(input.request.method)
	input.request.method != "CONNECT"
}

# The forge that serves an API host: the API host itself for GitLab/Gitea, the web host otherwise.
forge_of_api := [f.host | some f in data.organisation.git.forges; lib.host_in(input.request.host, f.api_hosts)][0]

own_api_repo if org.own_repo(forge_of_api, api_repo)

paste if {
	some prefix in config.git_paste_paths
	lib.path_under(input.request.path, prefix)
}

verdicts contains lib.verdict(80, object.union(
	lib.hold("git.api_write_requires_approval", concat("", [input.request.method, " ", input.request.path, " on ", input.request.host, " needs approval"]), "once"),
	{"dlp": "block"},
)) if {
	api_write
	not paste
	not api_repo
}

verdicts contains lib.verdict(80, object.union(
	lib.hold("git.api_write_requires_approval", concat("", [input.request.method, " ", input.request.path, " on ", input.request.host, " needs approval"]), "once"),
	{"dlp": "block"},
)) if {
	api_write
	own_api_repo
}

verdicts contains lib.verdict(90, lib.deny(
	"git.api_write_foreign_denied",
	concat("", [input.request.method, " on ", api_repo, ": not a repository of the organisation"]),
)) if {
	api_write
	api_repo
	not own_api_repo
}

# Gists and snippets publish text under any account: a classic way out for data.
verdicts contains lib.verdict(90, lib.deny("git.paste_denied", concat("", [input.request.method, " ", input.request.path, " creates or changes a paste (gist, snippet)"]))) if {
	api_write
	paste
}

# --- archives ---------------------------------------------------------------------------------------

# A zip or tarball of a whole repository is a clone by another route: allowed for the
# organisation's repositories and for others alike, as `git fetch` is (the credential-path rule
# still holds an archive of a single folder asked for by `path=`).
archive_repo := concat("/", array.slice(segments, 1, 3)) if {
	segments[3] in {"zipball", "tarball"}
	segments[0] == "repos"
	api_host
	org.forge_kind == "github"
}

archive_repo := concat("/", array.slice(segments, 0, 2)) if {
	segments[2] == "archive"
	count(segments) > 3
	git_host
	org.forge_kind in {"github", "gitea"}
}

archive_repo := concat("/", array.slice(segments, 0, 2)) if {
	segments[2] == "get"
	count(segments) > 3
	git_host
	org.forge_kind == "bitbucket"
}

archive_repo := concat("/", array.slice(segments, 3, 5)) if {
	segments[5] == "archive"
	array.slice(segments, 0, 3) == ["api", "v1", "repos"]
	count(segments) > 6
	org.forge_kind == "gitea"
}

# GitLab API: /api/v4/projects/<id>/repository/archive(.zip|.tar.gz|...); the project by id or
# by its encoded path.
archive_repo := project if {
	segments[4] == "repository"
	startswith(segments[5], "archive")
	array.slice(segments, 0, 3) == ["api", "v4", "projects"]
	org.forge_kind == "gitlab"
	project := lower(strings.replace_n({"%2f": "/", "%2F": "/"}, segments[3]))
}

# GitLab web: /<group>/<project>/-/archive/<ref>/<file>.
archive_repo := concat("/", array.slice(segments, 0, i)) if {
	some i, s in segments
	s == "-"
	segments[i + 1] == "archive"
	git_host
	org.forge_kind == "gitlab"
}

archive_whose := "an organisation repository" if org.own_repo(input.request.host, archive_repo)

else := "an organisation repository" if org.own_repo(forge_of_api, archive_repo)

else := "a repository outside the organisation"

verdicts contains lib.verdict(50, lib.allow("git.archive_read", concat("", ["an archive of ", archive_repo, " (", archive_whose, ") is a read like a clone"]))) if {
	not input.facts.git
	lib.is_read(input.request.method)
	archive_repo
}

# --- GraphQL --------------------------------------------------------------------------------------

# facts.graphql says what a GraphQL document asks. A query that reads no file content is a read
# (`gh pr list`, `gh issue view`): allowed, overriding the hold of a POST to the API (85). A query
# that selects file content (Blob.text, GitLab blobs, gist files, CI variables) names no path the
# credential rule could check: held. Mutations, and documents the sidecar could not read, stay
# held as API calls without a repository in the path.
graphql_writes if {
	some op in input.facts.graphql.operations
	op != "query"
}

verdicts contains lib.verdict(85, lib.allow("git.graphql_read", "a GraphQL query that reads no file content is a read")) if {
	api_host
	input.facts.graphql
	not graphql_writes
	not input.facts.graphql.reads_content
}

verdicts contains lib.verdict(85, lib.hold(
	"paths.graphql_read_held",
	concat("", ["a GraphQL query on ", input.request.host, " reads file content (a blob, gist or snippet file, CI variables), which names no path the policy can check; it needs approval"]),
	"once",
)) if {
	api_host
	not graphql_writes
	input.facts.graphql.reads_content
}
