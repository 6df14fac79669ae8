{{/* Common names and labels. */}}
{{- define "gatehouse.fullname" -}}
{{- printf "%s-gatehouse" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gatehouse.labels" -}}
app.kubernetes.io/name: gatehouse
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Pod spec shared by every service; call with (dict "root" $ "service" "policy" "extraEnv" list). */}}
{{- define "gatehouse.podSpec" -}}
{{- $root := .root -}}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
containers:
  - name: {{ .service }}
    image: "{{ $root.Values.image.repository }}:{{ $root.Values.image.tag }}"
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    args: [{{ .service | quote }}, "--config", "/etc/gatehouse/gatehouse.yaml"]
    securityContext:
      {{- toYaml $root.Values.securityContext | nindent 6 }}
    env:
      - name: NATS_URL
        value: {{ $root.Values.nats.url | quote }}
      - name: GATEHOUSE_DATA_DIR
        value: /data
      {{- with .extraEnv }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    {{- with .ports }}
    ports:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with .probe }}
    readinessProbe:
      {{- toYaml . | nindent 6 }}
    livenessProbe:
      {{- toYaml . | nindent 6 }}
      initialDelaySeconds: 20
    {{- end }}
    resources:
      {{- toYaml .resources | nindent 6 }}
    volumeMounts:
      - name: config
        mountPath: /etc/gatehouse/gatehouse.yaml
        subPath: gatehouse.yaml
      - name: policies
        mountPath: /etc/gatehouse/policies
      - name: data
        mountPath: /data
      - name: tmp
        mountPath: /tmp
      {{- with .extraMounts }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
volumes:
  - name: config
    configMap:
      name: {{ include "gatehouse.fullname" $root }}-config
  - name: policies
    configMap:
      name: {{ $root.Values.policies.existingConfigMap | default (printf "%s-policies" (include "gatehouse.fullname" $root)) }}
  - name: data
    emptyDir: {}
  - name: tmp
    emptyDir: {}
  {{- with .extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}
