package sluice.llm_test

import data.sluice.lib_test
import data.sluice.llm

inference(host, path, model) := lib_test.with_facts("POST", host, path, {"llm": {"provider": "openai", "endpoint": "chat.completions", "operation": "inference", "model": model, "prompt_bytes": 10}})

with_headers(inp, headers) := object.union(inp, {"request": {"headers": headers}})

codes(vs) := {v.decision.code | some v in vs}

top(vs) := [v.decision.code | some v in vs; v.priority == max({w.priority | some w in vs})][0]

test_openai_allowed_with_dlp if {
	vs := llm.verdicts with input as inference("api.openai.com", "/v1/chat/completions", "gpt-5")
	codes(vs) == {"llm.allowed"}
	some v in vs
	v.decision.dlp == "mask"
	contains(v.decision.reason, "gpt-5")
	not v.decision.credential
}

test_unknown_model_named_in_reason if {
	inp := lib_test.with_facts("POST", "api.anthropic.com", "/v1/messages", {"llm": {"provider": "anthropic", "endpoint": "messages", "operation": "inference", "prompt_bytes": 10}})
	vs := llm.verdicts with input as inp
	some v in vs
	v.decision.code == "llm.allowed"
	contains(v.decision.reason, "unknown model")
}

test_model_not_listed_denied if {
	vs := llm.verdicts with input as inference("api.openai.com", "/v1/chat/completions", "gpt-5")
		with data.organisation.llm.providers as [{"name": "openai", "hosts": ["api.openai.com"], "models": ["gpt-4o*"], "key_header": "authorization"}]
	top(vs) == "llm.model_denied"
}

test_unknown_model_denied_where_models_are_listed if {
	inp := lib_test.with_facts("POST", "api.openai.com", "/v1/responses", {"llm": {"provider": "openai", "endpoint": "responses", "operation": "inference", "prompt_bytes": 1}})
	vs := llm.verdicts with input as inp
		with data.organisation.llm.providers as [{"name": "openai", "hosts": ["api.openai.com"], "models": ["gpt-4o*"], "key_header": "authorization"}]
	top(vs) == "llm.model_denied"
}

test_namespace_override_adds_a_model if {
	vs := llm.verdicts with input as inference("api.openai.com", "/v1/chat/completions", "o9-mini")
		with data.organisation.llm.providers as [{"name": "openai", "hosts": ["api.openai.com"], "models": ["gpt-*"], "key_header": "authorization"}]
		with data.organisation.namespaces as {"agents": {"llm": {"models": ["o9-*"]}}}
	top(vs) == "llm.allowed"
}

test_models_listing_is_a_read if {
	inp := lib_test.with_facts("GET", "api.anthropic.com", "/v1/models", {"llm": {"provider": "anthropic", "endpoint": "models", "operation": "models", "prompt_bytes": 0}})
	codes(llm.verdicts) == {"llm.models"} with input as inp
}

test_file_upload_denied if {
	inp := lib_test.with_facts("POST", "api.openai.com", "/v1/files", {"llm": {"provider": "openai", "endpoint": "files", "operation": "files", "prompt_bytes": 100}})
	vs := llm.verdicts with input as inp
	top(vs) == "llm.operation_denied"
	some v in vs
	contains(v.decision.reason, "files")
}

test_unrecognised_path_denied if {
	top(llm.verdicts) == "llm.operation_denied" with input as lib_test.request("POST", "api.openai.com", "/v1/fine_tuning/jobs")
}

test_get_of_stored_file_denied if {
	top(llm.verdicts) == "llm.operation_denied" with input as lib_test.request("GET", "api.openai.com", "/v1/files/file-1/content")
}

test_put_and_delete_denied if {
	every method in ["PUT", "DELETE", "PATCH"] {
		top(llm.verdicts) == "llm.method_denied" with input as lib_test.request(method, "api.openai.com", "/v1/files/file-1")
	}
}

test_agent_key_refused if {
	inp := with_headers(inference("api.openai.com", "/v1/chat/completions", "gpt-5"), {"authorization": "[redacted]"})
	vs := llm.verdicts with input as inp
	top(vs) == "llm.agent_key_refused"
	some v in vs
	contains(v.decision.reason, "authorization")
}

test_agent_key_in_another_header_refused if {
	inp := with_headers(inference("api.anthropic.com", "/v1/messages", "claude"), {"x-api-key": "[redacted]"})
	top(llm.verdicts) == "llm.agent_key_refused" with input as inp
}

injected := [{
	"name": "openai", "hosts": ["api.openai.com"], "models": ["*"], "key_header": "authorization",
	"credential": {"provider": "static-secret", "secret": "openai"},
}]

test_injected_credential_replaces_the_agent_key if {
	inp := with_headers(inference("api.openai.com", "/v1/chat/completions", "gpt-5"), {"authorization": "[redacted]"})
	vs := llm.verdicts with input as inp with data.organisation.llm.providers as injected
	top(vs) == "llm.allowed"
	some v in vs
	v.decision.credential == {"provider": "static-secret", "secret": "openai"}
}

test_injected_credential_does_not_cover_other_key_headers if {
	inp := with_headers(inference("api.openai.com", "/v1/chat/completions", "gpt-5"), {"api-key": "[redacted]"})
	top(llm.verdicts) == "llm.agent_key_refused" with input as inp with data.organisation.llm.providers as injected
}

test_connect_left_to_network if {
	count(llm.verdicts) == 0 with input as lib_test.request("CONNECT", "api.openai.com", "")
}

test_other_host_ignored if {
	count(llm.verdicts) == 0 with input as inference("llm.evil.example", "/v1/chat/completions", "gpt-5")
}
