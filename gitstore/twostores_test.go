package gitstore_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mengi-cloud/gitops/gitstore"
)

// TestTwoStoresFollowEachOther runs two stores (two processes, say `mengi
// serve` and `mengi agent`) on one repository, writing in turn: each must
// take in the other's commit promptly, also right after the other merged
// the packs it would read from.
func TestTwoStoresFollowEachOther(t *testing.T) {
	dir := t.TempDir() + "/repo"
	a, err := gitstore.Open(dir, gitstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := gitstore.Open(dir, gitstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	stalls := 0
	for i := range 300 {
		w := a
		if i%2 == 1 {
			w = b
		}
		_, err := w.Apply(ctx, func(v *gitstore.View) (*gitstore.Commit, error) {
			return &gitstore.Commit{Author: gitstore.Signature{Name: "x", Email: "x@y.z"}, Message: "m",
				Changes: []gitstore.Change{{Path: fmt.Sprintf("notes/%d.txt", i), Content: []byte("x")}}}, nil
		})
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		other := b
		if w == b {
			other = a
		}
		deadline := time.Now().Add(3 * time.Second)
		for other.Head() != w.Head() {
			if time.Now().After(deadline) {
				stalls++
				t.Logf("write %d: the other store stayed at %s, head %s", i, other.Head(), w.Head())
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if stalls > 0 {
		t.Errorf("%d stalls", stalls)
	}
}

// TestTwoStoresWritingAtOnce has two stores on one repository take writes
// from many goroutines at the same time, so their pipelined batches keep
// losing the race for the branch to each other (a batch in flight fails,
// and so does the one built on it): every acknowledged write must still be
// in the history exactly once, with its content.
func TestTwoStoresWritingAtOnce(t *testing.T) {
	dir := t.TempDir() + "/repo"
	var stores [2]*gitstore.Store
	for i := range stores {
		s, err := gitstore.Open(dir, gitstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	var mu sync.Mutex
	acked := map[string]string{} // path → content
	var wg sync.WaitGroup
	for si, s := range stores {
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 25 {
					path, content := fmt.Sprintf("notes/s%d-w%d-%d.txt", si, w, i), fmt.Sprintf("store %d writer %d write %d\n", si, w, i)
					_, err := s.Apply(context.Background(), func(v *gitstore.View) (*gitstore.Commit, error) {
						return &gitstore.Commit{Author: gitstore.Signature{Name: "x", Email: "x@y.z"}, Message: path + "\n",
							Changes: []gitstore.Change{{Path: path, Content: []byte(content)}}}, nil
					})
					if err != nil {
						t.Errorf("%s: %v", path, err)
						continue
					}
					mu.Lock()
					acked[path] = content
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	for _, s := range stores {
		s.Close()
	}
	git := func(args ...string) string {
		out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	git("fsck", "--strict", "--no-dangling")
	if got, want := strings.TrimSpace(git("rev-list", "--count", "main")), fmt.Sprint(len(acked)); got != want {
		t.Errorf("%s commits for %s acknowledged writes", got, want)
	}
	for path, content := range acked {
		if got := git("show", "main:"+path); got != content {
			t.Errorf("%s = %q, want %q", path, got, content)
		}
	}
}
