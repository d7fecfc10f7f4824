{{/*
Names. The fullname is "<release>-<chart>", or the release name alone when it
already holds the chart name; 63 characters at most (DNS label).
*/}}
{{- define "otelcol-ebpf.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "otelcol-ebpf.fullname" -}}
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

{{/* Object names of the two tiers; "-gateway" is the longest suffix. */}}
{{- define "otelcol-ebpf.agentName" -}}
{{- printf "%s-agent" (include "otelcol-ebpf.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}

{{- define "otelcol-ebpf.gatewayName" -}}
{{- printf "%s-gateway" (include "otelcol-ebpf.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}

{{- define "otelcol-ebpf.agentServiceAccount" -}}
{{- default (include "otelcol-ebpf.agentName" .) .Values.serviceAccount.name }}
{{- end }}

{{- define "otelcol-ebpf.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Labels of every object; call with (dict "ctx" $ "component" "agent"). */}}
{{- define "otelcol-ebpf.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "otelcol-ebpf.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: otelcol-ebpf
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels that select the pods of one tier; never change them (immutable). */}}
{{- define "otelcol-ebpf.selectorLabels" -}}
app.kubernetes.io/name: {{ include "otelcol-ebpf.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
memoryMiB turns a Kubernetes memory quantity ("512Mi", "1Gi", "500M",
"536870912") into whole MiB, rounded down. Decimal quantities ("1.5Gi") and
milli-units are refused: write them in a smaller unit ("1536Mi").
Call with (dict "q" QUANTITY "what" "agent.resources.limits.memory").
*/}}
{{- define "otelcol-ebpf.memoryMiB" -}}
{{- $q := toString .q -}}
{{- $units := dict "" 1 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 -}}
{{- $num := regexFind "^[0-9]+" $q -}}
{{- $suffix := trimPrefix $num $q -}}
{{- if or (eq $num "") (not (hasKey $units $suffix)) -}}
{{- fail (printf "%s: %q is not a memory quantity the chart can read; write an integer with a suffix Ki, Mi, Gi, Ti, k, M, G or T (e.g. 512Mi)" .what $q) -}}
{{- end -}}
{{- $mib := div (mul (int64 $num) (get $units $suffix)) 1048576 -}}
{{- if lt $mib 64 -}}
{{- fail (printf "%s: %s is %d MiB; the collector needs at least 64 MiB" .what $q $mib) -}}
{{- end -}}
{{- $mib -}}
{{- end }}

{{/*
memory derives the memory_limiter settings and GOMEMLIMIT of one tier from its
limits.memory. Call with (dict "tier" .Values.agent "what" "agent"); returns
YAML: {limitMiB, spikeMiB, goMemLimit}.
*/}}
{{- define "otelcol-ebpf.memory" -}}
{{- $limit := dig "resources" "limits" "memory" "" .tier -}}
{{- if not $limit -}}
{{- fail (printf "%s.resources.limits.memory is required: memory_limiter and GOMEMLIMIT are derived from it" .what) -}}
{{- end -}}
{{- $mib := include "otelcol-ebpf.memoryMiB" (dict "q" $limit "what" (printf "%s.resources.limits.memory" .what)) | int64 -}}
{{- $m := .tier.memory -}}
{{- range $k := list "limitPercentage" "spikeLimitPercentage" "goMemLimitPercentage" }}
{{- $p := index $m $k | int64 -}}
{{- if or (le $p 0) (gt $p 100) -}}
{{- fail (printf "%s.memory.%s: %v must be an integer percentage in 1..100" $.what $k (index $m $k)) -}}
{{- end -}}
{{- end -}}
{{- $limitMiB := div (mul $mib ($m.limitPercentage | int64)) 100 -}}
{{- $spikeMiB := div (mul $mib ($m.spikeLimitPercentage | int64)) 100 -}}
{{- if ge $spikeMiB $limitMiB -}}
{{- fail (printf "%s.memory: spikeLimitPercentage (%v) must be below limitPercentage (%v)" .what $m.spikeLimitPercentage $m.limitPercentage) -}}
{{- end -}}
limitMiB: {{ $limitMiB }}
spikeMiB: {{ $spikeMiB }}
goMemLimit: {{ printf "%dMiB" (div (mul $mib ($m.goMemLimitPercentage | int64)) 100) | quote }}
{{- end }}

{{/*
The exporters of the tier that talks to the backend, as YAML. otlp_grpc is
the otlp exporter's type in v0.161.0 ("otlp" is a deprecated alias).
*/}}
{{- define "otelcol-ebpf.backendExporters" -}}
{{- if .Values.backend.otlp.endpoint }}
otlp_grpc:
  {{- toYaml .Values.backend.otlp | nindent 2 }}
{{- end }}
{{- if .Values.debug.enabled }}
debug:
  verbosity: {{ .Values.debug.verbosity }}
{{- end }}
{{- end }}

{{- define "otelcol-ebpf.backendExporterNames" -}}
{{- $names := list -}}
{{- if .Values.backend.otlp.endpoint }}{{ $names = append $names "otlp_grpc" }}{{ end -}}
{{- if .Values.debug.enabled }}{{ $names = append $names "debug" }}{{ end -}}
{{- if not $names -}}
{{- fail "nothing to export to: set backend.otlp.endpoint, or debug.enabled=true" -}}
{{- end -}}
{{- toJson $names -}}
{{- end }}

{{- define "otelcol-ebpf.extensions" -}}
health_check:
  endpoint: ${env:POD_IP}:13133
  path: /
{{- if .Values.diagnostics.enabled }}
pprof:
  endpoint: localhost:1777
zpages:
  endpoint: localhost:55679
{{- end }}
{{- end }}

{{- define "otelcol-ebpf.extensionNames" -}}
{{- if .Values.diagnostics.enabled -}}
[health_check, pprof, zpages]
{{- else -}}
[health_check]
{{- end -}}
{{- end }}

{{/*
The agent's collector configuration, before agent.config is merged over it:
ebpf (+ otlp) -> memory_limiter -> batch -> the gateway, or the backend.
*/}}
{{- define "otelcol-ebpf.agentConfigBase" -}}
{{- $mem := include "otelcol-ebpf.memory" (dict "tier" .Values.agent "what" "agent") | fromYaml -}}
{{- $ebpf := deepCopy .Values.agent.ebpf -}}
{{- $_ := set $ebpf "kubernetes" (dict "enabled" .Values.kubernetes.enabled) -}}
{{- if .Values.agent.hostProc.enabled }}
{{- $_ := set $ebpf "proc_root" .Values.agent.hostProc.mountPath -}}
{{- end }}
{{- $receivers := list "ebpf" -}}
{{- if .Values.agent.otlp.enabled }}{{ $receivers = append $receivers "otlp" }}{{ end -}}
{{- $exporters := list "otlp_grpc" -}}
{{- if not .Values.gateway.enabled }}
{{- $exporters = include "otelcol-ebpf.backendExporterNames" . | fromJsonArray -}}
{{- end -}}
extensions:
  {{- include "otelcol-ebpf.extensions" . | nindent 2 }}
receivers:
  ebpf:
    {{- toYaml $ebpf | nindent 4 }}
  {{- if .Values.agent.otlp.enabled }}
  otlp:
    protocols:
      grpc:
        endpoint: ${env:POD_IP}:4317
      http:
        endpoint: ${env:POD_IP}:4318
  {{- end }}
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: {{ $mem.limitMiB }}
    spike_limit_mib: {{ $mem.spikeMiB }}
  batch: {}
exporters:
  {{- if .Values.gateway.enabled }}
  {{- /* The gateway's headless Service: one gRPC connection per agent, to
  one gateway pod (README: "More than one gateway"). */}}
  otlp_grpc:
    endpoint: {{ include "otelcol-ebpf.gatewayName" . }}.{{ .Release.Namespace }}.svc:4317
    tls:
      insecure: true
  {{- else }}
  {{- include "otelcol-ebpf.backendExporters" . | nindent 2 }}
  {{- end }}
service:
  extensions: {{ include "otelcol-ebpf.extensionNames" . }}
  pipelines:
    traces:
      receivers: {{ toJson $receivers }}
      processors: [memory_limiter, batch]
      exporters: {{ toJson $exporters }}
    metrics:
      receivers: {{ toJson $receivers }}
      processors: [memory_limiter, batch]
      exporters: {{ toJson $exporters }}
    {{- if .Values.agent.otlp.enabled }}
    logs:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: {{ toJson $exporters }}
    {{- end }}
{{- end }}

{{/* The agent's configuration as written in its ConfigMap. */}}
{{- define "otelcol-ebpf.agentConfig" -}}
{{- $cfg := include "otelcol-ebpf.agentConfigBase" . | fromYaml -}}
{{- if hasKey $cfg "Error" -}}
{{- fail (printf "the agent configuration template produced invalid YAML: %s" $cfg.Error) -}}
{{- end -}}
{{- toYaml (mergeOverwrite $cfg (deepCopy .Values.agent.config)) -}}
{{- end }}

{{/*
The gateway's configuration, before gateway.config is merged over it:
otlp -> memory_limiter -> tail_sampling -> batch -> the backend.
*/}}
{{- define "otelcol-ebpf.gatewayConfigBase" -}}
{{- $mem := include "otelcol-ebpf.memory" (dict "tier" .Values.gateway "what" "gateway") | fromYaml -}}
{{- $ts := .Values.gateway.tailSampling -}}
{{- $exporters := include "otelcol-ebpf.backendExporterNames" . | fromJsonArray -}}
{{- if not (or $ts.keepErrors $ts.latencyThresholdMs $ts.probabilisticPercentage) -}}
{{- fail "gateway.tailSampling: no policy left (keepErrors, latencyThresholdMs, probabilisticPercentage): the gateway would drop every trace" -}}
{{- end -}}
extensions:
  {{- include "otelcol-ebpf.extensions" . | nindent 2 }}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: ${env:POD_IP}:4317
      http:
        endpoint: ${env:POD_IP}:4318
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: {{ $mem.limitMiB }}
    spike_limit_mib: {{ $mem.spikeMiB }}
  tail_sampling:
    decision_wait: {{ $ts.decisionWait }}
    num_traces: {{ $ts.numTraces | int64 }}
    expected_new_traces_per_sec: {{ $ts.expectedNewTracesPerSec | int64 }}
    {{- /* A trace is kept when any policy keeps it. */}}
    policies:
      {{- if $ts.keepErrors }}
      - name: errors
        type: status_code
        status_code:
          status_codes: [ERROR]
      {{- end }}
      {{- if $ts.latencyThresholdMs }}
      - name: slow
        type: latency
        latency:
          threshold_ms: {{ $ts.latencyThresholdMs | int64 }}
      {{- end }}
      {{- if $ts.probabilisticPercentage }}
      - name: baseline
        type: probabilistic
        probabilistic:
          sampling_percentage: {{ $ts.probabilisticPercentage }}
      {{- end }}
  batch: {}
exporters:
  {{- include "otelcol-ebpf.backendExporters" . | nindent 2 }}
service:
  extensions: {{ include "otelcol-ebpf.extensionNames" . }}
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, tail_sampling, batch]
      exporters: {{ toJson $exporters }}
    metrics:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: {{ toJson $exporters }}
    logs:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: {{ toJson $exporters }}
{{- end }}

{{- define "otelcol-ebpf.gatewayConfig" -}}
{{- $cfg := include "otelcol-ebpf.gatewayConfigBase" . | fromYaml -}}
{{- if hasKey $cfg "Error" -}}
{{- fail (printf "the gateway configuration template produced invalid YAML: %s" $cfg.Error) -}}
{{- end -}}
{{- toYaml (mergeOverwrite $cfg (deepCopy .Values.gateway.config)) -}}
{{- end }}

{{/*
The agent container's capabilities: the narrowest set the receiver works with
(README: capability table). Returns a JSON list.
*/}}
{{- define "otelcol-ebpf.agentCapabilities" -}}
{{- $prop := .Values.agent.ebpf.context_propagation | default "none" -}}
{{- if not (has $prop (list "none" "headers")) -}}
{{- fail (printf "agent.ebpf.context_propagation: %q must be none or headers" $prop) -}}
{{- end -}}
{{- $caps := list "BPF" "PERFMON" -}}
{{- if eq $prop "headers" }}{{ $caps = append $caps "NET_ADMIN" }}{{ end -}}
{{- $caps = concat $caps (list "SYS_PTRACE" "DAC_READ_SEARCH") -}}
{{- if .Values.agent.security.sysResource }}{{ $caps = append $caps "SYS_RESOURCE" }}{{ end -}}
{{- toJson $caps -}}
{{- end }}
