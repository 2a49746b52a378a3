# METADATA
# title: Kubernetes API
# description: >-
#   Reads are allowed with a short-lived token; Secret reads and writes are held; exec, attach,
#   port-forward and proxy are denied (they open channels around the gateway), in the pod's own
#   namespace too: through the legacy proxy verb, through an aggregated API's console, and as any
#   upgraded stream to the API server. Requests into a namespace other than the pod's own are
#   denied unless the organisation lists it, and so are reads across all namespaces (a list or
#   watch of a namespaced resource without a namespace) unless it lists "*". Impersonation
#   headers are denied.
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

# Subresources that carry a stream to a process, a port or an endpoint: the core ones and the
# console-style ones aggregated APIs add (KubeVirt's console, vnc, usbredir, portforward).
channel_subresources := {"exec", "attach", "portforward", "proxy", "console", "vnc", "usbredir", "serialconsole"}

credential := {"provider": "kubernetes"}

# Helper rules, not `not x in s`: with x undefined that expression is undefined, not true.
channel if k8s.subresource in channel_subresources

# The legacy proxy verb (/api/v1/proxy/namespaces/x/services/y/...) names no subresource.
channel if k8s.verb == "proxy"

# Any upgraded stream to the API server (exec, attach, port-forward over WebSocket or SPDY, an
# aggregated API's console) is a channel, whatever its path says.
channel if {
	api_host
	input.facts.upgrade
}

channel_name := k8s.subresource if k8s.subresource in channel_subresources

else := "the proxy verb" if k8s.verb == "proxy"

else := concat("", ["an upgrade to ", input.facts.upgrade.protocol])

read_verb if k8s.verb in read_verbs

target := concat("", [k8s.verb, " ", object.get(k8s, "namespace", "*"), "/", k8s.resource])

verdicts contains lib.verdict(90, lib.deny("k8s.channel_denied", concat("", [channel_name, " on ", object.get(object.get(input.facts, "k8s", {}), "resource", "the API server"), " opens a channel around the gateway"]))) if {
	api_host
	channel
}

# Resources that are not namespaced. A namespaced resource asked for without a namespace is a
# read (or watch) across every namespace, foreign ones included. An unknown resource (a custom
# one) without a namespace counts as namespaced: fail closed.
cluster_scoped_resources := {
	"namespaces", "nodes", "persistentvolumes", "componentstatuses",
	"clusterroles", "clusterrolebindings", "customresourcedefinitions", "apiservices",
	"storageclasses", "csidrivers", "csinodes", "volumeattachments", "volumeattributesclasses",
	"mutatingwebhookconfigurations", "validatingwebhookconfigurations",
	"validatingadmissionpolicies", "validatingadmissionpolicybindings",
	"mutatingadmissionpolicies", "mutatingadmissionpolicybindings",
	"priorityclasses", "runtimeclasses", "certificatesigningrequests", "clustertrustbundles",
	"flowschemas", "prioritylevelconfigurations", "ingressclasses", "ipaddresses", "servicecidrs",
	"tokenreviews", "selfsubjectreviews", "subjectaccessreviews", "selfsubjectaccessreviews",
	"selfsubjectrulesreviews", "deviceclasses", "resourceslices",
}

all_namespaces if {
	k8s.resource
	not k8s.namespace
	not k8s.resource in cluster_scoped_resources
}

verdicts contains lib.verdict(90, lib.deny(
	"k8s.all_namespaces_denied",
	concat("", [k8s.verb, " of ", k8s.resource, " across all namespaces reaches namespaces other than the pod's own (", input.pod.namespace, ")"]),
)) if {
	api_host
	all_namespaces
	not "*" in org.kubernetes_namespaces
}

# Impersonate-User/-Group/-Uid/-Extra-*: the API server would act as someone else (RBAC allowing).
impersonation if {
	some name, _ in input.request.headers
	startswith(name, "impersonate-")
}

verdicts contains lib.verdict(90, lib.deny("k8s.impersonation_denied", "Kubernetes API requests may not impersonate another user, group or service account")) if {
	api_host
	impersonation
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
