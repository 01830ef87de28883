{{/* Names. The fullname is the release name when it already contains the chart name (`helm install boltz-operator ...`
gives a ServiceAccount named boltz-operator). Cluster-scoped objects (ClusterRole, ClusterRoleBinding) and the
RoleBindings in watched namespaces carry the release namespace too, so two releases never collide. */}}
{{- define "boltz-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "boltz-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "boltz-operator.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "boltz-operator.rbacName" -}}
{{- printf "%s-%s" (include "boltz-operator.fullname" .) .Release.Namespace -}}
{{- end -}}

{{- define "boltz-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "boltz-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "boltz-operator.labels" -}}
{{ include "boltz-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* repository:tag, or repository@digest when a digest is given; the tag defaults to the chart's appVersion. */}}
{{- define "boltz-operator.image" -}}
{{- $image := index . 0 -}}{{- $chart := index . 1 -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (default $chart.AppVersion $image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Namespaces that get a worker ServiceAccount: workerServiceAccount.namespaces, else watchNamespaces. */}}
{{- define "boltz-operator.workerServiceAccountNamespaces" -}}
{{- $namespaces := .Values.workerServiceAccount.namespaces | default .Values.watchNamespaces -}}
{{- if not $namespaces -}}
{{- fail "workerServiceAccount.create needs workerServiceAccount.namespaces or watchNamespaces: a ServiceAccount must exist in every namespace with predictions" -}}
{{- end -}}
{{- toJson $namespaces -}}
{{- end -}}

{{/* The operator's default results store, as BOLTZ_OPERATOR_DEFAULT_RESULTS (JSON); empty when none is set. */}}
{{/* A store's values (list NAME VALUES: defaultResults, msaServer.store) as the operator's JSON, or nothing. */}}
{{- define "boltz-operator.store" -}}
{{- $name := index . 0 -}}{{- $s3 := (index . 1).s3 -}}{{- $pvc := (index . 1).pvc -}}
{{- if and $s3.uri $pvc.claimName -}}
{{- fail (printf "%s: set s3.uri or pvc.claimName, not both" $name) -}}
{{- end -}}
{{- $store := dict -}}
{{- if $s3.uri -}}
{{- $_ := set $store "s3_uri" $s3.uri -}}
{{- with $s3.endpoint }}{{ $_ := set $store "s3_endpoint" . }}{{ end -}}
{{- with $s3.region }}{{ $_ := set $store "s3_region" . }}{{ end -}}
{{- with $s3.credentialsSecret }}{{ $_ := set $store "s3_credentials_secret" . }}{{ end -}}
{{- else if $pvc.claimName -}}
{{- $_ := set $store "pvc_claim_name" $pvc.claimName -}}
{{- with $pvc.subPath }}{{ $_ := set $store "pvc_sub_path" . }}{{ end -}}
{{- end -}}
{{- if $store }}{{ toJson $store }}{{ end -}}
{{- end -}}
