# METADATA
# title: LLM APIs
# description: >-
#   Only inference reaches a model provider: a prompt in, a completion out, secrets in the prompt
#   masked before they leave (outbound DLP), for the models the organisation lists. Calls that
#   store data with the provider (files, uploads, fine-tunes, batches, assistants, threads,
#   vector stores) and PUT/DELETE are denied; listing models is a read. An API key the agent
#   brings is refused: prompts must not land in an account the organisation does not own. When
#   the provider has a credential, the sidecar injects it in place of the agent's.
# schemas:
#   - input: schema.input
#   - data.organisation: schema.organisation
package sluice.llm

import data.config
import data.organisation
import data.sluice.lib
import data.sluice.org

providers := [p | some p in organisation.llm.providers; lib.host_in(input.request.host, p.hosts)]

provider := providers[0]

llm_host if provider

llm := input.facts.llm

method := input.request.method

models := array.concat(provider.models, object.get(org.override, ["llm", "models"], []))

model := object.get(object.get(input.facts, "llm", {}), "model", "unknown model")

# An unknown model passes only where any model may.
model_allowed if "*" in models

model_allowed if lib.name_in(llm.model, models)

inference if {
	method == "POST"
	llm.operation == "inference"
}

models_read if {
	lib.is_read(method)
	llm.operation == "models"
}

# The provider's key header is replaced when the sidecar injects a credential; any other key
# header the agent sets reaches the provider as it is, so it is refused.
replaced(header) if {
	provider.credential
	header == provider.key_header
}

agent_key_headers := [h | some h in config.llm_key_headers; input.request.headers[h]; not replaced(h)]

with_credential(decision) := object.union(decision, {"credential": provider.credential}) if provider.credential

else := decision

request_line := concat("", [method, " ", input.request.path, " on ", input.request.host])

verdicts contains lib.verdict(90, lib.deny(
	"llm.agent_key_refused",
	concat("", [request_line, " carries its own API key (", concat(", ", agent_key_headers), "); only the organisation's credential is used"]),
)) if {
	llm_host
	method != "CONNECT"
	count(agent_key_headers) > 0
}

verdicts contains lib.verdict(90, lib.deny("llm.method_denied", concat("", [request_line, ": only inference and reads reach a model API"]))) if {
	llm_host
	not method in {"GET", "HEAD", "POST", "CONNECT"}
}

verdicts contains lib.verdict(90, lib.deny(
	"llm.operation_denied",
	concat("", [request_line, " (", object.get(object.get(input.facts, "llm", {}), "endpoint", "unrecognised"), ") is not inference; it would store data with ", provider.name]),
)) if {
	llm_host
	method in {"GET", "HEAD", "POST"}
	not inference
	not models_read
}

verdicts contains lib.verdict(90, lib.deny("llm.model_denied", concat("", [model, " is not a model the organisation allows on ", provider.name]))) if {
	llm_host
	inference
	not model_allowed
}

verdicts contains lib.verdict(50, with_credential(object.union(
	lib.allow("llm.allowed", concat("", [provider.name, " API call (", model, ") allowed with outbound masking"])),
	{"dlp": "mask"},
))) if {
	llm_host
	inference
}

verdicts contains lib.verdict(50, with_credential(lib.allow("llm.models", concat("", ["listing ", provider.name, " models is a read"])))) if {
	llm_host
	models_read
}
