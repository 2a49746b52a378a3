# METADATA
# title: Credential-looking paths
# description: >-
#   Reading a path that looks like a credential file (.env, .npmrc, id_rsa, *.pem, ...) on an
#   otherwise allowed destination is held for approval. Plain string tests, not regexes: the
#   WASM runtime compiles a regex on every call.
# schemas:
#   - input: schema.input
package sluice.paths

import data.config

segments := split(input.request.path, "/")

file_name := segments[count(segments) - 1]

credential_path if file_name in config.credential_file_names

credential_path if {
	some prefix in config.credential_file_prefixes
	startswith(file_name, prefix)
}

credential_path if {
	some suffix in config.credential_file_suffixes
	endswith(file_name, suffix)
}

credential_path if {
	some suffix in config.credential_path_suffixes
	endswith(input.request.path, suffix)
}
