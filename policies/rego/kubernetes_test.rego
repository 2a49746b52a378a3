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

# Channels around the gateway: the shapes the subresource check missed are denied too (services/,
# pods/, nodes/ proxy, exec, attach and portforward were already, see the golden cases).
facts_of(facts) := lib_test.with_facts("GET", "kubernetes.default.svc", "/api", {"k8s": facts})

test_legacy_proxy_verb_denied if {
	# /api/v1/proxy/namespaces/agents/services/web/...: the verb is proxy, no subresource
	codes(kubernetes.verdicts) == {"k8s.channel_denied"} with input as k8s("proxy", "services", {"name": "web"})
}

test_upgraded_stream_denied_whatever_the_path if {
	inp := object.union(k8s("get", "pods", {"name": "p", "subresource": "log"}), {"facts": {"upgrade": {"protocol": "websocket"}}})
	codes(kubernetes.verdicts) == {"k8s.channel_denied"} with input as inp
}

test_upgrade_without_facts_denied if {
	inp := object.union(lib_test.request("GET", "kubernetes.default.svc", "/version"), {"facts": {"upgrade": {"protocol": "websocket"}}})
	"k8s.channel_denied" in codes(kubernetes.verdicts) with input as inp
}

test_aggregated_console_denied if {
	codes(kubernetes.verdicts) == {"k8s.channel_denied"} with input as k8s("get", "virtualmachineinstances", {"api_group": "subresources.kubevirt.io", "name": "vm", "subresource": "console"})
}

test_list_across_all_namespaces_denied if {
	codes(kubernetes.verdicts) == {"k8s.all_namespaces_denied", "k8s.read"} with input as facts_of({"verb": "list", "api_group": "", "api_version": "v1", "resource": "configmaps"})
	some v in kubernetes.verdicts with input as facts_of({"verb": "list", "api_group": "", "api_version": "v1", "resource": "configmaps"})
	v.decision.code == "k8s.all_namespaces_denied"
	v.priority == 90
}

test_watch_secrets_across_all_namespaces_denied if {
	"k8s.all_namespaces_denied" in codes(kubernetes.verdicts) with input as facts_of({"verb": "watch", "api_group": "", "api_version": "v1", "resource": "secrets"})
}

test_unknown_resource_without_namespace_counts_as_all_namespaces if {
	"k8s.all_namespaces_denied" in codes(kubernetes.verdicts) with input as facts_of({"verb": "list", "api_group": "example.com", "api_version": "v1", "resource": "widgets"})
}

test_all_namespaces_allowed_when_the_organisation_lists_any if {
	codes(kubernetes.verdicts) == {"k8s.read"} with input as facts_of({"verb": "list", "api_group": "", "api_version": "v1", "resource": "pods"})
		with data.organisation.kubernetes.namespaces as ["*"]
}

test_cluster_scoped_list_is_not_all_namespaces if {
	codes(kubernetes.verdicts) == {"k8s.read"} with input as facts_of({"verb": "list", "api_group": "rbac.authorization.k8s.io", "api_version": "v1", "resource": "clusterroles"})
}

test_impersonation_denied if {
	inp := object.union(k8s("list", "pods", {}), {"request": {"headers": {"impersonate-user": "system:admin"}}})
	"k8s.impersonation_denied" in codes(kubernetes.verdicts) with input as inp
}
