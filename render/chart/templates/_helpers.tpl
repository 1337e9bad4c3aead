{{/*
Every object carries these labels. The chart's only inputs are its values:
name and instance are both the deployment's name (which is also the
release's), managed-by is what Helm itself stamps on the objects it applies.
*/}}
{{- define "mengi-app.labels" -}}
app.kubernetes.io/name: {{ .Values.name | quote }}
app.kubernetes.io/instance: {{ .Values.name | quote }}
app.kubernetes.io/managed-by: Helm
app.kubernetes.io/part-of: mengi
mengi.cloud/deployment-id: {{ .Values.deploymentId | quote }}
{{- end }}

{{/* The labels that select the pods; they never change for a deployment. */}}
{{- define "mengi-app.selectorLabels" -}}
app.kubernetes.io/name: {{ .Values.name | quote }}
app.kubernetes.io/instance: {{ .Values.name | quote }}
{{- end }}

{{/* The servicePorts of the Service and the headless Service. */}}
{{- define "mengi-app.servicePorts" -}}
- name: {{ .Values.portName }}
  port: {{ int64 .Values.port }}
  targetPort: {{ .Values.portName }}
  protocol: TCP
{{- end }}
