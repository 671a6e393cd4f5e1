{{/*
Shared pieces of the daprplane templates. Helpers that depend on a component take a dict
(each template builds it with `dict`):
  root: the top-level context ($)
  component: operator | sentry | placement | injector (the dapr.io/control-plane value)
  app: the `app` label and workload name (dapr-operator, dapr-sentry, dapr-placement-server,
       dapr-sidecar-injector)
  values: the component's values (.Values.dapr_operator, ...)
*/}}

{{/* The one daprplane image every component runs. */}}
{{- define "daprplane.image" -}}
{{- $tag := .Values.global.tag | default .Chart.AppVersion -}}
{{- printf "%s/daprplane:%s" (trimSuffix "/" .Values.global.registry) (toString $tag) -}}
{{- end -}}

{{/* The daprd image the injector gives sidecars. */}}
{{- define "daprplane.sidecarImage" -}}
{{- $injector := .Values.dapr_sidecar_injector -}}
{{- if contains "/" $injector.image.name -}}
{{- $injector.image.name -}}
{{- else -}}
{{- printf "%s/%s:%s" (trimSuffix "/" $injector.daprdRegistry) $injector.image.name (toString $injector.daprdTag) -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "daprplane.labels" -}}
app.kubernetes.io/name: {{ .root.Release.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Values.global.tag | default .root.Chart.AppVersion | toString | quote }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: dapr
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Labels of a component's pods: the `app` selector label first. */}}
{{- define "daprplane.podLabels" -}}
app: {{ .app }}
{{ include "daprplane.labels" . }}
{{- with .root.Values.global.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Replicas of a Deployment: the HA count, else the component's replicaCount. */}}
{{- define "daprplane.replicas" -}}
{{- $values := .values -}}
{{- if .root.Values.global.ha.enabled -}}
{{- .root.Values.global.ha.replicaCount -}}
{{- else -}}
{{- $values.replicaCount -}}
{{- end -}}
{{- end -}}

{{/* imagePullSecrets from a string, a list of names, or a list of {name} objects. */}}
{{- define "daprplane.imagePullSecrets" -}}
{{- $secrets := .Values.global.imagePullSecrets -}}
{{- if $secrets }}
imagePullSecrets:
{{- if kindIs "string" $secrets }}
  - name: {{ $secrets }}
{{- else }}
{{- range $secrets }}
{{- if kindIs "map" . }}
  - name: {{ required "each global.imagePullSecrets object needs a name" .name }}
{{- else }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The control plane's trust domain. */}}
{{- define "daprplane.trustDomain" -}}
{{- .Values.global.mtls.controlPlaneTrustDomain -}}
{{- end -}}

{{/* Where components and sidecars reach sentry. */}}
{{- define "daprplane.sentryAddress" -}}
{{- if .Values.global.mtls.sentryAddress -}}
{{- .Values.global.mtls.sentryAddress -}}
{{- else -}}
{{- printf "dapr-sentry.%s.svc%s:443" .Release.Namespace .Values.global.dnsSuffix -}}
{{- end -}}
{{- end -}}

{{/* Addresses of the services that may place actors or keep reminders. */}}
{{- define "daprplane.serviceAddress" -}}
{{- $addresses := dict "placement" "dapr-placement-server:50005" "scheduler" "dapr-scheduler-server:50006" -}}
{{- if not (hasKey $addresses .) -}}
{{- fail (printf "unknown actors/reminders service %q: use placement or scheduler" .) -}}
{{- end -}}
{{- get $addresses . -}}
{{- end -}}

{{/* Logging and metrics flags every launcher shares. */}}
{{- define "daprplane.commonArgs" -}}
{{- $values := .values -}}
- --log-level
- {{ $values.logLevel | quote }}
{{- if .root.Values.global.logAsJson }}
- --log-as-json
{{- end }}
{{- if .root.Values.global.prometheus.enabled }}
- --enable-metrics
- --metrics-port
- {{ .root.Values.global.prometheus.port | quote }}
{{- else }}
- --enable-metrics=false
{{- end }}
{{- end -}}

{{/* A component's extraArgs. */}}
{{- define "daprplane.extraArgs" -}}
{{- $values := .values -}}
{{- range $values.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}

{{/* Environment every container gets: its namespace, the plugin selection, extraEnvVars. */}}
{{- define "daprplane.commonEnv" -}}
{{- $values := .values -}}
- name: NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- with .root.Values.plugins.enabled }}
{{- /* The four components are entry points too: an allow-list that left them out would stop
       every launcher, so they are always on it (plugins.disabled can still drop one). */}}
- name: DAPRPLANE_PLUGINS
  value: {{ concat (list "operator" "sentry" "placement" "injector") . | uniq | join "," | quote }}
{{- end }}
{{- with .root.Values.plugins.disabled }}
- name: DAPRPLANE_DISABLE_PLUGINS
  value: {{ join "," . | quote }}
{{- end }}
{{- range $name, $value := $values.extraEnvVars }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/* Pod annotations: the control-plane marker sentry checks, and Prometheus scraping. */}}
{{- define "daprplane.podAnnotations" -}}
dapr.io/control-plane: {{ .component }}
{{- if .root.Values.global.prometheus.enabled }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .root.Values.global.prometheus.port | quote }}
prometheus.io/path: "/"
{{- end }}
{{- end -}}

{{/* Annotations of a Service that exposes metrics. */}}
{{- define "daprplane.serviceAnnotations" -}}
{{- if .root.Values.global.prometheus.enabled }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .root.Values.global.prometheus.port | quote }}
prometheus.io/path: "/"
{{- end }}
{{- with .annotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The hardened security context of every container. */}}
{{- define "daprplane.securityContext" -}}
runAsNonRoot: true
{{- with .Values.global.runAsUser }}
runAsUser: {{ . }}
{{- end }}
{{- with .Values.global.runAsGroup }}
runAsGroup: {{ . }}
{{- end }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop:
    - ALL
{{- with .Values.global.seccompProfile }}
seccompProfile:
  type: {{ . }}
{{- end }}
{{- end -}}

{{/* Probes on /healthz:8080. */}}
{{- define "daprplane.probes" -}}
{{- $values := .values -}}
livenessProbe:
  httpGet:
    path: /healthz
    port: 8080
  initialDelaySeconds: {{ $values.livenessProbe.initialDelaySeconds }}
  periodSeconds: {{ $values.livenessProbe.periodSeconds }}
  failureThreshold: {{ $values.livenessProbe.failureThreshold }}
readinessProbe:
  httpGet:
    path: /healthz
    port: 8080
  initialDelaySeconds: {{ $values.readinessProbe.initialDelaySeconds }}
  periodSeconds: {{ $values.readinessProbe.periodSeconds }}
  failureThreshold: {{ $values.readinessProbe.failureThreshold }}
{{- end -}}

{{/* Mounts of a component that gets its identity from sentry: trust anchors, token, /tmp. */}}
{{- define "daprplane.identityVolumeMounts" -}}
- name: dapr-trust-bundle
  mountPath: /var/run/secrets/dapr.io/tls
  readOnly: true
{{- if .root.Values.global.mtls.mountSentryVolume }}
- name: dapr-identity-token
  mountPath: /var/run/secrets/dapr.io/sentrytoken
  readOnly: true
{{- end }}
- name: tmp
  mountPath: /tmp
{{- include "daprplane.extraVolumeMounts" . }}
{{- end -}}

{{- define "daprplane.identityVolumes" -}}
- name: dapr-trust-bundle
  configMap:
    name: dapr-trust-bundle
{{- if .root.Values.global.mtls.mountSentryVolume }}
- name: dapr-identity-token
  projected:
    sources:
      - serviceAccountToken:
          path: token
          expirationSeconds: 600
          audience: {{ printf "spiffe://%s/ns/%s/dapr-sentry" (include "daprplane.trustDomain" .root) .root.Release.Namespace | quote }}
{{- end }}
- name: tmp
  emptyDir:
    medium: Memory
    sizeLimit: 64Mi
{{- include "daprplane.extraVolumes" . }}
{{- end -}}

{{- define "daprplane.extraVolumes" -}}
{{- with (get (.root.Values.global.extraVolumes | default dict) .component) }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "daprplane.extraVolumeMounts" -}}
{{- with (get (.root.Values.global.extraVolumeMounts | default dict) .component) }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Node selection, tolerations, priority and affinity of a control-plane pod.
     .antiAffinity: "preferred" (weight 100) or "required", used with HA (or .forceHA). */}}
{{- define "daprplane.scheduling" -}}
{{- $global := .root.Values.global -}}
{{- with $global.nodeSelector }}
nodeSelector:
{{ toYaml . | indent 2 }}
{{- end }}
{{- with $global.tolerations }}
tolerations:
{{ toYaml . | indent 2 }}
{{- end }}
{{- with $global.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
affinity:
  nodeAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms:
        - matchExpressions:
            - key: kubernetes.io/os
              operator: In
              values:
                - {{ $global.daprControlPlaneOs }}
{{- with $global.daprControlPlaneArch }}
            - key: kubernetes.io/arch
              operator: In
              values:
                - {{ . }}
{{- end }}
{{- if or $global.ha.enabled .forceHA }}
  podAntiAffinity:
{{- if eq .antiAffinity "required" }}
    requiredDuringSchedulingIgnoredDuringExecution:
      - labelSelector:
          matchLabels:
            app: {{ .app }}
        topologyKey: {{ $global.ha.topologyKey }}
{{- else }}
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          labelSelector:
            matchLabels:
              app: {{ .app }}
          topologyKey: {{ $global.ha.topologyKey }}
{{- end }}
{{- end }}
{{- end -}}

{{/* A PodDisruptionBudget for a component in HA. */}}
{{- define "daprplane.disruptionBudget" -}}
{{- $disruption := .root.Values.global.ha.disruption -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ .app }}-disruption-budget
  namespace: {{ .root.Release.Namespace }}
  labels:
    app: {{ .app }}
{{ include "daprplane.labels" . | indent 4 }}
spec:
{{- if $disruption.minimumAvailable }}
  minAvailable: {{ $disruption.minimumAvailable }}
{{- else }}
  maxUnavailable: {{ $disruption.maximumUnavailable }}
{{- end }}
  selector:
    matchLabels:
      app: {{ .app }}
{{- end -}}

{{/* A component's ServiceAccount, named .name. */}}
{{- define "daprplane.serviceAccount" -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ .name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
{{ include "daprplane.labels" . | indent 4 }}
{{- with (get .root.Values.dapr_rbac.serviceAccount .component).annotations }}
  annotations:
{{ toYaml . | indent 4 }}
{{- end }}
{{- end -}}

{{/* "preferred" or "required" from global.ha.podAntiAffinityPolicy; anything else fails. */}}
{{- define "daprplane.validatePodAntiAffinityPolicy" -}}
{{- $policy := .Values.global.ha.podAntiAffinityPolicy -}}
{{- if eq $policy "preferredDuringSchedulingIgnoredDuringExecution" -}}
preferred
{{- else if eq $policy "requiredDuringSchedulingIgnoredDuringExecution" -}}
required
{{- else -}}
{{- fail (printf "global.ha.podAntiAffinityPolicy must be preferredDuringSchedulingIgnoredDuringExecution or requiredDuringSchedulingIgnoredDuringExecution, not %q" $policy) -}}
{{- end -}}
{{- end -}}

{{/* DAPRPLANE_REGISTRY_MIRROR from a list of {source, mirror}. */}}
{{- define "daprplane.registryMirrorRules" -}}
{{- $rules := list -}}
{{- range . -}}
{{- $rules = append $rules (printf "%s=%s" (required "each registryMirror rule needs a source" .source) (required "each registryMirror rule needs a mirror" .mirror)) -}}
{{- end -}}
{{- join "," $rules -}}
{{- end -}}
