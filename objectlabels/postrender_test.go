package objectlabels

import (
	"bytes"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestLabelPostRenderer(t *testing.T) {
	in := `---
# Source: app/templates/cm.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm
  labels:
    keep: "yes"
data:
  big: 12345678901234567890
---
# Source: app/templates/empty.yaml
# only a comment
---
# Source: app/templates/list.yaml
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Service
    metadata:
      name: svc
---
# Source: app/templates/deploy.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: d
spec:
  replicas: 2
  template:
    metadata:
      labels:
        app: d
`
	p := &labelPostRenderer{labels: map[string]string{"mengi.cloud/deployment-id": "abc"}}
	out, err := p.Run(bytes.NewBufferString(in))
	if err != nil {
		t.Fatal(err)
	}
	text := out.String()
	docs := strings.Split(strings.TrimPrefix(text, "---\n"), "---\n")
	if len(docs) != 3 {
		t.Fatalf("%d documents; want 3 (the comment-only one dropped):\n%s", len(docs), text)
	}
	for _, src := range []string{"app/templates/cm.yaml", "app/templates/list.yaml", "app/templates/deploy.yaml"} {
		if !strings.Contains(text, "# Source: "+src+"\n") {
			t.Errorf("lost the Source comment of %s:\n%s", src, text)
		}
	}
	var cm, list, deploy map[string]any
	for i, v := range []*map[string]any{&cm, &list, &deploy} {
		if err := yaml.Unmarshal([]byte(docs[i]), v); err != nil {
			t.Fatal(err)
		}
	}
	label := func(obj map[string]any) map[string]any {
		return obj["metadata"].(map[string]any)["labels"].(map[string]any)
	}
	if l := label(cm); l["mengi.cloud/deployment-id"] != "abc" || l["keep"] != "yes" {
		t.Errorf("ConfigMap labels %v", l)
	}
	if !strings.Contains(docs[0], "big: 12345678901234567890") {
		t.Errorf("a big number changed:\n%s", docs[0])
	}
	if l := label(list["items"].([]any)[0].(map[string]any)); l["mengi.cloud/deployment-id"] != "abc" {
		t.Errorf("List item labels %v", l)
	}
	if l := label(deploy); l["mengi.cloud/deployment-id"] != "abc" {
		t.Errorf("Deployment labels %v", l)
	}
	tmpl := deploy["spec"].(map[string]any)["template"].(map[string]any)
	if l := label(tmpl); len(l) != 1 {
		t.Errorf("pod template labels %v; want them untouched", l)
	}
}

func TestLabelPostRendererError(t *testing.T) {
	p := &labelPostRenderer{labels: map[string]string{"a": "b"}}
	_, err := p.Run(bytes.NewBufferString("# Source: app/templates/bad.yaml\nkind: [unclosed\n"))
	if err == nil || !strings.Contains(err.Error(), "app/templates/bad.yaml") {
		t.Errorf("Run = %v; want an error naming the template", err)
	}
}
