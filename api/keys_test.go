package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/registry"
)

// TestKeysManagedByTheirOwner: a user makes a key (shown once, its hash
// committed to the registry by that user), lists the keys (never the key
// or its hash; when each was last used) and deletes one, which stops
// working at once. Nobody else sees or deletes them, and the deployments
// repository never changes.
func TestKeysManagedByTheirOwner(t *testing.T) {
	e := newEnv(t)
	e.noCommit(t, func() {
		e.do(t, req{method: "GET", path: "/deployments", key: e.alice.key}).expect(t, http.StatusOK)
		got := e.do(t, req{method: "POST", path: "/keys", key: e.alice.key, body: map[string]any{"name": "ci"}, requestID: "req-key-1"}).
			expect(t, http.StatusCreated).object(t)
		key := str(got, "key")
		if !strings.HasPrefix(key, registry.KeyPrefix) || len(key) != 43 || str(got, "prefix") != key[:8] || str(got, "name") != "ci" ||
			got["expires_at"] != nil || got["last_used_at"] != nil || str(got, "id") == "" {
			t.Fatalf("POST /keys: %v", got)
		}
		id := str(got, "id")
		e.do(t, req{method: "GET", path: "/deployments", key: key}).expect(t, http.StatusOK)

		// The registry's commit: by Alice, hash only.
		c := e.gitIn(t, e.reg.Dir(), "log", "-1", "--format=%an <%ae>|%s|%(trailers:key=Key-Id,valueonly)|%(trailers:key=Request-Id,valueonly)", "main")
		want := "Alice Example <alice@example.com>|user alice@example.com: add key " + key[:8] + " (ci)|" + id + "\n|req-key-1"
		if c != want+"\n\n" {
			t.Errorf("registry commit %q, want %q", c, want)
		}
		file := e.gitIn(t, e.reg.Dir(), "show", "main:"+gitstore.UserPath(e.alice.user.ID))
		if strings.Contains(file, key) || !strings.Contains(file, registry.HashKey(key)) {
			t.Errorf("the user's file must hold the key's hash, not the key:\n%s", file)
		}

		list := e.do(t, req{method: "GET", path: "/keys", key: e.alice.key}).expect(t, http.StatusOK)
		if strings.Contains(string(list.body), key) || strings.Contains(string(list.body), registry.HashKey(key)) || strings.Contains(string(list.body), registry.HashKey(e.alice.key)) {
			t.Fatalf("GET /keys shows a key or its hash: %s", string(list.body))
		}
		keys := list.list(t)
		if len(keys) != 2 || str(keys[0], "name") != "mengi keys add" || str(keys[1], "id") != id {
			t.Fatalf("GET /keys: %v", keys)
		}
		for _, k := range keys {
			if str(k, "last_used_at") != rfc3339(start) {
				t.Errorf("key %s: last_used_at %v, want %s", k["prefix"], k["last_used_at"], rfc3339(start))
			}
			if len(k) != 6 {
				t.Errorf("key fields %v, want id, name, prefix, created_at, expires_at, last_used_at", k)
			}
		}
		if l := e.do(t, req{method: "GET", path: "/keys", key: e.bob.key}).expect(t, http.StatusOK).list(t); len(l) != 1 {
			t.Errorf("Bob sees %d keys, want his one", len(l))
		}

		e.do(t, req{method: "DELETE", path: "/keys/" + id, key: e.bob.key}).expect(t, http.StatusNotFound)
		e.do(t, req{method: "DELETE", path: "/keys/" + id, key: e.alice.key}).expect(t, http.StatusNoContent)
		if d := e.do(t, req{method: "GET", path: "/deployments", key: key}).expect(t, http.StatusUnauthorized).detail(t); d != "Invalid API key" {
			t.Errorf("a deleted key: %q", d)
		}
		e.do(t, req{method: "DELETE", path: "/keys/" + id, key: e.alice.key}).expect(t, http.StatusNotFound)
		if l := e.do(t, req{method: "GET", path: "/keys", key: e.alice.key}).expect(t, http.StatusOK).list(t); len(l) != 1 {
			t.Errorf("after the delete Alice has %d keys, want 1", len(l))
		}
		if s := e.gitIn(t, e.reg.Dir(), "log", "-1", "--format=%an|%s", "main"); s != "Alice Example|user alice@example.com: delete key "+key[:8]+" (ci)\n" {
			t.Errorf("delete commit %q", s)
		}
	})
	// A restart keeps what it knew of last uses.
	e.reopen(t)
	if l := e.do(t, req{method: "GET", path: "/keys", key: e.alice.key}).expect(t, http.StatusOK).list(t); len(l) != 1 || str(l[0], "last_used_at") != rfc3339(start) {
		t.Errorf("after a restart: %v", l)
	}
}

// TestKeyExpiry: a key made with expires_at works until then and gets 401
// afterwards; an expiry in the past and other bad bodies are 422 in
// Pydantic's shape, and make no commit.
func TestKeyExpiry(t *testing.T) {
	e := newEnv(t)
	expires := start.Add(time.Hour)
	got := e.do(t, req{method: "POST", path: "/keys", key: e.alice.key, body: map[string]any{"name": "one hour", "expires_at": rfc3339(expires)}}).
		expect(t, http.StatusCreated).object(t)
	key := str(got, "key")
	if str(got, "expires_at") != rfc3339(expires) {
		t.Errorf("expires_at %v", got["expires_at"])
	}
	e.do(t, req{method: "GET", path: "/deployments", key: key}).expect(t, http.StatusOK)
	e.clock.Advance(time.Hour)
	if d := e.do(t, req{method: "GET", path: "/deployments", key: key}).expect(t, http.StatusUnauthorized).detail(t); d != "API key expired" {
		t.Errorf("an expired key: %q", d)
	}

	before := e.gitIn(t, e.reg.Dir(), "rev-parse", "main")
	for _, c := range []struct {
		body any
		typ  string
		loc  string
	}{
		{map[string]any{}, "missing", "[body name]"},
		{map[string]any{"name": ""}, "string_too_short", "[body name]"},
		{map[string]any{"name": strings.Repeat("x", 101)}, "string_too_long", "[body name]"},
		{map[string]any{"name": 3}, "string_type", "[body name]"},
		{map[string]any{"name": "x", "scope": "admin"}, "extra_forbidden", "[body scope]"},
		{map[string]any{"name": "x", "expires_at": "tomorrow"}, "datetime_parsing", "[body expires_at]"},
		{map[string]any{"name": "x", "expires_at": rfc3339(start)}, "datetime_future", "[body expires_at]"},
		{"[]", "model_attributes_type", "[body]"},
	} {
		errs := e.do(t, req{method: "POST", path: "/keys", key: e.alice.key, body: c.body}).expect(t, http.StatusUnprocessableEntity).validationErrors(t)
		if len(errs) != 1 || errs[0].Type != c.typ || fmtLoc(errs[0].Loc) != c.loc {
			t.Errorf("POST /keys %v: %+v; want one %s at %s", c.body, errs, c.typ, c.loc)
		}
	}
	if after := e.gitIn(t, e.reg.Dir(), "rev-parse", "main"); after != before {
		t.Errorf("a refused key body made a commit in the registry")
	}

	// At most registry.MaxKeys keys a user (Bob holds one).
	for range registry.MaxKeys - 1 {
		e.do(t, req{method: "POST", path: "/keys", key: e.bob.key, body: map[string]any{"name": "many"}}).expect(t, http.StatusCreated)
	}
	full := e.gitIn(t, e.reg.Dir(), "rev-parse", "main")
	if d := e.do(t, req{method: "POST", path: "/keys", key: e.bob.key, body: map[string]any{"name": "one more"}}).expect(t, http.StatusConflict).detail(t); !strings.Contains(d, "delete one first") {
		t.Errorf("key %d: %q", registry.MaxKeys+1, d)
	}
	if e.gitIn(t, e.reg.Dir(), "rev-parse", "main") != full {
		t.Error("a refused key made a commit")
	}
}
