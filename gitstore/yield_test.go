package gitstore

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestYieldLetsAPushLand: under a steady load of writers an engineer's
// fetch, commit and push (plain git, never forced) lands at the first try
// once the store yields; the writers go on afterwards and every write
// they were answered for is on the branch, after the push. A second yield
// waits at least as long as the first held; one that is not released ends
// after its hold.
func TestYieldLetsAPushLand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	s := openStore(t, dir)
	mustApply(t, s, createMutation(newDeployment(0, testCluster, "seed")))
	work := filepath.Join(t.TempDir(), "work")
	runGit(t, "", "clone", "-q", dir, work)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var acked atomic.Int64
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				d := newDeployment(1000*(w+1)+i, testCluster, "w"+strconv.Itoa(w)+"-"+strconv.Itoa(i))
				if _, err := s.Apply(context.Background(), createMutation(d)); err != nil {
					t.Errorf("write: %v", err)
					return
				}
				acked.Add(1)
			}
		}()
	}
	defer func() { cancel(); wg.Wait() }()
	for acked.Load() < 50 {
		time.Sleep(time.Millisecond)
	}

	release, err := s.Yield(context.Background(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	granted := time.Now()
	held := s.Head()
	runGit(t, work, "pull", "-q", "--rebase")
	if err := os.MkdirAll(filepath.Join(work, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "docs", "yield.txt"), []byte("pushed while the store yields\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runGit(t, work, "add", "docs")
	runGit(t, work, "-c", "user.name=Eng", "-c", "user.email=eng@example.com", "commit", "-q", "-m", "docs: a push under load")
	pushed := runGit(t, work, "rev-parse", "HEAD")
	if out, err := exec.Command("git", "-C", work, "push", "-q", "origin", "main").CombinedOutput(); err != nil {
		t.Fatalf("the push under load was refused while the store yields: %v\n%s", err, out)
	}
	if s.Head() != held {
		t.Error("the store's head moved while it yields")
	}
	release()
	released := time.Now()
	heldFor := released.Sub(granted)
	before := acked.Load()
	deadline := time.Now().Add(10 * time.Second)
	for acked.Load() < before+50 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if acked.Load() < before+50 {
		t.Fatal("the writers did not go on after the yield")
	}
	if err := exec.Command("git", "-C", dir, "merge-base", "--is-ancestor", pushed, s.Head().String()).Run(); err != nil {
		t.Errorf("the pushed commit %s is not in the store's history after the yield", pushed[:8])
	}

	// The next yield waits at least as long as the first one held.
	release2, err := s.Yield(context.Background(), 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if gap := time.Since(released); gap < heldFor-20*time.Millisecond {
		t.Errorf("a second yield granted %v after the first ended; the first held %v", gap, heldFor)
	}
	// Not released: after its 200 ms the writers go on by themselves.
	time.Sleep(20 * time.Millisecond) // writers answered before the grant count theirs
	start := acked.Load()
	time.Sleep(50 * time.Millisecond)
	if n := acked.Load() - start; n > 0 {
		t.Errorf("%d writes answered during a yield", n)
	}
	deadline = time.Now().Add(5 * time.Second)
	for acked.Load() == start && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if acked.Load() == start {
		t.Error("writes still held after the yield's time was up")
	}
	release2() // late: does nothing
	cancel()
	wg.Wait()
	s.Close()
	out := runGit(t, dir, "log", "--format=%s", "main")
	if got := strings.Count(out, "\n") + 1; int64(got) < acked.Load()+2 {
		t.Errorf("%d commits on main, want at least %d acknowledged writes + seed + push", got, acked.Load())
	}
	runGit(t, dir, "fsck", "--strict", "--no-dangling")
}
