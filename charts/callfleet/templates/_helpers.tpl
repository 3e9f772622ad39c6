{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "callfleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects: fullnameOverride, else the release name
when it contains the chart name, else "<release>-<chart>".
*/}}
{{- define "callfleet.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* "<fullname>-<suffix>", kept within 63 characters. */}}
{{- define "callfleet.suffixed" -}}
{{- $suffix := index . 1 }}
{{- printf "%s-%s" (include "callfleet.fullname" (index . 0) | trunc (int (sub 62 (len $suffix)))  | trimSuffix "-") $suffix }}
{{- end }}

{{- define "callfleet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "callfleet.labels" -}}
helm.sh/chart: {{ include "callfleet.chart" . }}
{{ include "callfleet.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: callfleet
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the manager pods; never change them (selectors are immutable). */}}
{{- define "callfleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "callfleet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: manager
{{- end }}

{{- define "callfleet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "callfleet.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag or repository@digest; args: root context, image values. */}}
{{- define "callfleet.imageRef" -}}
{{- $root := index . 0 }}
{{- $img := index . 1 }}
{{- if $img.digest }}
{{- printf "%s@%s" $img.repository $img.digest }}
{{- else }}
{{- printf "%s:%s" $img.repository (default $root.Chart.AppVersion $img.tag) }}
{{- end }}
{{- end }}

{{- define "callfleet.webhookTokenSecretName" -}}
{{- default (include "callfleet.suffixed" (list . "webhook-token")) .Values.webhook.existingSecret }}
{{- end }}

{{- define "callfleet.streamTokenSecretName" -}}
{{- default (include "callfleet.suffixed" (list . "stream-token")) .Values.streamToken.existingSecret }}
{{- end }}

{{/* The Secret of the default Piopiy account, or "" when there is none. */}}
{{- define "callfleet.accountSecretName" -}}
{{- if .Values.piopiy.accountSecret }}
{{- .Values.piopiy.accountSecret }}
{{- else if .Values.piopiy.account.appId }}
{{- include "callfleet.suffixed" (list . "piopiy-account") }}
{{- end }}
{{- end }}

{{/*
callfleet.secretValue returns the plain value of a chart-managed secret: the
value given in values, else the one already in the cluster (so upgrades keep
it: the webhook URL pasted into Piopiy stays valid), else a random one. The
result is cached for the render, so the Secret and the Deployment's checksum
see the same random value. Args: dict root, cacheKey, given, secretName, key,
length.
*/}}
{{- define "callfleet.secretValue" -}}
{{- $root := .root }}
{{- if not (hasKey $root.Values "__callfleetGenerated") }}
{{- $_ := set $root.Values "__callfleetGenerated" dict }}
{{- end }}
{{- $cache := $root.Values.__callfleetGenerated }}
{{- if not (hasKey $cache .cacheKey) }}
{{- $value := .given }}
{{- if not $value }}
{{- $existing := lookup "v1" "Secret" $root.Release.Namespace .secretName }}
{{- if and $existing (hasKey (default dict $existing.data) .key) }}
{{- $value = index $existing.data .key | b64dec }}
{{- else }}
{{- $value = randAlphaNum (int .length) }}
{{- end }}
{{- end }}
{{- $_ := set $cache .cacheKey $value }}
{{- end }}
{{- index $cache .cacheKey }}
{{- end }}

{{- define "callfleet.webhookToken" -}}
{{- include "callfleet.secretValue" (dict "root" . "cacheKey" "webhookToken" "given" .Values.webhook.token "secretName" (include "callfleet.webhookTokenSecretName" .) "key" "token" "length" 32) }}
{{- end }}

{{- define "callfleet.accountWebhookToken" -}}
{{- include "callfleet.secretValue" (dict "root" . "cacheKey" "accountWebhookToken" "given" .Values.piopiy.account.webhookToken "secretName" (include "callfleet.accountSecretName" .) "key" "webhookToken" "length" 32) }}
{{- end }}

{{- define "callfleet.streamTokenKey" -}}
{{- include "callfleet.secretValue" (dict "root" . "cacheKey" "streamTokenKey" "given" .Values.streamToken.key "secretName" (include "callfleet.streamTokenSecretName" .) "key" "key" "length" 48) }}
{{- end }}

{{/*
callfleet.monitorTokenKey is the root monitor key, kept in the console's
Secret (key monitor-key): the console signs listen-in tokens with the key
derived from it per StreamEndpoint, and the manager derives the same key into
each endpoint's key Secret for its gateway. One value, cached for the render,
so both Deployments and their checksums see the same key.
*/}}
{{- define "callfleet.monitorTokenKey" -}}
{{- include "callfleet.secretValue" (dict "root" . "cacheKey" "consoleMonitorKey" "given" .Values.console.monitorKey "secretName" (include "callfleet.suffixed" (list . "console")) "key" "monitor-key" "length" 48) }}
{{- end }}

{{/* Name of the Secret gateways mount in StreamEndpoint namespaces (fixed by the controller). */}}
{{- define "callfleet.gatewayStreamTokenSecretName" -}}
callfleet-stream-token
{{- end }}

{{/*
callfleet.validate fails the render on combinations the schema cannot
explain well.
*/}}
{{- define "callfleet.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true: without a leader every replica would dial, and a person could be rung twice" }}
{{- end }}
{{- if and .Values.piopiy.accountSecret (or .Values.piopiy.account.appId .Values.piopiy.account.secret .Values.piopiy.account.from) }}
{{- fail "set either piopiy.accountSecret (an existing Secret) or piopiy.account (the chart creates the Secret), not both" }}
{{- end }}
{{- if and (or .Values.piopiy.account.secret .Values.piopiy.account.from) (not .Values.piopiy.account.appId) }}
{{- fail "piopiy.account.appId is required when piopiy.account.secret or piopiy.account.from is set" }}
{{- end }}
{{- if and .Values.piopiy.account.appId (not .Values.piopiy.account.secret) }}
{{- fail "piopiy.account.secret is required with piopiy.account.appId" }}
{{- end }}
{{- if and .Values.webhook.token .Values.webhook.existingSecret }}
{{- fail "set either webhook.token or webhook.existingSecret, not both" }}
{{- end }}
{{- if and .Values.streamToken.key .Values.streamToken.existingSecret }}
{{- fail "set either streamToken.key or streamToken.existingSecret, not both" }}
{{- end }}
{{- if and .Values.streamToken.namespaces .Values.streamToken.existingSecret }}
{{- fail "streamToken.namespaces copies the chart-managed key; with streamToken.existingSecret, create the Secret callfleet-stream-token (key `key`) in those namespaces yourself" }}
{{- end }}
{{- if and .Values.webhook.ingress.enabled (not .Values.webhook.ingress.host) }}
{{- fail "webhook.ingress.host is required when webhook.ingress.enabled=true: it is the host of the URL pasted into the Piopiy dashboard" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled=true" }}
{{- end }}
{{- end }}

{{/* A digits value given as a string or a number (YAML files make numbers float64). */}}
{{- define "callfleet.digits" -}}
{{- if kindIs "string" . }}{{ . }}{{ else }}{{ . | int64 }}{{ end }}
{{- end }}
