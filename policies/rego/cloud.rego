# METADATA
# title: Cloud APIs (AWS)
# description: >-
#   AWS calls are re-signed with short-lived credentials (aws-sts); destructive actions are held.
#   A request to an AWS host that the sidecar could not classify is denied.
# schemas:
#   - input: schema.input
package sluice.cloud

import data.config
import data.sluice.lib

aws_host if {
	some suffix in config.aws_host_suffixes
	endswith(input.request.host, concat("", [".", suffix]))
}

aws := input.facts.aws

credential := {"provider": "aws-sts"}

# Actions are "service:Action"; the lists apply to the Action part.
action_name := split(aws.action, ":")[1]

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

verdicts contains lib.verdict(80, object.union(
	lib.hold("cloud.destructive_held", concat("", [aws.action, " in ", aws.region, " is destructive and needs approval"]), "once"),
	{"credential": credential},
)) if {
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
