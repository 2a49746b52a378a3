package sluice.llm_test

import data.sluice.lib_test
import data.sluice.llm

test_openai_allowed_with_dlp if {
	vs := llm.verdicts with input as lib_test.with_facts("POST", "api.openai.com", "/v1/chat/completions", {"llm": {"provider": "openai", "endpoint": "chat.completions", "model": "gpt-5", "prompt_bytes": 10}})
	some v in vs
	v.decision.code == "llm.allowed"
	v.decision.dlp == "mask"
	contains(v.decision.reason, "gpt-5")
}

test_model_unknown_without_facts if {
	vs := llm.verdicts with input as lib_test.request("GET", "api.anthropic.com", "/v1/models")
	some v in vs
	contains(v.decision.reason, "unknown model")
}

test_connect_left_to_network if {
	count(llm.verdicts) == 0 with input as lib_test.request("CONNECT", "api.openai.com", "")
}
