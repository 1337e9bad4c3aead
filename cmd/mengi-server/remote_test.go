package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mengi-cloud/gitops/forge/forgetest"
)

func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Eve Engineer", "GIT_AUTHOR_EMAIL=eve@example.com",
		"GIT_COMMITTER_NAME=Eve Engineer", "GIT_COMMITTER_EMAIL=eve@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestServeOnARemote: with --remote, a create is on the remote before it
// is answered; with the remote gone a write is a 503 and nothing moves;
// it recovers by itself; an engineer's push is fetched at once on a
// signed webhook, and a badly signed one is refused.
func TestServeOnARemote(t *testing.T) {
	dir := t.TempDir()
	remote := filepath.Join(dir, "remote.git")
	gitIn(t, dir, "init", "-q", "--bare", "--initial-branch=main", remote)
	gitIn(t, remote, "config", "core.logAllRefUpdates", "always")
	repo := filepath.Join(dir, "mirror")
	key := run(t, "keys", "add", "--repo", repo, "--name", "Ada Ops", "--email", "ada@example.com")
	cluster := run(t, "clusters", "add", "--repo", repo, "--name", "prod")
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("hook-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, base := startServe(t, "--repo", repo, "--remote", "file://"+remote, "--webhook-secret-file", secret, "--poll-interval", "1h")

	create := func(name string) (int, map[string]any) {
		return call(t, http.MethodPost, base+"/deployments", key, `{"cluster_id":"`+cluster+`","name":"`+name+`","docker_image":"nginx:1.27","replicas":2}`)
	}
	code, created := create("web")
	if code != http.StatusCreated {
		t.Fatalf("POST /deployments: %d %v", code, created)
	}
	if got := gitIn(t, remote, "log", "-1", "--format=%an <%ae>%n%s", "main"); !strings.HasPrefix(got, "Ada Ops <ada@example.com>\n") {
		t.Errorf("the remote's last commit: %q", got)
	}

	// The remote goes away: a 503 with a clear detail, and the remote's
	// branch is where it was.
	head := gitIn(t, remote, "rev-parse", "main")
	if err := os.Rename(remote, remote+".away"); err != nil {
		t.Fatal(err)
	}
	code, body := create("api")
	if code != http.StatusServiceUnavailable || !strings.Contains(body["detail"].(string), "did not accept the change") {
		t.Errorf("a create with the remote gone: %d %v", code, body)
	}
	if err := os.Rename(remote+".away", remote); err != nil {
		t.Fatal(err)
	}
	if got := gitIn(t, remote, "rev-parse", "main"); got != head {
		t.Errorf("the remote moved to %s while it was away", got)
	}
	if code, body := create("api"); code != http.StatusCreated {
		t.Fatalf("a create after the remote came back: %d %v", code, body)
	}

	// An engineer pushes a change; the webhook makes the server fetch it.
	work := t.TempDir()
	gitIn(t, work, "clone", "-q", remote, ".")
	path := created["git_path"].(string)
	data, err := os.ReadFile(filepath.Join(work, path))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, path), bytes.Replace(data, []byte("replicas: 2"), []byte("replicas: 5"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	gitIn(t, work, "commit", "-qam", "five replicas")
	gitIn(t, work, "push", "-q", "origin", "main")

	payload := `{"ref":"refs/heads/main","after":"` + gitIn(t, work, "rev-parse", "HEAD") + `"}`
	if code := deliver(t, base, "push", payload, "wrong-secret"); code != http.StatusUnauthorized {
		t.Errorf("a badly signed delivery: %d, want 401", code)
	}
	if code := deliver(t, base, "push", payload, "hook-s3cret"); code != http.StatusAccepted {
		t.Fatalf("a signed push delivery: %d, want 202", code)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, got := call(t, http.MethodGet, base+"/deployments/"+created["id"].(string), key, "")
		if got["replicas"] == float64(5) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the engineer's change was not fetched: %v", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The next write goes on top of the engineer's commit.
	if code, body := create("after"); code != http.StatusCreated {
		t.Fatalf("a create after the engineer's push: %d %v", code, body)
	}
	if got := gitIn(t, remote, "log", "--format=%s", "-2", "main"); !strings.HasSuffix(got, "five replicas") {
		t.Errorf("the remote's last commits:\n%s", got)
	}
	if err := forgetest.CheckNoForcePush(remote, "main"); err != nil {
		t.Error(err)
	}
}

// deliver posts a webhook delivery signed with secret and returns the
// status.
func deliver(t *testing.T, base, event, payload, secret string) int {
	t.Helper()
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(payload))
	req, err := http.NewRequest(http.MethodPost, base+"/hooks/git", strings.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRemoteFlagsRefuseBadInput: credentials in the URL, a token file
// without --remote and an empty token file are refused before anything
// starts.
func TestRemoteFlagsRefuseBadInput(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--remote", "https://bob:hunter2@example.com/o/r.git"}, "--remote"},
		{[]string{"--remote-token-file", empty}, "--remote-token-file needs --remote"},
		{[]string{"--remote", "file://" + dir + "/r.git", "--remote-token-file", empty}, "is empty"},
		{[]string{"--remote", "ssh://example.com/o/r.git"}, "--remote"},
	} {
		var stderr bytes.Buffer
		cmd := serverCmd(append([]string{"serve", "--repo", filepath.Join(dir, "repo"), "--listen", "127.0.0.1:0"}, c.args...)...)
		cmd.Stderr = &stderr
		err := cmd.Run()
		if err == nil || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("serve %v: %v, stderr %q, want %q", c.args, err, stderr.String(), c.want)
		}
		if strings.Contains(stderr.String(), "hunter2") {
			t.Errorf("serve %v printed the password: %q", c.args, stderr.String())
		}
	}
}
