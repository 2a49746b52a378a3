# METADATA
# title: sluice default policy
# description: >-
#   The entrypoint (sluice/decision). Each concern package proposes verdicts; the highest
#   priority wins; an allowed read of a credential-looking path, or of file content that names no
#   path (a blob by id, a paste, a code search), becomes a hold; anything no
#   concern recognises is denied.
# schemas:
#   - input: schema.input
package sluice

import data.config
import data.sluice.cloud
import data.sluice.git
import data.sluice.kubernetes
import data.sluice.llm
import data.sluice.network
import data.sluice.paths
import data.sluice.registries

# A concern's verdicts are only computed for a host it recognises (every one of its rules requires
# that anyway): the WASM runtime would otherwise run each of its rule bodies for every request.
git_verdicts := git.verdicts if git.applies

else := set()

registries_verdicts := registries.verdicts if registries.registry_host

else := set()

kubernetes_verdicts := kubernetes.verdicts if kubernetes.api_host

else := set()

cloud_verdicts := cloud.verdicts if cloud.aws_host

else := set()

llm_verdicts := llm.verdicts if llm.llm_host

else := set()

verdicts := ((((network.verdicts | git_verdicts) | registries_verdicts) | kubernetes_verdicts) | cloud_verdicts) | llm_verdicts

top_priority := max({v.priority | some v in verdicts})

# Sets iterate in sorted order, so equal priorities resolve deterministically.
top := [v.decision | some v in verdicts; v.priority == top_priority][0]

default decision := {
	"allow": false,
	"code": "net.not_allowlisted",
	"reason": "destination is not on any allow-list",
}

# METADATA
# entrypoint: true
decision := held_if_unchecked_content(top)

# An allowed read that reads a credential-looking path, or file content the policy cannot check by
# path (sluice.paths.content_hold), becomes a hold; a deny or an existing hold stays as it is.
held_if_unchecked_content(d) := object.union(d, {
	"code": hold.code,
	"reason": hold.reason,
	"require_approval": {"reason": hold.reason, "scope": "once", "ttl": config.approval_ttl},
}) if {
	d.allow
	not d.require_approval
	input.request.method != "CONNECT"
	hold := paths.content_hold
} else := d
