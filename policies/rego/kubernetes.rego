# METADATA
# title: Kubernetes API
# description: >-
#   Reads are allowed with a short-lived token; Secret reads and writes are held; exec, attach,
#   port-forward and proxy are denied (they open channels around the gateway). Requests into a
#   namespace other than the pod's own are denied unless the organisation lists it.
# schemas:
#   - input: schema.input
#   - data.organisation: schema.organisation
package sluice.kubernetes

import data.organisation
import data.sluice.lib
import data.sluice.org

api_host if lib.host_in(input.request.host, organisation.kubernetes.api_servers)

k8s := input.facts.k8s

read_verbs := {"get", "list", "watch"}

channel_subresources := {"exec", "attach", "portforward", "proxy"}

credential := {"provider": "kubernetes"}

# Helper rules, not `not x in s`: with x undefined that expression is undefined, not true.
channel if k8s.subresource in channel_subresources

read_verb if k8s.verb in read_verbs

target := concat("", [k8s.verb, " ", object.get(k8s, "namespace", "*"), "/", k8s.resource])

verdicts contains lib.verdict(90, lib.deny("k8s.channel_denied", concat("", [k8s.subresource, " on ", k8s.resource, " opens a channel around the gateway"]))) if {
	api_host
	channel
}

# Namespaced requests stay in the pod's own namespace and the ones the organisation lists;
# cluster-scoped requests (no namespace) are decided by verb as usual.
namespace_allowed if k8s.namespace == input.pod.namespace

namespace_allowed if lib.name_in(k8s.namespace, org.kubernetes_namespaces)

verdicts contains lib.verdict(90, lib.deny(
	"k8s.foreign_namespace_denied",
	concat("", ["namespace ", k8s.namespace, " is not the pod's own (", input.pod.namespace, ") nor listed by the organisation"]),
)) if {
	api_host
	k8s.namespace
	not namespace_allowed
}

verdicts contains lib.verdict(80, object.union(
	lib.hold("k8s.secret_read_held", concat("", ["reading Secrets (", target, ") needs approval"]), "once"),
	{"credential": credential},
)) if {
	api_host
	k8s.resource == "secrets"
	read_verb
}

verdicts contains lib.verdict(50, object.union(lib.allow("k8s.read", concat("", [target, " is a read"])), {"credential": credential})) if {
	api_host
	read_verb
	k8s.resource != "secrets"
	not channel
}

verdicts contains lib.verdict(80, object.union(
	lib.hold("k8s.write_held", concat("", [target, " changes the cluster and needs approval"]), "once"),
	{"credential": credential},
)) if {
	api_host
	not read_verb
	not channel
}

# Discovery carries no resource facts. Only the discovery paths qualify: any other GET without
# facts is a path the sidecar could not classify and stays denied.
path_segments := split(trim_prefix(trim_suffix(input.request.path, "/"), "/"), "/")

discovery_path if path_segments[0] in {"version", "openapi", "healthz", "livez", "readyz"}

# /api, /api/v1
discovery_path if {
	path_segments[0] == "api"
	count(path_segments) <= 2
}

# /apis, /apis/<group>, /apis/<group>/<version>
discovery_path if {
	path_segments[0] == "apis"
	count(path_segments) <= 3
}

verdicts contains lib.verdict(40, object.union(lib.allow("k8s.discovery", "API discovery is a read"), {"credential": credential})) if {
	api_host
	not input.facts.k8s
	input.request.method == "GET"
	discovery_path
}

verdicts contains lib.verdict(40, lib.deny("k8s.unclassified", "Kubernetes API request could not be classified")) if {
	api_host
	not input.facts.k8s
	not discovery_path
	input.request.method != "CONNECT"
}
