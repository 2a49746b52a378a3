# METADATA
# title: LLM APIs
# description: Model APIs are allowed; secrets in prompts are masked before they leave (outbound DLP).
# schemas:
#   - input: schema.input
package sluice.llm

import data.config
import data.sluice.lib

llm_host if config.llm_hosts[input.request.host]

model := object.get(object.get(input.facts, "llm", {}), "model", "unknown model")

verdicts contains lib.verdict(50, object.union(
	lib.allow("llm.allowed", concat("", [config.llm_hosts[input.request.host], " API call (", model, ") allowed with outbound masking"])),
	{"dlp": "mask"},
)) if {
	llm_host
	input.request.method != "CONNECT"
}
