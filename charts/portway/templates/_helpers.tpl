{{- define "portway.name" -}}{{ .Chart.Name }}{{- end -}}
{{- define "portway.labels" -}}
app.kubernetes.io/name: {{ include "portway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}
