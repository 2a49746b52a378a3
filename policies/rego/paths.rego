# METADATA
# title: Credential-looking paths
# description: >-
#   Reading a path that looks like a credential file (.env, .npmrc, id_rsa, *.pem, ...) on an
#   otherwise allowed destination is held for approval.
# schemas:
#   - input: schema.input
package sluice.paths

import data.config

credential_path if {
	some pattern in config.credential_path_patterns
	regex.match(pattern, input.request.path)
}
