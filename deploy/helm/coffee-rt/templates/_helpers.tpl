{{/* The release's base name, at most 63 characters less room for the role suffixes. */}}
{{- define "coffee-rt.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "coffee-rt.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: coffee-rt
{{- end -}}

{{/* Selector labels of one role: (dict "root" $ "role" "serve") */}}
{{- define "coffee-rt.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{- define "coffee-rt.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The Secret holding DATABASE_URL and REDIS_URL for the roles. */}}
{{- define "coffee-rt.secretName" -}}
{{- include "coffee-rt.fullname" . -}}
{{- end -}}

{{/* The Secret holding the API's two tokens: the chart's own or auth.existingSecret. */}}
{{- define "coffee-rt.tokensSecretName" -}}
{{- .Values.auth.existingSecret | default (printf "%s-tokens" (include "coffee-rt.fullname" .)) -}}
{{- end -}}

{{/* The API's tokens (and the dashboard's extra origins), from the tokens Secret. */}}
{{- define "coffee-rt.env.auth" -}}
- name: COFFEE_RT_INGEST_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "coffee-rt.tokensSecretName" . }}
      key: {{ include "coffee-rt.ingestTokenKey" . }}
- name: COFFEE_RT_READ_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "coffee-rt.tokensSecretName" . }}
      key: {{ include "coffee-rt.readTokenKey" . }}
{{- with .Values.auth.allowedOrigins }}
- name: COFFEE_RT_ALLOWED_ORIGINS
  value: {{ join "," . | quote }}
{{- end }}
{{- end -}}

{{/* The keys of the two tokens in their Secret: the chart's own names, or yours. */}}
{{- define "coffee-rt.ingestTokenKey" -}}
{{- if .Values.auth.existingSecret }}{{ .Values.auth.ingestTokenKey }}{{ else }}COFFEE_RT_INGEST_TOKEN{{ end -}}
{{- end -}}

{{- define "coffee-rt.readTokenKey" -}}
{{- if .Values.auth.existingSecret }}{{ .Values.auth.readTokenKey }}{{ else }}COFFEE_RT_READ_TOKEN{{ end -}}
{{- end -}}

{{/* DATABASE_URL from the chart's Secret or an existing one: (dict "root" $ "secret" NAME) */}}
{{- define "coffee-rt.env.database" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      {{- if .root.Values.postgresql.existingSecret }}
      name: {{ .root.Values.postgresql.existingSecret }}
      key: {{ .root.Values.postgresql.existingSecretKey }}
      {{- else }}
      name: {{ .secret }}
      key: DATABASE_URL
      {{- end }}
{{- end -}}

{{/* What every long-running role reads: the two sinks, the Redis prefix, the pool and logs. */}}
{{- define "coffee-rt.env.services" -}}
{{ include "coffee-rt.env.database" (dict "root" . "secret" (include "coffee-rt.secretName" .)) }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      {{- if .Values.redis.existingSecret }}
      name: {{ .Values.redis.existingSecret }}
      key: {{ .Values.redis.existingSecretKey }}
      {{- else }}
      name: {{ include "coffee-rt.secretName" . }}
      key: REDIS_URL
      {{- end }}
{{- with .Values.redis.namespace }}
- name: COFFEE_RT_NAMESPACE
  value: {{ . | quote }}
{{- end }}
- name: COFFEE_RT_PG_POOL
  value: {{ .Values.postgresql.pool | quote }}
{{ include "coffee-rt.env.log" . }}
{{- end -}}

{{- define "coffee-rt.env.log" -}}
- name: COFFEE_RT_LOG
  value: {{ .Values.log.filter | quote }}
- name: COFFEE_RT_LOG_FORMAT
  value: {{ .Values.log.format | quote }}
{{- end -}}

{{/* The Kafka settings of serve and processor. */}}
{{- define "coffee-rt.env.kafka" -}}
- name: KAFKA_BROKERS
  value: {{ .Values.kafka.brokers | quote }}
- name: COFFEE_RT_KAFKA_TOPIC
  value: {{ .Values.kafka.topic | quote }}
- name: COFFEE_RT_KAFKA_GROUP
  value: {{ .Values.kafka.group | quote }}
- name: COFFEE_RT_KAFKA_PARTITIONS
  value: {{ .Values.kafka.partitions | quote }}
- name: COFFEE_RT_KAFKA_REPLICATION_FACTOR
  value: {{ .Values.kafka.replicationFactor | quote }}
{{- end -}}

{{/* A role's own extra variables (a name: value map). */}}
{{- define "coffee-rt.env.extra" -}}
{{- range $name, $value := . }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{/* The metrics listener of worker, processor and aggregator. */}}
{{- define "coffee-rt.env.metrics" -}}
- name: COFFEE_RT_METRICS_LISTEN
  value: {{ printf "0.0.0.0:%v" .Values.metricsPort | quote }}
{{- end -}}

{{/* Probes on a named port: liveness on /livez, readiness on /readyz. */}}
{{- define "coffee-rt.probes" -}}
startupProbe:
  httpGet: { path: /livez, port: {{ . }} }
  periodSeconds: 2
  failureThreshold: 30
livenessProbe:
  httpGet: { path: /livez, port: {{ . }} }
  periodSeconds: 10
  timeoutSeconds: 2
  failureThreshold: 3
readinessProbe:
  httpGet: { path: /readyz, port: {{ . }} }
  periodSeconds: 5
  timeoutSeconds: 2
  failureThreshold: 2
{{- end -}}

{{/* The pod-level settings every role shares. */}}
{{- define "coffee-rt.podSpec" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.serviceAccountName }}
serviceAccountName: {{ . }}
{{- end }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Spread a role's pods over nodes/zones: (dict "root" $ "role" "serve") */}}
{{- define "coffee-rt.topologySpread" -}}
{{- with .root.Values.topologySpreadConstraints }}
topologySpreadConstraints:
{{- range . }}
  - {{ toYaml . | nindent 4 | trim }}
    labelSelector:
      matchLabels:
        {{- include "coffee-rt.selectorLabels" (dict "root" $.root "role" $.role) | nindent 8 }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Pod annotations: the scrape hints and the user's own. (dict "root" $ "port" N) */}}
{{- define "coffee-rt.podAnnotations" -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- with .root.Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}
