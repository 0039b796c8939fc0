{{- define "portway.name" -}}{{ .Chart.Name }}{{- end -}}
{{- define "portway.labels" -}}
app.kubernetes.io/name: {{ include "portway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}
{{- /*
Name of cluster-scoped objects (ClusterRole, ClusterRoleBinding). Helm release names are unique per
namespace only, so both go into the name: two releases never overwrite each other's grants.
*/ -}}
{{- define "portway.clusterScopedName" -}}
{{- printf "%s:%s:%s" (include "portway.name" .) .Release.Namespace .Release.Name | trunc 253 | trimSuffix ":" -}}
{{- end -}}
{{- /* The Lease the agents elect the LoadBalancer status writer with (src/sources/api/lease-election.ts). */ -}}
{{- define "portway.leaseName" -}}portway-lb-status{{- end -}}
{{- /* Whether the agent writes LoadBalancer status (config loadBalancer.enabled, default true). */ -}}
{{- define "portway.writesLoadBalancerStatus" -}}
{{- if ne (toString (dig "loadBalancer" "enabled" true .Values.config)) "false" }}true{{ end -}}
{{- end -}}
{{- /* The Lease the agents elect the Ingress status writer with (src/ingress/status-writer.ts). */ -}}
{{- define "portway.ingressLeaseName" -}}portway-ingress-status{{- end -}}
{{- /* Whether the agent writes Ingress status (config ingress.classes non-empty; default none). */ -}}
{{- define "portway.writesIngressStatus" -}}
{{- if gt (len (dig "ingress" "classes" (list) .Values.config)) 0 }}true{{ end -}}
{{- end -}}
