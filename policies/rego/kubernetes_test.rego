package sluice.kubernetes_test

import data.sluice.kubernetes
import data.sluice.lib_test

k8s(verb, resource, extra) := lib_test.with_facts("GET", "kubernetes.default.svc", "/api", {"k8s": object.union(
	{"verb": verb, "api_group": "", "api_version": "v1", "resource": resource, "namespace": "agents"},
	extra,
)})

codes(vs) := {v.decision.code | some v in vs}

test_list_pods_allowed_with_token if {
	vs := kubernetes.verdicts with input as k8s("list", "pods", {})
	codes(vs) == {"k8s.read"}
	some v in vs
	v.decision.credential.provider == "kubernetes"
}

test_secret_get_held if {
	codes(kubernetes.verdicts) == {"k8s.secret_read_held"} with input as k8s("get", "secrets", {"name": "db"})
}

test_secret_watch_held if {
	codes(kubernetes.verdicts) == {"k8s.secret_read_held"} with input as k8s("watch", "secrets", {})
}

test_exec_denied if {
	codes(kubernetes.verdicts) == {"k8s.channel_denied"} with input as k8s("create", "pods", {"subresource": "exec"})
}

test_portforward_denied if {
	codes(kubernetes.verdicts) == {"k8s.channel_denied"} with input as k8s("create", "pods", {"subresource": "portforward"})
}

test_delete_held if {
	codes(kubernetes.verdicts) == {"k8s.write_held"} with input as k8s("delete", "deployments", {"name": "web"})
}

test_discovery if {
	codes(kubernetes.verdicts) == {"k8s.discovery"} with input as lib_test.request("GET", "kubernetes.default.svc", "/version")
}

test_other_host_ignored if {
	count(kubernetes.verdicts) == 0 with input as k8s("list", "pods", {}) with input.request.host as "example.org"
}

test_discovery_subpath if {
	codes(kubernetes.verdicts) == {"k8s.discovery"} with input as lib_test.request("GET", "kubernetes.default.svc", "/apis/apps/v1")
}

test_unclassified_get_denied if {
	codes(kubernetes.verdicts) == {"k8s.unclassified"} with input as lib_test.request("GET", "kubernetes.default.svc", "/api/v1/namespaces/%zz/pods")
}

test_foreign_namespace_denied if {
	inp := k8s("list", "pods", {"namespace": "kube-system"})
	vs := kubernetes.verdicts with input as inp
	"k8s.foreign_namespace_denied" in codes(vs)
	some v in vs
	v.priority == 90
}

test_listed_namespace_allowed if {
	inp := k8s("list", "pods", {"namespace": "shared-tools"})
	codes(kubernetes.verdicts) == {"k8s.read"} with input as inp with data.organisation.kubernetes.namespaces as ["shared-*"]
}

test_cluster_scoped_read_allowed if {
	codes(kubernetes.verdicts) == {"k8s.read"} with input as lib_test.with_facts("GET", "kubernetes.default.svc", "/api/v1/nodes", {"k8s": {"verb": "list", "api_group": "", "api_version": "v1", "resource": "nodes"}})
}
