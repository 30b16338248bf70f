{{/* The chart's name. */}}
{{- define "wasmrunner.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The objects' name: the release's, with the chart's unless it has it. */}}
{{- define "wasmrunner.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "wasmrunner.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wasmrunner.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "wasmrunner.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "wasmrunner.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "wasmrunner.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* The Secret holding the runners' tokens. */}}
{{- define "wasmrunner.secretName" -}}
{{- .Values.existingSecret | default (printf "%s-tokens" (include "wasmrunner.fullname" .)) }}
{{- end }}

{{/* Where the handlers are, as a runner's modules key. */}}
{{- define "wasmrunner.modules" -}}
{{- if eq .Values.handlers.source "oci" }}
{{- required "handlers.oci.reference is required with handlers.source=oci" .Values.handlers.oci.reference }}
{{- else if eq .Values.handlers.source "volume" }}
{{- "/srv/handlers" }}
{{- else }}
{{- "/usr/share/wasmrunner/modules" }}
{{- end }}
{{- end }}

{{/* serve's config file (README "Several runners in one process"). */}}
{{- define "wasmrunner.config" -}}
# wasmrunner serve --config: rendered by the wasmrunner chart.
concurrency = {{ int .Values.config.concurrency }}
listen = {{ printf ":%d" (int .Values.metrics.port) | toJson }}
check_interval = {{ .Values.config.checkInterval | toJson }}
shutdown_timeout = {{ int .Values.drain.timeoutSeconds }}
reload_interval = {{ .Values.config.reloadInterval | toJson }}
log_level = {{ .Values.config.logLevel | toJson }}
log_format = {{ .Values.config.logFormat | toJson }}
# The replicas share each runner's token: none may replace it on its own
# (the first reset would invalidate the others'); the Secret is read-only.
token_rotation = false
{{- if eq .Values.handlers.source "oci" }}
pull_interval = {{ .Values.handlers.oci.pullInterval | toJson }}
{{- with .Values.handlers.oci.insecureRegistries }}
insecure_registries = {{ toJson . }}
{{- end }}
{{- if .Values.handlers.oci.authSecret }}
registry_auth_file = "/etc/wasmrunner/registry/config.json"
{{- end }}
{{- end }}
{{- with .Values.config.extraConfig }}

{{ . }}
{{- end }}
{{- $modules := include "wasmrunner.modules" . }}
{{- range .Values.runners }}

[[runners]]
name = {{ .name | toJson }}
url = {{ .url | default $.Values.gitlab.url | toJson }}
token_file = {{ printf "/etc/wasmrunner/tokens/%s" (.tokenKey | default .name) | toJson }}
modules = {{ .modules | default $modules | toJson }}
{{- with .handlers }}
handlers = {{ toJson . }}
{{- end }}
{{- with .defaultHandler }}
default_handler = {{ toJson . }}
{{- end }}
{{- with .concurrency }}
concurrency = {{ int . }}
{{- end }}
{{- with .outputLimit }}
output_limit = {{ toJson . }}
{{- end }}
{{- with .checkInterval }}
check_interval = {{ toJson . }}
{{- end }}
{{- with .extraConfig }}
{{ . }}
{{- end }}
{{- end }}
{{- end }}
