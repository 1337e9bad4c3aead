package api_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mengi-cloud/gitops/api"
	"github.com/mengi-cloud/gitops/gitstore/disktest"
)

// diskFullDetail is the detail of a write refused for a full disk.
const diskFullDetail = "The server's disk is full: the change was not written. Try again once an operator has freed space."

// TestDiskFullIs503: with the repositories' disk full (a tmpfs filled
// up), every write (a create, an update, a delete, a new key in the
// registry) is a 503 with Retry-After and a detail that says the disk is
// full and nothing was written, naming no path, and makes no commit;
// reads are served; once space is freed the same writes succeed, on the
// same server. Nothing is logged at error level (no 500).
func TestDiskFullIs503(t *testing.T) {
	mnt := disktest.Mount(t, 16<<20)
	if mnt == "" {
		return // ran in a namespace
	}
	e := newEnvAt(t, filepath.Join(mnt, "repo"), nil)
	web := e.create(t, e.alice, dockerBody(e.prod, "web"))
	id := web["id"].(string)

	filler := disktest.Fill(t, mnt)
	writes := []req{
		{method: "POST", path: "/deployments", key: e.alice.key, body: dockerBody(e.prod, "api")},
		{method: "PATCH", path: "/deployments/" + id, key: e.alice.key, body: map[string]any{"replicas": 3}},
		{method: "DELETE", path: "/deployments/" + id, key: e.alice.key},
		{method: "POST", path: "/keys", key: e.alice.key, body: map[string]any{"name": "ci"}},
	}
	e.noCommit(t, func() {
		for _, w := range writes {
			r := e.do(t, w).expect(t, http.StatusServiceUnavailable)
			if d := r.detail(t); d != diskFullDetail || strings.Contains(d, mnt) {
				t.Errorf("%s %s on a full disk: detail %q, want %q", w.method, w.path, d, diskFullDetail)
			}
			if ra := r.header.Get("Retry-After"); ra != api.DiskFullRetryAfter {
				t.Errorf("%s %s on a full disk: Retry-After %q, want %q", w.method, w.path, ra, api.DiskFullRetryAfter)
			}
		}
	})
	if got := e.get(t, e.alice, id).expect(t, http.StatusOK).object(t); got["replicas"] != nil || got["name"] != "web" {
		t.Errorf("GET on a full disk: %v", got)
	}
	if l := e.list(t, e.alice); len(l) != 1 {
		t.Errorf("GET /deployments on a full disk: %d deployments, want 1", len(l))
	}

	filler.Remove(t)
	want := []int{http.StatusCreated, http.StatusOK, http.StatusAccepted, http.StatusCreated}
	for i, w := range writes {
		if r := e.do(t, w); r.status != want[i] {
			t.Errorf("%s %s once space was freed: %d %s, want %d", w.method, w.path, r.status, r.body, want[i])
		}
	}
}
