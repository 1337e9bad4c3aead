package main

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestAgentListenNeedsAWebhook: --listen serves only the forge's webhook,
// so it needs --remote and --webhook-secret-file, and a secret needs
// --listen; pull request checks need a token. Each is refused before
// anything starts, with the flag named.
func TestAgentListenNeedsAWebhook(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	remote := filepath.Join(dir, "remote.git")
	os.Unsetenv("MENGI_REMOTE_TOKEN")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "127.0.0.1:0"}, "--listen serves the forge's webhook: give --remote and --webhook-secret-file"},
		{[]string{"--remote", "file://" + remote, "--webhook-secret-file", secret}, "--webhook-secret-file needs --listen ADDR"},
		{[]string{"--webhook-secret-file", secret}, "--webhook-secret-file needs --remote"},
		{[]string{"--remote", "https://user:pw@example.com/o/r.git"}, "--remote"},
	} {
		var stderr bytes.Buffer
		cmd := mengiCmd(append([]string{"agent", "--repo", filepath.Join(dir, "repo")}, c.args...)...)
		cmd.Stderr = &stderr
		err := cmd.Run()
		if err == nil || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("agent %v: %v, stderr %q, want %q", c.args, err, stderr.String(), c.want)
		}
		if strings.Contains(stderr.String(), "pw@") {
			t.Errorf("agent %v printed the password: %q", c.args, stderr.String())
		}
	}
}

// TestAgentServesTheWebhook: `mengi agent --listen` on a remote serves POST
// /hooks/git alone: a signed push delivery is taken (202), a badly signed
// one is refused (401), and other paths are not served.
func TestAgentServesTheWebhook(t *testing.T) {
	dir := t.TempDir()
	remote := filepath.Join(dir, "remote.git")
	if out, err := exec.Command("git", "init", "-q", "--bare", "--initial-branch=main", remote).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := mengiCmd("agent", "--repo", filepath.Join(dir, "mirror"), "--remote", "file://"+remote,
		"--webhook-secret-file", secret, "--listen", "127.0.0.1:0", "--drift-interval", "0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := webhookLine.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("mengi agent --listen did not start listening")
	}
	payload := `{"ref":"refs/heads/main","after":"0123456789abcdef0123456789abcdef01234567"}`
	post := func(key string) int {
		mac := hmac.New(sha256.New, []byte(key))
		mac.Write([]byte(payload))
		req, _ := http.NewRequest(http.MethodPost, base+"/hooks/git", strings.NewReader(payload))
		req.Header.Set("X-Gitea-Event", "push")
		req.Header.Set("X-Gitea-Signature", hex.EncodeToString(mac.Sum(nil)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("s3cret"); code != http.StatusAccepted {
		t.Errorf("a signed delivery: %d, want 202", code)
	}
	if code := post("wrong"); code != http.StatusUnauthorized {
		t.Errorf("a badly signed delivery: %d, want 401", code)
	}
	resp, err := http.Get(base + "/deployments")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /deployments on the agent's webhook address: %d, want 404", resp.StatusCode)
	}
}

var webhookLine = regexp.MustCompile(`msg="webhook listening" addr=(\S+)`)
