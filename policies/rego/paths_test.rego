package sluice.paths_test

import data.sluice.lib_test
import data.sluice.paths

credential(path) if paths.credential_path with input as lib_test.request("GET", "github.com", path)

test_dotenv if credential("/acme/app/raw/main/.env")

test_dotenv_variant if credential("/acme/app/raw/main/.env.production")

test_ssh_key if credential("/home/me/.ssh/id_ed25519")

test_aws_credentials if credential("/x/.aws/credentials")

test_pem if credential("/certs/tls.key")

test_ordinary_file if not credential("/acme/app/raw/main/src/env.ts")

test_readme if not credential("/acme/app/README.md")

test_kubeconfig if credential("/acme/app/raw/main/kubeconfig")

test_kubeconfig_suffix if credential("/acme/app/raw/main/deploy/prod.kubeconfig")

test_secrets_folder if credential("/acme/app/main/secrets/prod.yaml")

test_ssh_folder if credential("/home/me/.ssh/known_hosts")

test_secrets_as_last_segment_is_a_listing if not credential("/repos/acme/app/actions/secrets")

test_github_contents_api if credential("/repos/acme/app/contents/.npmrc")

test_gitlab_files_api_encoded if credential("/api/v4/projects/acme%2Fapp/repository/files/config%2F.env/raw")

test_gitlab_files_api_json if credential("/api/v4/projects/42/repository/files/deploy%2Fid_rsa")

test_gitlab_raw_web if credential("/acme/app/-/raw/main/.aws/credentials")

test_percent_encoded_name if credential("/acme/app/main/%2Eenv")

test_upper_case_name if credential("/acme/app/main/ID_RSA")

test_bitbucket_src if credential("/2.0/repositories/acme/app/src/main/.git-credentials")

# Signatures and release keys are public: apt and release downloads read them all the time.
test_apt_release_signature if not credential("/debian/dists/bookworm/Release.gpg")

test_detached_signature if not credential("/releases/download/v1.0.0/SHA256SUMS.asc")

# --- the file named in a query parameter or before /blame ---------------------------------------

with_query(host, path, query) := object.union(lib_test.request("GET", host, path), {"request": {"query": query}})

test_gitlab_archive_of_a_secrets_folder if {
	paths.credential_path with input as with_query("gitlab.com", "/api/v4/projects/acme%2Fapp/repository/archive.zip", {"path": ["secrets"], "sha": ["main"]})
}

test_gitlab_tree_of_an_ssh_file_in_query if {
	paths.credential_path with input as with_query("gitlab.com", "/api/v4/projects/42/repository/archive", {"path": ["deploy/.npmrc"]})
}

test_ordinary_query_path_is_not_a_credential if {
	not paths.credential_path with input as with_query("gitlab.com", "/api/v4/projects/42/repository/archive", {"path": ["src"]})
}

test_gitlab_blame_of_a_credential_file if credential("/api/v4/projects/42/repository/files/.npmrc/blame")

test_gitlab_blame_of_an_ordinary_file if not credential("/api/v4/projects/42/repository/files/src%2Fmain.go/blame")

# --- reads that name no path ----------------------------------------------------------------------

hold_code(method, host, path) := code if {
	code := paths.content_hold.code with input as lib_test.request(method, host, path)
}

hold_code_q(host, path, query, headers) := code if {
	code := paths.content_hold.code with input as object.union(lib_test.request("GET", host, path), {"request": {"query": query, "headers": headers}})
}

test_github_blob_by_sha_own if hold_code("GET", "api.github.com", "/repos/acme/app/git/blobs/3f786850e387550fdab836ed7e6dc881de23001b") == "paths.blob_read_held"

test_github_blob_by_sha_foreign if hold_code("GET", "api.github.com", "/repos/someone/else/git/blobs/3f786850e387550fdab836ed7e6dc881de23001b") == "paths.blob_read_held"

test_github_enterprise_blob_by_sha if {
	paths.blob_read with input as lib_test.request("GET", "api.github.com", "/api/v3/repos/acme/app/git/blobs/3f78")
}

test_github_tree_listing_is_not_content if not paths.content_hold with input as lib_test.request("GET", "api.github.com", "/repos/acme/app/git/trees/main")

test_gitlab_blob_raw_by_sha if hold_code("GET", "gitlab.com", "/api/v4/projects/acme%2Fapp/repository/blobs/3f78/raw") == "paths.blob_read_held"

test_gitlab_blob_json_by_sha if hold_code("GET", "gitlab.com", "/api/v4/projects/42/repository/blobs/3f78") == "paths.blob_read_held"

test_gitlab_blob_listing_without_sha_is_not_held if not paths.blob_read with input as lib_test.request("GET", "gitlab.com", "/api/v4/projects/42/repository/blobs")

test_gitea_api_blob_by_sha if hold_code("GET", "codeberg.org", "/api/v1/repos/acme/app/git/blobs/3f78") == "paths.blob_read_held"

test_gitea_web_raw_blob_by_sha if hold_code("GET", "codeberg.org", "/acme/app/raw/blob/3f78") == "paths.blob_read_held"

test_gitea_web_raw_by_branch_is_path_checked if not paths.content_hold with input as lib_test.request("GET", "codeberg.org", "/acme/app/raw/branch/main/README.md")

test_blob_shape_on_another_kind_of_forge_means_nothing if not paths.blob_read with input as lib_test.request("GET", "github.com", "/acme/app/raw/blob/3f78")

test_github_gist_content if hold_code("GET", "api.github.com", "/gists/aa5a315d61ae9438b18d") == "paths.paste_read_held"

test_github_gist_revision if hold_code("GET", "api.github.com", "/gists/aa5a315d61ae9438b18d/57a7f021a713b1c5a6a199b54cc514735d2d462f") == "paths.paste_read_held"

test_github_gist_listing_is_metadata if not paths.content_hold with input as lib_test.request("GET", "api.github.com", "/gists/public")

test_github_gist_commits_are_metadata if not paths.content_hold with input as lib_test.request("GET", "api.github.com", "/gists/aa5a/commits")

test_gist_raw_host if hold_code("GET", "gist.githubusercontent.com", "/someone/aa5a/raw/57a7/notes.txt") == "paths.paste_read_held"

test_gitlab_snippet_raw if hold_code("GET", "gitlab.com", "/api/v4/snippets/17/raw") == "paths.paste_read_held"

test_gitlab_project_snippet_raw if hold_code("GET", "gitlab.com", "/api/v4/projects/42/snippets/3/raw") == "paths.paste_read_held"

test_gitlab_snippet_web_raw if hold_code("GET", "gitlab.com", "/-/snippets/17/raw/main/notes.txt") == "paths.paste_read_held"

test_bitbucket_snippet_file if hold_code("GET", "api.bitbucket.org", "/2.0/snippets/acme/kypj/files/notes.txt") == "paths.paste_read_held"

test_github_code_search_with_text_matches if {
	hold_code_q("api.github.com", "/search/code", {"q": ["_authToken org:acme"]}, {"accept": "application/vnd.github.text-match+json"}) == "paths.code_search_held"
}

test_github_code_search_without_text_matches_names_paths_only if {
	not paths.content_hold with input as object.union(lib_test.request("GET", "api.github.com", "/search/code"), {"request": {"query": {"q": ["x"]}}})
}

test_gitlab_blob_search if hold_code_q("gitlab.com", "/api/v4/projects/42/search", {"scope": ["blobs"], "search": ["password"]}, {}) == "paths.code_search_held"

test_gitlab_issue_search_is_not_content if {
	not paths.content_hold with input as object.union(lib_test.request("GET", "gitlab.com", "/api/v4/search"), {"request": {"query": {"scope": ["issues"]}}})
}

test_github_web_code_search if hold_code_q("github.com", "/search", {"q": ["AKIA"], "type": ["code"]}, {}) == "paths.code_search_held"

test_gitlab_graphql_in_url if {
	hold_code_q("gitlab.com", "/api/graphql", {"query": ["{project(fullPath:\"acme/app\"){repository{blobs(paths:[\"deploy/kubeconfig\"]){nodes{rawTextBlob}}}}}"]}, {}) == "paths.graphql_read_held"
}

test_credential_path_wins_over_blob if hold_code("GET", "gitlab.com", "/api/v4/projects/42/repository/blobs/.env") == "paths.credential_read_held"

test_gitlab_project_variables_held if hold_code("GET", "gitlab.com", "/api/v4/projects/acme%2Fapp/variables") == "paths.ci_variables_held"

test_gitlab_one_group_variable_held if hold_code("GET", "gitlab.com", "/api/v4/groups/acme/variables/AWS_SECRET_ACCESS_KEY") == "paths.ci_variables_held"

test_gitlab_instance_variables_held if hold_code("GET", "gitlab.com", "/api/v4/admin/ci/variables") == "paths.ci_variables_held"

test_gitlab_pipeline_schedule_with_variables_held if hold_code("GET", "gitlab.com", "/api/v4/projects/42/pipeline_schedules/7") == "paths.ci_variables_held"

test_gitlab_pipeline_schedule_list_is_not_held if not paths.content_hold with input as lib_test.request("GET", "gitlab.com", "/api/v4/projects/42/pipeline_schedules")

test_github_actions_variables_are_not_secrets if not paths.content_hold with input as lib_test.request("GET", "api.github.com", "/repos/acme/app/actions/variables")
