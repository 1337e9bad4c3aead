package gitstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCreateCommitsOneFilePerWrite(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	for i, name := range []string{"web", "api", "db"} {
		res := mustApply(t, s, createMutation(newDeployment(i, testCluster, name)))
		if !res.Changed || res.Commit != s.Head() {
			t.Fatalf("write %d: result %+v, head %s", i, res, s.Head())
		}
	}
	if got := runGit(t, dir, "rev-list", "--count", "main"); got != "3" {
		t.Fatalf("commits = %s, want 3", got)
	}
	runGit(t, dir, "fsck", "--strict", "--no-dangling")
	files := runGit(t, dir, "ls-tree", "-r", "--name-only", "main")
	want := strings.Join([]string{
		"clusters/" + testCluster + "/api.yaml",
		"clusters/" + testCluster + "/db.yaml",
		"clusters/" + testCluster + "/web.yaml",
	}, "\n")
	if files != want {
		t.Fatalf("files:\n%s\nwant:\n%s", files, want)
	}
	author := runGit(t, dir, "log", "-1", "--format=%an <%ae>|%cn <%ce>|%s|%(trailers:key=Deployment-Id,valueonly)", "main")
	if want := "Ada Lovelace <ada@example.com>|Mengi GitOps <gitops@mengi.local>|deployment db: create|00000000-0000-7000-8000-000000000002"; author != want {
		t.Fatalf("last commit = %q, want %q", author, want)
	}
	d := newDeployment(0, testCluster, "web")
	want0, _ := encodeForTest(d)
	if got := runGit(t, dir, "show", "main:clusters/"+testCluster+"/web.yaml"); got != strings.TrimSpace(string(want0)) {
		t.Fatalf("file content:\n%s\nwant:\n%s", got, want0)
	}
}

func TestNameClashFailsAloneInsideBatch(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, clash := 0, 0
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := []string{"a", "b", "c", "d"}[i%4]
			_, err := s.Apply(context.Background(), createMutation(newDeployment(i, testCluster, name)))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, errNameTaken):
				clash++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok != 4 || clash != 36 {
		t.Fatalf("ok=%d clash=%d, want 4 and 36", ok, clash)
	}
	if got := runGit(t, dir, "rev-list", "--count", "main"); got != "4" {
		t.Fatalf("commits = %s, want 4", got)
	}
	runGit(t, dir, "fsck", "--strict", "--no-dangling")
}

func TestReopenLoadsIndexAndHistory(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	d := newDeployment(7, testCluster, "web")
	mustApply(t, s, createMutation(d))
	s.Close()

	s2 := openStore(t, dir)
	var found *Record
	s2.Read(func(v *View) { found = v.Deployment(d.Metadata.ID) })
	if found == nil || found.Deployment().Spec.Name != "web" {
		t.Fatalf("deployment not found after reopen: %+v", found)
	}
	h, err := s2.History(context.Background(), d.Metadata.ID)
	if err != nil || len(h) != 1 || !strings.HasPrefix(h[0].Message, "deployment web: create") {
		t.Fatalf("history = %+v, %v", h, err)
	}
}

// TestStaleRefLockIsTakenOver writes after a crash left the branch's lock
// file behind: a lock older than lockWait is removed, the write goes on.
func TestStaleRefLockIsTakenOver(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	mustApply(t, s, createMutation(newDeployment(1, testCluster, "one")))
	lock := filepath.Join(dir, "refs", "heads", "main.lock")
	if err := os.WriteFile(lock, []byte("0000000000000000000000000000000000000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * lockWait)
	if err := os.Chtimes(lock, old, old); err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, createMutation(newDeployment(2, testCluster, "two")))
	if _, err := os.Stat(lock); !os.IsNotExist(err) {
		t.Errorf("lock file still there: %v", err)
	}
	if got := runGit(t, dir, "rev-list", "--count", "main"); got != "2" {
		t.Errorf("%s commits, want 2", got)
	}
}

// TestDeletingEveryFile removes the only file of the repository: the
// commit gets Git's empty tree, and the store reopens.
func TestDeletingEveryFile(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	mustApply(t, s, createMutation(newDeployment(1, testCluster, "only")))
	mustApply(t, s, func(v *View) (*Commit, error) {
		return &Commit{Author: testAuthor, Message: "remove\n", Changes: []Change{{Path: DeploymentPath(testCluster, "only")}}}, nil
	})
	mustApply(t, s, createMutation(newDeployment(2, testCluster, "again")))
	s.Close()
	runGit(t, dir, "fsck", "--strict", "--no-dangling")
	if got := runGit(t, dir, "rev-parse", "main~1^{tree}"); got != "4b825dc642cb6eb9a060e54bf8d69288fbee4904" {
		t.Errorf("tree after deleting everything: %s, want the empty tree", got)
	}
	s2 := openStore(t, dir)
	if s2.idx.files[DeploymentPath(testCluster, "again")] == nil {
		t.Error("deployment written after the empty commit is missing")
	}
}

// TestStaleTemporaryFilesAreRemoved: a prepared ref value or history file
// left by a killed process is removed at the next start, a young one (of
// another store working on the repository) is left alone.
func TestStaleTemporaryFilesAreRemoved(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	mustApply(t, s, createMutation(newDeployment(1, testCluster, "one")))
	s.Close()
	stale, young := filepath.Join(dir, tmpRefPrefix+"1"), filepath.Join(dir, tmpHistoryPrefix+"2")
	for _, f := range []string{stale, young} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleTemp)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	openStore(t, dir)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale %s still there: %v", filepath.Base(stale), err)
	}
	if _, err := os.Stat(young); err != nil {
		t.Errorf("young %s removed: %v", filepath.Base(young), err)
	}
}

// TestOnlyPacksInThePackDirectory lists the pack directory over and over
// while writers and merges run: only packs and their indexes may appear
// there. go-git lists it by stat-ing every entry and finds no pack at all
// when one vanishes meanwhile, so temporary files, which come and go all
// the time, are kept in the git directory.
func TestOnlyPacksInThePackDirectory(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{CompactAfter: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				mustApply(t, s, createMutation(newDeployment(w*100+i, testCluster, fmt.Sprintf("w%d-%d", w, i))))
			}
		}()
	}
	listed := make(chan error, 1)
	go func() {
		defer close(listed)
		for {
			select {
			case <-stop:
				return
			default:
			}
			entries, err := os.ReadDir(filepath.Join(dir, "objects", "pack"))
			if err != nil {
				listed <- err
				return
			}
			for _, e := range entries {
				n := e.Name()
				if !strings.HasPrefix(n, "pack-") || !(strings.HasSuffix(n, ".pack") || strings.HasSuffix(n, ".idx")) {
					listed <- fmt.Errorf("%s in the pack directory", n)
					return
				}
			}
		}
	}()
	wg.Wait()
	close(stop)
	if err := <-listed; err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	runGit(t, dir, "fsck", "--strict", "--no-dangling")
}
