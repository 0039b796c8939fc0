{{- define "portway.name" -}}{{ .Chart.Name }}{{- end -}}
{{- /*
The agent's configuration file as YAML: kubeProxyConfig (kube-proxy's own KubeProxyConfiguration, which the
agent translates) when set, else .Values.config. Everything below reads the configuration through it, so
ports and probes follow a kube-proxy configuration too.
*/ -}}
{{- define "portway.configYaml" -}}
{{- if .Values.kubeProxyConfig }}{{ .Values.kubeProxyConfig }}{{ else }}{{ toYaml .Values.config }}{{ end -}}
{{- end -}}
{{- /* The modes `portway run` programs; kept equal to CHART_MODES in hack/chart-schema.ts by the schema test. */ -}}
{{- define "portway.runnableModes" -}}iptables,ipvs{{- end -}}
{{- /*
kubeProxyConfig is one string, which values.schema.json cannot look into: refuse here what the agent would
refuse at start (not a KubeProxyConfiguration, or a mode it does not run), so it fails `helm install`
instead of crash-looping every node. Its other fields are checked by the agent (and `portway config convert`).
*/ -}}
{{- define "portway.checkKubeProxyConfig" -}}
{{- with .Values.kubeProxyConfig }}
{{- $kp := fromYaml . }}
{{- if hasKey $kp "Error" }}{{ fail (printf "kubeProxyConfig: not YAML: %s" $kp.Error) }}{{ end }}
{{- if ne ($kp.kind | default "" | toString) "KubeProxyConfiguration" }}
{{- fail (printf "kubeProxyConfig: kind %q: expected KubeProxyConfiguration (the config.conf of kube-proxy's ConfigMap)" ($kp.kind | default "" | toString)) }}
{{- end }}
{{- $mode := $kp.mode | default "iptables" }}
{{- if not (has $mode (splitList "," (include "portway.runnableModes" $))) }}
{{- fail (printf "kubeProxyConfig: mode %q: portway runs %s" $mode (include "portway.runnableModes" $)) }}
{{- end }}
{{- end }}
{{- end -}}
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
{{- if ne (toString (dig "loadBalancer" "enabled" true (include "portway.configYaml" . | fromYaml))) "false" }}true{{ end -}}
{{- end -}}
{{- /* The Lease the agents elect the Ingress status writer with (src/ingress/status-writer.ts). */ -}}
{{- define "portway.ingressLeaseName" -}}portway-ingress-status{{- end -}}
{{- /* Whether the agent writes Ingress status (config ingress.classes non-empty; default none). */ -}}
{{- define "portway.writesIngressStatus" -}}
{{- if gt (len (dig "ingress" "classes" (list) (include "portway.configYaml" . | fromYaml))) 0 }}true{{ end -}}
{{- end -}}
{{- /*
Host and port of a "host:port" / "[v6]:port" bind address (the agent's config keys; the agent itself checks
their form). Host without brackets; "" for "every address".
*/ -}}
{{- define "portway.bindHost" -}}
{{- regexReplaceAll ":[0-9]+$" . "" | trimPrefix "[" | trimSuffix "]" -}}
{{- end -}}
{{- define "portway.bindPort" -}}
{{- regexFind "[0-9]+$" . -}}
{{- end -}}
{{- /* Whether a bind host means every address of the node (reachable at the pod IP = the node's IP). */ -}}
{{- define "portway.bindsEveryAddress" -}}
{{- if has . (list "" "0.0.0.0" "::") }}true{{ end -}}
{{- end -}}
{{- /* Whether a bind host is loopback only (unreachable from a scraper on another host). */ -}}
{{- define "portway.bindsLoopback" -}}
{{- if or (hasPrefix "127." .) (eq . "::1") }}true{{ end -}}
{{- end -}}
{{- define "portway.healthzBindAddress" -}}{{ dig "healthzBindAddress" "" (include "portway.configYaml" . | fromYaml) | default "0.0.0.0:10256" }}{{- end -}}
{{- define "portway.metricsBindAddress" -}}{{ dig "metricsBindAddress" "" (include "portway.configYaml" . | fromYaml) | default "127.0.0.1:10249" }}{{- end -}}
{{- /* Whether the monitoring.coreos.com/v1 kind given is to be rendered (the API is served, or assumed). */ -}}
{{- define "portway.monitoringAPI" -}}
{{- if or .root.Values.metrics.assumeMonitoringAPI (.root.Capabilities.APIVersions.Has (printf "monitoring.coreos.com/v1/%s" .kind)) }}true{{ end -}}
{{- end -}}
{{- define "portway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "portway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
