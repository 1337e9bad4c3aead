package api_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
)

// hostileValues are values no field of a deployment should choke on:
// wrong types, limits, traversal, control and direction characters,
// YAML aliases, depth and size.
func hostileValues() []string {
	deep := strings.Repeat("[", 1000) + strings.Repeat("]", 1000)
	return []string{
		`null`, `""`, `"../../../../etc/passwd"`, `"a\u0000b"`, `"\u202egnp.exe"`, `"\r\nX-Injected: 1"`,
		`1e400`, `-1`, `0`, `9223372036854775808`, `1.5`, `true`, `[]`, `{}`, deep,
		`"` + strings.Repeat("x", 70000) + `"`, `{"$ref": "#"}`, `"a: &x [*x, *x]\nb: *x"`, `"*"`,
		`[{"name": "../x", "value": "y", "path": "/../../etc"}]`, `{"ingress": {"host": "evil.example.com"}}`,
	}
}

// TestHostileCorpus sends every hostile value in every field of a create
// and of an update (well over 500 requests), plus hostile paths and
// queries: each is answered with a JSON status below 500, never a 500, a
// panic or a hang (the env fails the test on any ERROR log line), and
// whatever was refused made no commit.
func TestHostileCorpus(t *testing.T) {
	e := newEnv(t)
	created := e.create(t, e.alice, dockerBody(e.prod, "web"))
	id := str(created, "id")
	var fields []string
	for f := range created {
		fields = append(fields, f)
	}
	for _, f := range []string{"cluster_id", "helm_repo_url", "helm_chart_name", "helm_chart_version", "custom_values_yaml", "deployment_type", "unknown_field"} {
		if _, ok := created[f]; !ok {
			fields = append(fields, f)
		}
	}
	sort.Strings(fields)
	requests, accepted := 0, 0
	check := func(what string, r *response) {
		t.Helper()
		requests++
		if r.status >= 500 {
			t.Errorf("%s: %d %s", what, r.status, r.body)
			return
		}
		if !json.Valid(r.body) && r.status != http.StatusNoContent {
			t.Errorf("%s: %d with a body that is not JSON: %.200s", what, r.status, r.body)
		}
		if r.status < 300 {
			accepted++
		}
	}
	commits := e.commitCount(t)
	for _, f := range fields {
		for _, v := range hostileValues() {
			body := map[string]json.RawMessage{}
			for k, val := range dockerBody(e.prod, "hostile") {
				b, _ := json.Marshal(val)
				body[k] = b
			}
			body[f] = json.RawMessage(v)
			b, _ := json.Marshal(body)
			r := e.do(t, req{method: http.MethodPost, path: "/deployments", key: e.alice.key, body: string(b)})
			check("POST "+f+"="+abbrev(v), r)
			if r.status == http.StatusCreated {
				// A value that happens to be valid: clean up so the next
				// create of the same name is a fresh one.
				e.do(t, req{method: http.MethodDelete, path: "/deployments/" + str(r.object(t), "id"), key: e.alice.key})
			}
			check("PATCH "+f+"="+abbrev(v), e.patch(t, e.alice, id, `{"`+f+`": `+v+`}`))
		}
	}
	for _, p := range []string{
		"/deployments/..%2f..%2fetc%2fpasswd", "/deployments/" + url.PathEscape(id+"\x00"), "/deployments/%00",
		"/deployments?limit=-1", "/deployments?limit=1e400", "/deployments?cluster_id=../../x", "/deployments?offset=99999999999999999999",
		"/deployments/" + id + "/history?limit=abc", "/deployments/" + strings.Repeat("a", 5000), "/keys/..%2f", "/openapi.json/../healthz",
	} {
		for _, m := range []string{http.MethodGet, http.MethodDelete, http.MethodPatch} {
			check(m+" "+abbrev(p), e.do(t, req{method: m, path: p, key: e.alice.key, body: "{}"}))
		}
	}
	if requests < 500 {
		t.Fatalf("only %d hostile requests", requests)
	}
	// Every accepted request (a hostile-looking value that is valid) made
	// its commit; nothing refused made one. Creates were deleted again.
	if got := e.commitCount(t); got > commits+accepted*2 {
		t.Errorf("%d commits for %d accepted requests", got-commits, accepted)
	}
	t.Logf("%d hostile requests, %d accepted as valid, none a 500", requests, accepted)
}

func abbrev(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
