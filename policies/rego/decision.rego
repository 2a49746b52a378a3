# METADATA
# title: sluice default policy
# description: >-
#   The entrypoint (sluice/decision). Each concern package proposes verdicts; the highest
#   priority wins; an allowed read of a credential-looking path becomes a hold; anything no
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
decision := held_if_credential_path(top)

held_if_credential_path(d) := object.union(d, {
	"code": "paths.credential_read_held",
	"reason": reason,
	"require_approval": {"reason": reason, "scope": "once", "ttl": config.approval_ttl},
}) if {
	d.allow
	not d.require_approval
	input.request.method != "CONNECT"
	paths.credential_path
	reason := concat("", [input.request.path, " looks like a credential file; reading it needs approval"])
} else := d
