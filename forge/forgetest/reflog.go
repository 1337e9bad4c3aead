package forgetest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// AssertNoForcePush fails t unless branch main of repo only ever moved
// forward: see CheckNoForcePush.
func (f *Forge) AssertNoForcePush(t T, repo string) {
	t.Helper()
	if err := CheckNoForcePush(f.RepoDir(repo), "main"); err != nil {
		t.Fatalf("forgetest: %s: %v", repo, err)
	}
}

// CheckNoForcePush proves from the reflog of the bare repository gitDir that
// branch was never force-pushed, reset backwards or deleted since the reflog
// began (CreateRepo turns it on before the first push): every entry's old id
// must be an ancestor of its new id, each entry must start where the previous
// one ended, the first must be the branch's creation, and the last must be
// where the branch points now.
//
// A branch deleted and created again loses its reflog; the new one starts
// with a creation too, so that case is only caught when something else
// (Gitea's activity feed, the webhooks) is checked as well.
func CheckNoForcePush(gitDir, branch string) error {
	ref := "refs/heads/" + branch
	data, err := os.ReadFile(filepath.Join(gitDir, "logs", filepath.FromSlash(ref)))
	if err != nil {
		return fmt.Errorf("no reflog of %s (is core.logAllRefUpdates on?): %w", ref, err)
	}
	entries, err := parseReflog(data)
	if err != nil {
		return fmt.Errorf("reflog of %s: %w", ref, err)
	}
	if len(entries) == 0 {
		return fmt.Errorf("reflog of %s is empty", ref)
	}
	if !isZero(entries[0].old) {
		return fmt.Errorf("reflog of %s starts at %s, not at the branch's creation: it began after the first push", ref, entries[0].old)
	}
	for i, e := range entries {
		if isZero(e.new) {
			return fmt.Errorf("reflog of %s, entry %d (%s): the branch was deleted", ref, i+1, e.msg)
		}
		if i > 0 && e.old != entries[i-1].new {
			return fmt.Errorf("reflog of %s, entry %d (%s): starts at %s but the previous entry ended at %s: an update was not logged",
				ref, i+1, e.msg, e.old, entries[i-1].new)
		}
		if isZero(e.old) {
			if i > 0 {
				return fmt.Errorf("reflog of %s, entry %d (%s): created again", ref, i+1, e.msg)
			}
			continue
		}
		cmd := exec.Command("git", "--git-dir", gitDir, "merge-base", "--is-ancestor", e.old, e.new)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee) && ee.ExitCode() == 1:
			return fmt.Errorf("%s was force-pushed: reflog entry %d (%s) moves it from %s to %s, which does not contain it",
				ref, i+1, e.msg, e.old, e.new)
		default:
			return fmt.Errorf("git merge-base --is-ancestor %s %s: %v: %s", e.old, e.new, err, strings.TrimSpace(stderr.String()))
		}
	}
	out, err := exec.Command("git", "--git-dir", gitDir, "rev-parse", "--verify", ref).Output()
	if err != nil {
		return fmt.Errorf("git rev-parse %s: %w", ref, err)
	}
	if head, last := strings.TrimSpace(string(out)), entries[len(entries)-1].new; head != last {
		return fmt.Errorf("%s is at %s but its reflog ends at %s: an update was not logged", ref, head, last)
	}
	return nil
}

type reflogEntry struct {
	old, new, msg string
}

// parseReflog reads the lines "<old> <new> <name> <<email>> <time> <zone>\t<message>".
func parseReflog(data []byte) ([]reflogEntry, error) {
	var out []reflogEntry
	for n, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if line == "" {
			continue
		}
		head, msg, _ := strings.Cut(line, "\t")
		f := strings.Fields(head)
		if len(f) < 2 || !isHex(f[0]) || !isHex(f[1]) {
			return nil, fmt.Errorf("line %d: %.100q", n+1, line)
		}
		out = append(out, reflogEntry{old: f[0], new: f[1], msg: msg})
	}
	return out, nil
}

func isZero(id string) bool { return strings.Trim(id, "0") == "" }

func isHex(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}
