package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// toNodeViaYAML is how toNode used to work (the JSON text parsed back by
// the YAML parser); the test holds the token-built nodes to the very same
// output.
func toNodeViaYAML(v any) (*yaml.Node, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(escapeForYAML(j), &doc); err != nil {
		return nil, err
	}
	restyle(&doc)
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0], nil
	}
	return &doc, nil
}

// escapeForYAML escapes, in JSON text, the characters that encoding/json
// leaves raw but a YAML reader does not take raw in a quoted string: DEL,
// the C1 controls (YAML refuses them), NEL (YAML folds it as a line break),
// U+FFFE and U+FFFF. They can only occur inside strings, where the \u
// escape means the same in JSON and YAML.
func escapeForYAML(j []byte) []byte {
	special := func(r rune) bool { return (r >= 0x7f && r <= 0x9f) || r == 0xfffe || r == 0xffff }
	if bytes.IndexFunc(j, special) < 0 {
		return j
	}
	out := make([]byte, 0, len(j)+16)
	for _, r := range string(j) {
		if special(r) {
			out = fmt.Appendf(out, `\u%04x`, r)
		} else {
			out = utf8.AppendRune(out, r)
		}
	}
	return out
}

// TestToNodeMatchesTheYAMLParser encodes deployments, records and tricky
// values both ways and wants the same bytes.
func TestToNodeMatchesTheYAMLParser(t *testing.T) {
	tricky := []string{"", "yes", "No", "on", "y", "true", "null", "~", "1", "-1", "1.5", "1e3", "0x1F", "0o17", ".inf", "-.nan",
		"a: b", "#x", "- x", " lead", "trail ", "multi\nline", "\nlead", "tab\there", "cr\r\n", "nel\u0085x", "ls\u2028", "del\u007f",
		"c1\u0090", "\ufffe", "quote\"s", "single's", "colon:", "{x}", "[x]", "&a", "*a", "!t", "%p", "@a", "`b", "|", ">", "é ü 日本", "emoji 🙂"}
	var values []any
	for _, s := range tricky {
		values = append(values, s)
	}
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("ab :#-\n\t\"'yYnN0159.eE+\u0085\u2028\u007f\u0090é{}[]&*!|>%@`~")
	for range 300 {
		var b strings.Builder
		for range r.IntN(12) {
			b.WriteRune(alphabet[r.IntN(len(alphabet))])
		}
		if utf8.ValidString(b.String()) {
			values = append(values, b.String())
		}
	}
	var subjects []any
	now := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	for i, v := range values {
		s := v.(string)
		img, replicas, cpu := "nginx:1.27", int64(i), 0.25+float64(i)
		d := &Deployment{APIVersion: APIVersion, Kind: KindDeployment,
			Metadata: Metadata{ID: fmt.Sprintf("00000000-0000-7000-8000-%012d", i), UserID: "u", CreatedAt: now, UpdatedAt: now},
			Spec: Spec{ClusterID: "c", Name: "n", AppType: AppWebApp, DeploymentType: TypeDocker, DockerImage: &img, Replicas: &replicas, CPURequest: &cpu,
				EnvironmentVariables: []EnvironmentVariable{{Name: "V", Value: &s}},
				Config:               map[string]any{"k": s, s: []any{1, 2.5, true, nil, map[string]any{"x": s}}}},
			Status: &Status{Phase: PhaseRunning, ValuesYAML: s + "\nreplicas: 1\n"}}
		subjects = append(subjects, d)
	}
	subjects = append(subjects, &User{APIVersion: APIVersion, Kind: KindUser, ID: "u", Name: "Ada", Email: "ada@example.com", CreatedAt: now},
		&Cluster{APIVersion: APIVersion, Kind: KindCluster, ID: "c", Name: "prod", CreatedAt: now})
	for i, v := range subjects {
		want, err := toNodeViaYAML(v)
		if err != nil {
			t.Fatalf("subject %d: %v", i, err)
		}
		got, err := toNode(v)
		if err != nil {
			t.Fatalf("subject %d: %v", i, err)
		}
		wb, err1 := encodeNode(want)
		gb, err2 := encodeNode(got)
		if err1 != nil || err2 != nil {
			t.Fatalf("subject %d: encode: %v %v", i, err1, err2)
		}
		if !bytes.Equal(wb, gb) {
			t.Fatalf("subject %d encodes differently:\n--- via the YAML parser\n%s\n--- from JSON tokens\n%s", i, wb, gb)
		}
	}
}
