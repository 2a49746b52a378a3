# sluice — every target installs what it needs (tools/install.sh caches by name and version in
# ~/.cache/sluice) and runs on the pinned Node 24 from .tools/bin, never the machine's Node.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export PATH := $(CURDIR)/.tools/bin:$(PATH)
NODE := $(CURDIR)/.tools/bin/node
OPA := $(CURDIR)/.tools/bin/opa
POLICY_SOURCES := $(wildcard policies/rego/*.rego) $(shell find policies/data -name '*.json')
BUNDLE := policies/build/bundle.tar.gz

.PHONY: all tools tools-base base-deps deps policy demo test image chart release cli-bundle bench bench-policy bench-webhook bench-masking bench-credentials bench-audit bench-proxy bench-startup schemas clean test-cluster demo-cluster demo-cluster-cni
.DEFAULT_GOAL := all
# A recipe that fails part-way (the bundle built, its input-reads step refused) leaves no target behind.
.DELETE_ON_ERROR:
all: policy

tools:
	@tools/apt.sh
	@tools/install.sh

# What building the policy and running the demo need, and no more: Node, npm, OPA, git and curl.
# (`make demo` on a fresh machine must not wait for kube-apiserver or the benchmark peers.)
tools-base:
	@tools/apt.sh --only git curl ca-certificates
	@tools/install.sh node npm opa

node_modules/.installed: package.json package-lock.json | tools-base
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

base-deps: tools-base node_modules/.installed

deps: tools base-deps

# The policy bundle: WASM compiled against the SDK's capabilities (a builtin the runtime lacks
# fails here, not in production), tests excluded, revision = content hash of the sources.
$(BUNDLE): $(POLICY_SOURCES) policies/scripts/input-reads.ts lib/src/policy/input-reads.ts | base-deps
	@mkdir -p policies/build
	@$(NODE) policies/scripts/wasm-capabilities.ts $(OPA) > policies/build/capabilities.json
	$(OPA) build -t wasm -e sluice/decision --ignore '*_test.rego' --capabilities policies/build/capabilities.json \
	  -r "$$(cat $(filter-out %_test.rego,$(POLICY_SOURCES)) | sha256sum | cut -c1-12)" -o $@ policies/rego policies/data
	@$(NODE) policies/scripts/input-reads.ts $@ policies/rego policies/data
	@rm -rf policies/build/bundle && mkdir -p policies/build/bundle && tar -xzf $@ -C policies/build/bundle 2>/dev/null
	@echo "built $@ (revision $$(tar -xzOf $@ /.manifest 2>/dev/null | $(NODE) -pe 'JSON.parse(require("fs").readFileSync(0)).revision'))"

# Where each decision code is in the sources (file:line), for `kubectl sluice policy explain`.
RULE_INDEX := policies/build/rules.json
$(RULE_INDEX): $(BUNDLE) policies/scripts/rule-index.ts cli/src/policy/rule-index.ts | base-deps
	$(NODE) policies/scripts/rule-index.ts $(BUNDLE) policies/rego > $@.tmp && mv $@.tmp $@

policy: base-deps $(BUNDLE) $(RULE_INDEX)

schemas: deps
	$(NODE) api/scripts/generate-schemas.ts

demo: base-deps policy
	$(NODE) demo/main.ts

test: deps policy
	$(NODE) tools/run-tests.ts

# sluice on a real single-node Kubernetes (e2e/cluster, docs/e2e-cluster.md): needs root; the
# node's tools (kubelet, containerd, ...) are built and cached by tools/install.sh on first use.
test-cluster: deps policy
	$(NODE) --experimental-vm-modules --no-warnings=ExperimentalWarning node_modules/jest/bin/jest.js --ci e2e/cluster

# The same story for a person (e2e/cluster/demo-cluster.ts over story.ts, the steps whole-story.test.ts
# asserts): a real node, helm install, an agent held, masked, refused and replayed, each command printed
# with what happened. Needs root; tears everything down at the end and on Ctrl-C.
demo-cluster: deps policy
	$(NODE) e2e/cluster/demo-cluster.ts

# The same story with interception.mode cni (the sluice node agent installs each pod's rules,
# docs/cni.md) in an agent namespace that enforces Pod Security "restricted". Needs root.
demo-cluster-cni: deps policy
	$(NODE) e2e/cluster/demo-cluster.ts --cni

# OCI image archives for the sidecar and the webhook, without a Docker daemon (charts/images).
image: deps policy
	$(NODE) charts/images/build-images.ts

# Everything a platform team installs, into dist/release/ (tools/release.ts): the packaged chart
# (symlinks resolved, CRD and default policy inside), both images as OCI archives with CycloneDX
# SBOMs, the CLI as one ESM file (Node >= 20), an npm package and a single executable, the krew
# manifest and SHA256SUMS.
# Needs Helm besides the base tools (and apt for the images' Debian packages), not the test servers.
release: base-deps policy
	@tools/install.sh helm
	$(NODE) tools/release.ts

# The CLI alone (dist/cli: kubectl-sluice.mjs, npm/, sea/kubectl-sluice).
cli-bundle: base-deps policy
	$(NODE) cli/scripts/bundle.ts

# Regenerates the chart's schema, values docs, dashboards and rules (charts/src).
chart: deps policy
	$(NODE) charts/src/generate.ts

bench: deps policy bench-policy bench-webhook bench-masking bench-credentials bench-audit bench-proxy bench-startup

bench-policy:
	$(NODE) bench/policy/run.ts

bench-webhook:
	$(NODE) bench/webhook/run.ts

bench-startup:
	$(NODE) bench/startup/run.ts

bench-masking:
	$(NODE) bench/masking/run.ts

bench-credentials:
	$(NODE) bench/credentials/run.ts

bench-audit:
	$(NODE) bench/audit/run.ts

# Needs root: peers resolve the bench host through a private /etc/hosts (mount namespace).
bench-proxy:
	$(NODE) bench/proxy/run.ts

clean:
	rm -rf policies/build node_modules .tools
