{{/* Names, labels and the few computed settings shared by the templates. */}}

{{- define "sportrix-ingester.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sportrix-ingester.fullname" -}}
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

{{- define "sportrix-ingester.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sportrix-ingester.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sportrix-ingester.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "sportrix-ingester.labels" -}}
helm.sh/chart: {{ include "sportrix-ingester.chart" . }}
{{ include "sportrix-ingester.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: ingester
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "sportrix-ingester.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sportrix-ingester.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "sportrix-ingester.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* SASL in use? "true" or "". */}}
{{- define "sportrix-ingester.sasl" -}}
{{- if hasPrefix "SASL_" .Values.kafka.securityProtocol }}true{{ end }}
{{- end }}

{{/* TLS in use? "true" or "". */}}
{{- define "sportrix-ingester.tls" -}}
{{- if or (eq .Values.kafka.securityProtocol "SSL") (eq .Values.kafka.securityProtocol "SASL_SSL") }}true{{ end }}
{{- end }}

{{/* The Secret holding credentials: the user's, the chart's, or "" when there is none. */}}
{{- define "sportrix-ingester.credentialsSecret" -}}
{{- $c := .Values.credentials }}
{{- if $c.existingSecret }}
{{- $c.existingSecret }}
{{- else if or $c.apiKey $c.kafkaSaslPassword }}
{{- printf "%s-credentials" (include "sportrix-ingester.fullname" .) }}
{{- end }}
{{- end }}

{{/* Is the API key mounted? "true" or "". */}}
{{- define "sportrix-ingester.hasApiKey" -}}
{{- if or .Values.credentials.existingSecret .Values.credentials.apiKey }}true{{ end }}
{{- end }}

{{/* Is the SASL password mounted? "true" or "". */}}
{{- define "sportrix-ingester.hasSaslPassword" -}}
{{- if include "sportrix-ingester.sasl" . }}
{{- if or .Values.credentials.existingSecret .Values.credentials.kafkaSaslPassword }}true{{ end }}
{{- end }}
{{- end }}

{{/* The daemon's flush timeout in seconds (INGESTER_FLUSH_TIMEOUT, default 20). */}}
{{- define "sportrix-ingester.flushTimeout" -}}
{{- $v := index .Values.config "INGESTER_FLUSH_TIMEOUT" | default 20 }}
{{- ceil (float64 $v) | int }}
{{- end }}

{{/* terminationGracePeriodSeconds: given (checked) or flush timeout + 15. */}}
{{- define "sportrix-ingester.terminationGrace" -}}
{{- $flush := include "sportrix-ingester.flushTimeout" . | int }}
{{- $given := .Values.terminationGracePeriodSeconds }}
{{- if kindIs "invalid" $given }}
{{- add $flush 15 }}
{{- else if lt (int $given) (add $flush 5 | int) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must be at least INGESTER_FLUSH_TIMEOUT + 5 (%d): the daemon flushes buffered records to Kafka after SIGTERM" $given (add $flush 5)) }}
{{- else }}
{{- int $given }}
{{- end }}
{{- end }}

{{/* A value as an environment variable string: whole floats without exponent (20, not 2e+01). */}}
{{- define "sportrix-ingester.envValue" -}}
{{- if and (kindIs "float64" .) (eq . (floor .)) }}
{{- int64 . }}
{{- else }}
{{- . }}
{{- end }}
{{- end }}

{{/* A volume holding a CA bundle as ca.crt, from a Secret or a ConfigMap: (dict "name" N "ca" CA). */}}
{{- define "sportrix-ingester.caVolume" -}}
- name: {{ .name }}
  {{- if .ca.secretName }}
  secret:
    secretName: {{ .ca.secretName }}
  {{- else }}
  configMap:
    name: {{ .ca.configMapName }}
  {{- end }}
    defaultMode: 0444
    items:
      - key: {{ .ca.key }}
        path: ca.crt
{{- end }}

{{/* A volume holding a client certificate and key as tls.crt and tls.key: (dict "name" N "cert" C). */}}
{{- define "sportrix-ingester.clientCertVolume" -}}
- name: {{ .name }}
  secret:
    secretName: {{ .cert.secretName }}
    defaultMode: 0440
    items:
      - key: {{ .cert.certKey }}
        path: tls.crt
      - key: {{ .cert.keyKey }}
        path: tls.key
{{- end }}

{{/* Checks across values that a JSON schema cannot express well; each fails with one line. */}}
{{- define "sportrix-ingester.validate" -}}
{{- $c := .Values.credentials }}
{{- $tls := .Values.kafka.tls }}
{{- if and $c.existingSecret (or $c.apiKey $c.kafkaSaslPassword) }}
{{- fail "credentials: set either existingSecret or apiKey/kafkaSaslPassword, not both" }}
{{- end }}
{{- if and (include "sportrix-ingester.sasl" .) (not (include "sportrix-ingester.hasSaslPassword" .)) }}
{{- fail (printf "kafka.securityProtocol %s needs the SASL password: set credentials.kafkaSaslPassword or credentials.existingSecret" .Values.kafka.securityProtocol) }}
{{- end }}
{{- if and $c.kafkaSaslPassword (not (include "sportrix-ingester.sasl" .)) }}
{{- fail "credentials.kafkaSaslPassword is set but kafka.securityProtocol is not SASL_PLAINTEXT or SASL_SSL" }}
{{- end }}
{{- if and $tls.ca.secretName $tls.ca.configMapName }}
{{- fail "kafka.tls.ca: set secretName or configMapName, not both" }}
{{- end }}
{{- if and (or $tls.ca.secretName $tls.ca.configMapName $tls.clientCert.secretName) (not (include "sportrix-ingester.tls" .)) }}
{{- fail "kafka.tls.ca/clientCert are set but kafka.securityProtocol is not SSL or SASL_SSL" }}
{{- end }}
{{- if and .Values.upstream.tls.ca.secretName .Values.upstream.tls.ca.configMapName }}
{{- fail "upstream.tls.ca: set secretName or configMapName, not both" }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (eq (kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable) (kindIs "invalid" .Values.podDisruptionBudget.minAvailable)) }}
{{- fail "podDisruptionBudget: set exactly one of maxUnavailable and minAvailable (the other null)" }}
{{- end }}
{{- if and .Values.networkPolicy.enabled (not .Values.networkPolicy.egress.kafka.to) }}
{{- fail "networkPolicy.egress.kafka.to must name the Kafka brokers (ipBlock or selectors) when networkPolicy.enabled" }}
{{- end }}
{{- if and .Values.spool.persistence.enabled (not .Values.spool.enabled) }}
{{- fail "spool.persistence.enabled needs spool.enabled: there is no spool to keep" }}
{{- end }}
{{- $_ := include "sportrix-ingester.terminationGrace" . }}
{{- end }}

{{/* Where the disk spool is mounted (INGESTER_SPOOL_DIR). */}}
{{- define "sportrix-ingester.spoolDir" -}}
/var/spool/sportrix-ingester
{{- end }}

{{/* The spool volume's size: spool.maxBytes in MiB rounded up, plus 64Mi for the oldest segment
(deleted only once wholly delivered), the newest being written, and the read position. */}}
{{- define "sportrix-ingester.spoolVolumeSize" -}}
{{- $mib := div (add (int64 .Values.spool.maxBytes) 1048575) 1048576 }}
{{- printf "%dMi" (add $mib 64) }}
{{- end }}
