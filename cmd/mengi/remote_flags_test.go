package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
