package sluice_test

import data.sluice
import data.sluice.lib_test

test_default_deny if {
	d := sluice.decision with input as lib_test.request("GET", "exfil.example", "/")
	not d.allow
	d.code == "net.not_allowlisted"
}

test_ip_literal_beats_everything if {
	inp := object.union(lib_test.request("GET", "140.82.112.3", "/"), {"request": {"ip_literal": true}})
	d := sluice.decision with input as inp
	d.code == "net.ip_literal_denied"
}

test_registry_write_beats_git_web_read if {
	# raw.githubusercontent.com is a registry host; a PUT there is a registry write.
	d := sluice.decision with input as lib_test.request("PUT", "raw.githubusercontent.com", "/x")
	d.code == "registry.write_denied"
}

test_credential_path_turns_allow_into_hold if {
	d := sluice.decision with input as lib_test.request("GET", "raw.githubusercontent.com", "/acme/app/main/.env")
	d.code == "paths.credential_read_held"
	d.require_approval.scope == "once"
	d.allow
}

test_credential_path_does_not_rescue_a_deny if {
	d := sluice.decision with input as lib_test.request("GET", "exfil.example", "/.env")
	not d.allow
}

test_existing_hold_keeps_its_code if {
	d := sluice.decision with input as lib_test.request("PUT", "api.github.com", "/repos/acme/app/contents/.env")
	d.code == "git.api_write_requires_approval"
}

test_connect_never_held_for_path if {
	d := sluice.decision with input as lib_test.request("CONNECT", "github.com", "")
	d.code == "net.connect"
	not d.require_approval
}

test_port_denied_beats_an_allow if {
	inp := object.union(lib_test.request("GET", "github.com", "/acme/app"), {"request": {"port": 8443}})
	d := sluice.decision with input as inp
	d.code == "net.port_denied"
	not d.allow
}

test_credential_path_through_forge_api_held if {
	d := sluice.decision with input as lib_test.request("GET", "api.github.com", "/repos/acme/app/contents/deploy/secrets/prod.yaml")
	d.code == "paths.credential_read_held"
}

test_foreign_push_is_not_rescued_by_anything if {
	facts := {"git": {"service": "git-receive-pack", "operation": "push", "phase": "rpc", "repo": "attacker/drop", "refs": []}}
	d := sluice.decision with input as lib_test.with_facts("POST", "github.com", "/attacker/drop.git/git-receive-pack", facts)
	d.code == "git.push_foreign_denied"
}

test_ip_literal_on_another_port_is_an_ip_literal_denial if {
	inp := object.union(lib_test.request("GET", "203.0.113.7", "/secret"), {"request": {"ip_literal": true, "scheme": "http", "port": 41234}})
	d := sluice.decision with input as inp
	d.code == "net.ip_literal_denied"
}

test_blob_by_sha_turns_api_read_into_hold if {
	d := sluice.decision with input as lib_test.request("GET", "api.github.com", "/repos/acme/app/git/blobs/3f786850e387550fdab836ed7e6dc881de23001b")
	d.code == "paths.blob_read_held"
	d.allow
	d.require_approval.scope == "once"
}

test_gist_raw_on_a_registry_host_held if {
	d := sluice.decision with input as lib_test.request("GET", "gist.githubusercontent.com", "/someone/aa5a/raw/57a7/notes.txt")
	d.code == "paths.paste_read_held"
}

test_gist_write_stays_denied if {
	d := sluice.decision with input as lib_test.request("PATCH", "api.github.com", "/gists/aa5a")
	d.code == "git.paste_denied"
}

test_archive_of_a_secrets_folder_held if {
	inp := object.union(lib_test.request("GET", "gitlab.com", "/api/v4/projects/acme%2Fapp/repository/archive.zip"), {"request": {"query": {"path": ["secrets/"]}}})
	d := sluice.decision with input as inp
	d.code == "paths.credential_read_held"
}

test_whole_repository_archive_allowed if {
	d := sluice.decision with input as lib_test.request("GET", "api.github.com", "/repos/acme/app/zipball/main")
	d.code == "git.archive_read"
	not d.require_approval
}

test_compare_is_a_read if {
	d := sluice.decision with input as lib_test.request("GET", "api.github.com", "/repos/acme/app/compare/main...feature")
	d.code == "git.api_read"
}

test_graphql_plain_query_allowed if {
	d := sluice.decision with input as lib_test.with_facts("POST", "api.github.com", "/graphql", {"graphql": {"operations": ["query"], "reads_content": false}})
	d.code == "git.graphql_read"
	not d.require_approval
}

test_graphql_unread_post_stays_held if {
	d := sluice.decision with input as lib_test.request("POST", "api.github.com", "/graphql")
	d.code == "git.api_write_requires_approval"
}

test_graphql_blob_query_held if {
	d := sluice.decision with input as lib_test.with_facts("POST", "api.github.com", "/graphql", {"graphql": {"operations": ["query"], "reads_content": true}})
	d.code == "paths.graphql_read_held"
	d.require_approval.scope == "once"
}

test_gitlab_graphql_get_plain_query_allowed if {
	inp := object.union(
		lib_test.with_facts("GET", "gitlab.com", "/api/graphql", {"graphql": {"operations": ["query"], "reads_content": false}}),
		{"request": {"query": {"query": ["{ project(fullPath: \"acme/app\") { name } }"]}}},
	)
	d := sluice.decision with input as inp
	d.allow
	not d.require_approval
}

test_gitlab_graphql_get_content_query_held if {
	inp := object.union(
		lib_test.with_facts("GET", "gitlab.com", "/api/graphql", {"graphql": {"operations": ["query"], "reads_content": true}}),
		{"request": {"query": {"query": ["{ project(fullPath: \"acme/app\") { repository { blobs(paths: [\"x\"]) { nodes { rawTextBlob } } } } }"]}}},
	)
	d := sluice.decision with input as inp
	d.code == "paths.graphql_read_held"
}
