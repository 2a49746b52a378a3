package sluice.cloud_test

import data.sluice.cloud
import data.sluice.lib_test

aws(host, action) := lib_test.with_facts("POST", host, "/", {"aws": {"service": split(action, ":")[0], "region": "eu-west-1", "action": action}})

codes(vs) := {v.decision.code | some v in vs}

test_get_object_allowed_with_sts if {
	vs := cloud.verdicts with input as aws("s3.eu-west-1.amazonaws.com", "s3:GetObject")
	codes(vs) == {"cloud.aws"}
	some v in vs
	v.decision.credential.provider == "aws-sts"
}

test_delete_held if {
	codes(cloud.verdicts) == {"cloud.destructive_held"} with input as aws("s3.eu-west-1.amazonaws.com", "s3:DeleteBucket")
}

test_terminate_held if {
	codes(cloud.verdicts) == {"cloud.destructive_held"} with input as aws("ec2.eu-west-1.amazonaws.com", "ec2:TerminateInstances")
}

test_policy_change_held if {
	codes(cloud.verdicts) == {"cloud.destructive_held"} with input as aws("iam.amazonaws.com", "iam:AttachRolePolicy")
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
	vs := cloud.verdicts with input as aws("s3.eu-west-1.amazonaws.com", "s3:GetObject")
	some v in vs
	v.decision.mask == []
}

test_api_responses_are_masked if {
	vs := cloud.verdicts with input as aws("ec2.eu-west-1.amazonaws.com", "ec2:DescribeInstances")
	some v in vs
	v.decision.mask == ["*"]
}
