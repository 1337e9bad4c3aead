// Package objectlabels adds labels to every Kubernetes object Helm renders
// from a chart, as a Helm post-renderer. The agent labels the objects of
// every release with the deployment's id this way (user charts included),
// and `mengi render --manifests` shows the same objects.
package objectlabels

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"

	"helm.sh/helm/v3/pkg/postrender"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// PostRenderer returns a Helm post-renderer that adds labels to every
// object (see labelPostRenderer); nil when there are none.
func PostRenderer(labels map[string]string) postrender.PostRenderer {
	if len(labels) == 0 {
		return nil
	}
	return &labelPostRenderer{labels: maps.Clone(labels)}
}

// labelPostRenderer is a Helm post-renderer that adds labels to every object
// Helm renders from a chart (and to each item of a List), so the objects of
// any chart, a user's included, can be found by label. It sets only
// metadata.labels: pod templates are left alone, so adding a label never
// restarts pods, and selectors are untouched. Helm does not post-render
// hooks, nor a chart's crds/ folder, so those stay unlabelled.
type labelPostRenderer struct {
	labels map[string]string
}

// Run implements postrender.PostRenderer.
func (p *labelPostRenderer) Run(in *bytes.Buffer) (*bytes.Buffer, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(in))
	var out bytes.Buffer
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return &out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("label objects: %w", err)
		}
		head := leadingComments(doc)
		var obj map[string]any
		if err := yaml.Unmarshal(doc, &obj, useNumber); err != nil {
			return nil, fmt.Errorf("label objects: %s: %w", sourceOf(head), err)
		}
		if obj == nil { // only comments or whitespace
			continue
		}
		p.label(obj)
		if items, ok := obj["items"].([]any); ok && strings.HasSuffix(fmt.Sprint(obj["kind"]), "List") {
			for _, item := range items {
				if m, ok := item.(map[string]any); ok {
					p.label(m)
				}
			}
		}
		text, err := yaml.Marshal(obj)
		if err != nil {
			return nil, fmt.Errorf("label objects: %s: %w", sourceOf(head), err)
		}
		out.WriteString("---\n")
		out.WriteString(head)
		out.Write(text)
	}
}

// useNumber keeps numbers as written (no float64 round trip).
func useNumber(d *json.Decoder) *json.Decoder {
	d.UseNumber()
	return d
}

func (p *labelPostRenderer) label(obj map[string]any) {
	md, ok := obj["metadata"].(map[string]any)
	if !ok {
		md = map[string]any{}
		obj["metadata"] = md
	}
	labels, ok := md["labels"].(map[string]any)
	if !ok {
		labels = map[string]any{}
		md["labels"] = labels
	}
	for k, v := range p.labels {
		labels[k] = v
	}
}

// leadingComments returns a document's comment lines before its first
// content line: Helm's "# Source: chart/templates/x.yaml", kept so the stored
// manifest still says where each object came from.
func leadingComments(doc []byte) string {
	var head strings.Builder
	for _, line := range strings.Split(string(doc), "\n") {
		t := strings.TrimSpace(line)
		if t == "" || t == "---" {
			continue
		}
		if !strings.HasPrefix(t, "#") {
			break
		}
		head.WriteString(t + "\n")
	}
	return head.String()
}

// sourceOf names a document for an error message by its "# Source:" line.
func sourceOf(head string) string {
	for _, line := range strings.Split(head, "\n") {
		if s, ok := strings.CutPrefix(line, "# Source: "); ok {
			return s
		}
	}
	return "a rendered document"
}
