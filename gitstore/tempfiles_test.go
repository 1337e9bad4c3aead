package gitstore

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"testing/synctest"
)

// TestRemovedPacksAreNeverRewritten: a merged-away pack is deleted, not
// emptied or reused: a hard link to it (a clone on the same disk), an open
// file and a mapping (a running git) all keep reading what it held, and
// no temporary file handed out afterwards is the same inode.
func TestRemovedPacksAreNeverRewritten(t *testing.T) {
	gitDir := t.TempDir()
	dir := filepath.Join(gitDir, "objects", "pack")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	content := bytes.Repeat([]byte("pack"), 1000)
	pack := filepath.Join(dir, "pack-1.pack")
	if err := os.WriteFile(pack, content, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pack-1.idx"), content, 0o444); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "clone.pack")
	if err := os.Link(pack, link); err != nil {
		t.Fatal(err)
	}
	ino := inode(t, pack)
	f, err := os.Open(pack)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mem, err := syscall.Mmap(int(f.Fd()), 0, len(content), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(mem)

	removePacks(gitDir, []string{"pack-1", "pack-2"}, "pack-2")
	if left, _ := filepath.Glob(filepath.Join(dir, "pack-1.*")); len(left) != 0 {
		t.Fatalf("still in the pack directory: %v", left)
	}
	temps := newTempFiles(gitDir, nil)
	for range 2 * tempFilesAhead {
		tf, err := temps.create(gitDir)
		if err != nil {
			t.Fatal(err)
		}
		if inode(t, tf.Name()) == ino {
			t.Errorf("temporary file %s reuses the removed pack's inode", tf.Name())
		}
		tf.Write([]byte("new pack"))
		tf.Close()
	}
	if got, err := os.ReadFile(link); err != nil || !bytes.Equal(got, content) {
		t.Errorf("the hard link lost its pack: %d bytes, %v", len(got), err)
	}
	got := make([]byte, len(content))
	if _, err := f.ReadAt(got, 0); err != nil || !bytes.Equal(got, content) {
		t.Errorf("the open file lost its pack: %v", err)
	}
	if !bytes.Equal(mem, content) {
		t.Error("the mapping of a removed pack changed")
	}
}

// TestTempFilesFillAndDrain: the filler keeps files ready and removes
// every file it holds when stopped.
func TestTempFilesFillAndDrain(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		temps := newTempFiles(dir, nil) // its channel belongs to the bubble
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			temps.fill(ctx)
		}()
		synctest.Wait()
		if n := len(temps.ready); n != tempFilesAhead {
			t.Errorf("%d files ready, want %d", n, tempFilesAhead)
		}
		f, err := temps.create(dir)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		os.Remove(f.Name())
		synctest.Wait()
		if n := len(temps.ready); n != tempFilesAhead {
			t.Errorf("%d files ready after one was taken, want %d", n, tempFilesAhead)
		}
		cancel()
		<-done
	})
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Errorf("left after stopping: %v", left)
	}
}
