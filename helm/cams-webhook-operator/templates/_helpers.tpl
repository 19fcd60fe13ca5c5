{{- define "cwo.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "cwo.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* Whether a pod of this release is failing to pull its image (on an upgrade: at install no pod exists
yet, and `helm template` looks nothing up). */}}
{{- define "cwo.imagePullFailing" -}}
{{- range (lookup "v1" "Pod" .Release.Namespace "").items -}}
{{- if eq (index (.metadata.labels | default dict) "app.kubernetes.io/instance" | default "") $.Release.Name -}}
{{- range (.status.containerStatuses | default list) -}}
{{- if and .state.waiting (has .state.waiting.reason (list "ImagePullBackOff" "ErrImagePull")) -}}true{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "cwo.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "cwo.labels" -}}
{{ include "cwo.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "cwo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "cwo.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The rules the operator needs in the namespaces it watches. Secrets: get by name only, the ones that
CamsAccounts and PhoneWebhooks name; the operator never lists or watches a Secret. */}}
{{- define "cwo.watchRules" -}}
- apiGroups: [camswebhook.io]
  resources: [phonewebhooks]
  verbs: [get, list, watch, patch]
- apiGroups: [camswebhook.io]
  resources: [camsaccounts]
  verbs: [get, list, watch]
- apiGroups: [camswebhook.io]
  resources: [phonewebhooks/status, camsaccounts/status]
  verbs: [get, patch]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
{{- end -}}

{{/* Cluster-scoped reads, in either mode: ClusterCamsAccounts, namespaces' labels (which
ClusterCamsAccounts admit which namespace), and CRDs (kopf's resource observer lists and watches them to
find the resources it serves; without it, kopf retries a refused request for ever). */}}
{{- define "cwo.clusterScopedRules" -}}
- apiGroups: [camswebhook.io]
  resources: [clustercamsaccounts]
  verbs: [get, list, watch]
- apiGroups: [camswebhook.io]
  resources: [clustercamsaccounts/status]
  verbs: [get, patch]
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get, list, watch]
{{- end -}}
