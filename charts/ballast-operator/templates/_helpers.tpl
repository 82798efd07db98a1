{{/* The chart's name, or nameOverride. */}}
{{- define "ballast-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name: fullnameOverride, or "<release>-<chart name>"
unless the release name already contains the chart name. Kubernetes names
are at most 63 characters.
*/}}
{{- define "ballast-operator.fullname" -}}
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

{{/* chart label value: name-version */}}
{{- define "ballast-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels the Deployment's selector uses; never change them in an upgrade. */}}
{{- define "ballast-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ballast-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* Labels on every object of the release. */}}
{{- define "ballast-operator.labels" -}}
helm.sh/chart: {{ include "ballast-operator.chart" . }}
{{ include "ballast-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ballast
{{- end }}

{{- define "ballast-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ballast-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "ballast-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The repository members run when their EtcdCluster has no spec.image. */}}
{{- define "ballast-operator.memberImageRepository" -}}
{{- default .Values.image.repository .Values.memberImage.repository }}
{{- end }}

{{/*
The operator's RBAC rules, exactly as controller-gen generates them from the
controllers' +kubebuilder:rbac markers into config/rbac/role.yaml.
hack/chart/sync.sh (run by `make manifests`) copies that file to
files/role.yaml, and the chart test fails when the two differ, so the chart
cannot grant less, or more, than the code asks for.
*/}}
{{- define "ballast-operator.rules" -}}
{{- $role := .Files.Get "files/role.yaml" | fromYaml }}
{{- if not $role.rules }}
{{- fail "files/role.yaml has no rules: run `make manifests` (hack/chart/sync.sh copies config/rbac/role.yaml into the chart)" }}
{{- end }}
{{- toYaml $role.rules }}
{{- end }}

{{/* The leader election rules, from config/rbac/leader_election_role.yaml (copied the same way). */}}
{{- define "ballast-operator.leaderElectionRules" -}}
{{- $role := .Files.Get "files/leader_election_role.yaml" | fromYaml }}
{{- if not $role.rules }}
{{- fail "files/leader_election_role.yaml has no rules: run `make manifests` (hack/chart/sync.sh copies config/rbac/leader_election_role.yaml into the chart)" }}
{{- end }}
{{- toYaml $role.rules }}
{{- end }}
