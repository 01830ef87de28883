{{- define "boltz-operator.name" -}}boltz-operator{{- end -}}
{{- define "boltz-operator.labels" -}}
app.kubernetes.io/name: boltz-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
