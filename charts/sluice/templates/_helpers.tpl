{{/*
Names, labels and images shared by every template. Object names derive from the release
(`<release>-sluice`, or just `sluice` when the release is called sluice) unless overridden.
*/}}

{{- define "sluice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sluice.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "sluice.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sluice
{{- end -}}

{{- define "sluice.webhook.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end -}}

{{- define "sluice.webhook.name" -}}{{ include "sluice.fullname" . }}-webhook{{- end -}}
{{- define "sluice.webhook.tlsSecret" -}}{{ include "sluice.fullname" . }}-webhook-tls{{- end -}}
{{- define "sluice.webhook.caSecret" -}}{{ include "sluice.fullname" . }}-webhook-ca{{- end -}}
{{- /* The sidecar's settings ConfigMap in each agent namespace (fixed, like the policy's: the webhook names it in every pod). */ -}}
{{- define "sluice.sidecarConfigMap" -}}sluice-sidecar{{- end -}}

{{/* image reference: repository@digest, or repository:tag (tag defaults to appVersion). */}}
{{- define "sluice.image" -}}
{{- $img := index . 0 -}}{{- $root := index . 1 -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (default $root.Chart.AppVersion $img.tag) -}}
{{- end -}}
{{- end -}}

{{/* Namespaces never injected or guarded: the configured list plus the release namespace. */}}
{{- define "sluice.excludedNamespaces" -}}
{{- toJson (uniq (append .Values.webhook.excludedNamespaces .Release.Namespace)) -}}
{{- end -}}

{{/*
The policy bundle files: the override when given, else the bundle `make policy` built. inputReads is
the bundle's sluice.input-reads member (which input paths the Rego reads, bound to policy.wasm by its
digest): without it the sidecar runs the WASM for every request (no decision cache). Optional.
*/}}
{{- define "sluice.policyFiles" -}}
{{- $o := .Values.policy.override -}}
{{- $set := list $o.wasmBase64 $o.dataJson $o.manifest | compact | len -}}
{{- if and (gt $set 0) (lt $set 3) -}}
{{- fail "policy.override: set wasmBase64, dataJson and manifest together (or none of them)" -}}
{{- end -}}
{{- if eq $set 3 -}}
{{- toJson (dict "wasm" $o.wasmBase64 "data" $o.dataJson "manifest" $o.manifest "inputReads" $o.inputReads) -}}
{{- else -}}
{{- $wasm := .Files.Get "files/policy-bundle/policy.wasm" -}}
{{- if not $wasm -}}
{{- fail "the chart has no policy bundle (files/policy-bundle → policies/build/bundle): run `make policy`, or set policy.override" -}}
{{- end -}}
{{- toJson (dict "wasm" (.Files.Get "files/policy-bundle/policy.wasm" | b64enc) "data" (.Files.Get "files/policy-bundle/data.json") "manifest" (.Files.Get "files/policy-bundle/.manifest") "inputReads" (.Files.Get "files/policy-bundle/sluice.input-reads")) -}}
{{- end -}}
{{- end -}}

{{/*
Pull secrets of sluice's own pods (the webhook; any other workload the chart runs in its namespace),
as a JSON list of names: global.imagePullSecrets (names or {name}, as a parent chart shares them)
then imagePullSecrets, each name once. Injected agent pods get sidecar.imagePullSecrets instead.
Use: {{- with include "sluice.imagePullSecretNames" . | fromJsonArray }} … {{- end }}
*/}}
{{- define "sluice.imagePullSecretNames" -}}
{{- $names := list -}}
{{- range (concat (default (list) .Values.global.imagePullSecrets) .Values.imagePullSecrets) -}}
{{- if kindIs "string" . -}}{{- $names = append $names . -}}{{- else -}}{{- $names = append $names .name -}}{{- end -}}
{{- end -}}
{{- toJson ($names | compact | uniq) -}}
{{- end -}}

{{/*
The documentation of the installed version: docs.baseURL, else the docs folder at the release tag
v<appVersion> (tools/release.ts tags releases v<version>), never a moving branch.
*/}}
{{- define "sluice.docsURL" -}}
{{- default (printf "https://github.com/sluice-dev/sluice/blob/v%s/docs" .Chart.AppVersion) .Values.docs.baseURL | trimSuffix "/" -}}
{{- end -}}

{{- define "sluice.runbookBaseURL" -}}
{{- default (printf "%s/runbooks" (include "sluice.docsURL" .)) .Values.monitoring.prometheusRule.runbookBaseURL | trimSuffix "/" -}}
{{- end -}}
