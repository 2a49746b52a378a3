# METADATA
# title: The organisation
# description: >-
#   Reads data.organisation (typed by api/src/organisation.ts): what is the organisation's own
#   (git owners and repositories, AWS accounts and buckets, namespaces, registries) and what agents
#   may reach. A namespace's entry in `namespaces` adds to the organisation-wide lists for pods in
#   that namespace (input.pod.namespace comes from the sidecar, never from the agent).
# schemas:
#   - input: schema.input
#   - data.organisation: schema.organisation
package sluice.org

import data.config
import data.organisation
import data.sluice.lib

override := object.get(organisation.namespaces, input.pod.namespace, {})

# The organisation-wide list organisation[section][field] plus this namespace's additions.
# Without additions (the common case) the organisation's list itself, not a copy.
merged(section, field) := array.concat(organisation[section][field], override[section][field]) if {
	override[section][field]
} else := organisation[section][field]

# Complete rules, not calls of merged(): the WASM runtime memoizes a complete rule within one
# evaluation, a function call it evaluates again at every reference.
git_owners := {lower(o) | some o in merged("git", "owners")}

git_repos := {lower(r) | some r in merged("git", "repos")}

aws_accounts := merged("aws", "accounts")

aws_regions := merged("aws", "regions")

aws_services := merged("aws", "services")

aws_endpoints := merged("aws", "endpoints")

aws_buckets := merged("aws", "buckets")

aws_readable_buckets := merged("aws", "readable_buckets")

aws_anonymous_buckets := merged("aws", "anonymous_buckets")

aws_roles := merged("aws", "roles")

# Read with defaults: organisation data written before bucket_accounts existed has none.
aws_bucket_accounts := array.concat(object.get(organisation.aws, "bucket_accounts", []), object.get(override, ["aws", "bucket_accounts"], []))

kubernetes_namespaces := merged("kubernetes", "namespaces")

registries_read := merged("registries", "read")

registries_images := merged("registries", "images")

registries_go_module_hosts := merged("registries", "go_module_hosts")

registries_own := merged("registries", "own")

ports := {scheme: with_added_ports(scheme, list) | some scheme, list in organisation.network.ports} if {
	override.network.ports
} else := organisation.network.ports

with_added_ports(scheme, list) := array.concat(list, override.network.ports[scheme]) if {
	override.network.ports[scheme]
} else := list

forge_hosts := [f.host | some f in organisation.git.forges]

api_hosts := [h | some f in organisation.git.forges; some h in f.api_hosts]

# A forge's web/git host or one of its API hosts.
forge_or_api_host if lib.host_in(input.request.host, forge_hosts)

forge_or_api_host if lib.host_in(input.request.host, api_hosts)

# The kind of forge (github, gitlab, ...) whose web/git or API host this is: an exact host first
# (the common case, without a call per pattern), then patterns; the first listed wins.
forge_kind := kind if {
	kind := [f.kind | some f in organisation.git.forges; f.host == input.request.host][0]
} else := kind if {
	kind := [f.kind | some f in organisation.git.forges; input.request.host in f.api_hosts][0]
} else := [f.kind | some f in organisation.git.forges; lib.host_in(input.request.host, array.concat([f.host], f.api_hosts))][0]

# The kind of forge an API host belongs to (github, gitlab, ...); the first listed wins.
api_kinds := [f.kind | some f in organisation.git.forges; lib.host_in(input.request.host, f.api_hosts)]

api_kind := api_kinds[0]

# "owner/repo" on host is the organisation's when host/owner is an owner or host/owner/repo a repo.
# Forges treat owner and repository names case-insensitively, so the comparison does too.
own_repo(host, repo) if {
	owner := split(repo, "/")[0]
	lower(concat("/", [host, owner])) in git_owners
}

own_repo(host, repo) if lower(concat("/", [host, repo])) in git_repos

own_account(account) if account in aws_accounts

# An access point alias (`name-<random>-s3alias`, Object Lambda `--ol-s3`), a multi-region access
# point (`<alias>.mrap`) or an ARN stands in for a bucket of whichever account created it: anyone
# can create an access point called `acme-x` in their own account, so such names count as own
# only when listed exactly, never by a `prefix*` pattern.
bucket_stand_in(bucket) if {
	some suffix in config.aws_s3_stand_in_suffixes
	endswith(bucket, suffix)
}

bucket_stand_in(bucket) if startswith(bucket, "arn:")

own_bucket(bucket) if {
	not bucket_stand_in(bucket)
	lib.name_in(bucket, aws_buckets)
}

own_bucket(bucket) if {
	bucket_stand_in(bucket)
	bucket in aws_buckets
}

# The account bucket_accounts binds an own bucket to: an exact name first, then the longest
# matching pattern (lowest account on a tie, so the answer is always one). Stand-ins (access point
# aliases, ARNs) match exact entries only, as in own_bucket. Only the organisation's accounts
# count: an entry naming another account is ignored. Undefined: no entry names the bucket.
bucket_account(bucket) := account if {
	account := [e.account | some e in aws_bucket_accounts; e.bucket == bucket; own_account(e.account)][0]
} else := account if {
	by_length := sort([[0 - count(e.bucket), e.account] |
		some e in aws_bucket_accounts
		not bucket_stand_in(bucket)
		lib.name_in(bucket, [e.bucket])
		own_account(e.account)
	])
	account := by_length[0][1]
}

readable_bucket(bucket) if own_bucket(bucket)

readable_bucket(bucket) if {
	not bucket_stand_in(bucket)
	lib.name_in(bucket, aws_readable_buckets)
}

readable_bucket(bucket) if {
	bucket_stand_in(bucket)
	bucket in aws_readable_buckets
}

# "*" reads any bucket, stand-ins included.
readable_bucket(_) if "*" in aws_readable_buckets

# An access point ARN (`arn:aws:s3:<region>:<account>:accesspoint/<name>`, an Object Lambda one)
# of an own account: the organisation created it.
readable_bucket(bucket) if {
	startswith(bucket, "arn:")
	own_account(split(bucket, ":")[4])
}

# The request path with percent-encoded unreserved characters and slashes decoded (once, as the
# server will) and lower-cased, for matching names an agent could otherwise spell as %2Eenv.
# Most paths have no escape at all: they skip the replacement.
decoded_path := lower(strings.replace_n(config.percent_decoding, input.request.path)) if {
	contains(input.request.path, "%")
} else := lower(input.request.path)
