# METADATA
# title: Credential-looking paths
# description: >-
#   Reading a path that looks like a credential file (.env, .npmrc, id_rsa, *.pem, kubeconfig, a
#   secrets/ folder, ...) on an otherwise allowed destination is held for approval: raw hosts,
#   forge web pages and forge APIs (GitHub contents, GitLab repository files, Bitbucket src) all
#   end their path in the file's path. The path is matched percent-decoded and lower-cased. Plain
#   string tests, not regexes: the WASM runtime compiles a regex on every call.
# schemas:
#   - input: schema.input
package sluice.paths

import data.config
import data.sluice.org

segments := [s | some s in split(org.decoded_path, "/"); s != ""]

last := count(segments) - 1

# The file a path reads: its last segment, or the one before a trailing /raw (GitLab's
# /repository/files/<path>/raw and /-/raw/ forms).
file_names contains segments[last]

file_names contains segments[last - 1] if segments[last] == "raw"

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
	endswith(trim_suffix(org.decoded_path, "/raw"), suffix)
}

# A file anywhere below a secrets/, .ssh/, .aws/, .kube/ ... folder.
credential_path if {
	some i, dir in segments
	i < last
	dir in config.credential_dir_names
}
