package gitstore

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func hashOf(n byte) plumbing.Hash {
	var h plumbing.Hash
	for i := range h {
		h[i] = n
	}
	return h
}

// noneLeft fails unless dir holds no ref value file and no ref lock.
func noneLeft(t *testing.T, dir string) {
	t.Helper()
	left, _ := filepath.Glob(filepath.Join(dir, tmpRefPrefix+"*"))
	locks, _ := filepath.Glob(filepath.Join(dir, "refs", "heads", "*.lock"))
	if len(left)+len(locks) != 0 {
		t.Fatalf("left behind: %v %v", left, locks)
	}
}

// TestRefSwapReusesReplacedFiles moves a ref three times: each replaced
// ref file becomes a spare that a later value is written into (the same
// inode: no file created), the lock is gone after each move, git reads
// every value, and a spare is not reused before spareMinAge.
func TestRefSwapReusesReplacedFiles(t *testing.T) {
	dir := t.TempDir()
	if err := initRepo(dir, "main"); err != nil {
		t.Fatal(err)
	}
	r := refFile{gitDir: dir, name: plumbing.NewBranchReferenceName("main"), spares: &spareFiles{}}
	move := func(old, new plumbing.Hash) *refValue {
		t.Helper()
		v, err := r.prepare(new)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.swap(old); err != nil {
			t.Fatal(err)
		}
		if got, err := r.read(); err != nil || got != new {
			t.Fatalf("ref = %s, %v; want %s", got, err, new)
		}
		if _, err := os.Stat(r.path() + ".lock"); !os.IsNotExist(err) {
			t.Fatalf("lock left behind: %v", err)
		}
		return v
	}
	move(plumbing.ZeroHash, hashOf(1))
	first := inode(t, r.path())
	v := move(hashOf(1), hashOf(2))
	if len(r.spares.files) != 1 || inode(t, v.path) != first {
		t.Fatalf("spares %v: want the replaced ref file (inode %d)", r.spares.files, first)
	}
	// Too young to reuse: the next value goes to a new file.
	v = move(hashOf(2), hashOf(3))
	if len(r.spares.files) != 2 {
		t.Fatalf("spares = %d, want 2", len(r.spares.files))
	}
	time.Sleep(spareMinAge + 100*time.Millisecond)
	move(hashOf(3), hashOf(4))
	if got := inode(t, r.path()); got != first {
		t.Errorf("ref file inode %d, want the reused spare %d", got, first)
	}
	if got := runGit(t, dir, "rev-parse", "refs/heads/main"); got != hashOf(4).String() {
		t.Errorf("git reads %s", got)
	}
	r.spares.removeAll()
	left, _ := filepath.Glob(filepath.Join(dir, tmpRefPrefix+"*"))
	if len(left) != 0 {
		t.Errorf("files left after removeAll: %v", left)
	}
}

// TestRefSwapRefusesAMovedRef leaves the ref, the lock and the spares as
// they were when the ref no longer holds the expected value.
func TestRefSwapRefusesAMovedRef(t *testing.T) {
	dir := t.TempDir()
	if err := initRepo(dir, "main"); err != nil {
		t.Fatal(err)
	}
	r := refFile{gitDir: dir, name: plumbing.NewBranchReferenceName("main"), spares: &spareFiles{}}
	for _, swap := range []func(v *refValue, old plumbing.Hash) error{
		(*refValue).swap,
		func(v *refValue, old plumbing.Hash) error { return v.swapCreatingLock(old, v.ref.path()+".lock") },
	} {
		v, err := r.prepare(hashOf(7))
		if err != nil {
			t.Fatal(err)
		}
		if err := swap(v, hashOf(9)); !errors.Is(err, ErrRefChanged) {
			t.Fatalf("swap from a wrong value: %v, want ErrRefChanged", err)
		}
		if got, _ := r.read(); !got.IsZero() {
			t.Fatalf("ref moved to %s", got)
		}
		noneLeft(t, dir)
	}
}

// TestRefSwapCreatingLock is the path for file systems without
// renameat2: the value is renamed over the ref under a created lock.
func TestRefSwapCreatingLock(t *testing.T) {
	dir := t.TempDir()
	if err := initRepo(dir, "main"); err != nil {
		t.Fatal(err)
	}
	r := refFile{gitDir: dir, name: plumbing.NewBranchReferenceName("main")}
	for i, old := range []plumbing.Hash{plumbing.ZeroHash, hashOf(1)} {
		v, err := r.prepare(hashOf(byte(i + 1)))
		if err != nil {
			t.Fatal(err)
		}
		if err := v.swapCreatingLock(old, r.path()+".lock"); err != nil {
			t.Fatal(err)
		}
	}
	if got := runGit(t, dir, "rev-parse", "refs/heads/main"); got != hashOf(2).String() {
		t.Errorf("git reads %s", got)
	}
	noneLeft(t, dir)
}

// TestClosedStoreLeavesNoTemporaryFiles: the files made ahead for packs
// and the spare ref files are removed when the store closes.
func TestClosedStoreLeavesNoTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		mustApply(t, s, createMutation(newDeployment(i, testCluster, "d"+string(rune('a'+i)))))
	}
	time.Sleep(spareMinAge + 100*time.Millisecond)
	mustApply(t, s, createMutation(newDeployment(20, testCluster, "last")))
	if n := len(s.temps.ready); n == 0 {
		t.Errorf("no files made ahead")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pattern := range []string{filepath.Join(dir, "tmp_mengi_*"), filepath.Join(dir, "objects", "pack", "tmp_mengi_*")} {
		if left, _ := filepath.Glob(pattern); len(left) != 0 {
			t.Errorf("left behind: %v", left)
		}
	}
	runGit(t, dir, "fsck", "--strict", "--no-dangling")
	if got := runGit(t, dir, "rev-list", "--count", "main"); got != "21" {
		t.Errorf("%s commits, want 21", got)
	}
}
