# METADATA
# title: Credential-looking paths and reads that name no path
# description: >-
#   Reading a path that looks like a credential file (.env, .npmrc, id_rsa, *.pem, kubeconfig, a
#   secrets/ folder, ...) on an otherwise allowed destination is held for approval: raw hosts,
#   forge web pages and forge APIs (GitHub contents, GitLab repository files, Bitbucket src) all
#   end their path in the file's path, or name it in a query parameter (GitLab archive and tree
#   `path=`). The path is matched percent-decoded and lower-cased. A forge read that returns file
#   content without naming the file cannot be checked by path and is held too: a git blob by id,
#   a gist's or snippet's content, a code search that returns matching lines, a GraphQL query sent
#   in the URL; and GitLab's CI/CD variables, which it answers with their (secret) values. Plain string tests, not regexes: the WASM runtime compiles a regex on every call.
# schemas:
#   - input: schema.input
#   - data.organisation: schema.organisation
package sluice.paths

import data.config
import data.sluice.git
import data.sluice.lib
import data.sluice.org

segments := [s | some s in split(org.decoded_path, "/"); s != ""]

last := count(segments) - 1

# --- credential files by path -------------------------------------------------------------------

# The file a path reads: its last segment, or the one before a trailing /raw or /blame (GitLab's
# /repository/files/<path>/raw and /blame, the /-/raw/ forms).
file_names contains segments[last]

file_names contains segments[last - 1] if segments[last] in config.credential_path_trailers

# The path without such a trailer, for the path suffixes (/.aws/credentials/raw).
file_path := concat("", ["/", concat("/", array.slice(segments, 0, last))]) if {
	segments[last] in config.credential_path_trailers
} else := org.decoded_path

credential_path if {
	some name in file_names
	name in config.credential_file_names
}

credential_path if {
	some name in file_names
	some prefix in config.credential_file_prefixes
	startswith(name, prefix)
}

credential_path if {
	some name in file_names
	some suffix in config.credential_file_suffixes
	endswith(name, suffix)
}

credential_path if {
	some suffix in config.credential_path_suffixes
	endswith(file_path, suffix)
}

# A file anywhere below a secrets/, .ssh/, .aws/, .kube/ ... folder.
credential_path if {
	some i, dir in segments
	i < last
	dir in config.credential_dir_names
}

# The file or folder named in a query parameter instead of the path (GitLab
# `repository/archive?path=secrets`, `repository/tree?path=`); the proxy hands the query over
# decoded. Complete rule: evaluated once, and most requests carry none of these parameters.
query_paths := [lower(v) | some name, values in input.request.query; name in config.credential_query_params; some v in values]

credential_path if {
	count(query_paths) > 0
	some p in query_paths
	query_path_is_credential(p)
}

# A folder named there stands for every file below it: any segment that is a credential folder.
query_path_is_credential(p) if {
	some seg in split(p, "/")
	seg in config.credential_dir_names
}

query_path_is_credential(p) if {
	segs := [s | some s in split(p, "/"); s != ""]
	name := segs[count(segs) - 1]
	credential_name(name)
}

query_path_is_credential(p) if {
	some suffix in config.credential_path_suffixes
	endswith(concat("", ["/", p]), suffix)
}

credential_name(name) if name in config.credential_file_names

credential_name(name) if {
	some prefix in config.credential_file_prefixes
	startswith(name, prefix)
}

credential_name(name) if {
	some suffix in config.credential_file_suffixes
	endswith(name, suffix)
}

# --- forge reads that return file content without naming the file --------------------------------

# Only on the forges' own hosts (web, git and API), by the forge's kind: these path shapes mean
# nothing elsewhere. git.applies is the host test sluice.decision has already made (a complete
# rule, evaluated once), so on every other host each rule below fails at its first expression.
forge if git.applies

kind := org.forge_kind if forge

n := count(segments)

# GitHub Enterprise Server serves the REST API under /api/v3.
rest := array.slice(segments, 2, n) if array.slice(segments, 0, 2) == ["api", "v3"]

else := segments

# GitHub and Gitea: /repos/{o}/{r}/git/blobs/{sha}.
blob_read if {
	kind == "github"
	rest[0] == "repos"
	rest[3] == "git"
	rest[4] == "blobs"
	count(rest) >= 6
}

blob_read if {
	kind == "gitea"
	array.slice(segments, 0, 3) == ["api", "v1", "repos"]
	segments[5] == "git"
	segments[6] == "blobs"
	n >= 8
}

# GitLab: /api/v4/projects/<id or group/sub/project>/repository/blobs/<sha>(/raw).
blob_read if {
	kind == "gitlab"
	array.slice(segments, 0, 3) == ["api", "v4", "projects"]
	some i, s in segments
	s == "repository"
	segments[i + 1] == "blobs"
	n > i + 2
}

# Gitea/Forgejo web: /{o}/{r}/raw/blob/<sha> and /{o}/{r}/media/blob/<sha>.
blob_read if {
	kind == "gitea"
	segments[2] in {"raw", "media"}
	segments[3] == "blob"
	n == 5
}

# A gist's or snippet's content: the file names are in the answer, not the request.
paste_host if lib.host_in(input.request.host, config.paste_content_hosts)

# GitHub: GET /gists/{id} and /gists/{id}/{revision} carry every file's content; the listings and
# /commits, /forks, /comments, /star carry none.
paste_read if {
	kind == "github"
	rest[0] == "gists"
	not rest[1] in {"public", "starred"}
	count(rest) in {2, 3}
	not paste_metadata
}

paste_metadata if rest[2] in {"commits", "forks", "comments", "star"}

# GitLab: snippets/<id>/raw, snippets/<id>/files/<ref>/<path>/raw, project snippets the same,
# and the web forms (/-/snippets/<id>/raw/...).
paste_read if {
	kind == "gitlab"
	some i, s in segments
	s == "snippets"
	some j, r in segments
	j > i
	r == "raw"
}

# Bitbucket: /2.0/snippets/{workspace}/{id}(/{revision})/files/<path>.
paste_read if {
	kind == "bitbucket"
	array.slice(segments, 0, 2) == ["2.0", "snippets"]
	"files" in segments
}

# Code search that answers with the matching lines of files: GitHub's with the text-match media
# type, GitLab's blob scopes (API and web), GitHub's and Gitea's web code search.
code_search if {
	kind == "github"
	rest == ["search", "code"]
	contains(lower(object.get(input.request.headers, "accept", "")), "text-match")
}

code_search if {
	kind == "gitlab"
	"search" in segments
	some scope in object.get(input.request.query, "scope", [])
	lower(scope) in {"blobs", "wiki_blobs"}
}

code_search if {
	kind == "github"
	segments == ["search"]
	some t in object.get(input.request.query, "type", [])
	lower(t) == "code"
}

code_search if {
	kind == "gitea"
	segments == ["explore", "code"]
}

# Gitea web: /{o}/{r}/search?q= answers with matching lines.
code_search if {
	kind == "gitea"
	n == 3
	segments[2] == "search"
	input.request.query.q
}

# A GraphQL query may read any blob (GitHub `object(expression: "HEAD:path") { ... on Blob { text } }`,
# GitLab `blobs(paths:) { rawTextBlob }`); sent in the URL (GitLab accepts GET) it would be a read:
# held unless facts.graphql says it only queries and reads no content (sluice.git decides POSTs).
graphql_in_url if {
	forge
	segments[n - 1] == "graphql"
	input.request.query.query
	not plain_graphql_query
}

# A document the sidecar read (facts.graphql) that only queries and selects no file content.
plain_graphql_query if {
	input.facts.graphql
	not input.facts.graphql.reads_content
	every op in input.facts.graphql.operations {
		op == "query"
	}
}

# GitLab answers CI/CD variable reads with their values, masked and protected ones included:
# project, group and instance variables, pipeline and pipeline schedule variables.
ci_variables_read if {
	kind == "gitlab"
	array.slice(segments, 0, 2) == ["api", "v4"]
	"variables" in segments
}

ci_variables_read if {
	kind == "gitlab"
	array.slice(segments, 0, 3) == ["api", "v4", "projects"]
	some i, s in segments
	s == "pipeline_schedules"
	n == i + 2
}

paste_reason := concat("", [input.request.path, " on ", input.request.host, " reads a gist or snippet, whose files the policy cannot check; reading it needs approval"])

# What turns an allowed read into a hold, first match wins. The forge checks are one complete
# rule reached only on a forge host: the WASM runtime runs every body of a rule it evaluates.
content_hold := {"code": "paths.credential_read_held", "reason": concat("", [input.request.path, " looks like a credential file; reading it needs approval"])} if {
	credential_path
} else := {"code": "paths.paste_read_held", "reason": paste_reason} if {
	paste_host
} else := forge_hold if {
	forge
	not input.facts.git # the git protocol itself: a fetch is a clone
}

forge_hold := {"code": "paths.blob_read_held", "reason": concat("", [input.request.path, " reads a git object by id, which names no file the policy can check; reading it needs approval"])} if {
	blob_read
} else := {"code": "paths.paste_read_held", "reason": paste_reason} if {
	paste_read
} else := {"code": "paths.code_search_held", "reason": concat("", ["code search on ", input.request.host, " answers with lines of files the policy cannot check; it needs approval"])} if {
	code_search
} else := {"code": "paths.ci_variables_held", "reason": concat("", [input.request.path, " on ", input.request.host, " answers with CI/CD variable values, secrets among them; reading them needs approval"])} if {
	ci_variables_read
} else := {"code": "paths.graphql_read_held", "reason": concat("", ["a GraphQL query in the URL on ", input.request.host, " can read any file; it needs approval"])} if {
	graphql_in_url
}
