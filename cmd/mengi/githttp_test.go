package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGitEndpoint drives `mengi serve` as an engineer does with git alone:
// an operator grants git access with `keys add --git-access`; the engineer
// clones http://HOST/git/deployments.git with the key as the password,
// changes a deployment the API made and pushes, and the API serves the
// change; a push with a broken file is refused by the real push check with
// file:line and main does not move; other branches are refused; a later
// key keeps git access; a user without it gets 403. The API's own routes
// are untouched.
func TestGitEndpoint(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	key := strings.TrimSpace(runMengi(t, "keys", "add", "--repo", repo, "--name", "Ada", "--email", "ada@example.com", "--git-access"))
	bobKey := strings.TrimSpace(runMengi(t, "keys", "add", "--repo", repo, "--name", "Bob", "--email", "bob@example.com"))
	cluster := strings.TrimSpace(runMengi(t, "clusters", "add", "--repo", repo, "--name", "prod"))
	s := startServer(t, repo)
	if !strings.Contains(s.logs.String(), "git=http://"+s.addr+"/git/deployments.git") {
		t.Errorf("the log does not name the clone URL:\n%s", s.logs.String())
	}

	code, created, err := post(http.DefaultClient, s.addr, key, `{"cluster_id":"`+cluster+`","name":"web","docker_image":"nginx:1.27","replicas":2}`)
	if err != nil || code != http.StatusCreated {
		t.Fatalf("POST /deployments: %d %v %v", code, created, err)
	}
	id, path := created["id"].(string), created["git_path"].(string)

	cloneURL := func(key string) string {
		u, _ := url.Parse("http://" + s.addr + "/git/deployments.git")
		u.User = url.UserPassword("ada", key)
		return u.String()
	}
	work := filepath.Join(t.TempDir(), "work")
	git := func(dir string, args ...string) (string, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
			"GIT_AUTHOR_NAME=Ada", "GIT_AUTHOR_EMAIL=ada@example.com", "GIT_COMMITTER_NAME=Ada", "GIT_COMMITTER_EMAIL=ada@example.com")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(dir string, args ...string) string {
		t.Helper()
		out, err := git(dir, args...)
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(out)
	}
	must("", "clone", "-q", cloneURL(key), work)
	file, err := os.ReadFile(filepath.Join(work, path))
	if err != nil || !strings.Contains(string(file), "replicas: 2") {
		t.Fatalf("the clone's %s: %v\n%s", path, err, file)
	}
	edit := func(from, to string) {
		t.Helper()
		must(work, "reset", "-q", "--hard", "origin/main")
		if err := os.WriteFile(filepath.Join(work, path), []byte(strings.Replace(string(file), from, to, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		must(work, "commit", "-qam", to)
	}
	main := func() string { return must(repo, "rev-parse", "main") }

	// A broken file: the real push check refuses it, naming file and line.
	before := main()
	edit("replicas: 2", "replicas: many")
	out, err := git(work, "push", "origin", "main")
	if err == nil || !strings.Contains(out, "remote: "+path+":") || !strings.Contains(out, ": spec.replicas: Input should be a valid integer") ||
		!strings.Contains(out, "push refused: 1 problems") {
		t.Errorf("a broken push: %v\n%s", err, out)
	}
	if main() != before {
		t.Error("main moved")
	}

	// Another branch: refused through the endpoint.
	if out, err := git(work, "push", "origin", "HEAD:refs/heads/feature"); err == nil || !strings.Contains(out, "refs/heads/feature: the server's git endpoint takes pushes of main only") {
		t.Errorf("a push of another branch: %v\n%s", err, out)
	}
	if out, _ := git(repo, "branch", "--list", "feature"); strings.TrimSpace(out) != "" {
		t.Error("the branch was made")
	}

	// A good change lands and the API serves it.
	edit("replicas: 2", "replicas: 3")
	must(work, "push", "-q", "origin", "main")
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := getDeployment(t, s.addr, key, id)
		if got["replicas"] == float64(3) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API does not serve the pushed change: %v", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out, err := exec.Command("git", "-C", repo, "fsck", "--strict", "--no-progress").CombinedOutput(); err != nil {
		t.Errorf("git fsck --strict: %v\n%s", err, out)
	}

	// A later key without the flag keeps git access; Bob has none.
	key2 := strings.TrimSpace(runMengi(t, "keys", "add", "--repo", repo, "--name", "Ada", "--email", "ada@example.com"))
	deadline = time.Now().Add(10 * time.Second)
	for {
		out, err := git("", "ls-remote", cloneURL(key2))
		if err == nil {
			break
		}
		if time.Now().After(deadline) { // the server takes the registry's new commit in within a second
			t.Fatalf("a later key: %v\n%s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, err := git("", "ls-remote", cloneURL(bobKey)); err == nil || !strings.Contains(out, "403") || !strings.Contains(out, "has no git access") {
		t.Errorf("bob: %v\n%s", err, out)
	}

	// The API's routing is as before.
	for p, want := range map[string]int{"/healthz": 200, "/git": 404, "/gitx/deployments.git/info/refs": 404} {
		resp, err := http.Get("http://" + s.addr + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s: %d %s %s", p, resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
	}
	for _, leak := range []string{key, key2, bobKey} {
		if strings.Contains(s.logs.String(), leak) {
			t.Error("a key is in the server's log")
		}
	}
}

func getDeployment(t *testing.T, addr, key, id string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/deployments/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return out
}
