package main

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeRefusesDamagedRepository damages, with real git, a pack of the
// deployments repository and the index of a pack of the registry: each
// time `mengi-server serve` does not start, and says so in one line that
// names the file, says what is wrong and what to do, with exit status 1
// (no panic, no Go stack).
func TestServeRefusesDamagedRepository(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("this test needs git: %v", err)
	}
	root := t.TempDir()
	repo := filepath.Join(root, "repo")
	key := run(t, "keys", "add", "--repo", repo, "--name", "Ada Ops", "--email", "ada@example.com")
	cluster := run(t, "clusters", "add", "--repo", repo, "--name", "prod")
	cmd, base := startServe(t, "--repo", repo)
	for _, name := range []string{"web", "api", "db"} {
		body := `{"cluster_id":"` + cluster + `","name":"` + name + `","docker_image":"nginx:1.27","replicas":2}`
		if code, created := call(t, http.MethodPost, base+"/deployments", key, body); code != http.StatusCreated {
			t.Fatalf("POST /deployments: %d %v", code, created)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v", err)
	}
	for _, c := range []struct {
		name    string
		damage  func(t *testing.T, repo string) (file string)
		problem string
	}{
		{"deployments pack cut to half", func(t *testing.T, repo string) string {
			gitIn(t, repo, "repack", "-a", "-d", "-q")
			pack := onlyFile(t, repo, "*.pack")
			fi, err := os.Stat(pack)
			if err != nil {
				t.Fatal(err)
			}
			os.Chmod(pack, 0o644)
			if err := os.Truncate(pack, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
			return pack
		}, "fails its checksum"},
		{"registry index emptied", func(t *testing.T, repo string) string {
			reg := repo + "-registry"
			gitIn(t, reg, "repack", "-a", "-d", "-q")
			idx := onlyFile(t, reg, "*.idx")
			os.Chmod(idx, 0o644)
			if err := os.Truncate(idx, 0); err != nil {
				t.Fatal(err)
			}
			return idx
		}, "is empty (0 bytes)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "repo")
			for _, r := range []string{"", "-registry"} {
				if err := os.CopyFS(dir+r, os.DirFS(repo+r)); err != nil {
					t.Fatal(err)
				}
			}
			file := c.damage(t, dir)
			serve := serverCmd("serve", "--listen", "127.0.0.1:0", "--repo", dir)
			var stderr bytes.Buffer
			serve.Stderr = &stderr
			if err := serve.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- serve.Wait() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(60 * time.Second):
				serve.Process.Kill()
				<-done
				t.Fatalf("serve on a damaged repository did not stop:\n%s", stderr.String())
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Errorf("serve on a damaged repository: %v, want exit status 1", err)
			}
			out := stderr.String()
			if strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") || strings.Contains(out, "API listening") {
				t.Errorf("serve on a damaged repository:\n%s", out)
			}
			var errLines []string
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				if !strings.HasPrefix(l, "time=") { // the log's lines
					errLines = append(errLines, l)
				}
			}
			rel, _ := filepath.Rel(filepath.Dir(filepath.Dir(filepath.Dir(file))), file)
			if len(errLines) != 1 {
				t.Fatalf("want one line of error, got:\n%s", out)
			}
			for _, want := range []string{"mengi-server: ", "is damaged: ", rel + " " + c.problem, "does not start", "git -C "} {
				if !strings.Contains(errLines[0], want) {
					t.Errorf("the error line does not say %q:\n%s", want, errLines[0])
				}
			}
		})
	}
}

// onlyFile returns the one file of the repository's pack folder matching
// pattern.
func onlyFile(t *testing.T, repo, pattern string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(repo, "objects", "pack", pattern))
	if len(m) != 1 {
		t.Fatalf("%d files %s in %s", len(m), pattern, repo)
	}
	return m[0]
}
