{{/*
Helpers shared by every template. A "service context" is a dict built by lomash.ctx:
  root: the chart's root context; name: the service's name (e.g. order-payment);
  svc: services.<name> deep-merged over serviceDefaults.
*/}}

{{/* Deep merge of two maps (the second wins); unlike sprig's merge, false and 0 override. */}}
{{- define "lomash.deepMerge" -}}
{{- $out := deepCopy (index . 0 | default dict) -}}
{{- range $k, $v := (index . 1 | default dict) -}}
{{- if and (kindIs "map" $v) (kindIs "map" (index $out $k)) -}}
{{- $_ := set $out $k (include "lomash.deepMerge" (list (index $out $k) $v) | fromYaml) -}}
{{- else -}}
{{- $_ := set $out $k $v -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* The context of one service: (list root name). */}}
{{- define "lomash.ctx" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $cfg := index $root.Values.services $name -}}
{{- $svc := include "lomash.deepMerge" (list $root.Values.serviceDefaults $cfg) | fromYaml -}}
{{- if not (hasKey $cfg "allowFrom") -}}
{{- $_ := set $svc "allowFrom" $root.Values.serviceDefaults.allowFrom -}}
{{- end -}}
{{- toYaml (dict "name" $name "svc" $svc) -}}
{{- end -}}

{{- define "lomash.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-<name>, at most 63 characters: (list root name). */}}
{{- define "lomash.fullname" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" $root.Release.Name (index . 1) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels every object carries: (list root name component). */}}
{{- define "lomash.labels" -}}
{{- $root := index . 0 -}}
helm.sh/chart: {{ include "lomash.chart" $root }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/part-of: lomash
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/component: {{ index . 2 }}
{{ include "lomash.selectorLabels" (list $root (index . 1)) }}
{{- end -}}

{{/* The labels selectors match: (list root name). */}}
{{- define "lomash.selectorLabels" -}}
app.kubernetes.io/name: {{ index . 1 }}
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
{{- end -}}

{{/* The image of a service: (list root name). */}}
{{- define "lomash.image" -}}
{{- $root := index . 0 -}}
{{- $img := $root.Values.global.image -}}
{{- $tag := $img.tag | default $root.Chart.AppVersion -}}
{{- if eq $tag "latest" -}}
{{- fail "global.image.tag must name a version, not latest" -}}
{{- end -}}
{{- if $img.digest -}}
{{- printf "%s/%s-service:%s@%s" $img.registry (index . 1) $tag $img.digest -}}
{{- else -}}
{{- printf "%s/%s-service:%s" $img.registry (index . 1) $tag -}}
{{- end -}}
{{- end -}}

{{/* terminationGracePeriodSeconds: preStop sleep + SHUTDOWN_GRACE_MS + a margin. */}}
{{- define "lomash.terminationGrace" -}}
{{- $g := .Values.global -}}
{{- add $g.preStopSleepSeconds (div (int64 $g.shutdownGraceMs) 1000) $g.terminationMarginSeconds -}}
{{- end -}}

{{/*
The plain environment of a service as a map (YAML): global.env, then the service's env
(templated with tpl), then PORT and SHUTDOWN_GRACE_MS. Null values drop an inherited entry.
(list root ctx)
*/}}
{{- define "lomash.plainEnv" -}}
{{- $root := index . 0 -}}
{{- $ctx := index . 1 -}}
{{- $merged := include "lomash.deepMerge" (list $root.Values.global.env ($ctx.svc.env | default dict)) | fromYaml -}}
{{- $out := dict -}}
{{- range $k, $v := $merged -}}
{{- if not (kindIs "invalid" $v) -}}
{{- $_ := set $out $k (tpl (toString $v) $root) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $out "PORT" (toString $ctx.svc.port) -}}
{{- $_ := set $out "SHUTDOWN_GRACE_MS" (toString $root.Values.global.shutdownGraceMs) -}}
{{- toYaml $out -}}
{{- end -}}

{{/* Secret references of a service as a YAML list of env entries: (list root ctx). */}}
{{- define "lomash.secretEnv" -}}
{{- $root := index . 0 -}}
{{- $ctx := index . 1 -}}
{{- $merged := include "lomash.deepMerge" (list $root.Values.global.secretEnv ($ctx.svc.secretEnv | default dict)) | fromYaml -}}
{{- $entries := list -}}
{{- range $var := keys $merged | sortAlpha -}}
{{- $ref := index $merged $var -}}
{{- if $ref -}}
{{- $name := required (printf "secretEnv.%s.secretName" $var) $ref.secretName -}}
{{- $key := required (printf "secretEnv.%s.key" $var) $ref.key -}}
{{- $entries = append $entries (dict "name" $var "valueFrom" (dict "secretKeyRef" (dict "name" $name "key" $key))) -}}
{{- end -}}
{{- end -}}
{{- toYaml $entries -}}
{{- end -}}

{{- define "lomash.podSecurityContext" -}}
{{ toYaml .Values.global.podSecurityContext }}
{{- end -}}

{{- define "lomash.containerSecurityContext" -}}
{{ toYaml .Values.global.containerSecurityContext }}
{{- end -}}

{{/*
Waivers of checkov findings on the workloads, each with its reason (the chart's own policy
check is in xtask/src/deploy_check.rs; CI also runs checkov on the rendered manifests).
*/}}
{{- define "lomash.checkovWaivers" -}}
checkov.io/skip1: CKV_K8S_43=Images are pinned by immutable version tags; set global.image.digest to pin digests
checkov.io/skip2: CKV_K8S_15=IfNotPresent is right for immutable version tags and avoids a registry round trip per start
checkov.io/skip3: CKV_K8S_35=The services read configuration from environment variables by design; the values come from Secret references
{{- end -}}
