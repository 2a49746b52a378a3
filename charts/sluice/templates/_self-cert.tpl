{{- /*
Certificate mode "self": names the webhook needs to manage its own serving certificate.

sluice.webhook.selfSecret: the Secret the webhook gets or creates (CA + serving pair). It is not
rendered by the chart (so `helm template` stays deterministic) and not owned by the release, so
`helm uninstall` leaves it; deleting it makes the webhook issue a new CA at its next start.

sluice.webhook.registrationNames: {"mutating": [...], "validating": [...]}, the release's own
registration names as admission.yaml renders them (from files/webhook-manifests), for the
webhook's config and the resourceNames of its RBAC.
*/ -}}
{{- define "sluice.webhook.selfSecret" -}}{{ include "sluice.fullname" . }}-webhook-certs{{- end -}}
{{- define "sluice.webhook.registrationNames" -}}
{{- $fullname := include "sluice.fullname" . -}}
{{- $mutating := list -}}
{{- $validating := list -}}
{{- range $path, $_ := .Files.Glob "files/webhook-manifests/*webhook*.yaml" -}}
{{- range $doc := regexSplit "(?m)^---\\s*$" ($.Files.Get $path) -1 -}}
{{- $obj := fromYaml $doc -}}
{{- if has $obj.kind (list "MutatingWebhookConfiguration" "ValidatingWebhookConfiguration") -}}
{{- $name := printf "%s%s" $fullname (trimPrefix "sluice" $obj.metadata.name) -}}
{{- if eq $obj.kind "MutatingWebhookConfiguration" -}}{{- $mutating = append $mutating $name -}}{{- else -}}{{- $validating = append $validating $name -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- dict "mutating" $mutating "validating" $validating | toJson -}}
{{- end -}}
