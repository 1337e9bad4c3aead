package e2e

import (
	"context"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mengi-cloud/gitops/schema"
)

// gitServer serves the bare repositories under root over HTTP with git's
// own smart-HTTP server (git http-backend, through CGI), pushes included.
func gitServer(t *testing.T, root string) *httptest.Server {
	t.Helper()
	execPath, err := gitCmd(root, "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	home := t.TempDir()
	srv := httptest.NewServer(&cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend"),
		Root: "/",
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "HOME=" + home,
			"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1"},
	})
	t.Cleanup(srv.Close)
	return srv
}

// engineer is a clone of the repository made with the git CLI.
type engineer struct {
	t   *testing.T
	dir string
}

func cloneAs(t *testing.T, url, name, email string) *engineer {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "work")
	gitIn(t, filepath.Dir(dir), "clone", "--quiet", url, dir)
	gitIn(t, dir, "config", "user.name", name)
	gitIn(t, dir, "config", "user.email", email)
	return &engineer{t: t, dir: dir}
}

func (g *engineer) git(args ...string) string {
	g.t.Helper()
	return gitIn(g.t, g.dir, args...)
}

func (g *engineer) read(path string) string {
	g.t.Helper()
	b, err := os.ReadFile(filepath.Join(g.dir, path))
	if err != nil {
		g.t.Fatal(err)
	}
	return string(b)
}

func (g *engineer) write(path, content string) {
	g.t.Helper()
	if err := os.WriteFile(filepath.Join(g.dir, path), []byte(content), 0o644); err != nil {
		g.t.Fatal(err)
	}
}

// edit replaces old (which must occur once) by new in the file at path.
func (g *engineer) edit(path, old, new string) string {
	g.t.Helper()
	content := g.read(path)
	if strings.Count(content, old) != 1 {
		g.t.Fatalf("%s: %q occurs %d times, want once:\n%s", path, old, strings.Count(content, old), content)
	}
	content = strings.Replace(content, old, new, 1)
	g.write(path, content)
	return content
}

// commitAndPush commits everything and pushes it, rebasing on what the
// agent committed meanwhile when the push is refused, as engineers do.
func (g *engineer) commitAndPush(msg string) {
	g.t.Helper()
	g.git("commit", "--quiet", "-am", msg)
	for try := 0; ; try++ {
		out, err := gitCmd(g.dir, "push", "--quiet", "origin", "main").CombinedOutput()
		if err == nil {
			return
		}
		if try == 5 {
			g.t.Fatalf("git push: %v\n%s", err, out)
		}
		g.t.Logf("git push refused (%v), rebasing: %s", err, out)
		g.git("pull", "--quiet", "--rebase", "origin", "main")
	}
}

// TestEngineerPush: an engineer clones the repository with git, edits a
// deployment file (and comments it), commits and pushes; the agent applies
// it and writes its status into the file, leaving every other byte alone.
// A bad file pushed the same way gets status error with a message naming
// the line and field, nothing changes on the cluster for it, and another
// deployment changed in the same push is applied.
func TestEngineerPush(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	appID := e.create("pushed-app", nil)
	otherID := e.create("pushed-other", nil)
	e.waitFor(appID, 60*time.Second, "running", status("running"))
	e.waitFor(otherID, 60*time.Second, "running", status("running"))
	e.waitSettled(30 * time.Second)

	e.git("config", "http.receivepack", "true")
	srv := gitServer(t, filepath.Dir(e.dir))
	g := cloneAs(t, srv.URL+"/"+filepath.Base(e.dir), "Grace Hopper", "grace@example.com")
	appPath, otherPath := e.path("pushed-app"), e.path("pushed-other")
	if !strings.Contains(g.read(appPath), "status:\n  phase: running") {
		t.Fatalf("the clone's file has no running status:\n%s", g.read(appPath))
	}

	// An edit as engineers write them: a comment of their own above the
	// field, a trailing comment, and a blank line kept inside spec.
	pushed := g.edit(appPath, "  replicas: 1\n  cpu_request:",
		"  # Two for the launch; see PAY-142.\n  replicas: 2   # was 1\n\n  cpu_request:")
	g.commitAndPush("pushed-app: two replicas for the launch")
	pushCommit := g.git("rev-parse", "HEAD")

	eventually(t, 60*time.Second, "the pushed replicas on the cluster", func() (bool, string) {
		return e.deploymentReady(e.ns("pushed-app"), "pushed-app", 2)
	})
	d := e.waitFor(appID, 60*time.Second, "running with 2 replicas", func(d map[string]any) bool {
		return d["status"] == "running" && d["replicas"] == float64(2)
	})
	if d["git_path"] != appPath || d["endpoint_url"] != "https://pushed-app.apps.test" ||
		!strings.Contains(d["values_yaml"].(string), "replicas: 2") {
		t.Errorf("after the push: %v", d)
	}

	// The agent's status commit comes after the push and edits only the
	// status block.
	g.git("pull", "--quiet", "--ff-only", "origin", "main")
	log := g.git("log", "--format=%H|%an|%s", pushCommit+"~1..HEAD")
	lines := strings.Split(log, "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, pushCommit+"|Grace Hopper|pushed-app: two replicas") {
		t.Fatalf("the push is not the first commit after its parent:\n%s", log)
	}
	if !strings.Contains(log, "|Mengi Agent|deployment local/pushed-app: status running") {
		t.Fatalf("no status commit by the agent after the push:\n%s", log)
	}
	after := g.read(appPath)
	if withoutStatus(after) != withoutStatus(pushed) {
		t.Fatalf("the status commit changed more than the status block.\npushed:\n%s\nafter:\n%s", pushed, after)
	}
	st, err := schema.ReadStatus([]byte(after))
	if err != nil || st == nil || st.Phase != schema.PhaseRunning || st.AppliedCommit == "" {
		t.Fatalf("status after the push: %+v %v", st, err)
	}
	if dd, errs := schema.ParseFile([]byte(after)); errs != nil || st.SpecDigest != dd.Spec.Digest() {
		t.Fatalf("status spec_digest %s does not describe the pushed spec (%v)", st.SpecDigest, errs)
	}
	if got := g.git("log", "-1", "--format=%an <%ae>", pushCommit); got != "Grace Hopper <grace@example.com>" {
		t.Errorf("push commit author %q", got)
	}

	// A bad file and a good change in one push.
	revsBefore := revisions(e.releaseSecrets("pushed-app"))
	g.edit(appPath, "  replicas: 2   # was 1\n", "  replicas: three\n")
	g.edit(otherPath, "  replicas: 1\n  cpu_request:", "  replicas: 3\n  cpu_request:")
	g.commitAndPush("scale both (one of them wrongly)")

	eventually(t, 60*time.Second, "the good change of the same push applied", func() (bool, string) {
		return e.deploymentReady(e.ns("pushed-other"), "pushed-other", 3)
	})
	e.waitFor(otherID, 60*time.Second, "pushed-other running with 3 replicas", func(d map[string]any) bool {
		return d["status"] == "running" && d["replicas"] == float64(3)
	})
	// The agent reports the problem in the file itself.
	var fileStatus *schema.Status
	eventually(t, 30*time.Second, "status error written into the bad file", func() (bool, string) {
		data, err := gitCmd(e.dir, "show", "main:"+appPath).Output()
		if err != nil {
			return false, err.Error()
		}
		fileStatus, _ = schema.ReadStatus(data)
		return fileStatus != nil && fileStatus.Phase == schema.PhaseError, string(data)
	})
	if fileStatus.Reason != "InvalidSpec" || !strings.Contains(fileStatus.ErrorMessage, "spec.replicas") ||
		!strings.Contains(fileStatus.ErrorMessage, "line ") {
		t.Errorf("status of the bad file: %+v", fileStatus)
	}
	d = e.waitFor(appID, 10*time.Second, "status error", status("error"))
	msg, _ := d["error_message"].(string)
	line := lineOf(g.read(appPath), "  replicas: three")
	if !strings.Contains(msg, "spec.replicas") || !strings.Contains(msg, "line "+line+":") {
		t.Errorf("error_message %q does not name line %s and spec.replicas", msg, line)
	}
	t.Logf("error_message: %s", msg)
	// Nothing was applied for the bad file: same Helm revisions, still
	// 2 replicas.
	e.waitSettled(30 * time.Second)
	if got := revisions(e.releaseSecrets("pushed-app")); got != revsBefore {
		t.Errorf("Helm revisions of the bad deployment changed: %s, were %s", got, revsBefore)
	}
	dep, err := e.kube.AppsV1().Deployments(e.ns("pushed-app")).Get(context.Background(), "pushed-app", metav1.GetOptions{})
	if err != nil || *dep.Spec.Replicas != 2 {
		t.Errorf("the bad deployment on the cluster: %v %v", err, dep.Spec.Replicas)
	}
	// The other deployment is running in Git too.
	if r := e.record(otherID); r == nil || r.Err() != nil || r.Deployment().Status == nil || r.Deployment().Status.Phase != schema.PhaseRunning {
		t.Errorf("pushed-other's record: %+v", r)
	}
	if code, _ := e.call(http.MethodGet, "/deployments/"+otherID, nil); code != http.StatusOK {
		t.Errorf("GET pushed-other: %d", code)
	}
	e.git("fsck", "--strict", "--no-dangling")
}

// lineOf returns the 1-based number of the line that is exactly text.
func lineOf(file, text string) string {
	for i, l := range strings.Split(file, "\n") {
		if l == text {
			return strconv.Itoa(i + 1)
		}
	}
	return "?"
}
