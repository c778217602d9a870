{{/* Chart name, possibly overridden. */}}
{{- define "tao.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name prefix of every object: <release>-<chart>, or the release name when it contains the chart name. */}}
{{- define "tao.fullname" -}}
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

{{- define "tao.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tao.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tao.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tao.labels" -}}
helm.sh/chart: {{ include "tao.chart" . }}
{{ include "tao.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: teams-app-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "tao.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tao.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tao.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* "true" when leader election runs: asked for, or needed because more than one replica runs. */}}
{{- define "tao.leaderElection" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) }}true{{- end }}
{{- end }}

{{- define "tao.notificationSecret" -}}
{{- printf "%s-subscriptions" (include "tao.fullname" .) }}
{{- end }}

{{- define "tao.leaseName" -}}
{{- default (include "tao.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/* The Secret holding the Graph credential, or "" when there is none (workload identity, or nothing configured yet). */}}
{{- define "tao.graphSecretName" -}}
{{- if ne .Values.graph.credential "workloadIdentity" }}
{{- if .Values.graph.existingSecret }}
{{- .Values.graph.existingSecret }}
{{- else if or .Values.graph.clientSecret .Values.graph.clientCertificate }}
{{- printf "%s-graph" (include "tao.fullname" .) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The key of the credential inside that Secret. */}}
{{- define "tao.graphSecretKey" -}}
{{- $default := ternary "client.pem" "client-secret" (eq .Values.graph.credential "certificate") }}
{{- if .Values.graph.existingSecret }}
{{- default $default .Values.graph.existingSecretKey }}
{{- else }}
{{- $default }}
{{- end }}
{{- end }}

{{/* Where the credential Secret is mounted. */}}
{{- define "tao.graphSecretDir" -}}
/var/run/secrets/teamsapps.dev/graph
{{- end }}

{{/* Where the notification certificate's kubernetes.io/tls Secret is mounted (NOTIFICATION_CERTIFICATE). */}}
{{- define "tao.notificationCertificateDir" -}}
/var/run/secrets/teamsapps.dev/notification-certificate
{{- end }}

{{/*
Cross-field checks the schema cannot explain well. Each fails the render with a message that says
what to change.
*/}}
{{- define "tao.validate" -}}
{{- $g := .Values.graph }}
{{- if .Values.notifications.enabled }}
{{- if not .Values.notifications.url }}
{{- fail "notifications.enabled needs notifications.url: the public HTTPS base URL under which Graph reaches the operator" }}
{{- end }}
{{- else if .Values.notifications.encryptionCertificate.secretName }}
{{- fail "notifications.encryptionCertificate.secretName needs notifications.enabled: the certificate is for the notifications Graph sends" }}
{{- end }}
{{- if and $g.clientSecret $g.clientCertificate }}
{{- fail "graph.clientSecret and graph.clientCertificate are both set: the operator signs in with exactly one credential" }}
{{- end }}
{{- if and $g.existingSecret (or $g.clientSecret $g.clientCertificate) }}
{{- fail "graph.existingSecret is set together with graph.clientSecret/clientCertificate: use the existing Secret or let the chart make one, not both" }}
{{- end }}
{{- if and $g.existingSecretKey (not $g.existingSecret) }}
{{- fail "graph.existingSecretKey needs graph.existingSecret" }}
{{- end }}
{{- if eq $g.credential "workloadIdentity" }}
{{- if or $g.existingSecret $g.clientSecret $g.clientCertificate $g.clientSecretAsEnv }}
{{- fail "graph.credential is workloadIdentity: remove graph.existingSecret, graph.clientSecret, graph.clientCertificate and graph.clientSecretAsEnv (the federated token replaces them)" }}
{{- end }}
{{- if not $g.clientId }}
{{- fail "graph.credential is workloadIdentity: set graph.clientId (it goes into the ServiceAccount's azure.workload.identity/client-id annotation)" }}
{{- end }}
{{- end }}
{{- if and (eq $g.credential "certificate") $g.clientSecret }}
{{- fail "graph.credential is certificate but graph.clientSecret is set: put the PEM in graph.clientCertificate, or set graph.credential=clientSecret" }}
{{- end }}
{{- if and (eq $g.credential "certificate") $g.clientSecretAsEnv }}
{{- fail "graph.clientSecretAsEnv only applies to graph.credential=clientSecret" }}
{{- end }}
{{- if and (eq $g.credential "clientSecret") $g.clientCertificate }}
{{- fail "graph.clientCertificate is set but graph.credential is clientSecret: set graph.credential=certificate" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.service.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.service.enabled (a ServiceMonitor scrapes through the Service)" }}
{{- end }}
{{- end }}
