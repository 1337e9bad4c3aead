package prcheck_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mengi-cloud/gitops/gitremote"
	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/hooks"
	"github.com/mengi-cloud/gitops/prcheck"
	"github.com/mengi-cloud/gitops/registry"
	"github.com/mengi-cloud/gitops/render"
	"github.com/mengi-cloud/gitops/schema"
)

const (
	clusterID = "6f1c3a52-8d4e-4b7a-9c2e-5d8f0a1b2c3d"
	userID    = "0b9e7d6c-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
)

func git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Eve", "GIT_AUTHOR_EMAIL=eve@example.com", "GIT_COMMITTER_NAME=Eve", "GIT_COMMITTER_EMAIL=eve@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// reg admits every deployment onto the one registered cluster.
type reg struct{}

func (reg) Admit(d *schema.Deployment) (*schema.Cluster, error) {
	if d.Spec.ClusterID != clusterID {
		return nil, registry.ErrUnknownCluster
	}
	return &schema.Cluster{ID: clusterID, Domain: "apps.example.com"}, nil
}

func (reg) Cluster(id string) *schema.Cluster {
	if id != clusterID {
		return nil
	}
	return &schema.Cluster{ID: clusterID, Domain: "apps.example.com"}
}

// reporter records what the check posts.
type reporter struct {
	mu       sync.Mutex
	statuses []string // sha state description
	comments map[int]string
	final    chan string // each status but pending, when set
}

func (r *reporter) SetStatus(_ context.Context, sha, state, desc string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.statuses = append(r.statuses, sha+" "+state+" "+desc)
	if r.final != nil && state != "pending" {
		r.final <- sha + " " + state
	}
	return nil
}

func (r *reporter) UpsertComment(_ context.Context, pr int, body string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.comments == nil {
		r.comments = map[int]string{}
	}
	r.comments[pr] = body
	return nil
}

// forge is a bare repository with main and refs/pull/N/head, as a forge
// keeps them, and an engineer's clone of it.
type forge struct {
	remote, work string
}

func newForge(t *testing.T) *forge {
	f := &forge{remote: filepath.Join(t.TempDir(), "remote.git"), work: t.TempDir()}
	git(t, t.TempDir(), "init", "-q", "--bare", "--initial-branch=main", f.remote)
	git(t, f.work, "init", "-q", "--initial-branch=main")
	example, err := os.ReadFile("../examples/web_app.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f.write(t, gitstore.DeploymentPath(clusterID, "blog"), string(example))
	git(t, f.work, "add", "-A")
	git(t, f.work, "commit", "-qm", "blog")
	git(t, f.work, "push", "-q", f.remote, "main")
	return f
}

func (f *forge) write(t *testing.T, path, content string) {
	p := filepath.Join(f.work, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (f *forge) read(t *testing.T, path string) string {
	data, err := os.ReadFile(filepath.Join(f.work, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// openPR commits the work tree on a branch and publishes it as pull
// request n.
func (f *forge) openPR(t *testing.T, n int, msg string) string {
	git(t, f.work, "add", "-A")
	git(t, f.work, "commit", "-qm", msg)
	git(t, f.work, "push", "-q", "-f", f.remote, "HEAD:refs/pull/"+strconv.Itoa(n)+"/head")
	return git(t, f.work, "rev-parse", "HEAD")
}

func newChecker(t *testing.T, f *forge, rep prcheck.Reporter) *prcheck.Checker {
	mirror := filepath.Join(t.TempDir(), "mirror.git")
	git(t, t.TempDir(), "init", "-q", "--bare", "--initial-branch=main", mirror)
	remote, err := gitremote.New(mirror, gitremote.Options{URL: "file://" + f.remote})
	if err != nil {
		t.Fatal(err)
	}
	r, err := render.New(render.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := prcheck.New(prcheck.Options{GitDir: mirror, Remote: remote, Registry: reg{}, Renderer: r, Reporter: rep})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestValidChangeShowsTheRenderedDiff(t *testing.T) {
	f := newForge(t)
	path := gitstore.DeploymentPath(clusterID, "blog")
	f.write(t, path, strings.Replace(f.read(t, path), "replicas: 1", "replicas: 3", 1))
	head := f.openPR(t, 1, "three replicas")

	rep := &reporter{}
	c := newChecker(t, f, rep)
	if err := c.CheckAndReport(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if len(rep.statuses) != 2 || !strings.HasPrefix(rep.statuses[0], head+" pending") ||
		rep.statuses[1] != head+" success 1 deployment file checked and rendered: no problems" {
		t.Errorf("statuses: %q", rep.statuses)
	}
	comment := rep.comments[1]
	for _, want := range []string{prcheck.Marker, "✅", "#### `" + path + "` (changed)", "-replicas: 1\n+replicas: 3", "**Deployment blog** (changed)", "-  replicas: 1\n+  replicas: 3"} {
		if !strings.Contains(comment, want) {
			t.Errorf("the comment lacks %q:\n%s", want, comment)
		}
	}
}

func TestInvalidFilesFailWithFileAndLine(t *testing.T) {
	f := newForge(t)
	path := gitstore.DeploymentPath(clusterID, "blog")
	orig := f.read(t, path)
	f.write(t, path, strings.Replace(strings.Replace(orig, "replicas: 1", "replicas: many", 1), "user_id: "+userID, "user_id: 0b9e7d6c-5a4f-4e3d-8c2b-000000000000", 1))
	other := strings.Replace(strings.Replace(orig, "name: blog", "name: shop", 1), "c0a80101-1b2c-4d3e-8f40-5a6b7c8d9e01", "c0a80101-1b2c-4d3e-8f40-5a6b7c8d9e02", 1)
	f.write(t, gitstore.DeploymentPath(clusterID, "shop"), strings.Replace(other, "cpu_request: 0.5", "cpu_request: 0.5\n  storage_size_gb: 5", 1))
	f.write(t, gitstore.DeploymentPath(clusterID, "misplaced"), strings.Replace(other, "c0a80101-1b2c-4d3e-8f40-5a6b7c8d9e02", "c0a80101-1b2c-4d3e-8f40-5a6b7c8d9e03", 1))
	head := f.openPR(t, 2, "bad")

	rep := &reporter{}
	c := newChecker(t, f, rep)
	if err := c.CheckAndReport(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	last := rep.statuses[len(rep.statuses)-1]
	if !strings.HasPrefix(last, head+" failure ") {
		t.Errorf("status: %q", last)
	}
	comment := rep.comments[2]
	for _, want := range []string{
		"❌",
		path + ":16: spec.replicas: Input should be a valid integer",
		gitstore.DeploymentPath(clusterID, "misplaced") + ":12: spec.name: spec.cluster_id and spec.name say the file should be at " + gitstore.DeploymentPath(clusterID, "shop"),
		gitstore.DeploymentPath(clusterID, "shop") + ":", // the duplicate key
	} {
		if !strings.Contains(comment, want) {
			t.Errorf("the comment lacks %q:\n%s", want, comment)
		}
	}
}

func TestQueueChecksTheNewestHeadOnce(t *testing.T) {
	f := newForge(t)
	path := gitstore.DeploymentPath(clusterID, "blog")
	f.write(t, path, strings.Replace(f.read(t, path), "replicas: 1", "replicas: 2", 1))
	f.openPR(t, 3, "two")
	f.write(t, path, strings.Replace(f.read(t, path), "replicas: 2", "replicas: 4", 1))
	head := f.openPR(t, 3, "four")

	rep := &reporter{final: make(chan string, 10)}
	c := newChecker(t, f, rep)
	c.Enqueue(hooks.PullRequest{Number: 3, Action: "opened"})
	c.Enqueue(hooks.PullRequest{Number: 3, Action: "synchronized"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case got := <-rep.final:
		if got != head+" success" {
			t.Errorf("final status %q, want success on %s", got, head)
		}
	case err := <-done:
		t.Fatalf("Run ended: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("no status within a minute")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(rep.statuses) != 2 {
		t.Errorf("the pull request was checked more than once: %q", rep.statuses)
	}
	if !strings.Contains(rep.comments[3], "+replicas: 4") {
		t.Errorf("comment: %s", rep.comments[3])
	}
}
