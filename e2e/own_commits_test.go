package e2e

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

// TestOwnCommitsIgnored: the agent's status commits do not make it apply
// again (the Helm revision stays 1), and once a deployment is running the
// agent makes no commit while nothing changes, drift checks included.
func TestOwnCommitsIgnored(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const name = "own-commits"
	id := e.create(name, nil)
	e.waitFor(id, 60*time.Second, "running", status("running"))
	e.waitSettled(30 * time.Second)

	before := e.commitCount()
	// Several drift checks (every second) and follow-ups of the status
	// commits happen in this window; none may commit.
	end := time.Now().Add(4 * time.Second)
	for time.Now().Before(end) {
		if n := e.commitCount(); n != before {
			t.Fatalf("the agent committed while idle: %d commits, were %d:\n%s", n, before,
				e.git("log", "--format=%an: %s", "-"+strconv.Itoa(n-before+1), "main"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := revisions(e.releaseSecrets(name)); got != "1:deployed" {
		t.Errorf("Helm records: %s; the status commits made the agent apply again", got)
	}
	if n := e.logs.count("step=apply", "deployment=local/"+name); n != 1 {
		t.Errorf("%d applies logged; want 1", n)
	}

	// A PATCH that changes nothing makes no commit, and nothing is applied.
	code, _ := e.call(http.MethodPatch, "/deployments/"+id, map[string]any{"replicas": 1})
	if code != http.StatusOK {
		t.Fatalf("PATCH: %d", code)
	}
	e.waitSettled(30 * time.Second)
	if n := e.commitCount(); n != before {
		t.Errorf("a PATCH that changed nothing made %d commits", n-before)
	}
	if got := revisions(e.releaseSecrets(name)); got != "1:deployed" {
		t.Errorf("Helm records after a no-op PATCH: %s", got)
	}
}
