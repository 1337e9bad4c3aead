package gitstore

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPushedBrokenTreeIsRefused: the repository checks pushed objects,
// so a tree with a ".." entry (which git checks out outside the work
// tree) is refused at the push, and the repository stays clean under
// `git fsck --strict`. Before, it was taken in and fsck failed for ever.
func TestPushedBrokenTreeIsRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	openStore(t, dir) // creates the repository
	work := t.TempDir()
	run := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command("git", append([]string{"-C", work}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=E", "GIT_AUTHOR_EMAIL=e@example.com", "GIT_COMMITTER_NAME=E", "GIT_COMMITTER_EMAIL=e@example.com")
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	must := func(stdin string, args ...string) string {
		out, err := run(stdin, args...)
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return out
	}
	must("", "init", "-q", "--bare")
	blob := must("x\n", "hash-object", "-w", "--stdin")
	tree := must("100644 blob "+blob+"\t..\n", "mktree")
	commit := must("", "commit-tree", tree, "-m", "dot dot")
	out, err := run("", "push", dir, commit+":refs/heads/other")
	if err == nil || !strings.Contains(out, "hasDotdot") {
		t.Errorf("a tree with a '..' entry was pushed: %v\n%s", err, out)
	}
	if out, err := exec.Command("git", "-C", dir, "fsck", "--strict").CombinedOutput(); err != nil {
		t.Errorf("git fsck --strict: %v\n%s", err, out)
	}
}

// TestMessageHoldsNoNUL: git refuses a commit holding NUL, so a message
// never carries one, whatever its parts hold.
func TestMessageHoldsNoNUL(t *testing.T) {
	m := Message("a\x00b", "body\x00", Trailer{Key: "K", Value: "v\x00"})
	if strings.Contains(m, "\x00") || !strings.Contains(m, `a\0b`) {
		t.Errorf("message %q", m)
	}
}
