package gitstore

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestMergedPackFilesAreReused: a removed pack file that nobody has open
// comes back, emptied, as the next temporary file (the same inode: no
// file created or freed); one that a reader still has open is deleted,
// and the reader goes on reading what it had.
func TestMergedPackFilesAreReused(t *testing.T) {
	gitDir := t.TempDir()
	dir := filepath.Join(gitDir, "objects", "pack")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	temps := newTempFiles(gitDir)
	content := bytes.Repeat([]byte("pack"), 1000)
	unread := filepath.Join(dir, "pack-1.pack")
	read := filepath.Join(dir, "pack-2.pack")
	for _, p := range []string{unread, read} {
		if err := os.WriteFile(p, content, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	ino := inode(t, unread)
	reader, err := os.Open(read)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	// git maps packs and may close the file: a mapping counts as a reader.
	mapped := filepath.Join(dir, "pack-3.pack")
	if err := os.WriteFile(mapped, content, 0o444); err != nil {
		t.Fatal(err)
	}
	mf, err := os.Open(mapped)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := syscall.Mmap(int(mf.Fd()), 0, len(content), syscall.PROT_READ, syscall.MAP_SHARED)
	mf.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(mem)
	temps.recycle([]string{temps.moveOut(unread), temps.moveOut(read), temps.moveOut(mapped)})
	if !bytes.Equal(mem, content) {
		t.Errorf("the mapping of a removed pack changed")
	}
	for _, p := range []string{unread, read, mapped} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s still in place: %v", p, err)
		}
	}
	// The files someone reads are not kept: they are deleted, and the
	// readers go on reading what they had.
	if len(temps.free) != 1 {
		t.Fatalf("kept %v, want only the unread pack", temps.free)
	}
	got := make([]byte, len(content))
	if _, err := reader.ReadAt(got, 0); err != nil || !bytes.Equal(got, content) {
		t.Errorf("the reader lost its pack: %v", err)
	}
	f := temps.reuse()
	if f == nil {
		t.Fatal("no file to reuse")
	}
	defer f.Close()
	if got := inode(t, f.Name()); got != ino {
		t.Errorf("reused inode %d, want %d", got, ino)
	}
	if fi, _ := f.Stat(); fi.Size() != 0 {
		t.Errorf("reused file holds %d bytes", fi.Size())
	}
	if _, err := f.Write([]byte("new")); err != nil {
		t.Fatalf("write to the reused file: %v", err)
	}
	if g := temps.reuse(); g != nil {
		t.Fatalf("reused a file twice: %v", g.Name())
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("left in the pack directory: %v", left)
	}
	if left, _ := filepath.Glob(filepath.Join(gitDir, freePrefix+"*")); len(left) != 1 || left[0] != f.Name() {
		t.Errorf("free files left: %v, want only the reused %s", left, f.Name())
	}
}

// TestTempFilesFillAndDrain: the filler keeps files ready, prefers
// merged-away ones, and removes every file it holds when stopped.
func TestTempFilesFillAndDrain(t *testing.T) {
	dir := t.TempDir()
	temps := newTempFiles(dir)
	p := filepath.Join(dir, "pack-1.idx")
	if err := os.WriteFile(p, []byte("idx"), 0o444); err != nil {
		t.Fatal(err)
	}
	ino := inode(t, p)
	temps.recycle([]string{temps.moveOut(p)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		temps.fill(ctx)
	}()
	for len(temps.ready) < tempFilesAhead {
		time.Sleep(time.Millisecond)
	}
	f, err := temps.create(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := inode(t, f.Name()); got != ino {
		t.Errorf("first file handed out: inode %d, want the merged-away %d", got, ino)
	}
	f.Close()
	os.Remove(f.Name())
	cancel()
	<-done
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Errorf("left after stopping: %v", left)
	}
}
