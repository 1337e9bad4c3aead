package render_test

import (
	"bytes"
	"testing"

	"github.com/mengi-cloud/gitops/render"
)

// TestPostRenderer checks the label post-renderer of user charts on what
// Helm hands it: documents headed by "# Source:", several documents from
// one template, empty documents, Lists, objects without labels.
func TestPostRenderer(t *testing.T) {
	v1, _ := miniVersions(t)
	repo := newChartRepo(t, repoChart{name: "mini", version: "0.1.0", data: v1})
	rel, err := newRenderer(t, render.Options{Fetch: allowLoopback}).Render(testContext(t), helmDeployment(t, helmCase, repo.RepoURL()), nil)
	if err != nil {
		t.Fatal(err)
	}
	in := `---
# Source: x/templates/a.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: a
  labels:
    keep: "yes"
data:
  big: 12345678901234567890
  octal: "0755"
---
# Source: x/templates/a.yaml
---
# Source: x/templates/list.yaml
apiVersion: v1
kind: ConfigMapList
items:
  - apiVersion: v1
    kind: ConfigMap
    metadata:
      name: b
`
	id := "d0000000-0000-4000-8000-00000000000b"
	want := `---
# Source: x/templates/a.yaml
apiVersion: v1
data:
  big: 12345678901234567890
  octal: "0755"
kind: ConfigMap
metadata:
  labels:
    keep: "yes"
    mengi.cloud/deployment-id: ` + id + `
  name: a
---
# Source: x/templates/list.yaml
apiVersion: v1
items:
- apiVersion: v1
  kind: ConfigMap
  metadata:
    labels:
      mengi.cloud/deployment-id: ` + id + `
    name: b
kind: ConfigMapList
metadata:
  labels:
    mengi.cloud/deployment-id: ` + id + `
`
	out, err := rel.PostRenderer.Run(bytes.NewBufferString(in))
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != want {
		t.Errorf("post-rendered:\n%s\nwant:\n%s\n%s", out, want, lineDiff(want, out.String()))
	}
	if _, err := rel.PostRenderer.Run(bytes.NewBufferString("---\n# Source: bad.yaml\nkind: [\n")); err == nil {
		t.Error("broken YAML was post-rendered")
	}
}
