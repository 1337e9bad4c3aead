package render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"
)

// labelPostRenderer adds labels to every object Helm renders from a user's
// chart (a Helm post-renderer, see Release.PostRenderer): to the object's
// metadata.labels, and to each item of a List. Pod templates are left alone,
// so adding the label never restarts pods. The "# Source:" comments heading
// each document are kept. Helm does not post-render hooks, nor CRDs from a
// chart's crds/ folder on install, so those stay unlabelled.
type labelPostRenderer struct {
	labels map[string]string
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$\n?`)

// Run implements postrender.PostRenderer.
func (p *labelPostRenderer) Run(in *bytes.Buffer) (*bytes.Buffer, error) {
	var out bytes.Buffer
	for _, doc := range docSeparator.Split(in.String(), -1) {
		head, body := splitHead(doc)
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(body), &obj, func(d *json.Decoder) *json.Decoder {
			d.UseNumber()
			return d
		}); err != nil {
			return nil, fmt.Errorf("%s: %w", source(head), err)
		}
		if obj == nil {
			if strings.TrimSpace(doc) != "" {
				out.WriteString("---\n" + strings.TrimRight(doc, "\n") + "\n")
			}
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
			return nil, fmt.Errorf("%s: %w", source(head), err)
		}
		out.WriteString("---\n" + head)
		out.Write(text)
	}
	return &out, nil
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

// splitHead separates a document's leading comment lines from the rest.
func splitHead(doc string) (head, body string) {
	rest := doc
	for rest != "" {
		line, after, _ := strings.Cut(rest, "\n")
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
			break
		}
		if strings.TrimSpace(line) != "" {
			head += line + "\n"
		}
		rest = after
	}
	return head, rest
}
