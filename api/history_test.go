package api_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// historyScenario makes alice's "web" go through create, update, rename and
// delete, with other deployments' commits in between, and returns its id
// and the paths it had.
func historyScenario(t *testing.T, e *env) (id string, paths []string) {
	t.Helper()
	id = str(e.create(t, e.alice, dockerBody(e.prod, "web")), "id")
	e.create(t, e.alice, dockerBody(e.prod, "api"))
	e.patch(t, e.alice, id, map[string]any{"replicas": 3}).expect(t, http.StatusOK)
	e.create(t, e.bob, dockerBody(e.prod, "web2"))
	e.patch(t, e.alice, id, map[string]any{"name": "frontend"}).expect(t, http.StatusOK)
	e.patch(t, e.alice, id, map[string]any{"replicas": 3}).expect(t, http.StatusOK) // no commit
	e.delete(t, e.alice, id).expect(t, http.StatusAccepted)
	e.delete(t, e.alice, id).expect(t, http.StatusAccepted) // no commit
	return id, []string{deploymentPath(e.prod, "web"), deploymentPath(e.prod, "frontend")}
}

// checkHistory compares the API's history of id with what git log says
// about its paths.
func checkHistory(t *testing.T, e *env, id string, paths []string, wantSubjects []string) {
	t.Helper()
	res := e.do(t, req{method: "GET", path: "/deployments/" + id + "/history", key: e.alice.key}).expect(t, http.StatusOK)
	entries := res.list(t)
	gitSHAs := strings.Fields(e.git(t, append([]string{"log", "--format=%H", "main", "--"}, paths...)...))
	var shas, subjects []string
	for _, en := range entries {
		var keys []string
		for k := range en {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if want := []string{"author", "author_email", "message", "sha", "time"}; !slices.Equal(keys, want) {
			t.Errorf("entry keys %q, want %q", keys, want)
		}
		sha := str(en, "sha")
		shas = append(shas, sha)
		c := e.commit(t, sha)
		subjects = append(subjects, c.Subject)
		if str(en, "author") != c.AuthorName || str(en, "author_email") != c.AuthorEmail {
			t.Errorf("%s: author %q <%q>, git says %q", sha, str(en, "author"), str(en, "author_email"), c.Author)
		}
		when, err := time.Parse(time.RFC3339, str(en, "time"))
		if err != nil || !when.Equal(c.AuthorTime) {
			t.Errorf("%s: time %q, git says %s", sha, str(en, "time"), c.AuthorTime)
		}
		if strings.TrimRight(str(en, "message"), "\n") != c.Raw {
			t.Errorf("%s: message %q, git says %q", sha, str(en, "message"), c.Raw)
		}
		if c.DeploymentID != id {
			t.Errorf("%s: Deployment-Id %q, want %q", sha, c.DeploymentID, id)
		}
	}
	if !slices.Equal(shas, gitSHAs) {
		t.Errorf("history %q\ngit log  %q", shas, gitSHAs)
	}
	if !slices.Equal(subjects, wantSubjects) {
		t.Errorf("subjects %q\nwant     %q", subjects, wantSubjects)
	}
}

var webSubjects = []string{
	"deployment prod/frontend: delete",
	"deployment prod/frontend: update name",
	"deployment prod/web: update replicas",
	"deployment prod/web: create",
}

// TestHistory: one entry per commit that touched the file, newest first,
// following the rename, and none for other deployments' commits.
func TestHistory(t *testing.T) {
	e := newEnv(t)
	id, paths := historyScenario(t, e)
	e.assertCommits(t, e.setupCommits+6)
	checkHistory(t, e, id, paths, webSubjects)

	// A new deployment's history is its create commit.
	other := e.create(t, e.alice, dockerBody(e.staging, "solo"))
	checkHistory(t, e, str(other, "id"), []string{deploymentPath(e.staging, "solo")}, []string{"deployment staging/solo: create"})

	// History follows the deployment, not the path: a new "web" at the old
	// path has only its own commit, and the renamed one gains nothing.
	before := e.do(t, req{method: "GET", path: "/deployments/" + id + "/history", key: e.alice.key}).expect(t, http.StatusOK).list(t)
	reused := str(e.create(t, e.alice, dockerBody(e.prod, "web")), "id")
	hist := e.do(t, req{method: "GET", path: "/deployments/" + reused + "/history", key: e.alice.key}).expect(t, http.StatusOK).list(t)
	if head := strings.TrimSpace(e.git(t, "rev-parse", "main")); len(hist) != 1 || str(hist[0], "sha") != head {
		t.Errorf("history of the new web: %v, want only %s", hist, head)
	}
	after := e.do(t, req{method: "GET", path: "/deployments/" + id + "/history", key: e.alice.key}).expect(t, http.StatusOK).list(t)
	if !equalJSON(t, after, before) {
		t.Errorf("the renamed deployment's history changed when its old name was reused:\n%v\n%v", before, after)
	}
}

// TestHistoryAfterRestart: a restarted server rebuilds the same history from
// the repository, and keeps extending it.
func TestHistoryAfterRestart(t *testing.T) {
	e := newEnv(t)
	id, paths := historyScenario(t, e)
	var api string
	for _, d := range e.list(t, e.alice) {
		if str(d, "name") == "api" {
			api = str(d, "id")
		}
	}
	e.patch(t, e.alice, api, map[string]any{"replicas": 1}).expect(t, http.StatusOK)

	e.reopen(t)
	checkHistory(t, e, id, paths, webSubjects)
	checkHistory(t, e, api, []string{deploymentPath(e.prod, "api")},
		[]string{"deployment prod/api: update replicas", "deployment prod/api: create"})

	e.patch(t, e.alice, api, map[string]any{"name": "api-v2"}).expect(t, http.StatusOK)
	checkHistory(t, e, api, []string{deploymentPath(e.prod, "api"), deploymentPath(e.prod, "api-v2")},
		[]string{"deployment prod/api-v2: update name", "deployment prod/api: update replicas", "deployment prod/api: create"})
}

// TestHistoryNotFound: another user's deployment and a missing one answer
// 404.
func TestHistoryNotFound(t *testing.T) {
	e := newEnv(t)
	bobs := str(e.create(t, e.bob, dockerBody(e.prod, "web")), "id")
	for _, id := range []string{bobs, uuid.NewString()} {
		res := e.do(t, req{method: "GET", path: "/deployments/" + id + "/history", key: e.alice.key}).expect(t, http.StatusNotFound)
		if d := res.detail(t); d != "Deployment not found" {
			t.Errorf("detail %q", d)
		}
	}
	e.do(t, req{method: "GET", path: "/deployments/" + bobs + "/history", key: e.bob.key}).expect(t, http.StatusOK)
}
