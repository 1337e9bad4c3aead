package gitstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// tempFiles hands out empty temporary files for packs, made ahead of time
// by a background goroutine, so that writing a batch never waits for a
// file to be created; and it recycles the files of packs that merges made
// redundant instead of deleting them.
//
// They live in the git directory, not in the pack directory: go-git lists
// the pack directory by stat-ing every entry and fails, finding no pack,
// when one disappears meanwhile; temporary files there that are renamed
// away all the time made a store miss objects another store had just
// published (TestTwoStoresWritingAtOnce). Only packs enter and leave it.
//
// Creating a file is the costliest step of staging a small pack: on ext4
// without a journal, the inode allocator checks every inode of the block
// group freed in the last minutes before taking one, and merges free two
// per batch; under sustained load a create took 0.2-0.8 ms, a quarter of
// the committer's time. Made ahead, a file costs no writer latency; reused,
// it costs no allocation, and frees none.
//
// A merged-away pack is only reused when no process has it open or mapped
// (a git command that was reading it goes on reading it): the check is a
// write lease, which the kernel grants only then. Otherwise it is deleted.
type tempFiles struct {
	dir   string
	ready chan *os.File

	mu   sync.Mutex
	free []string // files of merged-away packs, emptied, oldest first
}

// maxFreeFiles bounds the merged-away pack files kept for reuse.
const maxFreeFiles = 4096

// freePrefix names merged-away pack files waiting for reuse.
const freePrefix = tmpPackPrefix + "free_"

// tempFilesAhead is how many files are kept ready: a burst of four
// batches, two files each, before writers create their own.
const tempFilesAhead = 8

// tmpPackPrefix names temporary pack and index files.
const tmpPackPrefix = "tmp_mengi_pack_"

func newTempFiles(dir string) *tempFiles {
	return &tempFiles{dir: dir, ready: make(chan *os.File, tempFilesAhead)}
}

// create returns an empty file open for writing: a ready one, or a new
// one when none is. A nil pool creates.
func (t *tempFiles) create(dir string) (*os.File, error) {
	if t != nil && t.dir == dir {
		select {
		case f := <-t.ready:
			return f, nil
		default:
		}
	}
	f, err := os.CreateTemp(dir, tmpPackPrefix)
	if err != nil {
		return nil, fmt.Errorf("create temporary file: %w", err)
	}
	return f, nil
}

// fill keeps files ready until ctx is done, then removes the unused ones.
func (t *tempFiles) fill(ctx context.Context) {
	defer t.drain()
	for {
		var err error
		f := t.reuse()
		if f == nil {
			f, err = os.CreateTemp(t.dir, tmpPackPrefix)
		}
		if err != nil {
			// Writers create their own meanwhile, and see the error.
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		select {
		case t.ready <- f:
		case <-ctx.Done():
			f.Close()
			os.Remove(f.Name())
			return
		}
	}
}

func (t *tempFiles) drain() {
	for {
		select {
		case f := <-t.ready:
			f.Close()
			os.Remove(f.Name())
		default:
			t.mu.Lock()
			defer t.mu.Unlock()
			for _, p := range t.free {
				os.Remove(p)
			}
			t.free = nil
			return
		}
	}
}

// moveOut takes the file of a merged-away pack out of the pack directory,
// into t's directory, and returns its new path for recycle; with a nil t
// (or when the move fails) the file is deleted and "" returned.
func (t *tempFiles) moveOut(path string) string {
	if t != nil {
		// Out of the pack directory first: emptied in place, the pack
		// would break the repository if the process died before moving it.
		tmp := filepath.Join(t.dir, freePrefix+filepath.Base(path))
		if err := os.Rename(path, tmp); err == nil {
			return tmp
		}
	}
	os.Remove(path)
	return ""
}

// recycle empties files moveOut took out and keeps them for reuse, each
// only when nobody else has it open; otherwise (or when the pool is full)
// it is deleted.
func (t *tempFiles) recycle(paths []string) {
	for _, p := range paths {
		if err := emptyUnused(p); err != nil {
			os.Remove(p)
			continue
		}
		t.mu.Lock()
		full := len(t.free) >= maxFreeFiles
		if !full {
			t.free = append(t.free, p)
		}
		t.mu.Unlock()
		if full {
			os.Remove(p)
		}
	}
}

// reuse returns the oldest emptied pack file open for writing; nil when
// there is none.
func (t *tempFiles) reuse() *os.File {
	for {
		t.mu.Lock()
		if len(t.free) == 0 {
			t.mu.Unlock()
			return nil
		}
		path := t.free[0]
		t.free = t.free[1:]
		t.mu.Unlock()
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
		if err == nil {
			return f
		}
		os.Remove(path)
	}
}

// emptyUnused truncates path to nothing, provided no open file or mapping
// of any process refers to it: the kernel grants a write lease only then.
func emptyUnused(path string) error {
	if err := os.Chmod(path, 0o600); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := unix.FcntlInt(f.Fd(), unix.F_SETLEASE, unix.F_WRLCK); err != nil {
		return fmt.Errorf("lease %s: %w", path, err)
	}
	defer unix.FcntlInt(f.Fd(), unix.F_SETLEASE, unix.F_UNLCK)
	return f.Truncate(0)
}
