{{/*
One role's Deployment. (dict "root" $ "role" "serve" "args" (list "serve") "values" .Values.serve
  "replicas" N-or-nil "port" N "portName" "http" "env" YAML-list-string "strategy" MAP-or-nil)
*/}}
{{- define "coffee-rt.deployment" -}}
{{- $root := .root -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "coffee-rt.fullname" $root }}-{{ .role }}
  labels:
    {{- include "coffee-rt.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .role }}
spec:
  {{- if not (kindIs "invalid" .replicas) }}
  replicas: {{ .replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  {{- with .strategy }}
  strategy:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "coffee-rt.selectorLabels" (dict "root" $root "role" .role) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "coffee-rt.labels" $root | nindent 8 }}
        app.kubernetes.io/component: {{ .role }}
        {{- with $root.Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        {{- include "coffee-rt.podAnnotations" (dict "root" $root "port" .port) | nindent 8 }}
        checksum/secret: {{ include (print $root.Template.BasePath "/secret.yaml") $root | sha256sum }}
        {{- if eq .role "serve" }}
        # A rotated token (auth.*Token) rolls the API's pods, which read it at start.
        checksum/tokens: {{ include (print $root.Template.BasePath "/tokens-secret.yaml") $root | sha256sum }}
        {{- end }}
    spec:
      {{- include "coffee-rt.podSpec" $root | trim | nindent 6 }}
      {{- with $root.Values.topologySpreadConstraints }}
      {{- include "coffee-rt.topologySpread" (dict "root" $root "role" $.role) | trim | nindent 6 }}
      {{- end }}
      terminationGracePeriodSeconds: {{ $root.Values.terminationGracePeriodSeconds }}
      containers:
        - name: {{ .role }}
          image: {{ include "coffee-rt.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args:
            {{- toYaml .args | nindent 12 }}
          env:
            {{- .env | nindent 12 }}
            {{- with .values.env }}
            {{- include "coffee-rt.env.extra" . | trim | nindent 12 }}
            {{- end }}
          ports:
            - name: {{ .portName }}
              containerPort: {{ .port }}
              protocol: TCP
          {{- include "coffee-rt.probes" .portName | nindent 10 }}
          resources:
            {{- toYaml .values.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
{{- end -}}
