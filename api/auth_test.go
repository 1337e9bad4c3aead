package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/mengi-cloud/gitops/registry"
)

// TestAuthRefused: every deployments endpoint refuses a request without a
// valid bearer key with 401 and `WWW-Authenticate: Bearer`, before looking
// at the body or the id, and commits nothing.
func TestAuthRefused(t *testing.T) {
	e := newEnv(t)
	id := str(e.create(t, e.alice, dockerBody(e.prod, "web")), "id")
	unknown, err := registry.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	headers := []struct {
		name, auth, detail string
	}{
		{"missing header", "", "Not authenticated"},
		{"basic scheme", "Basic YWxpY2U6c2VjcmV0", "Invalid authentication credentials: expected 'Authorization: Bearer mc_...'"},
		{"scheme only", "Bearer", "Invalid authentication credentials: expected 'Authorization: Bearer mc_...'"},
		{"key without prefix", "Bearer " + strings.TrimPrefix(e.alice.key, "mc_"), "Invalid authentication credentials: expected 'Authorization: Bearer mc_...'"},
		{"key as the scheme", e.alice.key, "Invalid authentication credentials: expected 'Authorization: Bearer mc_...'"},
		{"unknown key", "Bearer " + unknown, "Invalid API key"},
		{"truncated key", "Bearer " + e.alice.key[:len(e.alice.key)-1], "Invalid API key"},
		{"key hash instead of key", "Bearer mc_" + registry.HashKey(e.alice.key), "Invalid API key"},
	}
	endpoints := []struct {
		method, path string
		body         any
	}{
		{"POST", "/deployments", dockerBody(e.prod, "new")},
		{"POST", "/deployments", `{"broken`},
		{"GET", "/deployments", nil},
		{"GET", "/deployments?limit=5000", nil},
		{"GET", "/deployments/" + id, nil},
		{"GET", "/deployments/00000000-0000-0000-0000-000000000000", nil},
		{"PATCH", "/deployments/" + id, map[string]any{"replicas": 9}},
		{"DELETE", "/deployments/" + id, nil},
		{"GET", "/deployments/" + id + "/history", nil},
	}
	for _, h := range headers {
		t.Run(h.name, func(t *testing.T) {
			e.noCommit(t, func() {
				for _, ep := range endpoints {
					r := req{method: ep.method, path: ep.path, body: ep.body}
					if h.auth == "" {
						r.key = ""
					} else {
						r.auth = h.auth
					}
					res := e.do(t, r).expect(t, http.StatusUnauthorized)
					if got := res.header.Get("WWW-Authenticate"); got != "Bearer" {
						t.Errorf("%s %s: WWW-Authenticate %q", ep.method, ep.path, got)
					}
					if d := res.detail(t); d != h.detail {
						t.Errorf("%s %s: detail %q, want %q", ep.method, ep.path, d, h.detail)
					}
				}
			})
		})
	}
	checkFields(t, e.get(t, e.alice, id).expect(t, http.StatusOK).object(t), map[string]any{"status": "pending", "replicas": nil})
}

// TestAuthAccepted: the scheme is case-insensitive (RFC 9110), surrounding
// blanks are ignored, and a user may hold several keys, each acting as the
// same user; the public endpoints need no key.
func TestAuthAccepted(t *testing.T) {
	e := newEnv(t)
	id := str(e.create(t, e.alice, dockerBody(e.prod, "web")), "id")
	second, u, err := e.reg.AddKey(context.Background(), "Alice Example", "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != e.alice.user.ID {
		t.Fatalf("a second key made a new user %s", u.ID)
	}
	for _, auth := range []string{
		"Bearer " + e.alice.key,
		"bearer " + e.alice.key,
		"BEARER " + e.alice.key,
		"Bearer " + e.alice.key + " ",
		"Bearer " + second,
	} {
		res := e.do(t, req{method: "GET", path: "/deployments/" + id, auth: auth}).expect(t, http.StatusOK)
		checkFields(t, res.object(t), map[string]any{"id": id, "user_id": e.alice.user.ID})
	}
	// What the second key writes is signed as alice.
	res := e.do(t, req{method: "PATCH", path: "/deployments/" + id, auth: "Bearer " + second, body: map[string]any{"replicas": 2}}).
		expect(t, http.StatusOK)
	e.checkCommit(t, "main", wantCommit{user: e.alice.user, subject: "deployment prod/web: update replicas",
		deploymentID: str(res.object(t), "id"), bodyLines: []string{"replicas: null -> 2"}})

	for _, path := range []string{"/healthz", "/openapi.json"} {
		e.do(t, req{method: "GET", path: path}).expect(t, http.StatusOK)
	}
}

// TestAuthTenantIsolation: bob's key never reaches alice's deployments, and
// alice's listing never shows bob's.
func TestAuthTenantIsolation(t *testing.T) {
	e := newEnv(t)
	id := str(e.create(t, e.alice, dockerBody(e.prod, "web")), "id")
	e.create(t, e.bob, dockerBody(e.prod, "bobs"))
	e.noCommit(t, func() {
		e.get(t, e.bob, id).expect(t, http.StatusNotFound)
		e.patch(t, e.bob, id, map[string]any{"replicas": 0}).expect(t, http.StatusNotFound)
		e.delete(t, e.bob, id).expect(t, http.StatusNotFound)
		e.do(t, req{method: "GET", path: "/deployments/" + id + "/history", key: e.bob.key}).expect(t, http.StatusNotFound)
	})
	for _, a := range []account{e.alice, e.bob} {
		for _, d := range e.list(t, a) {
			if str(d, "user_id") != a.user.ID {
				t.Errorf("%s lists %s of %s", a.user.Email, str(d, "id"), str(d, "user_id"))
			}
		}
	}
	checkFields(t, e.get(t, e.alice, id).expect(t, http.StatusOK).object(t), map[string]any{"status": "pending", "replicas": nil})
}
