package gitstore

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/format/packfile"
)

func TestDeltaOf(t *testing.T) {
	long := bytes.Repeat([]byte("0123456789abcdef"), 5000) // 80 KB: copies span chunks
	cases := []struct {
		name         string
		base, target []byte
		wantDelta    bool
	}{
		{"one entry changed in the middle", long, append(append(append([]byte{}, long[:40000]...), "CHANGED"...), long[40007:]...), true},
		{"entry inserted", long, append(append(append([]byte{}, long[:100]...), "new entry\x00"...), long[100:]...), true},
		{"entry removed", long, append(append([]byte{}, long[:30000]...), long[30050:]...), true},
		{"appended", long, append(append([]byte{}, long...), "tail"...), true},
		{"prepended", long, append([]byte("head"), long...), true},
		{"identical", long, long, true},
		{"everything differs", long, bytes.Repeat([]byte("x"), len(long)), false},
		{"small", []byte("abc"), []byte("abd"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := deltaOf(c.base, c.target)
			if (d != nil) != c.wantDelta {
				t.Fatalf("delta made: %v, want %v", d != nil, c.wantDelta)
			}
			if d == nil {
				return
			}
			if len(d) > 200 {
				t.Errorf("delta of %d bytes for a small change", len(d))
			}
			got, err := packfile.PatchDelta(c.base, d)
			if err != nil {
				t.Fatalf("go-git cannot apply the delta: %v", err)
			}
			if !bytes.Equal(got, c.target) {
				t.Fatal("applying the delta does not give the target")
			}
		})
	}
}

// TestBatchesStoreTreesAsDeltas writes from many goroutines at once, so
// batches rewrite the same folders commit after commit, and checks that
// git finds delta chains in the packs, reads every object, and that
// merged packs (deltas re-pointed) and a reopened store still agree.
func TestBatchesStoreTreesAsDeltas(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{CompactAfter: 3})
	if err != nil {
		t.Fatal(err)
	}
	clusters := []string{testCluster, "22222222-2222-4222-8222-222222222222"}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				n := w*100 + i
				d := newDeployment(n, clusters[n%2], fmt.Sprintf("w%d-%d", w, i))
				if _, err := s.Apply(context.Background(), createMutation(d)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	// The same file content again in a later batch: objects already in an
	// older pack are written again, and a merge must not index them twice.
	d := newDeployment(9999, testCluster, "again")
	mustApply(t, s, createMutation(d))
	mustApply(t, s, func(v *View) (*Commit, error) {
		return &Commit{Author: testAuthor, Message: "remove\n", Changes: []Change{{Path: DeploymentPath(testCluster, "again")}}}, nil
	})
	mustApply(t, s, createMutation(d))
	deadline := time.Now().Add(10 * time.Second)
	for packCount(dir) > 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	head := s.Head()
	s.Close()

	runGit(t, dir, "fsck", "--strict", "--no-dangling")
	deltas := 0
	idxs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*.idx"))
	for _, idx := range idxs {
		// verify-pack -v: "<id> <type> <size> <size in pack> <offset> [<depth> <base>]"
		for _, line := range strings.Split(runGit(t, dir, "verify-pack", "-v", idx), "\n") {
			if f := strings.Fields(line); len(f) == 7 && f[1] == "tree" {
				deltas++
			}
		}
	}
	if deltas == 0 {
		t.Error("no tree was stored as a delta")
	}
	if got := runGit(t, dir, "rev-list", "--count", "main"); got != "323" {
		t.Errorf("%s commits, want 323", got)
	}
	runGit(t, dir, "cat-file", "--batch-all-objects", "--batch-check")

	s2 := openStore(t, dir)
	if s2.Head() != head {
		t.Fatalf("reopened at %s, want %s", s2.Head(), head)
	}
	changes, err := s2.Diff(ZeroHashForTest, head)
	if err != nil || len(changes) != 321 {
		t.Fatalf("diff from the empty tree: %d files, %v; want 321", len(changes), err)
	}
}
