# METADATA
# title: Kubernetes API
# description: >-
#   Reads are allowed with a short-lived token; Secret reads and writes are held; exec, attach,
#   port-forward and proxy are denied (they open channels around the gateway).
# schemas:
#   - input: schema.input
package sluice.kubernetes

import data.config
import data.sluice.lib

api_host if lib.host_in(input.request.host, config.kubernetes_hosts)

k8s := input.facts.k8s

read_verbs := {"get", "list", "watch"}

channel_subresources := {"exec", "attach", "portforward", "proxy"}

credential := {"provider": "kubernetes"}

# Helper rules, not `not x in s`: with x undefined that expression is undefined, not true.
channel if k8s.subresource in channel_subresources

read_verb if k8s.verb in read_verbs

target := sprintf("%s %s/%s", [k8s.verb, object.get(k8s, "namespace", "*"), k8s.resource])

verdicts contains lib.verdict(90, lib.deny("k8s.channel_denied", sprintf("%s on %s opens a channel around the gateway", [k8s.subresource, k8s.resource]))) if {
	api_host
	channel
}

verdicts contains lib.verdict(80, object.union(
	lib.hold("k8s.secret_read_held", sprintf("reading Secrets (%s) needs approval", [target]), "once"),
	{"credential": credential},
)) if {
	api_host
	k8s.resource == "secrets"
	read_verb
}

verdicts contains lib.verdict(50, object.union(lib.allow("k8s.read", sprintf("%s is a read", [target])), {"credential": credential})) if {
	api_host
	read_verb
	k8s.resource != "secrets"
	not channel
}

verdicts contains lib.verdict(80, object.union(
	lib.hold("k8s.write_held", sprintf("%s changes the cluster and needs approval", [target]), "once"),
	{"credential": credential},
)) if {
	api_host
	not read_verb
	not channel
}

# Discovery (/version, /api, /apis) carries no facts; it is a read.
verdicts contains lib.verdict(40, object.union(lib.allow("k8s.discovery", "API discovery is a read"), {"credential": credential})) if {
	api_host
	not input.facts.k8s
	input.request.method == "GET"
}
