package githttp_test

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mengi-cloud/gitops/githttp"
	"github.com/mengi-cloud/gitops/gitstore"
	"github.com/mengi-cloud/gitops/registry"
	"github.com/mengi-cloud/gitops/schema"
)

// env is a deployments repository with one deployment, served by the
// handler, and the keys of two users: ada with git access, bob without.
type env struct {
	repos   *registry.Repos
	srv     *httptest.Server
	adaKey  string
	bobKey  string
	path    string // the deployment's file
	id      string // its metadata.id
	file    string // its content
	hookEnv string // where the test hook writes its environment
	log     *logBuf
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	// The folder is not called deployments.git: the URL is the same.
	repo := filepath.Join(t.TempDir(), "repo")
	repos, err := registry.OpenRepos(ctx, repo, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repos.Close() })
	e := &env{repos: repos, hookEnv: filepath.Join(t.TempDir(), "hook-env"), log: &logBuf{}}
	var ada *schema.User
	if e.adaKey, ada, err = repos.Registry.AddKey(ctx, "Ada", "ada@example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := repos.Registry.GrantGitAccess(ctx, "ada@example.com"); err != nil {
		t.Fatal(err)
	}
	if e.bobKey, _, err = repos.Registry.AddKey(ctx, "Bob", "bob@example.com"); err != nil {
		t.Fatal(err)
	}
	cl, err := repos.Registry.AddCluster(ctx, registry.ClusterSpec{Name: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("../examples/web_app.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d, errs := schema.ParseFile(example)
	if errs != nil {
		t.Fatal(errs)
	}
	d.Metadata.UserID, d.Spec.ClusterID, d.Spec.Name = ada.ID, cl.ID, "web"
	content, _ := schema.EncodeFile(d)
	e.path, e.id, e.file = gitstore.DeploymentPath(cl.ID, "web"), d.Metadata.ID, string(content)
	if _, err := repos.Deployments.Apply(ctx, func(v *gitstore.View) (*gitstore.Commit, error) {
		return &gitstore.Commit{Author: gitstore.Signature{Name: "Ada", Email: "ada@example.com"}, Message: "web\n",
			Changes: []gitstore.Change{{Path: e.path, Content: content, Value: d}}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	// A stand-in for `mengi check-push`: it refuses a file called bad.yaml
	// as the real one refuses a broken file, and notes its environment.
	hook := "#!/bin/sh\nenv > '" + e.hookEnv + "'\nwhile read old new ref; do\n" +
		"  if git cat-file -e \"$new:bad.yaml\" 2>/dev/null; then\n" +
		"    echo 'bad.yaml:3: spec.replicas: Input should be a valid integer' >&2\n" +
		"    echo 'mengi: push refused: 1 problems' >&2\n    exit 1\n  fi\ndone\n"
	if err := os.MkdirAll(filepath.Join(repo, "hooks"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "hooks", "pre-receive"), []byte(hook), 0o755); err != nil {
		t.Fatal(err)
	}
	h, err := githttp.New(githttp.Options{RepoDir: repo, Auth: repos.Registry, Logger: logger(e.log), Yielder: repos.Deployments})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

// url is the repository's URL with key as the password ("" for none).
func (e *env) url(key string) string {
	u, _ := url.Parse(e.srv.URL + "/git/deployments.git")
	if key != "" {
		u.User = url.UserPassword("anyone", key)
	}
	return u.String()
}

// git runs git in dir, never asking for credentials.
func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=", "SSH_ASKPASS=", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Ada", "GIT_AUTHOR_EMAIL=ada@example.com", "GIT_COMMITTER_NAME=Ada", "GIT_COMMITTER_EMAIL=ada@example.com")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := git(dir, args...)
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(out)
}

// clone clones the repository with key into a new folder.
func (e *env) clone(t *testing.T, key string) string {
	t.Helper()
	work := filepath.Join(t.TempDir(), "work")
	mustGit(t, "", "clone", "-q", e.url(key), work)
	return work
}

func write(t *testing.T, work, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(filepath.Join(work, p)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, p), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replicas is what the store holds as the deployment's replicas.
func (e *env) replicas() int64 {
	var n int64
	e.repos.Deployments.Read(func(v *gitstore.View) {
		if r := v.Deployment(e.id); r != nil && r.Deployment() != nil && r.Deployment().Spec.Replicas != nil {
			n = *r.Deployment().Spec.Replicas
		}
	})
	return n
}

// TestCloneEditPush: a user with git access clones, changes a deployment
// and pushes; main moves, the store takes the change in, and the
// repository stays sound. The key never reaches git's environment or the
// log.
func TestCloneEditPush(t *testing.T) {
	e := newEnv(t)
	work := e.clone(t, e.adaKey)
	if got, err := os.ReadFile(filepath.Join(work, e.path)); err != nil || string(got) != e.file {
		t.Fatalf("the clone's file: %v\n%s", err, got)
	}
	if e.replicas() != 1 {
		t.Fatalf("replicas before: %d", e.replicas())
	}
	write(t, work, e.path, strings.Replace(e.file, "replicas: 1", "replicas: 3", 1))
	mustGit(t, work, "commit", "-qam", "three replicas")
	mustGit(t, work, "push", "-q", "origin", "main")
	want := mustGit(t, work, "rev-parse", "HEAD")
	if got := mustGit(t, e.repos.Deployments.Dir(), "rev-parse", "main"); got != want {
		t.Fatalf("main is %s, pushed %s", got, want)
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.repos.Deployments.Head().String() != want || e.replicas() != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the store did not take the push in: head %s, replicas %d", e.repos.Deployments.Head(), e.replicas())
		}
		time.Sleep(10 * time.Millisecond)
	}
	mustGit(t, e.repos.Deployments.Dir(), "fsck", "--strict", "--no-progress")

	hookEnv, err := os.ReadFile(e.hookEnv)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"REMOTE_USER=ada@example.com\n", githttp.PushEnv + "=1\n"} {
		if !strings.Contains(string(hookEnv), want) {
			t.Errorf("the hook's environment lacks %q:\n%s", want, hookEnv)
		}
	}
	for _, where := range []string{string(hookEnv), e.log.String()} {
		if strings.Contains(where, e.adaKey) || strings.Contains(where, "HTTP_AUTHORIZATION") {
			t.Errorf("the key leaked:\n%s", where)
		}
	}
	if !strings.Contains(e.log.String(), "service=git-receive-pack") || !strings.Contains(e.log.String(), "user=ada@example.com") {
		t.Errorf("log:\n%s", e.log.String())
	}

	// A fetch of the store's later commits works too.
	if _, err := e.repos.Deployments.Apply(context.Background(), func(v *gitstore.View) (*gitstore.Commit, error) {
		d := v.Deployment(e.id).Deployment()
		n := int64(4)
		d.Spec.Replicas = &n
		content, _ := schema.EncodeFile(d)
		return &gitstore.Commit{Author: gitstore.Signature{Name: "Ada", Email: "ada@example.com"}, Message: "four\n",
			Changes: []gitstore.Change{{Path: e.path, Content: content, Value: d}}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	mustGit(t, work, "pull", "-q", "--ff-only")
	if got, _ := os.ReadFile(filepath.Join(work, e.path)); !strings.Contains(string(got), "replicas: 4") {
		t.Errorf("pulled file:\n%s", got)
	}
}

// TestRefusedPush: the pre-receive hook's refusal reaches the engineer as
// "remote:" lines and main does not move; a force push is refused.
func TestRefusedPush(t *testing.T) {
	e := newEnv(t)
	work := e.clone(t, e.adaKey)
	before := e.repos.Deployments.Head().String()
	write(t, work, "bad.yaml", "x\n")
	mustGit(t, work, "add", "bad.yaml")
	mustGit(t, work, "commit", "-qm", "bad")
	out, err := git(work, "push", "origin", "main")
	if err == nil {
		t.Fatalf("a refused push went through:\n%s", out)
	}
	for _, want := range []string{"remote: bad.yaml:3: spec.replicas: Input should be a valid integer", "pre-receive hook declined"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if got := mustGit(t, e.repos.Deployments.Dir(), "rev-parse", "main"); got != before {
		t.Error("main moved")
	}

	// History is never rewritten through the endpoint.
	mustGit(t, work, "reset", "-q", "--hard", "origin/main")
	write(t, work, e.path, strings.Replace(e.file, "replicas: 1", "replicas: 2", 1))
	mustGit(t, work, "commit", "-qam", "two")
	mustGit(t, work, "push", "-q", "origin", "main")
	mustGit(t, work, "reset", "-q", "--hard", "HEAD~1")
	write(t, work, e.path, strings.Replace(e.file, "replicas: 1", "replicas: 5", 1))
	mustGit(t, work, "commit", "-qam", "five")
	if out, err := git(work, "push", "-f", "origin", "main"); err == nil || !strings.Contains(out, "non-fast-forward") {
		t.Errorf("a force push: %v\n%s", err, out)
	}
	mustGit(t, e.repos.Deployments.Dir(), "fsck", "--strict", "--no-progress")
}

// TestAuth: no credentials and unknown keys get 401 (git: "Authentication
// failed"), a user without git access 403 with the way to get it; only the
// repository's paths are served.
func TestAuth(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	for _, c := range []struct {
		name, key, want string
	}{
		{"no credentials", "", "could not read Username"},
		{"unknown key", "mc_" + strings.Repeat("x", 40), "Authentication failed"},
		{"no git access", e.bobKey, "has no git access; an operator grants it with `mengi keys add --git-access"},
	} {
		out, err := git(dir, "clone", e.url(c.key), filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")))
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("%s: clone: %v\n%s", c.name, err, out)
		}
		if c.key != "" && strings.Contains(out, c.key) && !strings.Contains(c.want, c.key) {
			// git prints the URL without the password; so must we.
			t.Errorf("%s: the key is in git's output:\n%s", c.name, out)
		}
	}
	if strings.Contains(e.log.String(), e.bobKey) {
		t.Errorf("the key is in the log:\n%s", e.log.String())
	}

	do := func(method, path, key string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, e.srv.URL+path, nil)
		if key != "" {
			req.SetBasicAuth("", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	refs := "/git/deployments.git/info/refs?service=git-upload-pack"
	if r := do("GET", refs, ""); r.StatusCode != 401 || r.Header.Get("WWW-Authenticate") != `Basic realm="mengi"` {
		t.Errorf("no credentials: %d %q", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
	if r := do("GET", refs, e.bobKey); r.StatusCode != 403 {
		t.Errorf("no git access: %d", r.StatusCode)
	}
	if r := do("GET", refs, e.adaKey); r.StatusCode != 200 || r.Header.Get("Content-Type") != "application/x-git-upload-pack-advertisement" {
		t.Errorf("ada: %d %s", r.StatusCode, r.Header.Get("Content-Type"))
	}
	if r := do("GET", "/git/deployments.git/info/refs?service=git-receive-pack", e.adaKey); r.StatusCode != 200 {
		t.Errorf("receive-pack refs: %d", r.StatusCode)
	}
	if r := do("GET", "/git/deployments.git/HEAD", e.adaKey); r.StatusCode != 200 {
		t.Errorf("HEAD: %d", r.StatusCode)
	}
	if r := do("POST", refs, e.adaKey); r.StatusCode != 405 {
		t.Errorf("POST info/refs: %d", r.StatusCode)
	}
	for _, p := range []string{"/git/deployments.git/config", "/git/deployments.git/objects/info/packs", "/git/repo/info/refs",
		"/git/repo-registry/info/refs", "/git/deployments.git/../repo-registry/HEAD", "/git/", "/git/deployments.git"} {
		if r := do("GET", p, e.adaKey); r.StatusCode != 404 {
			t.Errorf("%s: %d", p, r.StatusCode)
		}
	}
}

// TestLargePush: a push larger than git's post buffer comes chunked, which
// CGI cannot pass on as it is; it is read whole first and lands.
func TestLargePush(t *testing.T) {
	e := newEnv(t)
	work := e.clone(t, e.adaKey)
	big := make([]byte, 3<<20)
	rand.Read(big)
	write(t, work, "blob.bin", string(big))
	mustGit(t, work, "add", "blob.bin")
	mustGit(t, work, "commit", "-qm", "big")
	mustGit(t, work, "-c", "http.postBuffer=65536", "push", "-q", "origin", "main")
	if got, want := mustGit(t, e.repos.Deployments.Dir(), "rev-parse", "main"), mustGit(t, work, "rev-parse", "HEAD"); got != want {
		t.Errorf("main %s, pushed %s", got, want)
	}
}

// TestBodyLimit: a body over MaxBodyBytes gets 413, said in advance or
// sent chunked.
func TestBodyLimit(t *testing.T) {
	e := newEnv(t)
	for _, chunked := range []bool{false, true} {
		body := io.LimitReader(zeros{}, githttp.MaxBodyBytes+1)
		req, _ := http.NewRequest("POST", e.srv.URL+"/git/deployments.git/git-receive-pack", body)
		req.SetBasicAuth("", e.adaKey)
		req.ContentLength = githttp.MaxBodyBytes + 1
		if chunked {
			req.ContentLength = -1
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			if !chunked {
				continue // the server answered before reading the body
			}
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("chunked %v: %d", chunked, resp.StatusCode)
		}
	}
	if got, want := mustGit(t, e.repos.Deployments.Dir(), "rev-parse", "main"), e.repos.Deployments.Head().String(); got != want {
		t.Errorf("main moved: %s", got)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestExpiredKey: an expired key gets 401, like the API's.
func TestExpiredKey(t *testing.T) {
	e := newEnv(t)
	ada := e.repos.Registry.UserByKey(registry.HashKey(e.adaKey))
	expires := time.Now().Add(time.Hour)
	key, _, err := e.repos.Registry.CreateKey(context.Background(), ada.ID, "soon", &expires, gitstore.Signature{Name: "Ada", Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		now  time.Time
		want int
	}{{time.Now(), http.StatusOK}, {expires, http.StatusUnauthorized}} {
		h, err := githttp.New(githttp.Options{RepoDir: e.repos.Deployments.Dir(), Auth: e.repos.Registry, Now: func() time.Time { return c.now }})
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest("GET", "/git/deployments.git/info/refs?service=git-upload-pack", nil)
		req.SetBasicAuth("ada", key)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want || (c.want == 401 && !strings.Contains(rec.Body.String(), "API key expired")) {
			t.Errorf("at %v: %d %s", c.now, rec.Code, rec.Body.String())
		}
	}
}
