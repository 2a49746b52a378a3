# METADATA
# title: Cloud APIs (AWS)
# description: >-
#   AWS calls are re-signed with the pod's short-lived credentials (aws-sts), so the library must
#   know what is the organisation's: S3 writes and copies go only to its buckets and reads of
#   other buckets only where data allows; AssumeRole only into its accounts (held unless the role
#   is listed); resources of other accounts named anywhere in a request (ARNs, queue URLs, account ids: buses,
#   streams, keys, functions, tables, access points, ...) are denied, and a request whose resources
#   could not be read is held; secrets stores and KMS decrypt are held; IAM writes denied (or held); unsigned
#   requests are denied except reads of buckets listed for anonymous access; only listed services,
#   regions and endpoints are reachable; destructive actions are held. A request to an AWS host
#   that the sidecar could not classify is denied.
# schemas:
#   - input: schema.input
#   - data.organisation: schema.organisation
package sluice.cloud

import data.config
import data.organisation
import data.sluice.lib
import data.sluice.org

aws_host if {
	some suffix in organisation.aws.host_suffixes
	endswith(input.request.host, concat("", [".", suffix]))
}

aws := input.facts.aws

credential := object.union({"provider": "aws-sts"}, object.union(bucket_owner_check, source_bucket_owner_check))

# S3 bucket names are global: `acme-*` also matches a bucket someone else created, which the
# organisation's credentials may be allowed to write by that account's bucket policy. For a bucket
# the organisation counts as its own the sidecar makes S3 check the owner
# (x-amz-expected-bucket-owner = the bucket's account from the organisation model, else the
# account of the credentials it signs with; S3 answers 403 when the bucket is another
# account's). Foreign buckets the organisation may read get no check.
# CreateBucket takes no owner (the bucket does not exist yet; a taken name fails anyway).
bucket_owner_check := {"expected_bucket_owner": expected_owner(aws.bucket)} if {
	aws.service == "s3"
	aws.action != "s3:CreateBucket"
	org.own_bucket(aws.bucket)
} else := {}

source_bucket_owner_check := {"expected_source_bucket_owner": expected_owner(aws.copy_source_bucket)} if {
	aws.service == "s3"
	org.own_bucket(aws.copy_source_bucket)
} else := {}

expected_owner(bucket) := account if {
	account := org.bucket_account(bucket)
} else := "credential"

# Actions are "service:Action"; the lists apply to the Action part.
action_name := split(aws.action, ":")[1]

with_credential(decision) := object.union(decision, {"credential": credential})

# --- what is reachable at all -----------------------------------------------------------------

listed_endpoint if lib.host_in(input.request.host, org.aws_endpoints)

listed_service if aws.service in org.aws_services

region_allowed if count(org.aws_regions) == 0

region_allowed if aws.region in org.aws_regions

verdicts contains lib.verdict(90, lib.deny(
	"cloud.service_not_listed",
	concat("", [aws.service, " (", input.request.host, ") is not an AWS service the organisation lists"]),
)) if {
	aws_host
	aws.action
	not listed_service
	not listed_endpoint
}

# Individual endpoints (an API Gateway execute-api host, ...) the organisation lists: allowed and
# re-signed, whether or not the sidecar can name an action there.
verdicts contains lib.verdict(45, with_credential(lib.allow("cloud.endpoint", concat("", [input.request.host, " is an AWS endpoint the organisation lists"])))) if {
	aws_host
	listed_endpoint
	input.request.method != "CONNECT"
}

verdicts contains lib.verdict(90, lib.deny("cloud.region_denied", concat("", [aws.action, " in ", aws.region, ": not a region the organisation uses"]))) if {
	aws_host
	aws.action
	not region_allowed
}

# --- unsigned requests ------------------------------------------------------------------------

# Absent means unknown and counts as unsigned.
unsigned if not aws.signed

s3 if aws.service in {"s3", "s3express"}

s3_read if {
	s3
	some prefix in config.aws_s3_read_prefixes
	startswith(action_name, prefix)
}

anonymous_read if {
	unsigned
	s3_read
	lib.name_in(aws.bucket, org.aws_anonymous_buckets)
}

# 95: an unsigned request is refused as such, before whose bucket it names matters.
verdicts contains lib.verdict(95, lib.deny(
	"cloud.unsigned_denied",
	concat("", ["unsigned ", aws.action, " on ", input.request.host, ": AWS requests must be signed (anonymous reads only of listed buckets)"]),
)) if {
	aws_host
	aws.action
	unsigned
	not anonymous_read
}

# Public data read without credentials: nothing is signed or injected.
verdicts contains lib.verdict(55, lib.allow("cloud.anonymous_read", concat("", ["anonymous ", aws.action, " of ", aws.bucket, " is allowed"]))) if {
	aws_host
	anonymous_read
}

# --- S3: own and foreign buckets --------------------------------------------------------------

verdicts contains lib.verdict(90, lib.deny(
	"cloud.s3_foreign_write_denied",
	concat("", [aws.action, " to ", aws.bucket, ": not a bucket of the organisation"]),
)) if {
	aws_host
	aws.bucket
	s3
	not s3_read
	not org.own_bucket(aws.bucket)
}

verdicts contains lib.verdict(90, lib.deny(
	"cloud.s3_foreign_read_denied",
	concat("", [aws.action, " from ", aws.bucket, ": not a bucket of the organisation nor one it lists as readable"]),
)) if {
	aws_host
	aws.bucket
	s3_read
	not org.readable_bucket(aws.bucket)
	not anonymous_read
}

copy if aws.action in config.aws_s3_copy_actions

copy_source_readable if org.readable_bucket(aws.copy_source_bucket)

# A copy reads its source server-side: the source must be readable like a GET would have to be
# (an unreadable x-amz-copy-source header names no bucket and is denied too).
verdicts contains lib.verdict(90, lib.deny(
	"cloud.s3_copy_source_denied",
	concat("", [aws.action, " from ", object.get(aws, "copy_source_bucket", "an unreadable source"), ": not a bucket the organisation may read"]),
)) if {
	aws_host
	copy
	not copy_source_readable
}

# --- STS: whose roles ---------------------------------------------------------------------------

assume_role if aws.action in config.aws_assume_role_actions

own_role_account if org.own_account(aws.role_account)

listed_role if lib.name_in(aws.role_arn, org.aws_roles)

role_name := object.get(aws, "role_arn", "a role the sidecar could not read")

verdicts contains lib.verdict(90, lib.deny(
	"cloud.assume_role_foreign_denied",
	concat("", [aws.action, " into ", role_name, ": not an account of the organisation"]),
)) if {
	aws_host
	assume_role
	not own_role_account
}

verdicts contains lib.verdict(80, with_credential(lib.hold("cloud.assume_role_held", concat("", [aws.action, " into ", role_name, " needs approval"]), "once"))) if {
	aws_host
	assume_role
	own_role_account
	not listed_role
}

# --- queues and topics: whose -------------------------------------------------------------------

# A queue or topic of another account that allows anyone to send receives whatever the pod's
# credentials send it.
verdicts contains lib.verdict(90, lib.deny(
	"cloud.foreign_resource_denied",
	concat("", [aws.action, " names a queue or topic of account ", aws.resource_account, ", not one of the organisation's"]),
)) if {
	aws_host
	aws.resource_account
	not org.own_account(aws.resource_account)
}

# Any request whose resources name another account: an EventBridge bus, Kinesis stream, KMS key,
# Lambda function, DynamoDB table, Step Functions state machine, log destination, S3 access point,
# replication or notification target of an account the organisation does not list. The pod's
# credentials make the call; a resource policy of that account that lets anyone in decides the rest.
foreign_accounts contains account if {
	some account in aws.resource_accounts
	not org.own_account(account)
}

# S3 reads are judged by the bucket rules (readable_buckets may name another account's data).
foreign_account_exempt if {
	s3_read
	org.readable_bucket(aws.bucket)
}

verdicts contains lib.verdict(90, lib.deny(
	"cloud.foreign_resource_denied",
	concat("", [aws.action, " names a resource of account ", concat(", ", sort([a | some a in foreign_accounts])), ", not one of the organisation's"]),
)) if {
	aws_host
	count(foreign_accounts) > 0
	not foreign_account_exempt
	not assume_role # its own rule names the role
}

# The sidecar reads a parameter body (JSON, query-protocol form, CBOR, S3 configuration XML) whole
# to name its resources; one too large for its facts buffer (facts.maxAwsFormBytes) or unreadable
# leaves them unknown: held rather than guessed, reads included (a read's parameters reach the
# account that owns the resource too). 75: below the holds that say more (a secret read, a
# destructive action), above every allow.
verdicts contains lib.verdict(75, with_credential(lib.hold(
	"cloud.resource_unknown_held",
	concat("", [aws.action, ": the sidecar could not read which resources it names (body too large or unreadable); it needs approval"]),
	"once",
))) if {
	aws_host
	aws.action
	not aws.resource_accounts
}

# --- sharing: making the organisation's data reachable from outside ------------------------------

# Subscriptions to endpoints (an HTTPS URL, an e-mail address), API destinations, permissions and
# grants for other principals, ACLs, website hosting: the data then leaves without another request
# through the sidecar. Held. An S3 write that grants access by header (a canned ACL other than a
# private one, any x-amz-grant-*) is the same thing.
share if aws.action in config.aws_share_actions

share if {
	s3
	acl := input.request.headers["x-amz-acl"]
	not lower(acl) in config.aws_s3_private_acls
}

share if {
	s3
	some name, _ in input.request.headers
	startswith(name, "x-amz-grant-")
}

verdicts contains lib.verdict(80, with_credential(lib.hold(
	"cloud.share_held",
	concat("", [aws.action, " makes data reachable from outside the organisation's accounts (a subscription, destination, permission, grant or ACL); it needs approval"]),
	"once",
))) if {
	aws_host
	aws.action
	share
}

resource_send if aws.action in config.aws_resource_send_actions

# Sending where the sidecar could not tell whose queue or topic it is (a body too large to read
# whole, an SMS number instead of a topic) is held rather than guessed.
verdicts contains lib.verdict(80, with_credential(lib.hold(
	"cloud.resource_unknown_held",
	concat("", [aws.action, ": the queue or topic it sends to could not be read; sending needs approval"]),
	"once",
))) if {
	aws_host
	resource_send
	not aws.resource_account
}

# --- secrets stores and decryption --------------------------------------------------------------

secret_read if aws.action in config.aws_secret_read_actions

# WithDecryption absent (unknown) counts as true.
secret_read if {
	aws.action in config.aws_decrypting_parameter_actions
	not aws.with_decryption == false
}

verdicts contains lib.verdict(80, with_credential(lib.hold("cloud.secret_read_held", concat("", [aws.action, " in ", aws.region, " reads a secret and needs approval"]), "once"))) if {
	aws_host
	secret_read
}

# --- IAM ------------------------------------------------------------------------------------------

iam_write if {
	aws.service == "iam"
	not iam_read
}

iam_read if {
	some prefix in config.aws_iam_read_prefixes
	startswith(action_name, prefix)
}

verdicts contains lib.verdict(90, lib.deny("cloud.iam_write_denied", concat("", [aws.action, " changes identities or their permissions"]))) if {
	aws_host
	iam_write
	organisation.aws.iam_writes == "deny"
}

verdicts contains lib.verdict(85, with_credential(lib.hold("cloud.iam_write_held", concat("", [aws.action, " changes identities or their permissions and needs approval"]), "once"))) if {
	aws_host
	iam_write
	organisation.aws.iam_writes == "hold"
}

# --- destructive actions and the rest -----------------------------------------------------------

destructive if {
	some prefix in config.aws_destructive_action_prefixes
	startswith(action_name, prefix)
}

# PutBucketPolicy, AttachRolePolicy, SetIdentityPoolRoles' policies, ...
destructive if {
	endswith(action_name, "Policy")
	some verb in config.aws_policy_change_verbs
	startswith(action_name, verb)
}

verdicts contains lib.verdict(80, with_credential(lib.hold("cloud.destructive_held", concat("", [aws.action, " in ", aws.region, " is destructive and needs approval"]), "once"))) if {
	aws_host
	destructive
}

# Object data is passed unmasked: clients check its length and checksum (ETag), which a masked
# body breaks. Secrets inside S3 objects are outside what response masking can fix.
mask_for_action := [] if aws.action in config.aws_unmasked_actions

else := config.mask_rules

verdicts contains lib.verdict(50, object.union(lib.allow("cloud.aws", concat("", [aws.action, " is allowed"])), {"credential": credential, "mask": mask_for_action})) if {
	aws_host
	aws.action
	not destructive
}

verdicts contains lib.verdict(40, lib.deny("cloud.unclassified", "AWS request could not be classified (no service/action)")) if {
	aws_host
	not input.facts.aws
	input.request.method != "CONNECT"
}
