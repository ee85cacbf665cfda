{{/* The pod template of the Deployment and of the StatefulSet (spool.persistence.enabled). */}}
{{- define "sportrix-ingester.podTemplate" -}}
{{- $secret := include "sportrix-ingester.credentialsSecret" . }}
{{- $tls := .Values.kafka.tls }}
{{- $useTls := include "sportrix-ingester.tls" . }}
{{- $up := .Values.upstream -}}
metadata:
  labels:
    {{- include "sportrix-ingester.selectorLabels" . | nindent 4 }}
    app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
    app.kubernetes.io/component: ingester
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    # A settings change rolls the pods (envFrom is read only at container start).
    checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "sportrix-ingester.serviceAccountName" . }}
  automountServiceAccountToken: false
  # No KAFKA_*_PORT style variables from Services in the namespace leaking into settings.
  enableServiceLinks: false
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  # Above the daemon's flush timeout: after SIGTERM it stops reading, flushes buffered
  # records to Kafka (up to INGESTER_FLUSH_TIMEOUT) and leaves the consumer group.
  terminationGracePeriodSeconds: {{ include "sportrix-ingester.terminationGrace" . }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  containers:
    - name: ingester
      image: {{ include "sportrix-ingester.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args: ["run"]
      envFrom:
        - configMapRef:
            name: {{ include "sportrix-ingester.fullname" . }}
      env:
        # Each replica names itself after its pod (logs, /status, the producer header).
        - name: INGESTER_INSTANCE_ID
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        # The upstream's egress proxy (Kafka never goes through it).
        {{- range $name, $value := dict "HTTPS_PROXY" $up.proxy.httpsProxy "HTTP_PROXY" $up.proxy.httpProxy "NO_PROXY" $up.proxy.noProxy }}
        {{- if $value }}
        - name: {{ $name }}
          value: {{ $value | quote }}
        {{- end }}
        {{- end }}
      ports:
        - name: http
          containerPort: {{ .Values.containerPort }}
          protocol: TCP
      startupProbe:
        httpGet:
          path: /healthz
          port: http
        {{- toYaml .Values.startupProbe | nindent 8 }}
      livenessProbe:
        httpGet:
          path: /healthz
          port: http
        {{- toYaml .Values.livenessProbe | nindent 8 }}
      readinessProbe:
        httpGet:
          path: /readyz
          port: http
        {{- toYaml .Values.readinessProbe | nindent 8 }}
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- if .Values.spool.enabled }}
        # The disk spool: the one writable place besides /tmp.
        - name: spool
          mountPath: {{ include "sportrix-ingester.spoolDir" . }}
        {{- end }}
        {{- if or $up.tls.ca.secretName $up.tls.ca.configMapName }}
        - name: upstream-ca
          mountPath: /etc/sportrix-ingester/upstream-ca
          readOnly: true
        {{- end }}
        {{- if $up.tls.clientCert.secretName }}
        - name: upstream-client
          mountPath: /etc/sportrix-ingester/upstream-client
          readOnly: true
        {{- end }}
        {{- if $up.proxy.urlSecret.name }}
        # A proxy URL with credentials: a file, never in the pod spec or a ConfigMap.
        - name: upstream-proxy
          mountPath: /etc/sportrix-ingester/upstream-proxy
          readOnly: true
        {{- end }}
        {{- if $secret }}
        # No subPath: the kubelet refreshes the files when the Secret changes, and the
        # daemon re-reads the API key file on every connection.
        - name: credentials
          mountPath: /etc/sportrix-ingester/credentials
          readOnly: true
        {{- end }}
        {{- if and $useTls (or $tls.ca.secretName $tls.ca.configMapName) }}
        - name: kafka-ca
          mountPath: /etc/sportrix-ingester/kafka-ca
          readOnly: true
        {{- end }}
        {{- if and $useTls $tls.clientCert.secretName }}
        - name: kafka-client
          mountPath: /etc/sportrix-ingester/kafka-client
          readOnly: true
        {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: {{ .Values.tmp.sizeLimit }}
    {{- if and .Values.spool.enabled (not .Values.spool.persistence.enabled) }}
    # Lives as long as the pod: survives the daemon's crashes, not the pod's deletion.
    - name: spool
      emptyDir:
        sizeLimit: {{ include "sportrix-ingester.spoolVolumeSize" . }}
    {{- end }}
    {{- if or $up.tls.ca.secretName $up.tls.ca.configMapName }}
    {{- include "sportrix-ingester.caVolume" (dict "name" "upstream-ca" "ca" $up.tls.ca) | nindent 4 }}
    {{- end }}
    {{- if $up.tls.clientCert.secretName }}
    {{- include "sportrix-ingester.clientCertVolume" (dict "name" "upstream-client" "cert" $up.tls.clientCert) | nindent 4 }}
    {{- end }}
    {{- if $up.proxy.urlSecret.name }}
    - name: upstream-proxy
      secret:
        secretName: {{ $up.proxy.urlSecret.name }}
        defaultMode: 0440
        items:
          - key: {{ $up.proxy.urlSecret.key }}
            path: proxy-url
    {{- end }}
    {{- if $secret }}
    - name: credentials
      secret:
        secretName: {{ $secret }}
        defaultMode: 0440
        items:
          {{- if include "sportrix-ingester.hasApiKey" . }}
          - key: {{ .Values.credentials.apiKeyKey }}
            path: api-key
          {{- end }}
          {{- if include "sportrix-ingester.hasSaslPassword" . }}
          - key: {{ .Values.credentials.kafkaSaslPasswordKey }}
            path: kafka-sasl-password
          {{- end }}
    {{- end }}
    {{- if and $useTls (or $tls.ca.secretName $tls.ca.configMapName) }}
    {{- include "sportrix-ingester.caVolume" (dict "name" "kafka-ca" "ca" $tls.ca) | nindent 4 }}
    {{- end }}
    {{- if and $useTls $tls.clientCert.secretName }}
    {{- include "sportrix-ingester.clientCertVolume" (dict "name" "kafka-client" "cert" $tls.clientCert) | nindent 4 }}
    {{- end }}
  {{- if .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml .Values.topologySpreadConstraints | nindent 4 }}
  {{- else if .Values.topologySpread.enabled }}
  topologySpreadConstraints:
    {{- range .Values.topologySpread.topologyKeys }}
    - maxSkew: {{ $.Values.topologySpread.maxSkew }}
      topologyKey: {{ . }}
      whenUnsatisfiable: {{ $.Values.topologySpread.whenUnsatisfiable }}
      labelSelector:
        matchLabels:
          {{- include "sportrix-ingester.selectorLabels" $ | nindent 10 }}
      {{- if not $.Values.spool.persistence.enabled }}
      # Spread each ReplicaSet on its own, so a rollout does not skew the new pods.
      matchLabelKeys:
        - pod-template-hash
      {{- end }}
    {{- end }}
  {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
