package sluice.cloud_test

import data.sluice.cloud
import data.sluice.lib_test

# A signed AWS request with the given facts (service and region filled in from the action), whose
# resources the sidecar read and found naming no account (resource_accounts [], as it reports for
# a request it read whole).
aws_with(host, action, extra) := lib_test.with_facts("POST", host, "/", {"aws": object.union(
	{"service": split(action, ":")[0], "region": "eu-west-1", "action": action, "signed": true, "resource_accounts": []},
	extra,
)})

aws(host, action) := aws_with(host, action, {})

s3(action, extra) := aws_with("s3.eu-west-1.amazonaws.com", action, extra)

codes(vs) := {v.decision.code | some v in vs}

# The highest-priority code, as sluice.decision would pick it.
top(vs) := [v.decision.code | some v in vs; v.priority == max({w.priority | some w in vs})][0]

test_get_object_allowed_with_sts if {
	vs := cloud.verdicts with input as s3("s3:GetObject", {"bucket": "acme-build-cache", "key": "a"})
	codes(vs) == {"cloud.aws"}
	some v in vs
	v.decision.credential.provider == "aws-sts"
}

test_delete_held if {
	top(cloud.verdicts) == "cloud.destructive_held" with input as s3("s3:DeleteBucket", {"bucket": "acme-x"})
}

test_terminate_held if {
	codes(cloud.verdicts) == {"cloud.destructive_held"} with input as aws("ec2.eu-west-1.amazonaws.com", "ec2:TerminateInstances")
}

test_describe_allowed if {
	codes(cloud.verdicts) == {"cloud.aws"} with input as aws("ec2.eu-west-1.amazonaws.com", "ec2:DescribeInstances")
}

test_unclassified_denied if {
	codes(cloud.verdicts) == {"cloud.unclassified"} with input as lib_test.request("POST", "lambda.us-east-1.amazonaws.com", "/")
}

test_lookalike_host_ignored if {
	count(cloud.verdicts) == 0 with input as aws("s3.evilamazonaws.com", "s3:GetObject")
}

test_object_data_is_not_masked if {
	vs := cloud.verdicts with input as s3("s3:GetObject", {"bucket": "acme-a", "key": "k"})
	some v in vs
	v.decision.code == "cloud.aws"
	v.decision.mask == []
}

test_api_responses_are_masked if {
	vs := cloud.verdicts with input as aws("ec2.eu-west-1.amazonaws.com", "ec2:DescribeInstances")
	some v in vs
	v.decision.mask == ["*"]
}

# --- services, endpoints, regions

test_unlisted_service_denied if {
	top(cloud.verdicts) == "cloud.service_not_listed" with input as aws("bedrock.eu-west-1.amazonaws.com", "bedrock:InvokeModel")
}

test_execute_api_unlisted_denied if {
	codes(cloud.verdicts) == {"cloud.unclassified"} with input as lib_test.request("POST", "a1b2c3.execute-api.eu-west-1.amazonaws.com", "/prod/upload")
}

test_execute_api_listed_allowed if {
	vs := cloud.verdicts with input as lib_test.request("POST", "a1b2c3.execute-api.eu-west-1.amazonaws.com", "/prod/x")
		with data.organisation.aws.endpoints as ["a1b2c3.execute-api.eu-west-1.amazonaws.com"]
	top(vs) == "cloud.endpoint"
	some v in vs
	v.decision.credential.provider == "aws-sts"
}

test_region_denied if {
	top(cloud.verdicts) == "cloud.region_denied" with input as aws_with("ec2.ap-south-1.amazonaws.com", "ec2:DescribeInstances", {"region": "ap-south-1"})
}

test_no_regions_means_any if {
	vs := cloud.verdicts with input as aws_with("ec2.ap-south-1.amazonaws.com", "ec2:DescribeInstances", {"region": "ap-south-1"})
		with data.organisation.aws.regions as []
	top(vs) == "cloud.aws"
}

# --- unsigned

test_unsigned_put_denied if {
	top(cloud.verdicts) == "cloud.unsigned_denied" with input as s3("s3:PutObject", {"bucket": "attacker-drop", "key": "k", "signed": false})
}

test_signature_unknown_counts_as_unsigned if {
	inp := lib_test.with_facts("GET", "s3.eu-west-1.amazonaws.com", "/acme-a/k", {"aws": {"service": "s3", "region": "eu-west-1", "action": "s3:GetObject", "bucket": "acme-a"}})
	top(cloud.verdicts) == "cloud.unsigned_denied" with input as inp
}

test_unsigned_read_of_listed_bucket_allowed_without_credential if {
	vs := cloud.verdicts with input as s3("s3:GetObject", {"bucket": "open-data", "key": "k", "signed": false})
		with data.organisation.aws.anonymous_buckets as ["open-*"]
	top(vs) == "cloud.anonymous_read"
	some v in vs
	v.decision.code == "cloud.anonymous_read"
	not v.decision.credential
}

test_unsigned_write_to_anonymous_bucket_denied if {
	vs := cloud.verdicts with input as s3("s3:PutObject", {"bucket": "open-data", "key": "k", "signed": false})
		with data.organisation.aws.anonymous_buckets as ["open-*"]
	top(vs) == "cloud.unsigned_denied"
}

# --- S3 own and foreign

test_put_to_own_bucket_allowed if {
	top(cloud.verdicts) == "cloud.aws" with input as s3("s3:PutObject", {"bucket": "acme-artifacts", "key": "k"})
}

test_put_to_foreign_bucket_denied if {
	top(cloud.verdicts) == "cloud.s3_foreign_write_denied" with input as s3("s3:PutObject", {"bucket": "attacker-drop", "key": "k"})
}

test_multipart_to_foreign_bucket_denied if {
	every action in ["s3:CreateMultipartUpload", "s3:UploadPart", "s3:CompleteMultipartUpload"] {
		top(cloud.verdicts) == "cloud.s3_foreign_write_denied" with input as s3(action, {"bucket": "attacker-drop", "key": "k"})
	}
}

test_acl_change_on_foreign_bucket_denied if {
	top(cloud.verdicts) == "cloud.s3_foreign_write_denied" with input as s3("s3:PutBucketAcl", {"bucket": "someone-else"})
}

test_read_of_foreign_bucket_denied if {
	top(cloud.verdicts) == "cloud.s3_foreign_read_denied" with input as s3("s3:GetObject", {"bucket": "someone-else", "key": "k"})
}

test_read_of_listed_foreign_bucket_allowed if {
	vs := cloud.verdicts with input as s3("s3:ListObjectsV2", {"bucket": "partner-share"})
		with data.organisation.aws.readable_buckets as ["partner-share"]
	top(vs) == "cloud.aws"
}

test_namespace_override_adds_a_bucket if {
	vs := cloud.verdicts with input as s3("s3:PutObject", {"bucket": "team-a-scratch", "key": "k"})
		with data.organisation.namespaces as {"agents": {"aws": {"buckets": ["team-a-*"]}}}
	top(vs) == "cloud.aws"
}

test_namespace_override_is_only_for_that_namespace if {
	vs := cloud.verdicts with input as s3("s3:PutObject", {"bucket": "team-a-scratch", "key": "k"})
		with data.organisation.namespaces as {"other": {"aws": {"buckets": ["team-a-*"]}}}
	top(vs) == "cloud.s3_foreign_write_denied"
}

test_copy_from_foreign_bucket_denied if {
	top(cloud.verdicts) == "cloud.s3_copy_source_denied" with input as s3("s3:CopyObject", {"bucket": "acme-a", "key": "k", "copy_source_bucket": "someone-else"})
}

test_copy_to_foreign_bucket_denied if {
	top(cloud.verdicts) == "cloud.s3_foreign_write_denied" with input as s3("s3:CopyObject", {"bucket": "attacker-drop", "key": "k", "copy_source_bucket": "acme-a"})
}

test_copy_without_readable_source_denied if {
	top(cloud.verdicts) == "cloud.s3_copy_source_denied" with input as s3("s3:UploadPartCopy", {"bucket": "acme-a", "key": "k"})
}

test_copy_between_own_buckets_allowed if {
	top(cloud.verdicts) == "cloud.aws" with input as s3("s3:CopyObject", {"bucket": "acme-a", "key": "k", "copy_source_bucket": "acme-b"})
}

# --- S3 bucket owner checks (bucket names are global: acme-* may be someone else's)

credential_of(vs) := [v.decision.credential | some v in vs; v.decision.code == top(vs)][0]

test_own_bucket_write_asks_s3_to_check_the_owner if {
	vs := cloud.verdicts with input as s3("s3:PutObject", {"bucket": "acme-exfil", "key": "k"})
	credential_of(vs) == {"provider": "aws-sts", "expected_bucket_owner": "credential"}
}

test_own_bucket_read_asks_s3_to_check_the_owner if {
	vs := cloud.verdicts with input as s3("s3:GetObject", {"bucket": "acme-build-cache", "key": "k"})
	credential_of(vs).expected_bucket_owner == "credential"
}

test_readable_foreign_bucket_gets_no_owner_check if {
	vs := cloud.verdicts with input as s3("s3:GetObject", {"bucket": "partner-share", "key": "k"})
		with data.organisation.aws.readable_buckets as ["partner-share"]
	credential_of(vs) == {"provider": "aws-sts"}
}

test_copy_between_own_buckets_checks_both_owners if {
	vs := cloud.verdicts with input as s3("s3:CopyObject", {"bucket": "acme-a", "key": "k", "copy_source_bucket": "acme-b"})
	credential_of(vs) == {"provider": "aws-sts", "expected_bucket_owner": "credential", "expected_source_bucket_owner": "credential"}
}

test_copy_from_readable_foreign_source_checks_only_the_destination if {
	vs := cloud.verdicts with input as s3("s3:CopyObject", {"bucket": "acme-a", "key": "k", "copy_source_bucket": "partner-share"})
		with data.organisation.aws.readable_buckets as ["partner-share"]
	credential_of(vs) == {"provider": "aws-sts", "expected_bucket_owner": "credential"}
}

test_create_bucket_gets_no_owner_check if {
	vs := cloud.verdicts with input as s3("s3:CreateBucket", {"bucket": "acme-new"})
	credential_of(vs) == {"provider": "aws-sts"}
}

test_list_buckets_and_other_services_get_no_owner_check if {
	vs := cloud.verdicts with input as s3("s3:ListBuckets", {})
	credential_of(vs) == {"provider": "aws-sts"}
	ws := cloud.verdicts with input as aws("dynamodb.eu-west-1.amazonaws.com", "dynamodb:GetItem")
	credential_of(ws) == {"provider": "aws-sts"}
}

bound_owner(bucket) := o if {
	bindings := [
		{"bucket": "acme-logs-*", "account": "210987654321"},
		{"bucket": "acme-logs-eu-*", "account": "333333333333"},
		{"bucket": "acme-logs-eu-main", "account": "123456789012"},
		{"bucket": "acme-x-*", "account": "999999999999"},
	]
	o := credential_of(cloud.verdicts) with input as s3("s3:PutObject", {"bucket": bucket, "key": "k"})
		with data.organisation.aws.bucket_accounts as bindings
		with data.organisation.aws.accounts as ["123456789012", "210987654321", "333333333333"]
}

test_bucket_accounts_bind_own_buckets_to_their_account if {
	bound_owner("acme-logs-us").expected_bucket_owner == "210987654321" # the pattern
	bound_owner("acme-logs-eu-1").expected_bucket_owner == "333333333333" # the longer pattern
	bound_owner("acme-logs-eu-main").expected_bucket_owner == "123456789012" # the exact name
	bound_owner("acme-other").expected_bucket_owner == "credential" # no entry: the signer's account
	bound_owner("acme-x-1").expected_bucket_owner == "credential" # an entry naming a foreign account is ignored
}

test_bucket_accounts_bind_the_copy_source_and_namespace_overrides_add if {
	vs := cloud.verdicts with input as s3("s3:CopyObject", {"bucket": "acme-a", "key": "k", "copy_source_bucket": "team-a-src"})
		with data.organisation.namespaces as {"agents": {"aws": {"buckets": ["team-a-*"], "accounts": ["210987654321"], "bucket_accounts": [{"bucket": "team-a-*", "account": "210987654321"}]}}}
	credential_of(vs) == {"provider": "aws-sts", "expected_bucket_owner": "credential", "expected_source_bucket_owner": "210987654321"}
}

# --- STS

sts(action, extra) := aws_with("sts.eu-west-1.amazonaws.com", action, extra)

test_assume_role_foreign_account_denied if {
	top(cloud.verdicts) == "cloud.assume_role_foreign_denied" with input as sts("sts:AssumeRole", {"role_arn": "arn:aws:iam::999999999999:role/x", "role_account": "999999999999"})
}

test_assume_role_unknown_account_denied if {
	top(cloud.verdicts) == "cloud.assume_role_foreign_denied" with input as sts("sts:AssumeRole", {})
}

test_assume_role_own_account_held if {
	vs := cloud.verdicts with input as sts("sts:AssumeRole", {"role_arn": "arn:aws:iam::123456789012:role/deploy", "role_account": "123456789012"})
	top(vs) == "cloud.assume_role_held"
	some v in vs
	v.decision.credential.provider == "aws-sts"
}

test_assume_listed_role_allowed if {
	vs := cloud.verdicts with input as sts("sts:AssumeRole", {"role_arn": "arn:aws:iam::123456789012:role/agent-readonly", "role_account": "123456789012"})
		with data.organisation.aws.roles as ["arn:aws:iam::123456789012:role/agent-*"]
	top(vs) == "cloud.aws"
}

test_get_caller_identity_allowed if {
	top(cloud.verdicts) == "cloud.aws" with input as sts("sts:GetCallerIdentity", {})
}

# --- secrets

test_secrets_manager_value_held if {
	vs := cloud.verdicts with input as aws("secretsmanager.eu-west-1.amazonaws.com", "secretsmanager:GetSecretValue")
	top(vs) == "cloud.secret_read_held"
	some v in vs
	v.decision.credential.provider == "aws-sts"
}

test_kms_decrypt_held if {
	top(cloud.verdicts) == "cloud.secret_read_held" with input as aws("kms.eu-west-1.amazonaws.com", "kms:Decrypt")
}

test_ssm_parameter_with_decryption_held if {
	top(cloud.verdicts) == "cloud.secret_read_held" with input as aws_with("ssm.eu-west-1.amazonaws.com", "ssm:GetParameters", {"with_decryption": true})
}

test_ssm_parameter_decryption_unknown_held if {
	top(cloud.verdicts) == "cloud.secret_read_held" with input as aws("ssm.eu-west-1.amazonaws.com", "ssm:GetParameter")
}

test_ssm_parameter_without_decryption_allowed if {
	top(cloud.verdicts) == "cloud.aws" with input as aws_with("ssm.eu-west-1.amazonaws.com", "ssm:GetParameter", {"with_decryption": false})
}

test_secret_listing_allowed if {
	top(cloud.verdicts) == "cloud.aws" with input as aws("secretsmanager.eu-west-1.amazonaws.com", "secretsmanager:ListSecrets")
}

# --- IAM

test_iam_write_denied if {
	top(cloud.verdicts) == "cloud.iam_write_denied" with input as aws("iam.amazonaws.com", "iam:CreateAccessKey")
}

test_policy_change_denied if {
	top(cloud.verdicts) == "cloud.iam_write_denied" with input as aws("iam.amazonaws.com", "iam:AttachRolePolicy")
}

test_iam_write_held_when_data_says_hold if {
	top(cloud.verdicts) == "cloud.iam_write_held" with input as aws("iam.amazonaws.com", "iam:TagRole")
		with data.organisation.aws.iam_writes as "hold"
}

test_iam_read_allowed if {
	top(cloud.verdicts) == "cloud.aws" with input as aws("iam.amazonaws.com", "iam:ListRoles")
}

# Calls that answer with fresh credentials hand out something usable without the sidecar.
test_credential_minting_held if {
	top(cloud.verdicts) == "cloud.secret_read_held" with input as sts("sts:GetFederationToken", {})
	top(cloud.verdicts) == "cloud.secret_read_held" with input as sts("sts:GetSessionToken", {})
}

test_send_to_foreign_queue_denied if {
	vs := cloud.verdicts with input as aws_with("sqs.eu-west-1.amazonaws.com", "sqs:SendMessage", {"resource_account": "999999999999"})
	top(vs) == "cloud.foreign_resource_denied"
}

test_publish_to_foreign_topic_denied if {
	top(cloud.verdicts) == "cloud.foreign_resource_denied" with input as aws_with("sns.eu-west-1.amazonaws.com", "sns:Publish", {"resource_account": "999999999999"})
}

test_receive_from_foreign_queue_denied if {
	top(cloud.verdicts) == "cloud.foreign_resource_denied" with input as aws_with("sqs.eu-west-1.amazonaws.com", "sqs:ReceiveMessage", {"resource_account": "999999999999"})
}

test_send_to_own_queue_allowed if {
	top(cloud.verdicts) == "cloud.aws" with input as aws_with("sqs.eu-west-1.amazonaws.com", "sqs:SendMessage", {"resource_account": "123456789012"})
}

test_send_to_unknown_queue_held if {
	top(cloud.verdicts) == "cloud.resource_unknown_held" with input as aws("sqs.eu-west-1.amazonaws.com", "sqs:SendMessageBatch")
	top(cloud.verdicts) == "cloud.resource_unknown_held" with input as aws("sns.eu-west-1.amazonaws.com", "sns:Publish")
}

test_list_queues_allowed if {
	top(cloud.verdicts) == "cloud.aws" with input as aws("sqs.eu-west-1.amazonaws.com", "sqs:ListQueues")
}

# --- any resource of another account (resource_accounts) -------------------------------------------

foreign(host, action) := aws_with(host, action, {"resource_accounts": ["999999999999"]})

own(host, action) := aws_with(host, action, {"resource_accounts": ["123456789012"]})

test_eventbridge_put_events_to_a_foreign_bus_denied if {
	vs := cloud.verdicts with input as foreign("events.eu-west-1.amazonaws.com", "events:PutEvents")
		with data.organisation.aws.services as ["events"]
	top(vs) == "cloud.foreign_resource_denied"
	some v in vs
	contains(v.decision.reason, "999999999999")
}

test_eventbridge_put_events_to_an_own_bus_allowed if {
	top(cloud.verdicts) == "cloud.aws" with input as own("events.eu-west-1.amazonaws.com", "events:PutEvents")
		with data.organisation.aws.services as ["events"]
}

test_kinesis_put_records_to_a_foreign_stream_denied if {
	top(cloud.verdicts) == "cloud.foreign_resource_denied" with input as foreign("kinesis.eu-west-1.amazonaws.com", "kinesis:PutRecords")
		with data.organisation.aws.services as ["kinesis"]
}

test_kinesis_put_record_to_an_own_stream_allowed if {
	top(cloud.verdicts) == "cloud.aws" with input as own("kinesis.eu-west-1.amazonaws.com", "kinesis:PutRecord")
		with data.organisation.aws.services as ["kinesis"]
}

test_lambda_invoke_of_a_foreign_function_denied if {
	top(cloud.verdicts) == "cloud.foreign_resource_denied" with input as foreign("lambda.eu-west-1.amazonaws.com", "lambda:InvokeFunction")
}

test_lambda_invoke_of_an_own_function_allowed if {
	top(cloud.verdicts) == "cloud.aws" with input as own("lambda.eu-west-1.amazonaws.com", "lambda:InvokeFunction")
}

test_kms_encrypt_with_a_foreign_key_denied if {
	top(cloud.verdicts) == "cloud.foreign_resource_denied" with input as foreign("kms.eu-west-1.amazonaws.com", "kms:Encrypt")
}

test_kms_generate_data_key_with_a_foreign_key_denied if {
	top(cloud.verdicts) == "cloud.foreign_resource_denied" with input as foreign("kms.eu-west-1.amazonaws.com", "kms:GenerateDataKey")
}

test_kms_decrypt_with_a_foreign_key_denied_not_held if {
	top(cloud.verdicts) == "cloud.foreign_resource_denied" with input as foreign("kms.eu-west-1.amazonaws.com", "kms:Decrypt")
}

test_kms_encrypt_with_an_own_key_allowed if {
	top(cloud.verdicts) == "cloud.aws" with input as own("kms.eu-west-1.amazonaws.com", "kms:Encrypt")
}

test_dynamodb_put_item_into_a_foreign_table_denied if {
	top(cloud.verdicts) == "cloud.foreign_resource_denied" with input as foreign("dynamodb.eu-west-1.amazonaws.com", "dynamodb:PutItem")
}

test_one_foreign_account_among_own_ones_denied if {
	inp := aws_with("events.eu-west-1.amazonaws.com", "events:PutEvents", {"resource_accounts": ["123456789012", "999999999999"]})
	top(cloud.verdicts) == "cloud.foreign_resource_denied" with input as inp with data.organisation.aws.services as ["events"]
}

test_namespace_override_account_is_own if {
	inp := object.union(foreign("kinesis.eu-west-1.amazonaws.com", "kinesis:PutRecord"), {"pod": {"namespace": "team-data"}})
	top(cloud.verdicts) == "cloud.aws" with input as inp
		with data.organisation.aws.services as ["kinesis"]
		with data.organisation.namespaces as {"team-data": {"aws": {"accounts": ["999999999999"]}}}
}

test_s3_put_through_a_foreign_access_point_denied if {
	# name-<account>.s3-accesspoint host: the bucket fact matches acme-*, the account does not.
	inp := s3("s3:PutObject", {"bucket": "acme-drop-999999999999", "key": "k", "resource_accounts": ["999999999999"]})
	top(cloud.verdicts) == "cloud.foreign_resource_denied" with input as inp
}

test_s3_read_through_a_readable_foreign_access_point_allowed if {
	inp := s3("s3:GetObject", {"bucket": "share-999999999999", "key": "k", "resource_accounts": ["999999999999"]})
	top(cloud.verdicts) == "cloud.aws" with input as inp with data.organisation.aws.readable_buckets as ["share-*"]
}

test_s3_put_with_a_foreign_kms_key_denied if {
	inp := s3("s3:PutObject", {"bucket": "acme-a", "key": "k", "resource_accounts": ["999999999999"]})
	top(cloud.verdicts) == "cloud.foreign_resource_denied" with input as inp
}

test_s3_replication_to_a_foreign_account_denied if {
	inp := s3("s3:PutBucketReplication", {"bucket": "acme-a", "resource_accounts": ["999999999999"]})
	top(cloud.verdicts) == "cloud.foreign_resource_denied" with input as inp
}

test_resources_unknown_write_held if {
	inp := lib_test.with_facts("POST", "dynamodb.eu-west-1.amazonaws.com", "/", {"aws": {"service": "dynamodb", "region": "eu-west-1", "action": "dynamodb:PutItem", "signed": true}})
	vs := cloud.verdicts with input as inp
	top(vs) == "cloud.resource_unknown_held"
	some v in vs
	v.decision.credential.provider == "aws-sts"
}

test_resources_unknown_read_held_too if {
	inp := lib_test.with_facts("POST", "dynamodb.eu-west-1.amazonaws.com", "/", {"aws": {"service": "dynamodb", "region": "eu-west-1", "action": "dynamodb:BatchGetItem", "signed": true}})
	top(cloud.verdicts) == "cloud.resource_unknown_held" with input as inp
}

test_resources_unknown_does_not_soften_a_foreign_bucket if {
	inp := lib_test.with_facts("PUT", "s3.eu-west-1.amazonaws.com", "/attacker/x", {"aws": {"service": "s3", "region": "eu-west-1", "action": "s3:PutObject", "bucket": "attacker", "signed": true}})
	top(cloud.verdicts) == "cloud.s3_foreign_write_denied" with input as inp
}

# --- bucket stand-ins: access point aliases, multi-region access points, ARNs ----------------------

test_access_point_alias_matching_an_own_pattern_is_foreign if {
	inp := s3("s3:PutObject", {"bucket": "acme-drop-hrzrlukc5m36ft7okagglf3gmwluquse1b-s3alias", "key": "k"})
	top(cloud.verdicts) == "cloud.s3_foreign_write_denied" with input as inp
}

test_access_point_alias_listed_exactly_is_own if {
	inp := s3("s3:PutObject", {"bucket": "acme-ap-hrzrlukc5m36ft7okagglf3gmwluquse1b-s3alias", "key": "k"})
	top(cloud.verdicts) == "cloud.aws" with input as inp
		with data.organisation.aws.buckets as ["acme-*", "acme-ap-hrzrlukc5m36ft7okagglf3gmwluquse1b-s3alias"]
}

test_object_lambda_alias_is_foreign if {
	inp := s3("s3:PutObject", {"bucket": "acme-olap-abcdefghijklmnopqrstuvwxyz012345--ol-s3", "key": "k"})
	top(cloud.verdicts) == "cloud.s3_foreign_write_denied" with input as inp
}

test_multi_region_access_point_is_foreign if {
	inp := s3("s3:PutObject", {"bucket": "mfzwi23gnjvgw.mrap.accesspoint", "key": "k"})
	top(cloud.verdicts) == "cloud.s3_foreign_write_denied" with input as inp with data.organisation.aws.buckets as ["*"]
}

test_copy_from_an_own_account_access_point_arn_allowed if {
	inp := s3("s3:CopyObject", {"bucket": "acme-a", "key": "k", "copy_source_bucket": "arn:aws:s3:eu-west-1:123456789012:accesspoint/reports"})
	top(cloud.verdicts) == "cloud.aws" with input as inp
}

test_copy_from_a_foreign_access_point_arn_denied if {
	inp := s3("s3:CopyObject", {"bucket": "acme-a", "key": "k", "copy_source_bucket": "arn:aws:s3:eu-west-1:999999999999:accesspoint/acme-loot"})
	top(cloud.verdicts) == "cloud.s3_copy_source_denied" with input as inp
}

test_copy_from_an_alias_matching_an_own_pattern_denied if {
	inp := s3("s3:CopyObject", {"bucket": "acme-a", "key": "k", "copy_source_bucket": "acme-x-hrzrlukc5m36ft7okagglf3gmwluquse1b-s3alias"})
	top(cloud.verdicts) == "cloud.s3_copy_source_denied" with input as inp
}

# --- sharing -----------------------------------------------------------------------------------------

with_headers(inp, headers) := object.union(inp, {"request": {"headers": headers}})

test_sns_subscription_held if {
	vs := cloud.verdicts with input as aws("sns.eu-west-1.amazonaws.com", "sns:Subscribe")
	top(vs) == "cloud.share_held"
	some v in vs
	v.decision.credential.provider == "aws-sts"
}

test_sns_subscription_of_a_foreign_queue_denied if {
	top(cloud.verdicts) == "cloud.foreign_resource_denied" with input as foreign("sns.eu-west-1.amazonaws.com", "sns:Subscribe")
}

test_kms_grant_held if {
	top(cloud.verdicts) == "cloud.share_held" with input as aws("kms.eu-west-1.amazonaws.com", "kms:CreateGrant")
}

test_s3_bucket_acl_held if {
	top(cloud.verdicts) == "cloud.share_held" with input as s3("s3:PutBucketAcl", {"bucket": "acme-a"})
}

test_s3_put_with_a_public_canned_acl_held if {
	inp := with_headers(s3("s3:PutObject", {"bucket": "acme-a", "key": "k"}), {"x-amz-acl": "public-read"})
	top(cloud.verdicts) == "cloud.share_held" with input as inp
}

test_s3_put_with_a_grant_header_held if {
	inp := with_headers(s3("s3:PutObject", {"bucket": "acme-a", "key": "k"}), {"x-amz-grant-read": "uri=\"http://acs.amazonaws.com/groups/global/AllUsers\""})
	top(cloud.verdicts) == "cloud.share_held" with input as inp
}

test_s3_put_with_a_private_acl_allowed if {
	inp := with_headers(s3("s3:PutObject", {"bucket": "acme-a", "key": "k"}), {"x-amz-acl": "bucket-owner-full-control"})
	top(cloud.verdicts) == "cloud.aws" with input as inp
}
