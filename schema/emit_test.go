package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// encodeGeneral is EncodeFile's general path: the YAML node built from
// the JSON tokens, written by yaml.v3.
func encodeGeneral(t *testing.T, d *Deployment) []byte {
	t.Helper()
	node, err := toNode(d)
	if err != nil {
		t.Fatal(err)
	}
	body, err := encodeNode(node)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte(fileHeader), body...)
}

// emitTricky are strings at the edges of what yaml.v3 writes plain,
// quoted or as a block.
var emitTricky = []string{"", "yes", "No", "on", "y", "true", "True", "null", "Null", "~", "1", "-1", "1.5", "1e3", "0x1F", "0o17", "0b11",
	".inf", "-.nan", ".5", ".hidden", ".", "..", "...", "1:20", "1_000", "0777", "+1", "2026-11-27", "2026-11-27T05:30:00Z",
	"2026-11-27T05:30:00.5+01:00", "2026-1-2", "12345678-1234-1234-1234-123456789abc", "fedcba98-7654-3210-fedc-ba9876543210",
	"nginx:1.27", "ghcr.io/org/app@sha256:abc", "a=b", "a+b", "_x", "/data", "http://x.y/z", "a: b", "#x", "- x", " lead", "trail ",
	"multi\nline", "ends\n", "two\n\n", "\nlead", "tab\there", "cr\r\n", "sp \nx", "x\n  indented\n", "nel\u0085x", "ls\u2028",
	"del\u007f", "quote\"s", "single's", "colon:", "a:", "{x}", "[x]", "&a", "*a", "!t", "%p", "@a", "`b", "|", ">", "<a>", "é",
	"emoji 🙂", "-", "--", "---x", "=", "1.0.0", "v1.2.3", "1-2", "0", "00", "-0", "1e", "e1", "0x", "x0",
	"helm install grafana: timed out waiting for the condition",
	"a message long enough that yaml.v3 folds it somewhere past the eightieth column of its line",
	"a message with 'quotes' and \"double\" ones: long enough to be folded where it crosses column eighty",
	strings.Repeat("x", 90), strings.Repeat("word ", 20)}

// randomString draws from characters that sit at those edges.
func randomString(r *rand.Rand) string {
	alphabet := []rune("abzAZ09:.-_/@+=yYnNtTfFoOeExX \n#\"'\t{}[]&*!|>%`~é\u2028")
	for {
		var b strings.Builder
		for range r.IntN(10) {
			b.WriteRune(alphabet[r.IntN(len(alphabet))])
		}
		if utf8.ValidString(b.String()) {
			return b.String()
		}
	}
}

// TestEmitFileMatchesYAMLv3 writes deployments full of tricky and random
// values both ways, and wants the direct emitter either to decline or to
// write exactly the bytes of the general path. It also checks that the
// emitter takes ordinary deployments (the golden files and the files a
// write makes) rather than declining everything.
func TestEmitFileMatchesYAMLv3(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 9))
	values := append([]string(nil), emitTricky...)
	for range 3000 {
		values = append(values, randomString(r))
	}
	now := time.Date(2026, 11, 27, 5, 30, 0, 0, time.UTC)
	taken, declined := 0, 0
	check := func(name string, d *Deployment) bool {
		t.Helper()
		j, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		want := encodeGeneral(t, d)
		got, ok := emitFile(j)
		if !ok {
			declined++
			return false
		}
		taken++
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: the emitter writes\n%s\n--- yaml.v3 writes\n%s", name, got, want)
		}
		return true
	}
	for i, s := range values {
		s2 := values[r.IntN(len(values))]
		img, replicas := s, int64(r.IntN(5))
		cpu := []float64{0.25, 1, 1.5, 1e-7, 1e21, 0}[r.IntN(6)]
		d := &Deployment{APIVersion: APIVersion, Kind: KindDeployment,
			Metadata: Metadata{ID: s2, UserID: "00000000-0000-7000-8000-00000000bbbb", CreatedAt: now, UpdatedAt: now},
			Spec: Spec{ClusterID: "00000000-0000-4000-8000-000000000001", Name: s, AppType: AppWebApp, DeploymentType: TypeDocker,
				DockerImage: &img, Replicas: &replicas, CPURequest: &cpu,
				Volumes:              []Volume{{Path: s2, SizeGb: 10}},
				EnvironmentVariables: []EnvironmentVariable{{Name: "V", Value: &s}, {Name: s2, SecretRef: &s2}}},
		}
		switch i % 4 {
		case 1:
			d.Spec.Config = map[string]any{"k": s, "n": map[string]any{"list": []any{s2, 1, 2.5, true, nil}}}
		case 2:
			d.Status = &Status{Phase: PhaseRunning, ValuesYAML: s + "\nreplicas: 1\n", ErrorMessage: s2}
		case 3:
			d.Spec.Config = map[string]any{s: s2, "empty": map[string]any{}, "none": []any{}, "nested": []any{[]any{s}}}
		case 0:
			d.Spec.Config = map[string]any{s: s2, s2 + "x": []any{map[string]any{s: 1}}}
		}
		check(fmt.Sprintf("value %d %q", i, s), d)
	}
	if taken < len(values)/5 {
		t.Errorf("the emitter took only %d of %d documents", taken, taken+declined)
	}

	// Ordinary files must take the direct path.
	golden, _ := filepath.Glob("testdata/*.golden")
	for _, g := range golden {
		data, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		d, errs := ParseFile(data)
		if errs != nil {
			continue // a golden file of a rejected document
		}
		if !check(g, d) && !strings.Contains(g, "tricky") {
			t.Errorf("%s: the emitter declined an ordinary file", g)
		}
	}
	img, replicas := "nginx:1.27", int64(2)
	ordinary := &Deployment{APIVersion: APIVersion, Kind: KindDeployment,
		Metadata: Metadata{ID: "0190f1e2-7c3a-7b4d-9e5f-a1b2c3d4e5f6", UserID: "0190f1e2-7c3a-7b4d-9e5f-a1b2c3d4e5f7", CreatedAt: now, UpdatedAt: now},
		Spec: Spec{ClusterID: "00000000-0000-4000-8000-000000000001", Name: "web", AppType: AppWebApp, DeploymentType: TypeDocker,
			DockerImage: &img, Replicas: &replicas},
		Status: &Status{Phase: PhaseRunning, ValuesYAML: "image:\n  repository: nginx\n  tag: \"1.27\"\nreplicaCount: 2\n",
			SpecDigest: "sha256:0123abcd", AppliedCommit: "0123456789abcdef0123456789abcdef01234567", AppliedAt: &now, UpdatedAt: &now}}
	if !check("ordinary", ordinary) {
		t.Error("the emitter declined an ordinary deployment with status")
	}
	t.Logf("emitter took %d documents, declined %d", taken, declined)
}

// FuzzEmitFile puts fuzzed strings in every kind of place of a deployment
// (value, list item, literal block, config key) and wants the direct
// emitter to decline or to match the general path.
func FuzzEmitFile(f *testing.F) {
	for _, s := range emitTricky {
		f.Add(s, "x")
	}
	now := time.Date(2026, 11, 27, 5, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s, s2 string) {
		if !utf8.ValidString(s) || !utf8.ValidString(s2) {
			return
		}
		img := s
		d := &Deployment{APIVersion: APIVersion, Kind: KindDeployment,
			Metadata: Metadata{ID: s2, UserID: "u", CreatedAt: now, UpdatedAt: now},
			Spec: Spec{ClusterID: "c", Name: s, AppType: AppWebApp, DeploymentType: TypeDocker, DockerImage: &img,
				Config: map[string]any{s: []any{s2, map[string]any{s2: s}}}},
			Status: &Status{Phase: PhaseRunning, ValuesYAML: s2, ErrorMessage: s}}
		j, err := json.Marshal(d)
		if err != nil {
			t.Skip()
		}
		got, ok := emitFile(j)
		if !ok {
			return
		}
		if want := encodeGeneral(t, d); !bytes.Equal(got, want) {
			t.Fatalf("the emitter writes\n%s\n--- yaml.v3 writes\n%s", got, want)
		}
	})
}
