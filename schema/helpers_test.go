package schema

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"
)

// Fixed identifiers and times of the test fixtures.
const (
	testClusterID = "2489e9ad-2ee2-8e00-8ec9-32d5f69181c0"
	testID        = "3f1c2b9a-6d4e-4f8a-9b2c-1a2b3c4d5e6f"
	testUserID    = "7e8f9a0b-1c2d-4e3f-8a9b-0c1d2e3f4a5b"
)

var (
	testCreated = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	testUpdated = time.Date(2025, 1, 3, 4, 5, 6, 0, time.UTC)
)

// del removes a key in body().
type delKey struct{}

var del = delKey{}

// raw is a JSON value written as it is (for 1.0, 1e3 and the like).
type raw = json.RawMessage

// body renders base with kv (key, value pairs) set on top as a JSON object.
// A value of del removes the key.
func body(base map[string]any, kv ...any) string {
	m := maps.Clone(base)
	for i := 0; i+1 < len(kv); i += 2 {
		k := kv[i].(string)
		if kv[i+1] == del {
			delete(m, k)
			continue
		}
		m[k] = kv[i+1]
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// dockerBase is the smallest valid body of a Docker deployment.
func dockerBase() map[string]any {
	return map[string]any{"cluster_id": testClusterID, "name": "web", "app_type": "web_app", "docker_image": "nginx:1.27"}
}

// helmBase is the smallest valid body of a Helm deployment.
func helmBase() map[string]any {
	return map[string]any{"cluster_id": testClusterID, "name": "grafana", "deployment_type": "helm",
		"helm_repo_url": "https://grafana.github.io/helm-charts", "helm_chart_name": "grafana", "helm_chart_version": "8.5.1"}
}

func docker(kv ...any) string { return body(dockerBase(), kv...) }
func helm(kv ...any) string   { return body(helmBase(), kv...) }

// E is an expected 422 entry. Ctx is compared exactly (nil: no ctx); Input
// is compared as JSON unless it is noInput.
type E struct {
	Type  string
	Loc   []any
	Msg   string
	Ctx   map[string]any
	Input any
}

type noInputT struct{}

var noInput = noInputT{}

// e builds an expected entry whose input is not checked.
func e(typ string, l []any, msg string, ctx map[string]any) E {
	return E{Type: typ, Loc: l, Msg: msg, Ctx: ctx, Input: noInput}
}

// L is shorthand for a loc.
func L(parts ...any) []any { return parts }

func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "!" + err.Error()
	}
	return string(b)
}

// checkErrs asserts that got is exactly want, in order.
func checkErrs(t *testing.T, got Errors, want []E) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d errors, want %d:\n%s", len(got), len(want), dumpErrs(got))
		return
	}
	for i, w := range want {
		g := got[i]
		if g.Type != w.Type || jsonString(g.Loc) != jsonString(w.Loc) || g.Msg != w.Msg {
			t.Errorf("error %d:\n got  %s %s %q\n want %s %s %q", i, g.Type, jsonString(g.Loc), g.Msg, w.Type, jsonString(w.Loc), w.Msg)
		}
		if jsonString(g.Ctx) != jsonString(w.Ctx) {
			t.Errorf("error %d (%s at %s): ctx %s, want %s", i, g.Type, jsonString(g.Loc), jsonString(g.Ctx), jsonString(w.Ctx))
		}
		if w.Input != noInput && jsonString(g.Input) != jsonString(w.Input) {
			t.Errorf("error %d (%s at %s): input %s, want %s", i, g.Type, jsonString(g.Loc), jsonString(g.Input), jsonString(w.Input))
		}
	}
}

func dumpErrs(es Errors) string {
	var b strings.Builder
	for _, e := range es {
		b.WriteString("  " + jsonString(e) + "\n")
	}
	return b.String()
}

// checkInvariants asserts what holds for every result of DecodeCreate,
// DecodeUpdate and ParseFile: a value or problems, never both; every
// problem typed, located and explained; the problems JSON-encodable.
func checkInvariants(t *testing.T, ok bool, errs Errors, prefix string) {
	t.Helper()
	if ok == (len(errs) > 0) {
		t.Fatalf("got a value: %v, and %d errors:\n%s", ok, len(errs), dumpErrs(errs))
	}
	for _, e := range errs {
		if e.Type == "" || e.Msg == "" {
			t.Errorf("error without type or message: %s", jsonString(e))
		}
		if prefix != "" && (len(e.Loc) == 0 || e.Loc[0] != prefix) {
			t.Errorf("error not located under %q: %s", prefix, jsonString(e))
		}
		for _, p := range e.Loc {
			switch p.(type) {
			case string, int:
			default:
				t.Errorf("loc part %T in %s", p, jsonString(e))
			}
		}
		if _, err := json.Marshal(e); err != nil {
			t.Errorf("error cannot be encoded: %v", err)
		}
	}
}

// testDeployment wraps spec into a deployment file with fixed metadata.
func testDeployment(spec Spec) *Deployment {
	return &Deployment{
		APIVersion: APIVersion, Kind: KindDeployment,
		Metadata: Metadata{ID: testID, UserID: testUserID, CreatedAt: testCreated, UpdatedAt: testUpdated},
		Spec:     spec,
	}
}

func ptr[T any](v T) *T { return &v }

func mustCreate(t *testing.T, body string) *Spec {
	t.Helper()
	s, errs := DecodeCreate([]byte(body))
	if errs != nil {
		t.Fatalf("DecodeCreate(%s):\n%s", body, dumpErrs(errs))
	}
	return s
}
